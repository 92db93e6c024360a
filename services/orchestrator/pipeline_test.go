package orchestrator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

const (
	succeeded = orchestratorv1.RunState_RUN_STATE_SUCCEEDED
	awaiting  = orchestratorv1.RunState_RUN_STATE_AWAITING_APPROVAL
)

func TestSuppliedCodeRunsToOutputs(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, []database.Migrations{Migrations()}, func(t *testing.T, db *database.DB) {
		h := setup(t, db)
		in := h.upload("alice", "sales.csv", strings.Repeat("region,amount\nnorth,10\n", 20))
		req := code("import pandas\nprint('hi')\n")
		req.InputFileIds = []string{in.GetFileId()}
		run := h.submit("alice", req)
		require.Equal(t, "acme", run.GetTenant())
		require.Equal(t, "alice", run.GetRequester())
		r := h.waitState("alice", run.GetId(), succeeded)

		require.Len(t, r.GetAttempts(), 1)
		require.Equal(t, policyv1.Verdict_VERDICT_ALLOW, r.GetAttempts()[0].GetVerdict())
		require.Equal(t, "pv1", r.GetAttempts()[0].GetPolicyVersion())
		require.Len(t, r.GetOutputs(), 1)
		require.Equal(t, "report.csv", r.GetOutputs()[0].GetName())
		out, err := h.download("alice", r.GetOutputs()[0].GetFileId())
		require.NoError(t, err)
		require.Equal(t, "inputs,sales.csv\n", out)
		require.Positive(t, r.GetCost().GetComputeMicros())
		require.Zero(t, r.GetCost().GetLlmMicros(), "supplied code is not generated")
		require.Zero(t, h.fakes.generator.callCount())
		require.Zero(t, h.fakes.budget.heldCount(), "every reservation is settled")

		// The executor got exactly the checked code, the policy's limits and allow-list.
		ex := h.fakes.executor.call(0)
		require.Equal(t, "import pandas\nprint('hi')\n", ex.GetCode())
		require.Equal(t, []string{"pandas", "csv"}, ex.GetAllowedImports())
		require.Equal(t, 10*time.Second, ex.GetLimits().GetTimeout().AsDuration())
		require.Equal(t, int64(40<<20), ex.GetLimits().GetMaxOutputBytes(), "the policy's 1 GiB is lowered to the orchestrator's cap")
		require.Equal(t, strings.Repeat("region,amount\nnorth,10\n", 20), string(ex.GetInputs()[0].GetContent()))
		// The policy saw the end user, forwarded by the orchestrator's service identity.
		require.Equal(t, []string{"alice"}, h.fakes.policy.subjects())

		// Tenancy: bob (same tenant, user) and eve (other tenant) see nothing; olga (operator) sees it.
		for _, tok := range []string{"bob", "eve"} {
			_, err := h.client(tok).GetRun(context.Background(), &orchestratorv1.GetRunRequest{RunId: run.GetId()})
			require.Equal(t, codes.NotFound, status.Code(err), tok)
			_, err = h.download(tok, r.GetOutputs()[0].GetFileId())
			require.Equal(t, codes.NotFound, status.Code(err), tok)
		}
		_, err = h.client("olga").GetRun(context.Background(), &orchestratorv1.GetRunRequest{RunId: run.GetId()})
		require.NoError(t, err)
		list, err := h.client("eve").ListRuns(context.Background(), &orchestratorv1.ListRunsRequest{})
		require.NoError(t, err)
		require.Empty(t, list.GetRuns())
		list, err = h.client("olga").ListRuns(context.Background(), &orchestratorv1.ListRunsRequest{})
		require.NoError(t, err)
		require.Len(t, list.GetRuns(), 1)
	})
}

func TestDenyThenFixedSecondAttempt(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.generator.mu.Lock()
	h.fakes.generator.answers = []string{"import os  # DENY", "print('fixed')"}
	h.fakes.generator.mu.Unlock()
	run := h.submit("alice", prompt("total sales per region"))
	r := h.waitState("alice", run.GetId(), succeeded)
	require.Len(t, r.GetAttempts(), 2)
	require.Equal(t, policyv1.Verdict_VERDICT_DENY, r.GetAttempts()[0].GetVerdict())
	require.Equal(t, policyv1.Verdict_VERDICT_ALLOW, r.GetAttempts()[1].GetVerdict())
	require.Equal(t, int64(200), r.GetCost().GetLlmMicros(), "each attempt is paid for")
	calls := []*generatorv1.GenerateRequest{h.fakes.generator.call(0), h.fakes.generator.call(1)}
	require.Len(t, calls, 2)
	require.Nil(t, calls[0].GetFeedback())
	require.Equal(t, "import os  # DENY", calls[1].GetFeedback().GetPreviousCode())
	require.Equal(t, "import.not_allowed", calls[1].GetFeedback().GetFindings()[0].GetRuleId())
	require.Equal(t, h.cfg.Model, calls[0].GetModel())
	require.Equal(t, 1, h.fakes.executor.callCount())
	require.Zero(t, h.fakes.budget.heldCount())
}

func TestMalformedAnswerIsPaidFor(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.generator.mu.Lock()
	h.fakes.generator.answers = []string{malformedAnswer}
	h.fakes.generator.mu.Unlock()
	run := h.submit("alice", prompt("x"))
	r := h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_FAILED)
	require.Equal(t, int64(70), r.GetCost().GetLlmMicros(), "the spent tokens are recorded on the run")
	require.Equal(t, int64(70), r.GetAttempts()[0].GetGenerationCostMicros())
	h.fakes.budget.mu.Lock()
	spent := h.fakes.budget.spent["acme"]
	h.fakes.budget.mu.Unlock()
	require.Equal(t, int64(70), spent, "and settled with the budget, not released")
	require.Zero(t, h.fakes.budget.heldCount())
}

func TestDeniedAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.generator.mu.Lock()
	h.fakes.generator.answers = []string{"DENY 1", "DENY 2", "DENY 3", "never asked"}
	h.fakes.generator.mu.Unlock()
	run := h.submit("alice", prompt("x"))
	r := h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_DENIED)
	require.Len(t, r.GetAttempts(), 3)
	require.Contains(t, r.GetFailureReason(), "os is not allowed")
	require.Equal(t, 3, h.fakes.generator.callCount())
	require.Zero(t, h.fakes.executor.callCount())
	require.Zero(t, h.fakes.budget.heldCount())
}

func TestExecutionErrorFeedsBack(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.generator.mu.Lock()
	h.fakes.generator.answers = []string{"FAIL", "print('ok')"}
	h.fakes.generator.mu.Unlock()
	run := h.submit("alice", prompt("x"))
	r := h.waitState("alice", run.GetId(), succeeded)
	require.Len(t, r.GetAttempts(), 2)
	require.Equal(t, int32(1), r.GetAttempts()[0].GetExecution().GetExitCode())
	require.Contains(t, h.fakes.generator.call(1).GetFeedback().GetExecutionError(), "KeyError")

	// Supplied code is never rewritten: a failure ends the run.
	run = h.submit("alice", code("FAIL"))
	r = h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_FAILED)
	require.Contains(t, r.GetFailureReason(), "exited with code 1")
	require.Contains(t, r.GetFailureReason(), "KeyError")
}

func TestReviewApprovedThenExecuted(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	run := h.submit("alice", code("print('REVIEW me')"))
	r := h.waitState("alice", run.GetId(), awaiting)
	require.NotEmpty(t, r.GetApprovalId())
	require.Zero(t, h.fakes.executor.callCount(), "nothing runs before approval")
	require.True(t, h.fakes.approval.decide(run.GetId(), approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, "olga", ""))
	r = h.waitState("alice", run.GetId(), succeeded)
	require.Len(t, r.GetAttempts(), 1)
	require.Equal(t, 1, h.fakes.approval.checkCount(), "the approval is confirmed against the code hash before executing")
	require.Equal(t, "print('REVIEW me')", h.fakes.executor.call(0).GetCode())
	require.Equal(t, 1, h.fakes.approval.count())
}

func TestReviewRejected(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	run := h.submit("alice", code("REVIEW"))
	h.waitState("alice", run.GetId(), awaiting)
	require.True(t, h.fakes.approval.decide(run.GetId(), approvalv1.ApprovalState_APPROVAL_STATE_REJECTED, "olga", "reads too much"))
	r := h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_REJECTED)
	require.Contains(t, r.GetFailureReason(), "rejected by olga: reads too much")
	require.Zero(t, h.fakes.executor.callCount())

	run = h.submit("alice", code("REVIEW again"))
	h.waitState("alice", run.GetId(), awaiting)
	require.True(t, h.fakes.approval.decide(run.GetId(), approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED, "", ""))
	h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_EXPIRED)
}

func TestBudgetExhausted(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.budget.mu.Lock()
	h.fakes.budget.limit["acme"] = 10 // less than one generation's reservation
	h.fakes.budget.mu.Unlock()
	run := h.submit("alice", prompt("x"))
	r := h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_BUDGET_EXCEEDED)
	require.Contains(t, r.GetFailureReason(), "code generation")
	require.Zero(t, h.fakes.generator.callCount(), "nothing is spent before the money is held")

	// Enough for generation, not for the execution's reservation.
	h.fakes.budget.mu.Lock()
	h.fakes.budget.limit["acme"] = 20_000 // the generation's reservation fits; after it spends 19,900 the execution's does not
	h.fakes.budget.mu.Unlock()
	h.fakes.generator.mu.Lock()
	h.fakes.generator.cost = 19_900
	h.fakes.generator.mu.Unlock()
	h.fakes.generator.mu.Lock()
	h.fakes.generator.answers = []string{"print(1)"}
	h.fakes.generator.mu.Unlock()
	run = h.submit("alice", prompt("x"))
	r = h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_BUDGET_EXCEEDED)
	require.Contains(t, r.GetFailureReason(), "execution")
	require.Equal(t, 1, h.fakes.generator.callCount())
	require.Zero(t, h.fakes.executor.callCount())
	require.Equal(t, int64(19_900), r.GetCost().GetLlmMicros())
	require.Zero(t, h.fakes.budget.heldCount())
}

func TestCancelWhileExecuting(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.executor.mu.Lock()
	h.fakes.executor.block = make(chan struct{})
	h.fakes.executor.mu.Unlock()
	h.fakes.executor.mu.Lock()
	h.fakes.executor.started = make(chan struct{}, 1)
	h.fakes.executor.mu.Unlock()
	run := h.submit("alice", code("print(1)"))
	<-h.fakes.executor.started
	_, err := h.client("bob").CancelRun(context.Background(), &orchestratorv1.CancelRunRequest{RunId: run.GetId()})
	require.Equal(t, codes.NotFound, status.Code(err), "another user cannot cancel alice's run")
	resp, err := h.client("alice").CancelRun(context.Background(), &orchestratorv1.CancelRunRequest{RunId: run.GetId(), Reason: "wrong file"})
	require.NoError(t, err)
	require.Equal(t, orchestratorv1.RunState_RUN_STATE_CANCELLED.String(), resp.GetRun().GetState().String())
	require.Contains(t, resp.GetRun().GetFailureReason(), "cancelled by alice: wrong file")
	require.Zero(t, h.fakes.budget.heldCount(), "the execution's reservation is released")
	_, err = h.client("alice").CancelRun(context.Background(), &orchestratorv1.CancelRunRequest{RunId: run.GetId()})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
}

func TestWatchRunStreamsTransitionsAndOutput(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.executor.mu.Lock()
	h.fakes.executor.block = make(chan struct{})
	h.fakes.executor.mu.Unlock()
	h.fakes.executor.mu.Lock()
	h.fakes.executor.started = make(chan struct{}, 1)
	h.fakes.executor.mu.Unlock()
	run := h.submit("alice", code("print(1)"))
	stream, err := h.client("alice").WatchRun(context.Background(), &orchestratorv1.WatchRunRequest{RunId: run.GetId()})
	require.NoError(t, err)
	<-h.fakes.executor.started
	close(h.fakes.executor.block)
	var states []string
	sawOutput := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			break
		}
		if tr := msg.GetTransition(); tr != nil {
			states = append(states, tr.GetTo().String())
		}
		if o := msg.GetOutput(); o != nil && string(o.GetData()) == "working\n" {
			sawOutput = true
		}
	}
	require.Equal(t, []string{"RUN_STATE_RECEIVED", "RUN_STATE_CHECKING", "RUN_STATE_EXECUTING", "RUN_STATE_SUCCEEDED"}, states)
	require.True(t, sawOutput, "execution output is relayed to watchers")
}

func TestRestartWhileGenerating(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.generator.mu.Lock()
	h.fakes.generator.block = make(chan struct{})
	h.fakes.generator.mu.Unlock()
	h.fakes.generator.mu.Lock()
	h.fakes.generator.started = make(chan struct{}, 1)
	h.fakes.generator.mu.Unlock()
	h.fakes.generator.mu.Lock()
	h.fakes.generator.answers = []string{"print(1)"}
	h.fakes.generator.mu.Unlock()
	run := h.submit("alice", prompt("x"))
	<-h.fakes.generator.started
	h.stop()
	// A killed process leaves its reservation held and recorded (a graceful stop releases it).
	resv, err := h.fakes.budget.Reserve(auth.WithPrincipal(context.Background(), auth.Principal{Tenant: "acme"}),
		&budgetv1.ReserveRequest{AmountMicros: 500})
	require.NoError(t, err)
	require.NoError(t, h.store.AddReservation(context.Background(), Reservation{ID: resv.GetReservation().GetId(), RunID: run.GetId(), Kind: kindLLM, Amount: 500}))
	require.Equal(t, 1, h.fakes.budget.heldCount())
	h.fakes.generator.mu.Lock()
	h.fakes.generator.block = nil
	h.fakes.generator.mu.Unlock()
	h.start()
	r := h.waitState("alice", run.GetId(), succeeded)
	require.Len(t, r.GetAttempts(), 1, "the interrupted attempt starts over, not a new one")
	require.Zero(t, h.fakes.budget.heldCount(), "the interrupted reservation is released on restart")
}

func TestRestartWhileAwaitingApproval(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	run := h.submit("alice", code("REVIEW"))
	h.waitState("alice", run.GetId(), awaiting)
	h.stop()
	require.True(t, h.fakes.approval.decide(run.GetId(), approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, "olga", ""))
	h.start()
	h.waitState("alice", run.GetId(), succeeded)
	require.Equal(t, 1, h.fakes.approval.count(), "the approval is not requested twice")
	require.Equal(t, 1, h.fakes.executor.callCount())
}

func TestRestartWhileExecutingFailsWithoutRerun(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.executor.mu.Lock()
	h.fakes.executor.block = make(chan struct{})
	h.fakes.executor.mu.Unlock()
	h.fakes.executor.mu.Lock()
	h.fakes.executor.started = make(chan struct{}, 1)
	h.fakes.executor.mu.Unlock()
	run := h.submit("alice", code("print(1)"))
	<-h.fakes.executor.started
	h.stop()
	h.start()
	r := h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_FAILED)
	require.Contains(t, r.GetFailureReason(), "not run again")
	require.Equal(t, 1, h.fakes.executor.callCount(), "code never runs twice")
	require.Zero(t, h.fakes.budget.heldCount())
}

// submitAndStopAfterCharge submits req as alice and stops the engine the
// moment the budget service has recorded the run's first charge, before the
// engine hears back, as a process killed at that point would leave it.
func (h *harness) submitAndStopAfterCharge(req *orchestratorv1.SubmitRunRequest) *orchestratorv1.Run {
	h.t.Helper()
	committed, resume := make(chan struct{}), make(chan struct{})
	h.fakes.budget.mu.Lock()
	h.fakes.budget.afterCommit = func() error {
		close(committed)
		<-resume
		return status.Error(codes.Unavailable, "the orchestrator died before it heard back")
	}
	h.fakes.budget.mu.Unlock()
	run := h.submit("alice", req)
	<-committed
	h.mu.Lock()
	h.cancel() // the process is going down
	h.mu.Unlock()
	h.fakes.budget.mu.Lock()
	h.fakes.budget.afterCommit = nil
	h.fakes.budget.mu.Unlock()
	close(resume)
	h.stop()
	return run
}

// A process that stops after the budget charged an execution, before the run
// moved on, finishes the run from the stored result when it starts again:
// the code is not run again, and it is charged once.
func TestRestartAfterExecutionChargedFinishesRun(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	run := h.submitAndStopAfterCharge(code("print(1)"))
	stored, err := h.store.GetRun(context.Background(), "acme", run.GetId())
	require.NoError(t, err)
	require.Equal(t, stExecuting, stored.State, "the run was left mid-settlement")

	h.start()
	r := h.waitState("alice", run.GetId(), succeeded)
	require.Equal(t, 1, h.fakes.executor.callCount(), "code never runs twice")
	require.Len(t, r.GetAttempts(), 1)
	require.Len(t, r.GetOutputs(), 1, "the outputs stored before the charge are the run's")
	require.Positive(t, r.GetCost().GetComputeMicros())
	h.fakes.budget.mu.Lock()
	spent := h.fakes.budget.spent["acme"]
	h.fakes.budget.mu.Unlock()
	require.Equal(t, r.GetCost().GetComputeMicros(), spent, "charged once, and the run's cost says what was charged")
	require.Zero(t, h.fakes.budget.heldCount())
	res, err := h.store.Reservations(context.Background(), run.GetId())
	require.NoError(t, err)
	require.Empty(t, res)
}

// The same for generated code: a restart after the model's answer was charged
// moves the run on with that code instead of paying for another answer.
func TestRestartAfterGenerationChargedGoesOn(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	h.fakes.generator.mu.Lock()
	h.fakes.generator.answers = []string{"print(1)", "print(2)"}
	h.fakes.generator.mu.Unlock()
	run := h.submitAndStopAfterCharge(prompt("sum the sales"))
	stored, err := h.store.GetRun(context.Background(), "acme", run.GetId())
	require.NoError(t, err)
	require.Equal(t, stGenerate, stored.State, "the run was left mid-settlement")

	h.start()
	r := h.waitState("alice", run.GetId(), succeeded)
	require.Equal(t, 1, h.fakes.generator.callCount(), "the model is not asked (and paid) twice")
	require.Len(t, r.GetAttempts(), 1)
	require.Equal(t, "print(1)", r.GetAttempts()[0].GetCode())
	h.fakes.budget.mu.Lock()
	spent := h.fakes.budget.spent["acme"]
	h.fakes.budget.mu.Unlock()
	require.Positive(t, r.GetCost().GetLlmMicros())
	require.Equal(t, r.GetCost().GetTotalMicros(), spent, "charged once, and the run's cost says what was charged")
	require.Zero(t, h.fakes.budget.heldCount())
}

func TestSubmitAndUploadValidation(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	c := h.client("alice")
	ctx := context.Background()
	field := func(err error) string {
		st := status.Convert(err)
		require.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				return br.GetFieldViolations()[0].GetField()
			}
		}
		return ""
	}
	_, err := c.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{})
	require.Equal(t, "source", field(err))
	_, err = c.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{Source: &orchestratorv1.SubmitRunRequest_Prompt{Prompt: strings.Repeat("x", 20000)}})
	require.Equal(t, "prompt", field(err))
	req := code("print(1)")
	req.MaxAttempts = 99
	_, err = c.SubmitRun(ctx, req)
	require.Equal(t, "max_attempts", field(err))
	req = code("print(1)")
	req.PolicyId = "../etc"
	_, err = c.SubmitRun(ctx, req)
	require.Equal(t, "policy_id", field(err))
	foreign := h.upload("eve", "x.csv", "a\n1\n")
	req = code("print(1)")
	req.InputFileIds = []string{foreign.GetFileId()}
	_, err = c.SubmitRun(ctx, req)
	require.Equal(t, "input_file_ids[0]", field(err), "a foreign file is as unknown as a missing one")
	a1, a2 := h.upload("alice", "same.csv", "1"), h.upload("alice", "same.csv", "2")
	req = code("print(1)")
	req.InputFileIds = []string{a1.GetFileId(), a2.GetFileId()}
	_, err = c.SubmitRun(ctx, req)
	require.Equal(t, "input_file_ids[1]", field(err))

	for _, name := range []string{"", "../x.csv", "a/b.csv", ".hidden", "bad\x00name"} {
		stream, err := c.UploadFile(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&orchestratorv1.UploadFileRequest{Name: name, Chunk: []byte("x")}))
		_, err = stream.CloseAndRecv()
		require.Equal(t, "name", field(err), "name %q", name)
	}
	// Too large: refused, and nothing is left behind.
	stream, err := c.UploadFile(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&orchestratorv1.UploadFileRequest{Name: "big.csv"}))
	chunk := make([]byte, 64<<10) // 17 of these pass the 1 MiB limit
	for i := 0; i < 17; i++ {
		if stream.Send(&orchestratorv1.UploadFileRequest{Chunk: chunk}) != nil {
			break
		}
	}
	_, err = stream.CloseAndRecv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "limit")
	n, err := h.store.DeleteIncompleteFiles(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
	// Inputs within the file limit that together pass the run's limit.
	var big []string
	for _, name := range []string{"a.csv", "b.csv"} {
		stream, err := c.UploadFile(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&orchestratorv1.UploadFileRequest{Name: name}))
		for range 9 { // 9 x 64 KiB each, 1152 KiB together: past the 1 MiB limit of a run
			require.NoError(t, stream.Send(&orchestratorv1.UploadFileRequest{Chunk: chunk}))
		}
		resp, err := stream.CloseAndRecv()
		require.NoError(t, err)
		big = append(big, resp.GetFile().GetFileId())
	}
	req = code("print(1)")
	req.InputFileIds = big
	_, err = c.SubmitRun(ctx, req)
	require.Equal(t, "input_file_ids", field(err))

	// Idempotent submit.
	req = code("print(1)")
	req.IdempotencyKey = "k"
	first := h.submit("alice", req)
	second := h.submit("alice", req)
	require.Equal(t, first.GetId(), second.GetId())
	h.waitState("alice", first.GetId(), succeeded)
}

func TestTwoEnginesShareRunsWithoutDoubleExecution(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	run := h.submit("alice", code("REVIEW"))
	h.waitState("alice", run.GetId(), awaiting)

	// A second engine (another replica) on the same store leaves a run whose
	// lease is held alone.
	h.mu.Lock()
	svc := h.dial(h.addr, "svc")
	h.mu.Unlock()
	clients := Clients{
		Policy: policyv1.NewPolicyServiceClient(svc), Budget: budgetv1.NewBudgetServiceClient(svc),
		Generator: generatorv1.NewGeneratorServiceClient(svc), Executor: executorv1.NewExecutorServiceClient(svc),
		Approval: approvalv1.NewApprovalServiceClient(svc),
	}
	cfg := h.cfg
	cfg.LeaseTTL = 300 * time.Millisecond
	other := NewEngine(h.store, clients, pricing.Default(), cfg, nil, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	other.Start(ctx, nil)
	defer func() { cancel(); other.Wait() }()
	time.Sleep(500 * time.Millisecond)
	other.mu.Lock()
	_, taken := other.running[run.GetId()]
	other.mu.Unlock()
	require.False(t, taken, "a run with a live lease stays with its owner")

	// The owner's engine stops (its lease is released; the services stay up);
	// the replica takes the run over and finishes it once approved, running
	// the code once.
	h.mu.Lock()
	h.cancel()
	h.engine.Wait()
	h.mu.Unlock()
	require.True(t, h.fakes.approval.decide(run.GetId(), approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, "olga", ""))
	h.waitState("alice", run.GetId(), succeeded)
	r, err := h.store.GetRun(context.Background(), "acme", run.GetId())
	require.NoError(t, err)
	require.Equal(t, other.id, r.Owner)
	require.Equal(t, 1, h.fakes.executor.callCount())
}

func TestLostLeaseFencesExecution(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	ctx := context.Background()
	r := newTestRun("acme", "alice", "")
	r.Owner, r.LeaseUntil = "someone-else", time.Now().Add(time.Hour)
	_, _, err := h.store.CreateRun(ctx, r)
	require.NoError(t, err)
	ok, err := h.store.ClaimRun(ctx, r.ID, "me", time.Now().Add(time.Minute), time.Now())
	require.NoError(t, err)
	require.False(t, ok, "a live lease cannot be claimed")
	require.ErrorIs(t, h.store.RenewLease(ctx, r.ID, "me", time.Now().Add(time.Minute)), ErrConflict)
	ok, err = h.store.ClaimRun(ctx, r.ID, "me", time.Now().Add(time.Minute), time.Now().Add(2*time.Hour))
	require.NoError(t, err)
	require.True(t, ok, "a lapsed lease can")
	require.NoError(t, h.store.RenewLease(ctx, r.ID, "me", time.Now().Add(time.Minute)))
	require.ErrorIs(t, h.store.RenewLease(ctx, r.ID, "someone-else", time.Now().Add(time.Minute)), ErrConflict)
}

func TestListRunsPagingAndBadInput(t *testing.T) {
	t.Parallel()
	h := setup(t, nil)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, h.submit("bob", code("print(1)")).GetId())
	}
	h.submit("alice", code("print(2)"))
	c := h.client("bob")
	var got []string
	tok := ""
	for {
		resp, err := c.ListRuns(ctx, &orchestratorv1.ListRunsRequest{PageSize: 2, PageToken: tok})
		require.NoError(t, err)
		for _, r := range resp.GetRuns() {
			require.Equal(t, "bob", r.GetRequester(), "a user lists only their own runs")
			got = append(got, r.GetId())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	require.ElementsMatch(t, ids, got)
	resp, err := c.ListRuns(ctx, &orchestratorv1.ListRunsRequest{Requester: "alice"})
	require.NoError(t, err)
	require.Empty(t, resp.GetRuns(), "a user cannot list another's runs by asking")
	resp, err = h.client("olga").ListRuns(ctx, &orchestratorv1.ListRunsRequest{Requester: "alice"})
	require.NoError(t, err)
	require.Len(t, resp.GetRuns(), 1, "an operator can")

	for _, tc := range []struct {
		req   *orchestratorv1.ListRunsRequest
		field string
	}{
		{&orchestratorv1.ListRunsRequest{PageToken: "not a token"}, "page_token"},
		{&orchestratorv1.ListRunsRequest{PageSize: -1}, "page_size"},
		{&orchestratorv1.ListRunsRequest{State: 99}, "state"},
	} {
		_, err := c.ListRuns(ctx, tc.req)
		st := status.Convert(err)
		require.Equal(t, codes.InvalidArgument, st.Code())
		require.Contains(t, st.Message(), tc.field)
	}
	for _, call := range []func() error{
		func() error { _, err := c.GetRun(ctx, &orchestratorv1.GetRunRequest{}); return err },
		func() error { _, err := c.CancelRun(ctx, &orchestratorv1.CancelRunRequest{}); return err },
	} {
		require.Equal(t, codes.InvalidArgument, status.Code(call()))
	}
	_, err = c.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: "run_does_not_exist"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

func TestCancelThroughAnotherReplica(t *testing.T) {
	t.Parallel()
	h := setupWith(t, nil, func(c *Config) { c.LeaseTTL = 600 * time.Millisecond })
	h.fakes.executor.mu.Lock()
	h.fakes.executor.block = make(chan struct{})
	h.fakes.executor.started = make(chan struct{}, 1)
	h.fakes.executor.mu.Unlock()
	run := h.submit("alice", code("print(1)"))
	<-h.fakes.executor.started

	// A second engine gets the request; the owner stops the sandbox when it
	// next renews its lease.
	h.mu.Lock()
	svc := h.dial(h.addr, "svc")
	h.mu.Unlock()
	other := NewEngine(h.store, Clients{Budget: budgetv1.NewBudgetServiceClient(svc)}, pricing.Default(), h.cfg, nil, testLogger(t))
	alice := auth.Principal{Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}}
	_, err := other.Cancel(context.Background(), alice, run.GetId(), "from elsewhere")
	require.NoError(t, err)
	r := h.waitState("alice", run.GetId(), orchestratorv1.RunState_RUN_STATE_CANCELLED)
	require.Equal(t, "cancelled by alice: from elsewhere", r.GetFailureReason(), "the owner records who cancelled and why")
	require.Zero(t, h.fakes.budget.heldCount())
}
