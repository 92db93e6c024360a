package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The OpenTelemetry SDK and gRPC keep package-level goroutines.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// slowPolicy is a PolicyService whose Check blocks until released, so a test
// can hold a call in flight.
type slowPolicy struct {
	policyv1.UnimplementedPolicyServiceServer
	started chan struct{}
	release chan struct{}
	panics  bool
}

func (s *slowPolicy) Check(ctx context.Context, _ *policyv1.CheckRequest) (*policyv1.CheckResponse, error) {
	if s.panics {
		panic("boom")
	}
	close(s.started)
	select {
	case <-s.release:
		return &policyv1.CheckResponse{Verdict: policyv1.Verdict_VERDICT_ALLOW}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	srv    *Server
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

func testConfig() Config {
	return Config{
		Addr:            "127.0.0.1:0",
		ShutdownTimeout: 5 * time.Second,
		HealthInterval:  20 * time.Millisecond,
		MaxMessageBytes: 1 << 20,
	}
}

// setup serves svc on a loopback port with an auth interceptor that knows one
// user key, and returns a client connection.
func setup(t *testing.T, cfg Config, svc policyv1.PolicyServiceServer, checks ...HealthCheck) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	keys := auth.StaticKeys{"user-key": {Tenant: "t1", Subject: "alice", Roles: []auth.Role{auth.RoleUser}}}
	rules := auth.Rules{"/airlock.policy.v1.PolicyService/Check": {auth.RoleUser}}
	srv, err := New(context.Background(), "test", cfg, log, WithAuth(auth.NewInterceptor(keys, rules, log)))
	require.NoError(t, err)
	policyv1.RegisterPolicyServiceServer(srv.GRPC(), svc)
	for i, c := range checks {
		srv.AddHealthCheck(policyv1.PolicyService_ServiceDesc.ServiceName, "check"+string(rune('a'+i)), c)
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: "user-key"}))
	require.NoError(t, err)
	f := &fixture{srv: srv, conn: conn, cancel: cancel, done: done, logs: logs}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return f
}

func TestServesHealthAndReflection(t *testing.T) {
	t.Parallel()
	f := setup(t, testConfig(), &slowPolicy{})
	hc := healthpb.NewHealthClient(f.conn)
	for _, svc := range []string{"", policyv1.PolicyService_ServiceDesc.ServiceName} {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err, "service %q", svc)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus(), "service %q", svc)
	}
	info := f.srv.GRPC().GetServiceInfo()
	for _, name := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "airlock.policy.v1.PolicyService"} {
		require.Contains(t, info, name)
	}
}

func TestHealthFollowsDependency(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var depErr error = errors.New("database unreachable")
	check := func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return depErr
	}
	f := setup(t, testConfig(), &slowPolicy{}, check)
	hc := healthpb.NewHealthClient(f.conn)
	status := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		return resp.GetStatus()
	}
	name := policyv1.PolicyService_ServiceDesc.ServiceName
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, status(name))
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, status(""))
	mu.Lock()
	depErr = nil
	mu.Unlock()
	require.Eventually(t, func() bool {
		return status(name) == healthpb.HealthCheckResponse_SERVING && status("") == healthpb.HealthCheckResponse_SERVING
	}, 5*time.Second, 10*time.Millisecond)
	require.Contains(t, f.logs.String(), "health check recovered")
}

func TestInFlightCallCompletesDuringGracefulShutdown(t *testing.T) {
	t.Parallel()
	svc := &slowPolicy{started: make(chan struct{}), release: make(chan struct{})}
	f := setup(t, testConfig(), svc)
	client := policyv1.NewPolicyServiceClient(f.conn)
	result := make(chan error, 1)
	go func() {
		resp, err := client.Check(context.Background(), &policyv1.CheckRequest{Code: "x"})
		if err == nil && resp.GetVerdict() != policyv1.Verdict_VERDICT_ALLOW {
			err = errors.New("wrong verdict")
		}
		result <- err
	}()
	<-svc.started
	f.cancel() // as SIGTERM would
	// The server must wait for the call rather than return at once.
	select {
	case err := <-f.done:
		t.Fatalf("server stopped with a call in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(svc.release)
	require.NoError(t, <-result, "in-flight call must complete")
	require.NoError(t, <-f.done)
	f.done <- nil // for Cleanup
}

func TestShutdownTimeoutCutsStuckCalls(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownTimeout = 100 * time.Millisecond
	svc := &slowPolicy{started: make(chan struct{}), release: make(chan struct{})}
	f := setup(t, cfg, svc)
	result := make(chan error, 1)
	go func() {
		_, err := policyv1.NewPolicyServiceClient(f.conn).Check(context.Background(), &policyv1.CheckRequest{})
		result <- err
	}()
	<-svc.started
	f.cancel()
	require.NoError(t, <-f.done)
	f.done <- nil
	require.Error(t, <-result, "a stuck call is cut after the timeout")
	require.Contains(t, f.logs.String(), "graceful shutdown timed out")
}

func TestPanicBecomesInternalAndIsLogged(t *testing.T) {
	t.Parallel()
	f := setup(t, testConfig(), &slowPolicy{panics: true})
	_, err := policyv1.NewPolicyServiceClient(f.conn).Check(context.Background(), &policyv1.CheckRequest{})
	require.Equal(t, codes.Internal, status.Code(err))
	require.NotContains(t, status.Convert(err).Message(), "boom", "the panic value stays in the log")
	logs := f.logs.String()
	require.Contains(t, logs, `"panic":"boom"`)
	require.Contains(t, logs, "goroutine", "the stack is logged")
}

func TestLogLinePerCall(t *testing.T) {
	t.Parallel()
	svc := &slowPolicy{started: make(chan struct{}), release: make(chan struct{})}
	close(svc.release)
	f := setup(t, testConfig(), svc)
	client := policyv1.NewPolicyServiceClient(f.conn)
	_, err := client.Check(context.Background(), &policyv1.CheckRequest{})
	require.NoError(t, err)
	_, err = client.GetPolicy(context.Background(), &policyv1.GetPolicyRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a method without a rule is closed")
	lineFor := func(method string) string {
		for _, l := range strings.Split(f.logs.String(), "\n") {
			if strings.Contains(l, method) && strings.Contains(l, `"msg":"rpc"`) {
				return l
			}
		}
		return ""
	}
	require.Eventually(t, func() bool { return lineFor("/GetPolicy") != "" }, time.Second, 10*time.Millisecond)
	check := lineFor(`"method":"/airlock.policy.v1.PolicyService/Check"`)
	for _, want := range []string{`"code":"OK"`, `"duration_ms"`, `"trace_id":"`, `"tenant":"t1"`, `"subject":"alice"`} {
		require.Contains(t, check, want)
	}
	require.Contains(t, lineFor("/GetPolicy"), `"code":"PermissionDenied"`)
}

func TestValidateNamesTheSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Addr = "nope" }, "--addr"},
		{func(c *Config) { c.MetricsAddr = "nope" }, "--metrics-addr"},
		{func(c *Config) { c.ShutdownTimeout = 0 }, "--shutdown-timeout"},
		{func(c *Config) { c.HealthInterval = -1 }, "--health-interval"},
		{func(c *Config) { c.MaxMessageBytes = 0 }, "--max-message-bytes"},
	} {
		cfg := testConfig()
		tc.mutate(&cfg)
		err := cfg.Validate()
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, testConfig().Validate())
}

// peerPolicy's Check records the caller's address and waits hold.
type peerPolicy struct {
	policyv1.UnimplementedPolicyServiceServer
	mu    sync.Mutex
	addrs []string
	hold  time.Duration
}

func (p *peerPolicy) Check(ctx context.Context, _ *policyv1.CheckRequest) (*policyv1.CheckResponse, error) {
	p.mu.Lock()
	if pr, ok := peer.FromContext(ctx); ok {
		p.addrs = append(p.addrs, pr.Addr.String())
	}
	hold := p.hold
	p.mu.Unlock()
	select {
	case <-time.After(hold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &policyv1.CheckResponse{Verdict: policyv1.Verdict_VERDICT_ALLOW}, nil
}

// With MaxConnectionAge, a client is moved to a new connection after about
// that long, and a call running past it is not cut.
func TestMaxConnectionAgeReconnectsWithoutCuttingCalls(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxConnectionAge = 300 * time.Millisecond
	svc := &peerPolicy{hold: time.Second}
	f := setup(t, cfg, svc)
	client := policyv1.NewPolicyServiceClient(f.conn)
	_, err := client.Check(context.Background(), &policyv1.CheckRequest{Code: "x"}, grpc.WaitForReady(true))
	require.NoError(t, err, "a call running three times the connection age completes")
	svc.mu.Lock()
	svc.hold = 0
	svc.mu.Unlock()
	_, err = client.Check(context.Background(), &policyv1.CheckRequest{Code: "x"}, grpc.WaitForReady(true))
	require.NoError(t, err)
	svc.mu.Lock()
	defer svc.mu.Unlock()
	require.Len(t, svc.addrs, 2)
	require.NotEqual(t, svc.addrs[0], svc.addrs[1], "the second call came over a new connection")
}

func TestMaxConnectionAgeMustNotBeNegative(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnectionAge = -time.Second
	require.ErrorContains(t, cfg.Validate(), "max-connection-age")
}
