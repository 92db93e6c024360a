package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

func TestDevCreatesAndReusesAdminKey(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, devAdminKeyFile)

	d := startDev(t, dir)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	first := d.adminToken(t)
	require.True(t, strings.HasPrefix(first, keystore.TokenPrefix), "saved %q", first)
	keys, err := listKeys(ctx, dial(t, d.addr, first, nil))
	require.NoError(t, err, "the saved key is an admin key")
	require.Len(t, keys, 1)
	require.Equal(t, "default", keys[0].GetTenant())
	require.Equal(t, "admin", keys[0].GetSubject())
	require.Equal(t, []string{"admin"}, keys[0].GetRoles())
	d.stop()

	d = startDev(t, dir)
	require.Equal(t, first, d.adminToken(t), "a later start reuses the key")
	keys, err = listKeys(ctx, dial(t, d.addr, first, nil))
	require.NoError(t, err)
	require.Len(t, keys, 1, "and creates no other")
	id := keys[0].GetId()
	// Revoke it behind dev's back; the next start replaces it.
	_, err = d.store(t).Revoke(ctx, "", id)
	require.NoError(t, err)
	d.stop()

	d = startDev(t, dir)
	second := d.adminToken(t)
	require.NotEqual(t, first, second)
	_, err = listKeys(ctx, dial(t, d.addr, first, nil))
	requireCode(t, codes.Unauthenticated, err, "the revoked key stays revoked")
	keys, err = listKeys(ctx, dial(t, d.addr, second, nil))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.NotEqual(t, id, keys[0].GetId())
}

// keysCLI runs `airlock keys ARGS...` and returns its stdout.
func keysCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := run(context.Background(), append([]string{"keys"}, args...), &out, io.Discard)
	return out.String(), err
}

// Not parallel: it sets the CLI's environment variables.
func TestKeysCLI(t *testing.T) {
	d := startDev(t, t.TempDir())
	ctx := context.Background()
	t.Setenv("AIRLOCK_ADDR", d.addr)
	t.Setenv("AIRLOCK_TOKEN", "")
	t.Setenv("AIRLOCK_DATA_DIR", d.dataDir) // where the CLI finds admin.key
	t.Setenv("AIRLOCK_TLS_CA", "")          // dev here serves plaintext
	t.Setenv("DATABASE_URL", "")
	t.Setenv("AIRLOCK_DATABASE_URL", "")

	// Over the server, with dev's admin key found on disk.
	out, err := keysCLI(t, "create", "--subject", "alice", "--role", "user")
	require.NoError(t, err)
	alice := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(alice, keystore.TokenPrefix), "stdout is the token alone: %q", out)
	_, err = listKeys(ctx, dial(t, d.addr, alice, nil))
	requireCode(t, codes.PermissionDenied, err, "a user key authenticates but may not manage keys")

	out, err = keysCLI(t, "list")
	require.NoError(t, err)
	require.Contains(t, out, "alice")
	require.NotContains(t, out, alice, "list never shows a secret")
	id := strings.Split(strings.TrimPrefix(alice, keystore.TokenPrefix), "_")[0]
	require.Contains(t, out, id)

	out, err = keysCLI(t, "revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "revoked key "+id)
	_, err = listKeys(ctx, dial(t, d.addr, alice, nil))
	requireCode(t, codes.Unauthenticated, err, "a key revoked through the server stops working at once")
	out, err = keysCLI(t, "list")
	require.NoError(t, err)
	require.NotContains(t, out, id)
	out, err = keysCLI(t, "list", "--all")
	require.NoError(t, err)
	require.Contains(t, out, id)

	_, err = keysCLI(t, "create", "--tenant", "acme", "--subject", "x", "--role", "admin")
	requireCode(t, codes.PermissionDenied, err, "an admin creates keys in its own tenant only")
	_, err = keysCLI(t, "create", "--subject", "x", "--role", "root")
	requireCode(t, codes.InvalidArgument, err)
	_, err = keysCLI(t, "revoke", "0000000000000000")
	requireCode(t, codes.NotFound, err)

	// Bootstrapping a tenant's first admin straight in the database.
	dbURL := "sqlite:" + filepath.Join(d.dataDir, "airlock.db")
	out, err = keysCLI(t, "create", "--database-url", dbURL, "--tenant", "acme", "--subject", "root", "--role", "admin")
	require.NoError(t, err)
	acme := strings.TrimSpace(out)
	keys, err := listKeys(ctx, dial(t, d.addr, acme, nil))
	require.NoError(t, err)
	require.Len(t, keys, 1, "acme's admin sees acme's keys only")
	require.Equal(t, "acme", keys[0].GetTenant())

	// AIRLOCK_TOKEN overrides the saved key.
	t.Setenv("AIRLOCK_TOKEN", acme)
	out, err = keysCLI(t, "list")
	require.NoError(t, err)
	require.Contains(t, out, "acme")
	require.NotContains(t, out, "default")

	// Direct database access sees every tenant and can revoke across them.
	out, err = keysCLI(t, "list", "--database-url", dbURL, "--all")
	require.NoError(t, err)
	require.Contains(t, out, "acme")
	require.Contains(t, out, "default")
	acmeID := strings.Split(strings.TrimPrefix(acme, keystore.TokenPrefix), "_")[0]
	_, err = keysCLI(t, "revoke", "--database-url", dbURL, acmeID)
	require.NoError(t, err)
	acmeConn := authv1.NewKeyServiceClient(dial(t, d.addr, acme, nil))
	require.Eventually(t, func() bool {
		_, err := acmeConn.ListKeys(ctx, &authv1.ListKeysRequest{})
		return status.Code(err) == codes.Unauthenticated
	}, 2*keystore.DefaultCacheTTL, 100*time.Millisecond, "a key revoked in the database stops working within the cache TTL")
}

// devInstance is an `airlock dev` running in-process on a loopback port.
type devInstance struct {
	addr    string
	dataDir string
	// dbURL is the database it uses: --database-url, else SQLite in dataDir.
	dbURL string
	stop  func()
}

// freeAddr returns a loopback address nobody listens on right now. dev
// needs a real port, not :0, because its services dial each other there.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startDev runs `airlock dev` (the same run() main calls) with dataDir and
// extra flags, and returns once it serves. stop is idempotent and also runs
// at cleanup.
func startDev(t *testing.T, dataDir string, extra ...string) *devInstance {
	t.Helper()
	// No warm sandboxes: these tests never wait for one, and 2 cores are shared.
	return startServer(t, "dev", dataDir, append([]string{"--executor-pool-size", "0"}, extra...)...)
}

// startServer runs `airlock <command...>` (dev, or serve NAME) on a free
// loopback port with dataDir, and returns once it serves.
func startServer(t *testing.T, command string, dataDir string, extra ...string) *devInstance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := freeAddr(t)
	args := append(strings.Fields(command), "--addr", addr, "--data-dir", dataDir, "--log-format", "json")
	args = append(args, extra...)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, io.Discard, pw)
		pw.Close()
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving gRPC" && !sent {
				close(ready)
				sent = true
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("airlock %s stopped with: %v", command, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("airlock %s did not stop within 30s of cancellation", command)
		}
	}
	t.Cleanup(stop)
	select {
	case <-ready:
	case err := <-done:
		stopped = true
		t.Fatalf("airlock %s exited before serving: %v", command, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("airlock %s did not start within 60s", command)
	}
	dbURL := "sqlite:" + filepath.Join(dataDir, "airlock.db")
	for i, arg := range extra {
		if arg == "--database-url" && i+1 < len(extra) {
			dbURL = extra[i+1]
		}
	}
	return &devInstance{addr: addr, dataDir: dataDir, dbURL: dbURL, stop: stop}
}

// adminToken reads the admin key dev saved.
func (d *devInstance) adminToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dataDir, devAdminKeyFile))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// store opens the server's database directly, as `airlock keys --database-url` does.
func (d *devInstance) store(t *testing.T) *keystore.Store {
	t.Helper()
	return keystore.New(dbtest.Open(t, d.dbURL, keystore.Migrations))
}

// dial connects to dev with token (none when empty) over creds (plaintext when nil).
func dial(t *testing.T, addr, token string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func requireCode(t *testing.T, want codes.Code, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.Equal(t, want.String(), status.Code(err).String(), "%v", err)
}

func listKeys(ctx context.Context, conn *grpc.ClientConn) ([]*authv1.ApiKey, error) {
	resp, err := authv1.NewKeyServiceClient(conn).ListKeys(ctx, &authv1.ListKeysRequest{})
	return resp.GetKeys(), err
}

// Not parallel: it runs the CLI, which reads process-wide environment.
func TestServeStatelessServiceAuthenticatesKeysFromDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("AIRLOCK_DATABASE_URL", "")
	ctx := context.Background()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "cluster.db")
	// Bootstrap: the first admin key, straight into a fresh database.
	out, err := keysCLI(t, "create", "--database-url", dbURL, "--tenant", "ops", "--subject", "root", "--role", "admin")
	require.NoError(t, err)
	token := strings.TrimSpace(out)
	// DATABASE_URL stands in for --database-url; other AIRLOCK_* variables
	// (here AIRLOCK_TENANT) never fill the keys commands' flags.
	require.NoError(t, os.Unsetenv("AIRLOCK_DATABASE_URL")) // set (even empty), it would win; t.Setenv above restores it
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("AIRLOCK_TENANT", "elsewhere")
	out, err = keysCLI(t, "list")
	require.NoError(t, err)
	require.Contains(t, out, "ops", "keys list with DATABASE_URL reads the database across tenants")
	t.Setenv("DATABASE_URL", "")

	withDB := startServer(t, "serve generator", t.TempDir(), "--database-url", dbURL)
	keys, err := listKeys(ctx, dial(t, withDB.addr, token, nil))
	require.NoError(t, err, "a stateless service given --database-url authenticates keys and serves KeyService")
	require.Len(t, keys, 1)
	require.Equal(t, "ops", keys[0].GetTenant())
	_, err = listKeys(ctx, dial(t, withDB.addr, token+"0", nil))
	requireCode(t, codes.Unauthenticated, err)

	// The key works on the service's own RPC too: past authentication and
	// authorisation (admins may call Generate), the generator judges the request.
	generate := func(addr string) error {
		_, err := generatorv1.NewGeneratorServiceClient(dial(t, addr, token, nil)).Generate(ctx, &generatorv1.GenerateRequest{})
		return err
	}
	err = generate(withDB.addr)
	require.Error(t, err)
	require.NotContains(t, []codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.Unavailable}, status.Code(err), "%v", err)

	noDB := startServer(t, "serve generator", t.TempDir())
	requireCode(t, codes.Unauthenticated, generate(noDB.addr), "without a database only service credentials authenticate")
}
