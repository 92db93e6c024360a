package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoKeys is a KeyService whose ListKeys answers with the caller's
// principal, so a test sees exactly who the interceptor let in.
type echoKeys struct {
	authv1.UnimplementedKeyServiceServer
}

func (echoKeys) ListKeys(ctx context.Context, _ *authv1.ListKeysRequest) (*authv1.ListKeysResponse, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no principal in context")
	}
	k := &authv1.ApiKey{Tenant: p.Tenant, Subject: p.Subject, Id: p.KeyID, CreatedBy: p.Via}
	for _, r := range p.Roles {
		k.Roles = append(k.Roles, string(r))
	}
	return &authv1.ListKeysResponse{Keys: []*authv1.ApiKey{k}}, nil
}

func (echoKeys) CreateKey(context.Context, *authv1.CreateKeyRequest) (*authv1.CreateKeyResponse, error) {
	return &authv1.CreateKeyResponse{}, nil
}

func (echoKeys) RevokeKey(context.Context, *authv1.RevokeKeyRequest) (*authv1.RevokeKeyResponse, error) {
	return &authv1.RevokeKeyResponse{}, nil
}

const (
	listKeys  = "/airlock.auth.v1.KeyService/ListKeys"
	createKey = "/airlock.auth.v1.KeyService/CreateKey"
)

var (
	alice   = auth.Principal{Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}}
	service = auth.Principal{Tenant: auth.SystemTenant, Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}}
)

type fixture struct {
	addr  string
	store *keystore.Store
	authn *keystore.Authenticator
}

// setup serves echoKeys behind the interceptor on a loopback port. Callers
// authenticate with the static keys "alice" and "service" or with API keys
// from the SQLite key store.
func setup(t *testing.T, extra auth.Authenticator) *fixture {
	t.Helper()
	return setupWith(t, extra, nil)
}

// setupWith is setup with a hook that adjusts the interceptor.
func setupWith(t *testing.T, extra auth.Authenticator, adjust func(*auth.Interceptor)) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), keystore.Migrations)
	store := keystore.New(db)
	authn := keystore.NewAuthenticator(store, log)
	chain := auth.Chain{auth.StaticKeys{"alice": alice, "service": service}, authn}
	if extra != nil {
		chain = append(chain, extra)
	}
	rules := auth.Rules{listKeys: {auth.RoleUser, auth.RoleService}, createKey: {auth.RoleAdmin}}
	i := auth.NewInterceptor(chain, rules, log)
	if adjust != nil {
		adjust(i)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(i.Unary()), grpc.ChainStreamInterceptor(i.Stream()))
	authv1.RegisterKeyServiceServer(srv, echoKeys{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return &fixture{addr: lis.Addr().String(), store: store, authn: authn}
}

// client returns a KeyService client sending token (none when empty).
func (f *fixture) client(t *testing.T, token string) authv1.KeyServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return authv1.NewKeyServiceClient(conn)
}

func whoami(ctx context.Context, c authv1.KeyServiceClient) (*authv1.ApiKey, error) {
	resp, err := c.ListKeys(ctx, &authv1.ListKeysRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetKeys()[0], nil
}

func requireCode(t *testing.T, want codes.Code, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, status.Code(err), "%v", err)
}

func TestNoOrBadCredentialsAreUnauthenticated(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	_, err := whoami(ctx, f.client(t, ""))
	requireCode(t, codes.Unauthenticated, err)
	_, err = whoami(ctx, f.client(t, "no-such-key"))
	requireCode(t, codes.Unauthenticated, err)
	_, err = whoami(ctx, f.client(t, keystore.TokenPrefix+"0123456789abcdef_"+"00000000000000000000000000000000000000000000000000000000000000aa"))
	requireCode(t, codes.Unauthenticated, err)
	// A malformed header, sent by hand.
	conn := f.client(t, "")
	md := metadata.Pairs("authorization", "Basic YWxpY2U6cHc=")
	_, err = whoami(metadata.NewOutgoingContext(ctx, md), conn)
	requireCode(t, codes.Unauthenticated, err)
	// Health needs no key.
	hc, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer hc.Close()
	_, err = healthpb.NewHealthClient(hc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
}

// An address that keeps presenting invalid credentials is refused, even
// with a valid key, until its window ends; other failures do not count.
func TestTooManyInvalidCredentialsAreRefused(t *testing.T) {
	t.Parallel()
	const window = 500 * time.Millisecond
	f := setupWith(t, nil, func(i *auth.Interceptor) { i.LimitFailures(3, window) })
	ctx := context.Background()
	for range 3 {
		_, err := whoami(ctx, f.client(t, keystore.TokenPrefix+"0123456789abcdef_"+strings.Repeat("0", 64)))
		requireCode(t, codes.Unauthenticated, err)
	}
	_, err := whoami(ctx, f.client(t, "guess"))
	requireCode(t, codes.ResourceExhausted, err)
	require.Contains(t, status.Convert(err).Message(), "too many invalid credentials")
	_, err = whoami(ctx, f.client(t, "alice"))
	requireCode(t, codes.ResourceExhausted, err)
	// The window started at the first failure; a valid key does not count,
	// so asking until it is let in measures when the window ended.
	var got *authv1.ApiKey
	require.Eventually(t, func() bool {
		got, err = whoami(ctx, f.client(t, "alice"))
		return err == nil
	}, 10*window, 20*time.Millisecond, "the address is let in again once its window ends")
	require.Equal(t, "alice", got.GetSubject())
	// A call with no credentials at all is not a guess and does not count.
	for range 5 {
		_, err = whoami(ctx, f.client(t, ""))
		requireCode(t, codes.Unauthenticated, err)
	}
	_, err = whoami(ctx, f.client(t, "alice"))
	require.NoError(t, err)
}

func TestAPIKeyAuthenticatesUntilRevoked(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	k, token, err := f.store.Create(ctx, keystore.NewKey{Tenant: "globex", Subject: "bob", Roles: []auth.Role{auth.RoleUser}})
	require.NoError(t, err)
	c := f.client(t, token)
	got, err := whoami(ctx, c)
	require.NoError(t, err)
	require.Equal(t, "globex", got.GetTenant())
	require.Equal(t, "bob", got.GetSubject())
	require.Equal(t, []string{"user"}, got.GetRoles())
	require.Equal(t, k.ID, got.GetId())
	_, err = f.authn.Revoke(ctx, "globex", k.ID)
	require.NoError(t, err)
	_, err = whoami(ctx, c)
	requireCode(t, codes.Unauthenticated, err)
}

func TestWrongRoleIsPermissionDenied(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	// alice is a user; CreateKey is for admins.
	_, err := f.client(t, "alice").CreateKey(ctx, &authv1.CreateKeyRequest{})
	requireCode(t, codes.PermissionDenied, err)
	// RevokeKey has no rule at all: closed to everyone, even admins.
	_, adminToken, err := f.store.Create(ctx, keystore.NewKey{Tenant: "acme", Subject: "root", Roles: []auth.Role{auth.RoleAdmin}})
	require.NoError(t, err)
	_, err = f.client(t, adminToken).RevokeKey(ctx, &authv1.RevokeKeyRequest{})
	requireCode(t, codes.PermissionDenied, err)
	_, err = f.client(t, adminToken).CreateKey(ctx, &authv1.CreateKeyRequest{})
	require.NoError(t, err, "an admin may create keys")
	_, err = whoami(ctx, f.client(t, adminToken))
	require.NoError(t, err, "an admin holds the user role too")
	// An operator does not hold the user role.
	_, opToken, err := f.store.Create(ctx, keystore.NewKey{Tenant: "acme", Subject: "op", Roles: []auth.Role{auth.RoleOperator}})
	require.NoError(t, err)
	_, err = whoami(ctx, f.client(t, opToken))
	requireCode(t, codes.PermissionDenied, err)
}

func TestForwardedPrincipalOnlyFromServices(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	boss := auth.Principal{Tenant: "globex", Subject: "boss", Roles: []auth.Role{auth.RoleOperator, auth.RoleUser}}

	// A user forging the header stays themself.
	got, err := whoami(auth.OnBehalfOf(ctx, boss), f.client(t, "alice"))
	require.NoError(t, err)
	require.Equal(t, "acme", got.GetTenant())
	require.Equal(t, "alice", got.GetSubject())
	require.Empty(t, got.GetCreatedBy())

	// So does an admin API key: admin is not service.
	_, adminToken, err := f.store.Create(ctx, keystore.NewKey{Tenant: "acme", Subject: "root", Roles: []auth.Role{auth.RoleAdmin}})
	require.NoError(t, err)
	got, err = whoami(auth.OnBehalfOf(ctx, boss), f.client(t, adminToken))
	require.NoError(t, err)
	require.Equal(t, "acme", got.GetTenant())
	require.Equal(t, "root", got.GetSubject())

	// A service forwards the end user, who is then the principal.
	got, err = whoami(auth.OnBehalfOf(ctx, boss), f.client(t, "service"))
	require.NoError(t, err)
	require.Equal(t, "globex", got.GetTenant())
	require.Equal(t, "boss", got.GetSubject())
	require.Equal(t, []string{"operator", "user"}, got.GetRoles())
	require.Equal(t, "orchestrator", got.GetCreatedBy(), "Via names the forwarding service")

	// Without a forwarded principal a service is itself.
	got, err = whoami(ctx, f.client(t, "service"))
	require.NoError(t, err)
	require.Equal(t, auth.SystemTenant, got.GetTenant())

	// A service may not forward a service role, nor garbage.
	_, err = whoami(auth.OnBehalfOf(ctx, service), f.client(t, "service"))
	requireCode(t, codes.InvalidArgument, err)
	bad := metadata.AppendToOutgoingContext(ctx, auth.ForwardedPrincipalHeader, "not base64 json!")
	_, err = whoami(bad, f.client(t, "service"))
	requireCode(t, codes.InvalidArgument, err)
	noTenant := auth.OnBehalfOf(ctx, auth.Principal{Subject: "x", Roles: []auth.Role{auth.RoleUser}})
	_, err = whoami(noTenant, f.client(t, "service"))
	requireCode(t, codes.InvalidArgument, err)
}

// failingAuthn stands for a key store that cannot be reached.
type failingAuthn struct{}

func (failingAuthn) Authenticate(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, errors.New("database down")
}

func TestStoreFailureIsUnavailableNotUnauthenticated(t *testing.T) {
	t.Parallel()
	f := setup(t, failingAuthn{})
	_, err := whoami(context.Background(), f.client(t, "anything"))
	requireCode(t, codes.Unavailable, err)
	got, err := whoami(context.Background(), f.client(t, "alice"))
	require.NoError(t, err, "keys found before the failing authenticator still work")
	require.Equal(t, "alice", got.GetSubject())
}

// fakeStream is a server stream with a given context.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestStreamInterceptor(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	i := auth.NewInterceptor(auth.StaticKeys{"alice": alice}, auth.Rules{"/x.v1.S/Watch": {auth.RoleUser}}, log)
	var seen auth.Principal
	handler := func(_ any, ss grpc.ServerStream) error {
		seen, _ = auth.FromContext(ss.Context())
		return nil
	}
	incoming := func(pairs ...string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(pairs...))
	}
	err := i.Stream()(nil, fakeStream{ctx: incoming()}, &grpc.StreamServerInfo{FullMethod: "/x.v1.S/Watch"}, handler)
	requireCode(t, codes.Unauthenticated, err)
	err = i.Stream()(nil, fakeStream{ctx: incoming("authorization", "Bearer alice")}, &grpc.StreamServerInfo{FullMethod: "/x.v1.S/Other"}, handler)
	requireCode(t, codes.PermissionDenied, err)
	err = i.Stream()(nil, fakeStream{ctx: incoming("authorization", "Bearer alice")}, &grpc.StreamServerInfo{FullMethod: "/x.v1.S/Watch"}, handler)
	require.NoError(t, err)
	require.Equal(t, alice, seen)
}

// withPeerCert returns a context whose connection presented cert; verified
// says whether the server checked it against its client CA.
func withPeerCert(cert *x509.Certificate, verified bool) context.Context {
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	if verified {
		state.VerifiedChains = [][]*x509.Certificate{{cert}}
	}
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: state}})
}

func TestServiceFromCertificate(t *testing.T) {
	t.Parallel()
	svc := &x509.Certificate{SerialNumber: big.NewInt(42), URIs: []*url.URL{{Scheme: "spiffe", Host: "airlock", Path: "/service/orchestrator"}}}
	p, ok := auth.ServiceFromCertificate(withPeerCert(svc, true))
	require.True(t, ok)
	require.Equal(t, auth.Principal{Tenant: auth.SystemTenant, Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}, KeyID: "cert:2a"}, p)

	_, ok = auth.ServiceFromCertificate(withPeerCert(svc, false))
	require.False(t, ok, "an unverified certificate names nobody")
	user := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{{Scheme: "spiffe", Host: "airlock", Path: "/user/alice"}}}
	_, ok = auth.ServiceFromCertificate(withPeerCert(user, true))
	require.False(t, ok)
	other := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{{Scheme: "spiffe", Host: "evil", Path: "/service/orchestrator"}}}
	_, ok = auth.ServiceFromCertificate(withPeerCert(other, true))
	require.False(t, ok)
	_, ok = auth.ServiceFromCertificate(context.Background())
	require.False(t, ok)
}

func TestChainAndStaticKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := auth.Chain{auth.StaticKeys{"a": alice}, auth.StaticKeys{"s": service}}
	p, err := c.Authenticate(ctx, "s")
	require.NoError(t, err)
	require.Equal(t, service, p)
	_, err = c.Authenticate(ctx, "nope")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, err = auth.StaticKeys{"a": alice}.Authenticate(ctx, "")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	md, err := auth.BearerToken{Token: "k"}.GetRequestMetadata(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"authorization": "Bearer k"}, md)
	md, err = auth.BearerToken{}.GetRequestMetadata(context.Background())
	require.NoError(t, err)
	require.Empty(t, md, "no token, no header: a service may rely on its client certificate")
	require.True(t, auth.BearerToken{Token: "k", Secure: true}.RequireTransportSecurity())
}
