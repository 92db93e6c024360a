package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/policies"
)

// The end-to-end tests start the real server (`airlock dev`: all six services
// on one loopback port, SQLite in a temp dir, bubblewrap and Python for real)
// with an HTTP server speaking the chat-completions wire format standing in
// for the model, and drive runs through real gRPC clients and the real CLI.

// fakeLLM answers chat completions from scripts chosen by a "[scenario:NAME]"
// marker in the prompt: the n-th call for a scenario gets its n-th code (the
// last one repeats). A scenario listed in block waits until released.
type fakeLLM struct {
	srv     *httptest.Server
	mu      sync.Mutex
	scripts map[string][]string
	calls   map[string]int
	bodies  map[string][]string
	block   map[string]chan struct{}
	started chan string
}

var scenarioRE = regexp.MustCompile(`\[scenario:([a-z0-9-]+)\]`)

func newFakeLLM(t *testing.T) *fakeLLM {
	f := &fakeLLM{scripts: map[string][]string{}, calls: map[string]int{}, bodies: map[string][]string{},
		block: map[string]chan struct{}{}, started: make(chan string, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") || r.Header.Get("Authorization") != "Bearer e2e-fake-key" {
			http.Error(w, `{"error":{"message":"bad request","type":"test"}}`, http.StatusUnauthorized)
			return
		}
		m := scenarioRE.FindSubmatch(raw)
		if m == nil {
			http.Error(w, `{"error":{"message":"no scenario","type":"test"}}`, http.StatusBadRequest)
			return
		}
		name := string(m[1])
		f.mu.Lock()
		n := f.calls[name]
		f.calls[name]++
		f.bodies[name] = append(f.bodies[name], string(raw))
		script, block := f.scripts[name], f.block[name]
		f.mu.Unlock()
		if block != nil {
			f.started <- name
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		code := "print('no script')"
		if len(script) > 0 {
			code = script[min(n, len(script)-1)]
		}
		content, _ := json.Marshal(map[string]any{"code": code, "explanation": "test answer", "expected_outputs": []string{"result.csv"}})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-e2e", "object": "chat.completion", "created": time.Now().Unix(), "model": "grok-code-fast-1",
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": string(content)}}},
			"usage": map[string]any{"prompt_tokens": 1000, "completion_tokens": 4000, "total_tokens": 5000},
		})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLLM) script(name string, codes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[name] = codes
}

func (f *fakeLLM) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeLLM) body(name string, i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[name][i]
}

// Codes the tests run. The test policy is the default one without its review
// of time.sleep, so a run can be kept executing; shutil.make_archive (never
// called) still asks for review, and an import of socket is denied.
const (
	salesCSV     = "region,customer,amount\nnorth,acme,120.5\nsouth,globex,80\nnorth,initech,42\n"
	goodCode     = "import pandas as pd\ndf = pd.read_csv('/data/in/sales.csv')\nout = df.groupby('region')['amount'].sum().reset_index()\nout.to_csv('/data/out/result.csv', index=False)\nprint(out.to_string(index=False))\n"
	deniedCode   = "import socket\nprint(socket.gethostname())\n"
	reviewCode   = "import shutil\nimport pandas as pd\nif False:\n    shutil.make_archive('/data/out/all', 'zip', '/data/out')\npd.read_csv('/data/in/sales.csv').to_csv('/data/out/result.csv', index=False)\n"
	sleepingCode = "import time\nprint('started', flush=True)\ntime.sleep(30)\n"
)

func writeTestPolicy(t *testing.T) string {
	dir := t.TempDir()
	doc := strings.Replace(string(policies.Default), "  - time.sleep\n", "", 1)
	require.NotEqual(t, string(policies.Default), doc, "the default policy no longer reviews time.sleep; update the test")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(doc), 0o600))
	return dir
}

// e2e is one running `airlock dev` with keys, seen from one test.
type e2e struct {
	t *testing.T
	*e2eServer
}

// e2eServer is the server the subtests share.
type e2eServer struct {
	dev     *devInstance
	llm     *fakeLLM
	policy  string
	dataDir string
	admin   string
	mu      sync.Mutex
	tokens  map[string]string // tenant/subject -> key
}

// with returns e for the (sub)test t, so a failure stops t, not its parent.
func (e *e2e) with(t *testing.T) *e2e { return &e2e{t: t, e2eServer: e.e2eServer} }

func startE2E(t *testing.T, llm *fakeLLM, policyDir, dataDir string, extra ...string) *e2e {
	t.Helper()
	dev := startDev(t, dataDir, append([]string{"--llm-base-url", llm.srv.URL + "/v1", "--llm-max-retries", "0",
		"--policy-dir", policyDir, "--orchestrator-approval-poll", "100ms",
		"--budget-sweep-interval", "1s", "--approval-poll-interval", "100ms"}, extra...)...)
	e := &e2e{t: t, e2eServer: &e2eServer{dev: dev, llm: llm, policy: policyDir, dataDir: dataDir, tokens: map[string]string{}}}
	e.admin = dev.adminToken(t)
	return e
}

// restart stops the server (every in-flight step is interrupted) and starts it
// again on the same data directory.
func (e *e2e) restart() {
	e.dev.stop()
	dev := startDev(e.t, e.dataDir, "--llm-base-url", e.llm.srv.URL+"/v1", "--llm-max-retries", "0",
		"--policy-dir", e.policy, "--orchestrator-approval-poll", "100ms",
		"--budget-sweep-interval", "1s", "--approval-poll-interval", "100ms")
	e.dev = dev
}

// key creates (once) a key for subject in tenant with role.
func (e *e2e) key(tenant, subject, role string) string {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	id := tenant + "/" + subject
	if k, ok := e.tokens[id]; ok {
		return k
	}
	// As `airlock keys create --database-url` does: an admin key manages its own tenant only.
	_, token, err := e.dev.store(e.t).Create(context.Background(), keystore.NewKey{
		Tenant: tenant, Subject: subject, Roles: []auth.Role{auth.Role(role)}, CreatedBy: "e2e test"})
	require.NoError(e.t, err)
	e.tokens[id] = token
	return token
}

func (e *e2e) orch(token string) orchestratorv1.OrchestratorServiceClient {
	return orchestratorv1.NewOrchestratorServiceClient(dial(e.t, e.dev.addr, token, nil))
}

func (e *e2e) upload(token, name, content string) string {
	e.t.Helper()
	stream, err := e.orch(token).UploadFile(context.Background())
	require.NoError(e.t, err)
	require.NoError(e.t, stream.Send(&orchestratorv1.UploadFileRequest{Name: name, Chunk: []byte(content)}))
	resp, err := stream.CloseAndRecv()
	require.NoError(e.t, err)
	return resp.GetFile().GetFileId()
}

func (e *e2e) submit(token string, req *orchestratorv1.SubmitRunRequest, inputs ...string) *orchestratorv1.Run {
	e.t.Helper()
	req.InputFileIds = inputs
	resp, err := e.orch(token).SubmitRun(context.Background(), req)
	require.NoError(e.t, err)
	return resp.GetRun()
}

func (e *e2e) wait(token, id string, want orchestratorv1.RunState, within time.Duration) *orchestratorv1.Run {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var r *orchestratorv1.Run
	for time.Now().Before(deadline) {
		resp, err := e.orch(token).GetRun(context.Background(), &orchestratorv1.GetRunRequest{RunId: id})
		if err == nil {
			r = resp.GetRun()
			if r.GetState() == want || r.GetState() >= orchestratorv1.RunState_RUN_STATE_SUCCEEDED {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NotNil(e.t, r)
	require.Equal(e.t, want.String(), r.GetState().String(), "run %s: %s", id, r.GetFailureReason())
	return r
}

func (e *e2e) download(token, fileID string) string {
	e.t.Helper()
	stream, err := e.orch(token).DownloadFile(context.Background(), &orchestratorv1.DownloadFileRequest{FileId: fileID})
	require.NoError(e.t, err)
	var b strings.Builder
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return b.String()
		}
		require.NoError(e.t, err)
		b.Write(msg.GetChunk())
	}
}

func (e *e2e) decide(token, runID string, approve bool) error {
	ctx := context.Background()
	ac := approvalv1.NewApprovalServiceClient(dial(e.t, e.dev.addr, token, nil))
	list, err := ac.ListApprovals(ctx, &approvalv1.ListApprovalsRequest{RunId: runID})
	require.NoError(e.t, err)
	require.Len(e.t, list.GetApprovals(), 1, "one approval request per run")
	id := list.GetApprovals()[0].GetId()
	if approve {
		_, err = ac.Approve(ctx, &approvalv1.ApproveRequest{ApprovalId: id})
	} else {
		_, err = ac.Reject(ctx, &approvalv1.RejectRequest{ApprovalId: id, Reason: "reads customer data it does not need"})
	}
	return err
}

func (e *e2e) setBudget(operator string, limit int64) {
	e.t.Helper()
	_, err := budgetv1.NewBudgetServiceClient(dial(e.t, e.dev.addr, operator, nil)).SetBudget(context.Background(), &budgetv1.SetBudgetRequest{
		Scope: &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT}, Period: budgetv1.Period_PERIOD_MONTHLY, LimitMicros: limit})
	require.NoError(e.t, err)
}

func (e *e2e) held(operator string) int64 {
	e.t.Helper()
	resp, err := budgetv1.NewBudgetServiceClient(dial(e.t, e.dev.addr, operator, nil)).GetUsage(context.Background(), &budgetv1.GetUsageRequest{
		Scope: &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT}})
	require.NoError(e.t, err)
	return resp.GetReservedMicros()
}

func promptReq(scenario, text string) *orchestratorv1.SubmitRunRequest {
	return &orchestratorv1.SubmitRunRequest{Source: &orchestratorv1.SubmitRunRequest_Prompt{Prompt: text + " [scenario:" + scenario + "]"}}
}

func codeReq(code string) *orchestratorv1.SubmitRunRequest {
	return &orchestratorv1.SubmitRunRequest{Source: &orchestratorv1.SubmitRunRequest_Code{Code: code}}
}

const (
	stSucceeded = orchestratorv1.RunState_RUN_STATE_SUCCEEDED
	stAwaiting  = orchestratorv1.RunState_RUN_STATE_AWAITING_APPROVAL
	stExecuting = orchestratorv1.RunState_RUN_STATE_EXECUTING
	stGenerate  = orchestratorv1.RunState_RUN_STATE_GENERATING
)

func TestE2E(t *testing.T) {
	t.Setenv("AIRLOCK_LLM_API_KEY", "e2e-fake-key")
	llm := newFakeLLM(t)
	e := startE2E(t, llm, writeTestPolicy(t), t.TempDir())
	alice, bob := e.key("acme", "alice", "user"), e.key("acme", "bob", "user")
	olga, eve := e.key("acme", "olga", "operator"), e.key("globex", "eve", "user")

	t.Run("cli", func(t *testing.T) { testE2ECLI(t, e.with(t), alice, olga) })

	t.Run("prompt to outputs", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		llm.script("happy", goodCode)
		in := e.upload(alice, "sales.csv", salesCSV)
		run := e.submit(alice, promptReq("happy", "Total amount per region"), in)
		r := e.wait(alice, run.GetId(), stSucceeded, 90*time.Second)
		require.Len(t, r.GetAttempts(), 1)
		require.Len(t, r.GetOutputs(), 1)
		require.Equal(t, "region,amount\nnorth,162.5\nsouth,80.0\n", e.download(alice, r.GetOutputs()[0].GetFileId()))
		// grok-code-fast-1: 1000 prompt tokens at $0.20/M + 4000 completion at $1.50/M.
		require.Equal(t, int64(6200), r.GetCost().GetLlmMicros())
		require.Positive(t, r.GetCost().GetComputeMicros())
		require.Contains(t, llm.body("happy", 0), "region", "the model sees the input's profile")
		// Tenancy: another user and another tenant see nothing; an operator sees the run.
		for _, tok := range []string{bob, eve} {
			_, err := e.orch(tok).GetRun(context.Background(), &orchestratorv1.GetRunRequest{RunId: run.GetId()})
			require.Equal(t, codes.NotFound, status.Code(err))
			require.Equal(t, codes.NotFound, status.Code(e.downloadErr(tok, r.GetOutputs()[0].GetFileId())))
		}
		_, err := e.orch(olga).GetRun(context.Background(), &orchestratorv1.GetRunRequest{RunId: run.GetId()})
		require.NoError(t, err)
	})

	t.Run("deny then fixed second attempt", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		llm.script("denyfix", deniedCode, goodCode)
		in := e.upload(alice, "sales.csv", salesCSV)
		run := e.submit(alice, promptReq("denyfix", "Total amount per region"), in)
		r := e.wait(alice, run.GetId(), stSucceeded, 90*time.Second)
		require.Len(t, r.GetAttempts(), 2)
		require.Equal(t, "VERDICT_DENY", r.GetAttempts()[0].GetVerdict().String())
		require.Equal(t, int64(2*6200), r.GetCost().GetLlmMicros(), "both attempts are paid for")
		require.Contains(t, llm.body("denyfix", 1), "socket", "the second call carries the findings")
	})

	t.Run("review approved then executed", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		in := e.upload(alice, "sales.csv", salesCSV)
		run := e.submit(alice, codeReq(reviewCode), in)
		r := e.wait(alice, run.GetId(), stAwaiting, 60*time.Second)
		require.NotEmpty(t, r.GetApprovalId())
		require.Equal(t, codes.PermissionDenied, status.Code(e.decide(alice, run.GetId(), true)), "a user cannot approve")
		require.NoError(t, e.decide(olga, run.GetId(), true))
		r = e.wait(alice, run.GetId(), stSucceeded, 90*time.Second)
		require.Equal(t, salesCSV, strings.ReplaceAll(e.download(alice, r.GetOutputs()[0].GetFileId()), ".0\n", "\n"))
	})

	t.Run("review rejected", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		run := e.submit(alice, codeReq(reviewCode))
		e.wait(alice, run.GetId(), stAwaiting, 60*time.Second)
		require.NoError(t, e.decide(olga, run.GetId(), false))
		r := e.wait(alice, run.GetId(), orchestratorv1.RunState_RUN_STATE_REJECTED, 30*time.Second)
		require.Contains(t, r.GetFailureReason(), "olga")
		require.Empty(t, r.GetOutputs())
	})

	t.Run("budget exhausted before generation and before execution", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		op, user := e.key("poor", "pat", "operator"), e.key("poor", "uma", "user")
		e.setBudget(op, 100)
		llm.script("poor", goodCode)
		run := e.submit(user, promptReq("poor", "anything"))
		r := e.wait(user, run.GetId(), orchestratorv1.RunState_RUN_STATE_BUDGET_EXCEEDED, 30*time.Second)
		require.Contains(t, r.GetFailureReason(), "code generation")
		require.Zero(t, llm.callCount("poor"), "the model is never called without money held")

		// Room for the generation's reservation (~$0.0064), not for the execution's
		// ($0.00138 for 60 s and 1 GiB) once the generation spent $0.0062.
		e.setBudget(op, 7000)
		run = e.submit(user, promptReq("poor", "anything"))
		r = e.wait(user, run.GetId(), orchestratorv1.RunState_RUN_STATE_BUDGET_EXCEEDED, 60*time.Second)
		require.Contains(t, r.GetFailureReason(), "execution")
		require.Equal(t, int64(6200), r.GetCost().GetLlmMicros())
		require.Zero(t, e.held(op), "nothing stays reserved")
	})

	t.Run("cancellation", func(t *testing.T) {
		t.Parallel()
		e := e.with(t)
		run := e.submit(alice, codeReq(sleepingCode))
		e.wait(alice, run.GetId(), stExecuting, 60*time.Second)
		time.Sleep(500 * time.Millisecond)
		resp, err := e.orch(alice).CancelRun(context.Background(), &orchestratorv1.CancelRunRequest{RunId: run.GetId(), Reason: "changed my mind"})
		require.NoError(t, err)
		require.Equal(t, orchestratorv1.RunState_RUN_STATE_CANCELLED.String(), resp.GetRun().GetState().String())
		require.Less(t, time.Since(resp.GetRun().GetCreatedAt().AsTime()), 25*time.Second, "the sandbox is stopped, not waited for")
	})
}

// downloadErr reads a file to its end and returns the error, if any.
func (e *e2e) downloadErr(token, id string) error {
	stream, err := e.orch(token).DownloadFile(context.Background(), &orchestratorv1.DownloadFileRequest{FileId: id})
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func testE2ECLI(t *testing.T, e *e2e, alice, olga string) {
	t.Setenv("AIRLOCK_ADDR", e.dev.addr)
	t.Setenv("AIRLOCK_TOKEN", alice)
	dir := t.TempDir()
	code := filepath.Join(dir, "job.py")
	input := filepath.Join(dir, "sales.csv")
	require.NoError(t, os.WriteFile(code, []byte(goodCode), 0o600))
	require.NoError(t, os.WriteFile(input, []byte(salesCSV), 0o600))
	out := filepath.Join(dir, "out")
	var stdout, stderr strings.Builder
	err := run(context.Background(), []string{"run", "--code", code, "--input", input, "--out", out}, &stdout, &stderr)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	got, err := os.ReadFile(filepath.Join(out, "result.csv"))
	require.NoError(t, err)
	require.Equal(t, "region,amount\nnorth,162.5\nsouth,80.0\n", string(got))
	for _, want := range []string{"CHECKING", "EXECUTING", "north   162.5", "status         SUCCEEDED", "files written  " + filepath.Join(out, "result.csv")} {
		require.Contains(t, stdout.String(), want)
	}
	id := regexp.MustCompile(`run (run_[0-9a-f]+) submitted`).FindStringSubmatch(stdout.String())
	require.NotNil(t, id)

	stdout.Reset()
	require.NoError(t, run(context.Background(), []string{"runs", "list"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), id[1])
	stdout.Reset()
	require.NoError(t, run(context.Background(), []string{"runs", "show", id[1]}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "verdict ALLOW")

	// A reviewed job says who must approve it and how, then resumes by itself.
	require.NoError(t, os.WriteFile(code, []byte(reviewCode), 0o600))
	var live lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"run", "--code", code, "--input", input, "--out", out}, &live, io.Discard)
	}()
	approveRE := regexp.MustCompile(`airlock approvals approve (apr_[0-9a-f]+)`)
	var approval []string
	for deadline := time.Now().Add(60 * time.Second); approval == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		approval = approveRE.FindStringSubmatch(live.String())
	}
	require.NotNil(t, approval, live.String())
	require.Contains(t, live.String(), "other than alice")
	_, err = approvalv1.NewApprovalServiceClient(dial(t, e.dev.addr, olga, nil)).Approve(context.Background(),
		&approvalv1.ApproveRequest{ApprovalId: approval[1]})
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err, live.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("airlock run did not end after approval:\n%s", live.String())
	}
	require.Contains(t, live.String(), "approved by olga")
	require.Contains(t, live.String(), "status         SUCCEEDED")

	// A denied job exits 2, with the findings in the summary.
	require.NoError(t, os.WriteFile(code, []byte(deniedCode), 0o600))
	stdout.Reset()
	err = run(context.Background(), []string{"run", "--code", code}, &stdout, &stderr)
	var ee *exitError
	require.ErrorAs(t, err, &ee, stdout.String())
	require.Equal(t, 2, ee.code)
	require.Contains(t, stdout.String(), "status         DENIED")
	require.Contains(t, stdout.String(), "socket")
}

// TestE2ERestart kills the server with one run in each of GENERATING,
// AWAITING_APPROVAL and EXECUTING, starts it again on the same database, and
// checks each run's fate: generation is redone, the approval wait goes on,
// and the interrupted execution fails without running the code again.
func TestE2ERestart(t *testing.T) {
	t.Setenv("AIRLOCK_LLM_API_KEY", "e2e-fake-key")
	llm := newFakeLLM(t)
	e := startE2E(t, llm, writeTestPolicy(t), t.TempDir())
	alice, olga := e.key("acme", "alice", "user"), e.key("acme", "olga", "operator")
	in := e.upload(alice, "sales.csv", salesCSV)

	// Killed while generating: the model answers only after the restart.
	llm.script("slowgen", goodCode)
	release := make(chan struct{})
	llm.mu.Lock()
	llm.block["slowgen"] = release
	llm.mu.Unlock()
	generating := e.submit(alice, promptReq("slowgen", "Total amount per region"), in)
	require.Equal(t, "slowgen", <-llm.started)
	e.wait(alice, generating.GetId(), stGenerate, time.Second)

	// Killed while awaiting approval.
	awaiting := e.submit(alice, codeReq(reviewCode), in)
	e.wait(alice, awaiting.GetId(), stAwaiting, 60*time.Second)

	// Killed while executing.
	executing := e.submit(alice, codeReq(sleepingCode))
	e.wait(alice, executing.GetId(), stExecuting, 60*time.Second)
	time.Sleep(500 * time.Millisecond)

	e.restart()
	close(release)

	r := e.wait(alice, executing.GetId(), orchestratorv1.RunState_RUN_STATE_FAILED, 30*time.Second)
	require.Contains(t, r.GetFailureReason(), "not run again")
	require.Len(t, r.GetAttempts(), 1)

	r = e.wait(alice, generating.GetId(), stSucceeded, 90*time.Second)
	require.Len(t, r.GetAttempts(), 1, "the interrupted attempt is generated again, not counted twice")
	require.GreaterOrEqual(t, llm.callCount("slowgen"), 2)
	require.Len(t, r.GetOutputs(), 1)

	require.Equal(t, stAwaiting.String(), e.wait(alice, awaiting.GetId(), stAwaiting, 10*time.Second).GetState().String())
	require.NoError(t, e.decide(olga, awaiting.GetId(), true), "one approval request, not a second after the restart")
	r = e.wait(alice, awaiting.GetId(), stSucceeded, 90*time.Second)
	require.Len(t, r.GetOutputs(), 1)
	require.Zero(t, e.held(olga), "no money stays reserved")
}

// TestE2EApprovalExpires leaves a reviewed run undecided past the approval's
// expiry: the approval service expires it and the run ends EXPIRED.
func TestE2EApprovalExpires(t *testing.T) {
	e := startE2E(t, newFakeLLM(t), writeTestPolicy(t), t.TempDir(),
		"--approval-ttl", "1s", "--approval-sweep-interval", "200ms")
	alice := e.key("acme", "alice", "user")
	run := e.submit(alice, codeReq(reviewCode))
	r := e.wait(alice, run.GetId(), orchestratorv1.RunState_RUN_STATE_EXPIRED, 30*time.Second)
	require.Contains(t, r.GetFailureReason(), "expired")
	require.Len(t, r.GetAttempts(), 1)
	require.Nil(t, r.GetAttempts()[0].GetExecution(), "nothing ran")
}

// lockedBuffer is an io.Writer safe to read while a command writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
