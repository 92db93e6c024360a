package orchestrator

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/pkg/pricing"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"))
}

var principals = auth.StaticKeys{
	"alice": {Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}},
	"bob":   {Tenant: "acme", Subject: "bob", Roles: []auth.Role{auth.RoleUser}},
	"olga":  {Tenant: "acme", Subject: "olga", Roles: []auth.Role{auth.RoleOperator}},
	"eve":   {Tenant: "globex", Subject: "eve", Roles: []auth.Role{auth.RoleUser}},
	"svc":   {Tenant: "_system", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
}

type harness struct {
	t     *testing.T
	fakes *fakes
	store Store
	cfg   Config

	mu     sync.Mutex
	engine *Engine
	srv    *grpc.Server
	addr   string
	cancel context.CancelFunc
	conns  []*grpc.ClientConn
}

func setup(t *testing.T, db *database.DB) *harness { return setupWith(t, db, nil) }

// setupWith is setup with the engine's settings changed by tune.
func setupWith(t *testing.T, db *database.DB, tune func(*Config)) *harness {
	t.Helper()
	if db == nil {
		db = dbtest.Open(t, dbtest.NewSQLiteURL(t), Migrations())
	}
	cfg := DefaultConfig()
	cfg.ApprovalPoll = 20 * time.Millisecond
	cfg.ChunkBytes = 4096 // several chunks even for the test files
	cfg.MaxFileBytes = 1 << 20
	cfg.MaxRunInputBytes = 1 << 20
	if tune != nil {
		tune(&cfg)
	}
	h := &harness{t: t, fakes: newFakes(), store: NewSQLStore(db), cfg: cfg}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func allRules() auth.Rules {
	r := auth.Rules{}
	for _, sd := range []grpc.ServiceDesc{orchestratorv1.OrchestratorService_ServiceDesc, policyv1.PolicyService_ServiceDesc,
		budgetv1.BudgetService_ServiceDesc, generatorv1.GeneratorService_ServiceDesc, executorv1.ExecutorService_ServiceDesc,
		approvalv1.ApprovalService_ServiceDesc} {
		roles := []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
		if sd.ServiceName == generatorv1.GeneratorService_ServiceDesc.ServiceName || sd.ServiceName == executorv1.ExecutorService_ServiceDesc.ServiceName {
			roles = []auth.Role{auth.RoleService} // as the real services: no end user calls them, even forwarded
		}
		for _, m := range sd.Methods {
			r["/"+sd.ServiceName+"/"+m.MethodName] = roles
		}
		for _, m := range sd.Streams {
			r["/"+sd.ServiceName+"/"+m.StreamName] = roles
		}
	}
	return r
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// start serves the fakes and a fresh engine on the same store, as a restarted process would.
func (h *harness) start() {
	t := h.t
	log := testLogger(t)
	ai := auth.NewInterceptor(principals, allRules(), log)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(ai.Unary()), grpc.ChainStreamInterceptor(ai.Stream()))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	svcConn := h.dial(lis.Addr().String(), "svc")
	clients := Clients{
		Policy: policyv1.NewPolicyServiceClient(svcConn), Budget: budgetv1.NewBudgetServiceClient(svcConn),
		Generator: generatorv1.NewGeneratorServiceClient(svcConn), Executor: executorv1.NewExecutorServiceClient(svcConn),
		Approval: approvalv1.NewApprovalServiceClient(svcConn),
	}
	engine := NewEngine(h.store, clients, pricing.Default(), h.cfg, nil, log)
	registerFakes(srv, h.fakes)
	orchestratorv1.RegisterOrchestratorServiceServer(srv, NewServer(engine, log))
	go func() { _ = srv.Serve(lis) }()
	ctx, cancel := context.WithCancel(context.Background())
	engine.Start(ctx, nil)
	h.mu.Lock()
	h.engine, h.srv, h.addr, h.cancel = engine, srv, lis.Addr().String(), cancel
	h.mu.Unlock()
}

// stop ends the engine as a killed process would leave it: runs stop where they are.
func (h *harness) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv == nil {
		return
	}
	h.cancel()
	h.engine.Wait()
	h.srv.Stop()
	for _, c := range h.conns {
		c.Close()
	}
	h.srv, h.conns = nil, nil
}

func (h *harness) dial(addr, token string) *grpc.ClientConn {
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}))
	require.NoError(h.t, err)
	h.conns = append(h.conns, c)
	return c
}

func (h *harness) client(token string) orchestratorv1.OrchestratorServiceClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	return orchestratorv1.NewOrchestratorServiceClient(h.dial(h.addr, token))
}

func (h *harness) upload(token, name, content string) *orchestratorv1.FileRef {
	h.t.Helper()
	stream, err := h.client(token).UploadFile(context.Background())
	require.NoError(h.t, err)
	require.NoError(h.t, stream.Send(&orchestratorv1.UploadFileRequest{Name: name}))
	for i := 0; i < len(content); i += 100 {
		require.NoError(h.t, stream.Send(&orchestratorv1.UploadFileRequest{Chunk: []byte(content[i:min(i+100, len(content))])}))
	}
	resp, err := stream.CloseAndRecv()
	require.NoError(h.t, err)
	return resp.GetFile()
}

func (h *harness) download(token, id string) (string, error) {
	stream, err := h.client(token).DownloadFile(context.Background(), &orchestratorv1.DownloadFileRequest{FileId: id})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		b.Write(msg.GetChunk())
	}
}

func (h *harness) submit(token string, req *orchestratorv1.SubmitRunRequest) *orchestratorv1.Run {
	h.t.Helper()
	resp, err := h.client(token).SubmitRun(context.Background(), req)
	require.NoError(h.t, err)
	return resp.GetRun()
}

// waitState polls until the run reaches want (or any terminal state) and returns it.
func (h *harness) waitState(token, id string, want orchestratorv1.RunState) *orchestratorv1.Run {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := h.client(token).GetRun(context.Background(), &orchestratorv1.GetRunRequest{RunId: id})
		require.NoError(h.t, err)
		r := resp.GetRun()
		if r.GetState() == want || Terminal(r.GetState()) || time.Now().After(deadline) {
			require.Equal(h.t, want.String(), r.GetState().String(), "run %s: %s", id, r.GetFailureReason())
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func code(req string) *orchestratorv1.SubmitRunRequest {
	return &orchestratorv1.SubmitRunRequest{Source: &orchestratorv1.SubmitRunRequest_Code{Code: req}}
}

func prompt(p string) *orchestratorv1.SubmitRunRequest {
	return &orchestratorv1.SubmitRunRequest{Source: &orchestratorv1.SubmitRunRequest_Prompt{Prompt: p}}
}
