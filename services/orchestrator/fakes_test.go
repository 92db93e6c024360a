package orchestrator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// The engine's unit tests run it against small in-memory implementations of
// the five services it calls, served over real gRPC on loopback with the real
// auth interceptor; cmd/airlock's end-to-end tests use the real services.

// fakePolicy judges by markers in the code: "DENY" denies, "REVIEW" asks for review.
type fakePolicy struct {
	policyv1.UnimplementedPolicyServiceServer
	mu     sync.Mutex
	checks int
	seen   []string // subjects of callers
}

func (f *fakePolicy) Check(ctx context.Context, req *policyv1.CheckRequest) (*policyv1.CheckResponse, error) {
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	f.checks++
	f.seen = append(f.seen, p.Subject)
	f.mu.Unlock()
	h := sha256.Sum256([]byte(req.GetCode()))
	resp := &policyv1.CheckResponse{Verdict: policyv1.Verdict_VERDICT_ALLOW, PolicyId: "default", PolicyVersion: "pv1",
		CodeSha256: hex.EncodeToString(h[:]), AllowedImports: []string{"pandas", "csv"},
		Limits: &policyv1.RunLimits{Timeout: durationpb.New(10 * time.Second), MemoryBytes: 256 << 20, MaxOutputBytes: 1 << 30}}
	switch {
	case strings.Contains(req.GetCode(), "DENY"):
		resp.Verdict = policyv1.Verdict_VERDICT_DENY
		resp.Findings = []*policyv1.Finding{{RuleId: "import.not_allowed", Line: 1, Message: "os is not allowed", Action: policyv1.Verdict_VERDICT_DENY}}
	case strings.Contains(req.GetCode(), "REVIEW"):
		resp.Verdict = policyv1.Verdict_VERDICT_REVIEW
		resp.Findings = []*policyv1.Finding{{RuleId: "net.review", Line: 2, Message: "looks risky", Action: policyv1.Verdict_VERDICT_REVIEW}}
	}
	return resp, nil
}

func (f *fakePolicy) GetPolicy(context.Context, *policyv1.GetPolicyRequest) (*policyv1.GetPolicyResponse, error) {
	return &policyv1.GetPolicyResponse{Policy: &policyv1.Policy{Id: "default", AllowedImports: []string{"pandas", "csv"}}}, nil
}

// fakeBudget holds one limit per tenant.
type fakeBudget struct {
	budgetv1.UnimplementedBudgetServiceServer
	mu       sync.Mutex
	limit    map[string]int64
	spent    map[string]int64
	held     map[string]int64 // reservation id -> amount
	owner    map[string]string
	reserves int
	n        int
	// committed holds what each committed reservation was charged, so a
	// repeated commit answers as the real service does.
	committed map[string]int64
	// afterCommit, when set, runs after a commit is recorded; an error it
	// returns is the answer (the charge stays), as when the caller dies.
	afterCommit func() error
}

func newFakeBudget() *fakeBudget {
	return &fakeBudget{limit: map[string]int64{}, spent: map[string]int64{}, held: map[string]int64{}, owner: map[string]string{},
		committed: map[string]int64{}}
}

func (f *fakeBudget) heldBy(tenant string) int64 {
	var sum int64
	for id, a := range f.held {
		if f.owner[id] == tenant {
			sum += a
		}
	}
	return sum
}

func (f *fakeBudget) Reserve(ctx context.Context, req *budgetv1.ReserveRequest) (*budgetv1.ReserveResponse, error) {
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves++
	if lim, ok := f.limit[p.Tenant]; ok && f.spent[p.Tenant]+f.heldBy(p.Tenant)+req.GetAmountMicros() > lim {
		return nil, status.Errorf(codes.ResourceExhausted, "tenant %s is at its limit", p.Tenant)
	}
	f.n++
	id := fmt.Sprintf("res%d", f.n)
	f.held[id] = req.GetAmountMicros()
	f.owner[id] = p.Tenant
	return &budgetv1.ReserveResponse{Reservation: &budgetv1.Reservation{Id: id, AmountMicros: req.GetAmountMicros()}}, nil
}

func (f *fakeBudget) Commit(ctx context.Context, req *budgetv1.CommitRequest) (*budgetv1.CommitResponse, error) {
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	id := req.GetReservationId()
	if actual, ok := f.committed[id]; ok && f.owner[id] == p.Tenant {
		f.mu.Unlock()
		if actual != req.GetActualMicros() {
			return nil, status.Error(codes.FailedPrecondition, "committed with another amount")
		}
		return &budgetv1.CommitResponse{}, nil
	}
	if _, ok := f.held[id]; !ok || f.owner[id] != p.Tenant {
		f.mu.Unlock()
		return nil, status.Error(codes.NotFound, "no such reservation")
	}
	delete(f.held, id)
	f.committed[id] = req.GetActualMicros()
	f.spent[p.Tenant] += req.GetActualMicros()
	after := f.afterCommit
	f.mu.Unlock()
	if after != nil {
		if err := after(); err != nil {
			return nil, err
		}
	}
	return &budgetv1.CommitResponse{}, nil
}

func (f *fakeBudget) Release(ctx context.Context, req *budgetv1.ReleaseRequest) (*budgetv1.ReleaseResponse, error) {
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.held[req.GetReservationId()]; !ok || f.owner[req.GetReservationId()] != p.Tenant {
		return nil, status.Error(codes.NotFound, "no such reservation")
	}
	delete(f.held, req.GetReservationId())
	return &budgetv1.ReleaseResponse{}, nil
}

func (f *fakeBudget) heldCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held)
}

// malformedAnswer scripts a generator failure that still cost 70 micro-dollars.
const malformedAnswer = "<malformed>"

// fakeGenerator answers from a script: each call pops the next code.
type fakeGenerator struct {
	generatorv1.UnimplementedGeneratorServiceServer
	mu      sync.Mutex
	answers []string
	calls   []*generatorv1.GenerateRequest
	block   chan struct{} // when set, calls wait for it to close or for their context
	started chan struct{}
	cost    int64 // per call; 0 means 100
}

func (f *fakeGenerator) Generate(ctx context.Context, req *generatorv1.GenerateRequest) (*generatorv1.GenerateResponse, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	block, started := f.block, f.started
	f.mu.Unlock()
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.answers) == 0 {
		return nil, status.Error(codes.Unavailable, "no more answers")
	}
	code := f.answers[0]
	f.answers = f.answers[1:]
	if code == malformedAnswer {
		// As the generator answers a model's unusable JSON: the tokens were spent.
		st, _ := status.New(codes.Unknown, "the model's answer is not valid JSON").WithDetails(&errdetails.ErrorInfo{
			Reason: "MALFORMED_ANSWER", Domain: "generator.airlock",
			Metadata: map[string]string{"cost_micros": "70", "completion_tokens": "20"},
		})
		return nil, st.Err()
	}
	cost := f.cost
	if cost == 0 {
		cost = 100
	}
	return &generatorv1.GenerateResponse{Code: code, Model: req.GetModel(), CostMicros: cost,
		Usage: &generatorv1.TokenUsage{PromptTokens: 10, CompletionTokens: 20}}, nil
}

func (f *fakeGenerator) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fakeExecutor echoes a line and writes one output file; "FAIL" in the code exits 1.
type fakeExecutor struct {
	executorv1.UnimplementedExecutorServiceServer
	mu      sync.Mutex
	calls   []*executorv1.ExecuteRequest
	block   chan struct{}
	started chan struct{}
}

func (f *fakeExecutor) ExecuteStream(req *executorv1.ExecuteStreamRequest, stream executorv1.ExecutorService_ExecuteStreamServer) error {
	f.mu.Lock()
	f.calls = append(f.calls, req.GetRequest())
	block, started := f.block, f.started
	f.mu.Unlock()
	if err := stream.Send(&executorv1.ExecuteStreamResponse{Event: &executorv1.ExecuteStreamResponse_Chunk{
		Chunk: &executorv1.OutputChunk{Stream: executorv1.Stream_STREAM_STDOUT, Data: []byte("working\n")}}}); err != nil {
		return err
	}
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
	res := &executorv1.ExecutionResult{TerminationReason: executorv1.TerminationReason_TERMINATION_REASON_EXITED,
		Stdout: []byte("working\n"), Usage: &executorv1.ResourceUsage{WallTime: durationpb.New(time.Second), CpuTime: durationpb.New(time.Second)}}
	if strings.Contains(req.GetRequest().GetCode(), "FAIL") {
		res.ExitCode = 1
		res.Stderr = []byte("Traceback\nKeyError: 'region'\n")
	} else {
		var names []string
		for _, in := range req.GetRequest().GetInputs() {
			names = append(names, in.GetName())
		}
		content := []byte("inputs," + strings.Join(names, ";") + "\n")
		h := sha256.Sum256(content)
		res.OutputFiles = []*executorv1.OutputFile{{Name: "report.csv", Content: content, SizeBytes: int64(len(content)), Sha256: hex.EncodeToString(h[:])}}
	}
	return stream.Send(&executorv1.ExecuteStreamResponse{Event: &executorv1.ExecuteStreamResponse_Result{Result: res}})
}

func (f *fakeExecutor) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fakeApproval keeps requests in memory and lets the test decide them.
type fakeApproval struct {
	approvalv1.UnimplementedApprovalServiceServer
	mu      sync.Mutex
	byID    map[string]*approvalv1.Approval
	created int
	checks  int
}

func newFakeApproval() *fakeApproval { return &fakeApproval{byID: map[string]*approvalv1.Approval{}} }

func (f *fakeApproval) CreateApproval(ctx context.Context, req *approvalv1.CreateApprovalRequest) (*approvalv1.CreateApprovalResponse, error) {
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created++
	h := sha256.Sum256([]byte(req.GetCode()))
	a := &approvalv1.Approval{Id: fmt.Sprintf("apr%d", f.created), RunId: req.GetRunId(), Tenant: p.Tenant, Requester: p.Subject,
		Code: req.GetCode(), CodeSha256: hex.EncodeToString(h[:]), PolicyVersion: req.GetPolicyVersion(),
		State: approvalv1.ApprovalState_APPROVAL_STATE_PENDING}
	f.byID[a.Id] = a
	return &approvalv1.CreateApprovalResponse{Approval: clone(a)}, nil
}

func (f *fakeApproval) ListApprovals(_ context.Context, req *approvalv1.ListApprovalsRequest) (*approvalv1.ListApprovalsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &approvalv1.ListApprovalsResponse{}
	for _, a := range f.byID {
		if a.GetRunId() == req.GetRunId() {
			resp.Approvals = append(resp.Approvals, clone(a))
		}
	}
	return resp, nil
}

func (f *fakeApproval) GetApproval(_ context.Context, req *approvalv1.GetApprovalRequest) (*approvalv1.GetApprovalResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.byID[req.GetApprovalId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "not found")
	}
	return &approvalv1.GetApprovalResponse{Approval: clone(a)}, nil
}

func (f *fakeApproval) CheckApproval(_ context.Context, req *approvalv1.CheckApprovalRequest) (*approvalv1.CheckApprovalResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	for _, a := range f.byID {
		if a.GetRunId() == req.GetRunId() && a.GetCodeSha256() == req.GetCodeSha256() &&
			a.GetPolicyVersion() == req.GetPolicyVersion() && a.GetState() == approvalv1.ApprovalState_APPROVAL_STATE_APPROVED {
			return &approvalv1.CheckApprovalResponse{Approved: true, Approval: clone(a)}, nil
		}
	}
	return &approvalv1.CheckApprovalResponse{}, nil
}

func (f *fakeApproval) decide(runID string, state approvalv1.ApprovalState, by, reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.byID {
		if a.GetRunId() == runID && a.GetState() == approvalv1.ApprovalState_APPROVAL_STATE_PENDING {
			a.State, a.DecidedBy, a.Reason = state, by, reason
			return true
		}
	}
	return false
}

func (f *fakeApproval) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}

func registerFakes(s *grpc.Server, fs *fakes) {
	policyv1.RegisterPolicyServiceServer(s, fs.policy)
	budgetv1.RegisterBudgetServiceServer(s, fs.budget)
	generatorv1.RegisterGeneratorServiceServer(s, fs.generator)
	executorv1.RegisterExecutorServiceServer(s, fs.executor)
	approvalv1.RegisterApprovalServiceServer(s, fs.approval)
}

type fakes struct {
	policy    *fakePolicy
	budget    *fakeBudget
	generator *fakeGenerator
	executor  *fakeExecutor
	approval  *fakeApproval
}

func newFakes() *fakes {
	return &fakes{policy: &fakePolicy{}, budget: newFakeBudget(), generator: &fakeGenerator{},
		executor: &fakeExecutor{}, approval: newFakeApproval()}
}

func (f *fakeGenerator) call(i int) *generatorv1.GenerateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[i]
}

func (f *fakeExecutor) call(i int) *executorv1.ExecuteRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[i]
}

func (f *fakeApproval) checkCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks
}

func (f *fakePolicy) subjects() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func clone(a *approvalv1.Approval) *approvalv1.Approval { return proto.Clone(a).(*approvalv1.Approval) }
