package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// pki is a throwaway certificate authority for one test.
type pki struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CAFile is the CA certificate, PEM.
	CAFile string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	dir := t.TempDir()
	p := &pki{dir: dir, cert: cert, key: key, CAFile: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

// issue signs a certificate for 127.0.0.1 usable by servers and clients,
// with uris as URI SANs, and returns its certificate and key files.
func (p *pki) issue(t *testing.T, name string, uris ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile = filepath.Join(p.dir, name+".pem")
	keyFile = filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

// tlsCreds returns client credentials trusting caFile and, when certFile is
// set, presenting that client certificate.
func tlsCreds(t *testing.T, caFile, certFile, keyFile string) credentials.TransportCredentials {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pemBytes))
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg)
}

// Not parallel: it sets the CLI's environment variables.
func TestTLSAndTheCLIsCA(t *testing.T) {
	ca := newPKI(t, "good")
	certFile, keyFile := ca.issue(t, "server")
	d := startDev(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile, "--tls-ca", ca.CAFile)
	ctx := context.Background()

	t.Setenv("AIRLOCK_ADDR", d.addr)
	t.Setenv("AIRLOCK_TOKEN", d.adminToken(t))
	t.Setenv("DATABASE_URL", "") // else `keys` would go to the database
	t.Setenv("AIRLOCK_DATABASE_URL", "")
	t.Setenv("AIRLOCK_TLS_CA", ca.CAFile)
	var out strings.Builder
	require.NoError(t, run(ctx, []string{"keys", "list"}, &out, io.Discard), "the CLI over TLS with AIRLOCK_TLS_CA")
	require.Contains(t, out.String(), "default")
	require.Contains(t, out.String(), "admin")

	other := newPKI(t, "other")
	t.Setenv("AIRLOCK_TLS_CA", other.CAFile)
	err := run(ctx, []string{"keys", "list"}, io.Discard, io.Discard)
	requireCode(t, codes.Unavailable, err, "a server certificate from another CA is refused")

	t.Setenv("AIRLOCK_TLS_CA", "")
	err = run(ctx, []string{"keys", "list"}, io.Discard, io.Discard)
	requireCode(t, codes.Unavailable, err, "plaintext to a TLS server fails")
}

func TestMutualTLSRefusesWrongCA(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "cluster")
	srvCert, srvKey := ca.issue(t, "server", auth.ServiceCertURIPrefix+"dev")
	d := startDev(t, t.TempDir(), "--tls-cert", srvCert, "--tls-key", srvKey,
		"--tls-client-ca", ca.CAFile, "--tls-ca", ca.CAFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := d.adminToken(t)

	userCert, userKey := ca.issue(t, "alice")
	keys, err := listKeys(ctx, dial(t, d.addr, admin, tlsCreds(t, ca.CAFile, userCert, userKey)))
	require.NoError(t, err, "a client certificate from the cluster CA is accepted")
	require.NotEmpty(t, keys)

	rogue := newPKI(t, "rogue")
	rogueCert, rogueKey := rogue.issue(t, "mallory", auth.ServiceCertURIPrefix+"orchestrator")
	_, err = listKeys(ctx, dial(t, d.addr, admin, tlsCreds(t, ca.CAFile, rogueCert, rogueKey)))
	requireCode(t, codes.Unavailable, err, "a client certificate from another CA is refused, even with a valid key")

	_, err = listKeys(ctx, dial(t, d.addr, admin, tlsCreds(t, ca.CAFile, "", "")))
	requireCode(t, codes.Unavailable, err, "no client certificate is refused")

	// A user certificate is no credential by itself: the key is still needed.
	_, err = listKeys(ctx, dial(t, d.addr, "", tlsCreds(t, ca.CAFile, userCert, userKey)))
	requireCode(t, codes.Unauthenticated, err)

	// A service certificate authenticates as that service, which may forward
	// the end user's principal; KeyService itself is for admins only.
	svcCert, svcKey := ca.issue(t, "orchestrator", auth.ServiceCertURIPrefix+"orchestrator")
	svcConn := dial(t, d.addr, "", tlsCreds(t, ca.CAFile, svcCert, svcKey))
	_, err = listKeys(ctx, svcConn)
	requireCode(t, codes.PermissionDenied, err, "a service is not an admin")
	onBehalf := auth.OnBehalfOf(ctx, auth.Principal{Tenant: "default", Subject: "admin", Roles: []auth.Role{auth.RoleAdmin}})
	keys, err = listKeys(onBehalf, svcConn)
	require.NoError(t, err, "a service forwards an admin")
	require.NotEmpty(t, keys)
}

func TestServiceCertificateAloneUnderMutualTLS(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "cluster")
	srvCert, srvKey := ca.issue(t, "budget", auth.ServiceCertURIPrefix+"budget")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "b.db")
	require.NoError(t, run(ctx, []string{"migrate", "--database-url", dbURL}, io.Discard, io.Discard))
	// No --service-token: services know each other by certificate only.
	srv := startServer(t, "serve budget", t.TempDir(), "--tls-cert", srvCert, "--tls-key", srvKey,
		"--tls-client-ca", ca.CAFile, "--tls-ca", ca.CAFile, "--database-url", dbURL)

	orchCert, orchKey := ca.issue(t, "orchestrator", auth.ServiceCertURIPrefix+"orchestrator")
	conn := dial(t, srv.addr, "", tlsCreds(t, ca.CAFile, orchCert, orchKey))
	client := budgetv1.NewBudgetServiceClient(conn)
	aliceScope := &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_USER, Subject: "alice"}
	alice := auth.Principal{Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}}
	_, err := client.GetUsage(auth.OnBehalfOf(ctx, alice), &budgetv1.GetUsageRequest{Scope: aliceScope})
	require.NoError(t, err, "the orchestrator's certificate authenticates it, and it speaks for alice")
	_, err = client.GetUsage(ctx, &budgetv1.GetUsageRequest{Scope: aliceScope})
	require.NoError(t, err, "as itself, the orchestrator is a service")
	_, err = client.GetUsage(auth.OnBehalfOf(ctx, alice), &budgetv1.GetUsageRequest{Scope: &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_USER, Subject: "bob"}})
	requireCode(t, codes.PermissionDenied, err, "speaking for alice, it has alice's rights only")

	userCert, userKey := ca.issue(t, "alice")
	_, err = budgetv1.NewBudgetServiceClient(dial(t, srv.addr, "", tlsCreds(t, ca.CAFile, userCert, userKey))).
		GetUsage(auth.OnBehalfOf(ctx, alice), &budgetv1.GetUsageRequest{Scope: aliceScope})
	requireCode(t, codes.Unauthenticated, err, "a certificate without the service URI is no credential")
}
