package approval_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/services/approval"
)

// The test principals. Tenant t1 has a user, two operators, an operator who
// also submits runs, and an admin; tenant t2 has an operator.
var (
	orchestrator = auth.Principal{Tenant: "_system", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}}
	alice        = auth.Principal{Tenant: "t1", Subject: "alice", Roles: []auth.Role{auth.RoleUser}}
	bob          = auth.Principal{Tenant: "t1", Subject: "bob", Roles: []auth.Role{auth.RoleOperator}}
	carol        = auth.Principal{Tenant: "t1", Subject: "carol", Roles: []auth.Role{auth.RoleOperator}}
	dave         = auth.Principal{Tenant: "t1", Subject: "dave", Roles: []auth.Role{auth.RoleUser, auth.RoleOperator}}
	root         = auth.Principal{Tenant: "t1", Subject: "root", Roles: []auth.Role{auth.RoleAdmin}}
	eve          = auth.Principal{Tenant: "t2", Subject: "eve", Roles: []auth.Role{auth.RoleOperator}}
	keys         = auth.StaticKeys{
		"tok-orchestrator": orchestrator, "tok-alice": alice, "tok-bob": bob, "tok-carol": carol,
		"tok-dave": dave, "tok-root": root, "tok-eve": eve,
	}
)

// as returns a context calling as p with p's key.
func as(p auth.Principal) context.Context {
	for tok, kp := range keys {
		if kp.Subject == p.Subject {
			return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		}
	}
	panic("no key for " + p.Subject)
}

// onBehalfOf returns a context calling as the orchestrator forwarding p.
func onBehalfOf(p auth.Principal) context.Context {
	return auth.OnBehalfOf(as(orchestrator), p)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testServer struct {
	svc    *approval.Service
	client approvalv1.ApprovalServiceClient
	clock  *fakeClock
	db     *database.DB
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// setup starts one approval server on a fresh database of the dialect
// ("postgres" or "sqlite") and returns a client for it.
func setup(t *testing.T, dialect string, tune ...func(*approval.Config)) *testServer {
	t.Helper()
	url := dbtest.NewSQLiteURL(t)
	if dialect == "postgres" {
		url = dbtest.NewPostgresURL(t)
	}
	return startServer(t, dbtest.Open(t, url, migrations...), tune...)
}

// startServer runs a Service and its handler on a pkg/server listening on a
// loopback port, as `airlock serve approval` does.
func startServer(t *testing.T, db *database.DB, tune ...func(*approval.Config)) *testServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	clock := &fakeClock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	cfg := approval.DefaultConfig()
	cfg.Now = clock.Now
	cfg.PollInterval = 20 * time.Millisecond
	cfg.SweepInterval = time.Hour // tests sweep explicitly unless they tune it
	for _, f := range tune {
		f(&cfg)
	}
	svc, err := approval.NewService(approval.NewStore(db), cfg, log)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopBackground, err := svc.Start(ctx, db)
	require.NoError(t, err)
	srv, err := server.New(ctx, "approval-test", server.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second,
		HealthInterval: time.Hour, MaxMessageBytes: 4 << 20}, log,
		server.WithAuth(auth.NewInterceptor(keys, approval.Rules(), log)))
	require.NoError(t, err)
	approvalv1.RegisterApprovalServiceServer(srv.GRPC(), approval.NewHandler(svc, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		cancel()
		require.NoError(t, <-done)
		stopBackground()
	})
	return &testServer{svc: svc, client: approvalv1.NewApprovalServiceClient(conn), clock: clock, db: db}
}

const sampleCode = "import pandas as pd\nprint(pd.read_csv('/data/in/sales.csv').head())\n"

func createReq(run string) *approvalv1.CreateApprovalRequest {
	return &approvalv1.CreateApprovalRequest{
		RunId: run, Code: sampleCode, PolicyId: "default", PolicyVersion: "pv-1",
		Findings: []*policyv1.Finding{
			{RuleId: "io.read", Severity: policyv1.Severity_SEVERITY_LOW, Line: 2, Message: "reads a file"},
			{RuleId: "import.unusual", Severity: policyv1.Severity_SEVERITY_MEDIUM, Line: 1, Message: "imports pandas"},
		},
		Inputs: []*approvalv1.InputSummary{{Name: "sales.csv", SizeBytes: 2048}},
		Ttl:    durationpb.New(time.Hour),
	}
}

// create opens a request as the orchestrator on behalf of requester.
func (ts *testServer) create(t *testing.T, requester auth.Principal, run string) *approvalv1.Approval {
	t.Helper()
	resp, err := ts.client.CreateApproval(onBehalfOf(requester), createReq(run))
	require.NoError(t, err)
	return resp.GetApproval()
}

// contextFor returns a cancellable context calling as p.
func contextFor(t *testing.T, p auth.Principal) (context.Context, context.CancelFunc) {
	t.Helper()
	base := as(p)
	md, _ := metadata.FromOutgoingContext(base)
	ctx, cancel := context.WithCancel(t.Context())
	return metadata.NewOutgoingContext(ctx, md), cancel
}

// withVia returns p as forwarded by the orchestrator, as the interceptor makes it.
func withVia(p auth.Principal) auth.Principal {
	p.Via = orchestrator.Subject
	return p
}
