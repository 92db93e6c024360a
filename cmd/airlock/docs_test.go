package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/pricing"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

// The operations guide whose grpcurl commands CI runs, and the pinned grpcurl
// `make tools` builds, both relative to this package's directory.
const (
	opsGuide   = "../../docs/operations.md"
	opsGrpcurl = "../../bin/grpcurl"
)

// opsBinary builds the airlock binary for tests that run it as a process of
// its own, with -race when this test binary has it (so the build reuses the
// test's compiled packages and only links).
func opsBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "airlock")
	args := []string{"build", "-o", out}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	return out
}

// opsFreeAddr returns a loopback address nobody listens on right now.
func opsFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// opsDev is `airlock dev` running as its own process.
type opsDev struct {
	addr, dataDir string
	// token is the admin key dev saved in dataDir.
	token string
}

// startOpsDev runs `bin dev` on a free loopback port with a fresh data
// directory, waits until it answers SERVING, and stops it with SIGTERM when
// the test ends (a clean exit is part of the test).
func startOpsDev(t *testing.T, bin string, extra ...string) *opsDev {
	t.Helper()
	d := &opsDev{addr: opsFreeAddr(t), dataDir: filepath.Join(t.TempDir(), "data")}
	logPath := filepath.Join(t.TempDir(), "dev.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	args := append([]string{"dev", "--addr", d.addr, "--data-dir", d.dataDir, "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = opsEnv(nil)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		defer logf.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("airlock dev exited with %v after SIGTERM; log:\n%s", err, tail(logPath))
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("airlock dev did not stop within 30s of SIGTERM; log:\n%s", tail(logPath))
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("airlock dev exited before serving (%v); log:\n%s", err, tail(logPath))
		default:
		}
		st, err := checkHealth(context.Background(), d.addr, "", time.Second, insecure.NewCredentials())
		if err == nil && st == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("airlock dev not SERVING within 90s (last: %v %v); log:\n%s", st, err, tail(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(d.dataDir, devAdminKeyFile))
	require.NoError(t, err, "dev saved no admin key")
	d.token = strings.TrimSpace(string(b))
	require.NotEmpty(t, d.token)
	return d
}

// conn dials the dev server with token.
func (d *opsDev) conn(t *testing.T, token string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// opsEnv is the environment for processes the tests start: this one's,
// without the client and server settings a developer may have exported,
// plus extra.
func opsEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AIRLOCK_") && !strings.HasPrefix(kv, "AIRLOCK_TEST_") ||
			strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// docCommand is one shell command from a fenced ```sh block of a guide.
type docCommand struct {
	// Line is where the command starts in the guide (1-based).
	Line int
	// Text is the command with continuation lines joined.
	Text string
}

var fenceRE = regexp.MustCompile("^\\s*(```+|~~~+)\\s*([A-Za-z0-9_+-]*)")

// grpcurlCommands extracts every command of the guide's ```sh blocks that
// starts with `grpcurl`: lines ending in a backslash continue on the next
// line. An unclosed block is an error, so a broken fence cannot hide the
// rest of the guide from the check.
func grpcurlCommands(markdown string) ([]docCommand, error) {
	var (
		out     []docCommand
		inBlock bool
		fence   string
		isSh    bool
		pending *docCommand
		opened  int
	)
	sc := bufio.NewScanner(strings.NewReader(markdown))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			if !inBlock {
				inBlock, fence, isSh, opened = true, m[1][:1], m[2] == "sh" || m[2] == "bash" || m[2] == "shell", n
				continue
			}
			if strings.HasPrefix(m[1], fence) && m[2] == "" {
				if pending != nil {
					return nil, fmt.Errorf("line %d: command ends with a backslash at the end of its block", pending.Line)
				}
				inBlock = false
				continue
			}
		}
		if !inBlock || !isSh {
			continue
		}
		if pending != nil {
			text := strings.TrimSpace(line)
			cont := strings.HasSuffix(text, "\\")
			pending.Text += " " + strings.TrimSpace(strings.TrimSuffix(text, "\\"))
			if !cont {
				out = append(out, *pending)
				pending = nil
			}
			continue
		}
		text := strings.TrimSpace(line)
		if !strings.HasPrefix(text, "grpcurl ") {
			continue
		}
		c := docCommand{Line: n, Text: strings.TrimSpace(strings.TrimSuffix(text, "\\"))}
		if strings.HasSuffix(text, "\\") {
			pending = &c
			continue
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if inBlock {
		return nil, fmt.Errorf("line %d: code block never closed", opened)
	}
	return out, nil
}

func TestGrpcurlCommandExtraction(t *testing.T) {
	t.Parallel()
	md := "# Guide\n\ngrpcurl outside a block is prose\n\n" +
		"```sh\n" +
		"grpcurl -plaintext \"$AIRLOCK_ADDR\" list\n" +
		"kubectl get pods\n" +
		"  grpcurl -plaintext -d '{\"a\": 1}' \\\n" +
		"    \"$AIRLOCK_ADDR\" \\\n" +
		"    x.v1.S/M\n" +
		"```\n\n" +
		"```yaml\ngrpcurl: not a command\n```\n" +
		"~~~bash\ngrpcurl -plaintext \"$AIRLOCK_ADDR\" describe\n~~~\n"
	cmds, err := grpcurlCommands(md)
	require.NoError(t, err)
	require.Equal(t, []docCommand{
		{Line: 6, Text: `grpcurl -plaintext "$AIRLOCK_ADDR" list`},
		{Line: 8, Text: `grpcurl -plaintext -d '{"a": 1}' "$AIRLOCK_ADDR" x.v1.S/M`},
		{Line: 17, Text: `grpcurl -plaintext "$AIRLOCK_ADDR" describe`},
	}, cmds)

	_, err = grpcurlCommands("```sh\ngrpcurl list\n")
	require.ErrorContains(t, err, "line 1: code block never closed")
	_, err = grpcurlCommands("```sh\ngrpcurl list \\\n```\n")
	require.ErrorContains(t, err, "line 2: command ends with a backslash")
}

// TestOperationsGuideGrpcurlCommands runs every grpcurl command of
// docs/operations.md, in order, with the pinned ./bin/grpcurl against a real
// `airlock dev` process; each must exit 0. The guide's variables are set as
// an operator would set them: AIRLOCK_ADDR and AIRLOCK_TOKEN (dev's admin
// key), and the ids the guide tells the reader to copy from earlier output,
// made here as fixtures (opsFixtures).
func TestOperationsGuideGrpcurlCommands(t *testing.T) {
	t.Parallel()
	grpcurl, err := filepath.Abs(opsGrpcurl)
	require.NoError(t, err)
	_, err = os.Stat(grpcurl)
	require.NoError(t, err, "the pinned grpcurl is missing: run `make tools`")
	guide, err := os.ReadFile(opsGuide)
	require.NoError(t, err)
	cmds, err := grpcurlCommands(string(guide))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(cmds), 8, "the guide lost its grpcurl commands")

	d := startOpsDev(t, opsBinary(t))
	vars := opsFixtures(t, d)
	vars["AIRLOCK_ADDR"] = d.addr
	vars["AIRLOCK_TOKEN"] = d.token
	vars["PATH"] = filepath.Dir(grpcurl) + string(os.PathListSeparator) + os.Getenv("PATH")
	env := opsEnv(nil)
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env = append(env[:i], env[i+1:]...)
			break
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	for _, c := range cmds {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		// -u: a variable the guide uses but never defines fails the command.
		cmd := exec.CommandContext(ctx, "bash", "-u", "-o", "pipefail", "-c", c.Text)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		require.NoError(t, err, "docs/operations.md:%d: %s\nstdout:\n%s\nstderr:\n%s", c.Line, c.Text, stdout.String(), stderr.String())
		t.Logf("docs/operations.md:%d ok: %s", c.Line, c.Text)
	}
	opsVerify(t, d, vars)
}

// opsReviewCode is code the default policy sends to review (time.sleep is
// one of its review_calls) and that runs green once approved.
const opsReviewCode = "import time\ntime.sleep(0.01)\nprint(\"slept\")\n"

// opsFixtures makes what the guide's commands act on and returns the
// variables the guide tells the reader to set from earlier output:
// OLD_KEY_ID (a key to revoke when rotating), and three runs a user (alice)
// submitted whose code the policy sent to review: RUN_ID with its request
// APPROVAL_ID (the guide approves it), REJECT_ID (the guide rejects it) and
// CANCEL_RUN_ID (the guide cancels it).
func opsFixtures(t *testing.T, d *opsDev) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	keys := authv1.NewKeyServiceClient(d.conn(t, d.token))
	old, err := keys.CreateKey(ctx, &authv1.CreateKeyRequest{Tenant: "default", Subject: "ci-bot", Roles: []string{"user"}})
	require.NoError(t, err)
	alice, err := keys.CreateKey(ctx, &authv1.CreateKeyRequest{Tenant: "default", Subject: "alice", Roles: []string{"user"}})
	require.NoError(t, err)
	runs := orchestratorv1.NewOrchestratorServiceClient(d.conn(t, alice.GetToken()))
	awaiting := func(key string) *orchestratorv1.Run {
		resp, err := runs.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{
			Source: &orchestratorv1.SubmitRunRequest_Code{Code: opsReviewCode}, IdempotencyKey: key})
		require.NoError(t, err)
		id := resp.GetRun().GetId()
		for {
			r, err := runs.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: id})
			require.NoError(t, err)
			switch st := r.GetRun().GetState(); st {
			case orchestratorv1.RunState_RUN_STATE_AWAITING_APPROVAL:
				require.NotEmpty(t, r.GetRun().GetApprovalId())
				return r.GetRun()
			case orchestratorv1.RunState_RUN_STATE_RECEIVED, orchestratorv1.RunState_RUN_STATE_CHECKING:
			default:
				t.Fatalf("run %s went to %s (%s) instead of waiting for approval", id, st, r.GetRun().GetFailureReason())
			}
			select {
			case <-ctx.Done():
				t.Fatalf("run %s never reached AWAITING_APPROVAL", id)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	opsWarmUp(ctx, t, runs)
	approve, reject, cancelled := awaiting("docs-approve"), awaiting("docs-reject"), awaiting("docs-cancel")
	return map[string]string{
		"CANCEL_RUN_ID": cancelled.GetId(),
		"OLD_KEY_ID":    old.GetKey().GetId(),
		"RUN_ID":        approve.GetId(),
		"APPROVAL_ID":   approve.GetApprovalId(),
		"REJECT_ID":     reject.GetApprovalId(),
		"REJECT_RUN":    reject.GetId(),
	}
}

// opsWarmUp checks that the orchestrator runs code end to end before the
// guide's runs are submitted. Its calls to the other services wait for their
// connections (grpc.WaitForReady), so the first run must succeed even right
// after start.
func opsWarmUp(ctx context.Context, t *testing.T, runs orchestratorv1.OrchestratorServiceClient) {
	t.Helper()
	resp, err := runs.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{
		Source: &orchestratorv1.SubmitRunRequest_Code{Code: "print('warm')\n"}})
	require.NoError(t, err)
	var r *orchestratorv1.Run
	for r == nil || r.GetFinishedAt() == nil {
		require.NoError(t, ctx.Err(), "the warm-up run never finished")
		time.Sleep(50 * time.Millisecond)
		got, err := runs.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: resp.GetRun().GetId()})
		require.NoError(t, err)
		r = got.GetRun()
	}
	require.Equal(t, orchestratorv1.RunState_RUN_STATE_SUCCEEDED, r.GetState(), "warm-up run: %s", r.GetFailureReason())
}

// opsVerify checks that the guide's commands did what the guide says: the
// budgets are set, the approvals decided, the old key revoked.
func opsVerify(t *testing.T, d *opsDev, vars map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	approvals := approvalv1.NewApprovalServiceClient(d.conn(t, d.token))
	for id, want := range map[string]approvalv1.ApprovalState{
		vars["APPROVAL_ID"]: approvalv1.ApprovalState_APPROVAL_STATE_APPROVED,
		vars["REJECT_ID"]:   approvalv1.ApprovalState_APPROVAL_STATE_REJECTED,
	} {
		resp, err := approvals.GetApproval(ctx, &approvalv1.GetApprovalRequest{ApprovalId: id})
		require.NoError(t, err)
		require.Equal(t, want, resp.GetApproval().GetState(), "approval %s after the guide's commands", id)
		require.Equal(t, "admin", resp.GetApproval().GetDecidedBy())
	}
	budgets := budgetv1.NewBudgetServiceClient(d.conn(t, d.token))
	b, err := budgets.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT}})
	require.NoError(t, err, "the guide's SetBudget left no tenant budget")
	require.Equal(t, int64(50_000_000), b.GetBudget().GetLimitMicros())
	require.Equal(t, budgetv1.Period_PERIOD_MONTHLY, b.GetBudget().GetPeriod())
	b, err = budgets.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_USER, Subject: "alice"}})
	require.NoError(t, err, "the guide's SetBudget left no budget for alice")
	require.Equal(t, int64(5_000_000), b.GetBudget().GetLimitMicros())
	// The runs went on by themselves: the approved one ran to success, the
	// rejected one ended REJECTED.
	runs := orchestratorv1.NewOrchestratorServiceClient(d.conn(t, d.token))
	for run, want := range map[string]orchestratorv1.RunState{
		vars["RUN_ID"]:        orchestratorv1.RunState_RUN_STATE_SUCCEEDED,
		vars["REJECT_RUN"]:    orchestratorv1.RunState_RUN_STATE_REJECTED,
		vars["CANCEL_RUN_ID"]: orchestratorv1.RunState_RUN_STATE_CANCELLED,
	} {
		var r *orchestratorv1.Run
		for {
			resp, err := runs.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: run})
			require.NoError(t, err)
			r = resp.GetRun()
			if r.GetFinishedAt() != nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		require.Equal(t, want, r.GetState(), "run %s: %s", run, r.GetFailureReason())
	}
	keys, err := authv1.NewKeyServiceClient(d.conn(t, d.token)).ListKeys(ctx, &authv1.ListKeysRequest{IncludeRevoked: true})
	require.NoError(t, err)
	var found bool
	for _, k := range keys.GetKeys() {
		if k.GetId() == vars["OLD_KEY_ID"] {
			found = true
			require.NotNil(t, k.GetRevokeTime(), "the guide's RevokeKey left %s usable", k.GetId())
		}
	}
	require.True(t, found, "key %s not listed", vars["OLD_KEY_ID"])
}

// TestDeployFilesUseRealSettings: every AIRLOCK_* variable the deployment
// files and the operations guide set is a setting `airlock serve`, `airlock
// migrate` or the CLI reads, so a typo cannot silently leave a default.
func TestDeployFilesUseRealSettings(t *testing.T) {
	t.Parallel()
	known := map[string]bool{
		// Client settings (client.go).
		"AIRLOCK_ADDR": true, "AIRLOCK_TOKEN": true, "AIRLOCK_DATA_DIR": true,
		"AIRLOCK_TLS_CA": true, "AIRLOCK_TLS_CERT": true, "AIRLOCK_TLS_KEY": true,
		// The guide's example of the naming rule.
		"AIRLOCK_FOO_BAR": true,
	}
	for _, c := range []*cobra.Command{newServeCmd(), newMigrateCmd()} {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[config.EnvName(f.Name)] = true })
	}
	files := []string{"../../docker-compose.yaml", "../../deploy/Dockerfile", opsGuide}
	k8s, err := filepath.Glob("../../deploy/k8s/base/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, k8s)
	files = append(files, k8s...)
	envRE := regexp.MustCompile(`\bAIRLOCK_[A-Z0-9_]*[A-Z0-9]\b`)
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, line := range strings.Split(string(b), "\n") {
			for _, name := range envRE.FindAllString(line, -1) {
				if strings.HasPrefix(name, "AIRLOCK_TEST_") {
					continue
				}
				require.True(t, known[name], "%s:%d: %s is no setting of airlock serve, migrate or the CLI", f, i+1, name)
				seen++
			}
		}
	}
	require.Greater(t, seen, 20)
}

// TestDeployPriceTableIsTheDefault: the price table the image, compose and
// the cluster mount parses with the server's own loader and is the built-in
// default (xAI's published prices), so both paths charge the same.
func TestDeployPriceTableIsTheDefault(t *testing.T) {
	t.Parallel()
	tbl, err := pricing.Load("../../deploy/k8s/base/config/prices.yaml")
	require.NoError(t, err)
	require.Equal(t, pricing.Default(), tbl)
}

// TestDeployPolicyIsValid: the policy the cluster's ConfigMap ships parses
// with the policy service's own parser and is the tenants' default policy.
func TestDeployPolicyIsValid(t *testing.T) {
	t.Parallel()
	const path = "../../deploy/k8s/base/config/policies/default.yaml"
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	shipped, err := policydoc.Parse(path, src)
	require.NoError(t, err)
	builtin, err := policydoc.Parse("policies/default.yaml", policies.Default)
	require.NoError(t, err)
	require.Equal(t, builtin.ID, shipped.ID)
}
