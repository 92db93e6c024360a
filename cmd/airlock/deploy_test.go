package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

// composeFile is the compose file whose wiring TestComposeWiringRunsThePipeline
// runs without a container engine.
const composeFile = "../../docker-compose.yaml"

// composeService is the part of a compose service the test runs.
type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:-([^}]*))?\}`)

// loadComposeServices reads the compose file's services as `docker compose`
// would with an empty environment: anchors and merge keys resolved and
// ${VAR:-default} interpolated to its default.
func loadComposeServices(t *testing.T) map[string]composeService {
	t.Helper()
	b, err := os.ReadFile(composeFile)
	require.NoError(t, err)
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	for name, s := range f.Services {
		for k, v := range s.Environment {
			s.Environment[k] = interpolation.ReplaceAllString(v, "$3")
		}
		f.Services[name] = s
	}
	return f.Services
}

// composeProcess is one compose service running as a local process.
type composeProcess struct {
	name    string
	cmd     *exec.Cmd
	log     string
	exited  chan error
	addr    string // its gRPC address here
	compose string // its gRPC address in the compose file
}

// TestComposeWiringRunsThePipeline runs docker-compose.yaml's wiring without
// a container engine: each airlock service of the file becomes a process of
// the real binary with the file's command and environment, where compose
// host names and ports become loopback ports, mounted files their sources in
// the repository, and Postgres a fresh test database. The migrate step runs
// first; each service starts once its dependencies pass the file's own health
// check command; then a run goes through the published orchestrator from
// supplied code to SUCCEEDED, and a run the policy sends to review is
// approved on the approval service and runs too.
func TestComposeWiringRunsThePipeline(t *testing.T) {
	t.Parallel()
	bin := opsBinary(t)
	dbURL := dbtest.NewPostgresURL(t)
	svcs := loadComposeServices(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)

	// Which services are airlock processes, and where each listens here.
	var names []string
	hosts := map[string]string{} // compose host:port -> loopback address
	procs := map[string]*composeProcess{}
	for name, s := range svcs {
		if !strings.HasPrefix(s.Image, "airlock:") || name == "migrate" {
			continue
		}
		names = append(names, name)
		addr, ok := s.Environment["AIRLOCK_ADDR"]
		require.True(t, ok, "%s: no AIRLOCK_ADDR", name)
		_, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		p := &composeProcess{name: name, addr: opsFreeAddr(t), compose: name + ":" + port}
		hosts[p.compose] = p.addr
		procs[name] = p
	}
	slices.Sort(names)
	require.Len(t, names, 6)

	envFor := func(name string, s composeService) []string {
		mounts := map[string]string{}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if strings.HasPrefix(parts[0], "./") {
				mounts[parts[1]] = filepath.Join(root, parts[0])
			}
		}
		extra := map[string]string{"AIRLOCK_DATA_DIR": t.TempDir()} // the image's ENV; a tmpfs in compose
		for k, v := range s.Environment {
			switch {
			case k == "DATABASE_URL":
				require.Contains(t, v, "@postgres:5432/", "%s: DATABASE_URL names the postgres service", name)
				v = dbURL
			case k == "AIRLOCK_ADDR":
				v = procs[name].addr
			case k == "AIRLOCK_METRICS_ADDR":
				v = opsFreeAddr(t)
			case strings.HasSuffix(k, "_ADDR"):
				local, ok := hosts[v]
				require.True(t, ok, "%s: %s=%s names no service's gRPC address", name, k, v)
				v = local
			case mounts[v] != "":
				v = mounts[v]
			case strings.HasPrefix(v, "/"):
				t.Fatalf("%s: %s=%s is a path the compose file does not mount", name, k, v)
			}
			extra[k] = v
		}
		return opsEnv(extra)
	}
	run := func(name string, s composeService, args []string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = envFor(name, s)
		cmd.Dir = t.TempDir()
		return cmd
	}

	// The migration step, then an admin key from it (as the guide says:
	// `docker compose run --rm migrate keys create ...`).
	mig := svcs["migrate"]
	out, err := run("migrate", mig, mig.Command).CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)
	key := func(subject, role string) string {
		var stdout, stderr bytes.Buffer
		cmd := run("migrate", mig, []string{"keys", "create", "--tenant", "acme", "--subject", subject, "--role", role})
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "keys create: %s", stderr.String())
		return strings.TrimSpace(stdout.String())
	}
	ops, reviewer := key("ops", "admin"), key("reviewer", "operator")

	// Start in dependency order: a service starts once what it depends on is
	// healthy by the compose file's own health check command.
	healthy := map[string]bool{"postgres": true, "migrate": true}
	healthCheck := func(p *composeProcess) bool {
		test := svcs[p.name].Healthcheck.Test
		require.Equal(t, "CMD", test[0])
		require.Equal(t, "airlock", test[1])
		args := slices.Clone(test[2:])
		for i, a := range args {
			if _, port, err := net.SplitHostPort(a); err == nil && strings.HasSuffix(p.compose, ":"+port) {
				args[i] = p.addr
			}
		}
		return exec.Command(bin, args...).Run() == nil
	}
	for len(healthy) < len(names)+2 {
		progressed := false
		for _, name := range names {
			p := procs[name]
			if p.cmd != nil {
				continue
			}
			ready := true
			for dep, d := range svcs[name].DependsOn {
				ready = ready && healthy[dep]
				require.Contains(t, []string{"service_healthy", "service_completed_successfully"}, d.Condition)
			}
			if !ready {
				continue
			}
			s := svcs[name]
			p.cmd = run(name, s, s.Command)
			p.log = filepath.Join(t.TempDir(), name+".log")
			logf, err := os.Create(p.log)
			require.NoError(t, err)
			p.cmd.Stdout, p.cmd.Stderr = logf, logf
			require.NoError(t, p.cmd.Start(), name)
			p.exited = make(chan error, 1)
			go func() { p.exited <- p.cmd.Wait(); logf.Close() }()
			t.Cleanup(func() { stopComposeProcess(t, p) })
			deadline := time.Now().Add(90 * time.Second)
			for !healthCheck(p) {
				select {
				case err := <-p.exited:
					t.Fatalf("%s exited before it was healthy (%v):\n%s", name, err, tail(p.log))
				default:
				}
				require.True(t, time.Now().Before(deadline), "%s not healthy within 90s:\n%s", name, tail(p.log))
				time.Sleep(100 * time.Millisecond)
			}
			healthy[name] = true
			progressed = true
		}
		require.True(t, progressed, "depends_on leaves services that can never start: %v", healthy)
	}

	// Through the published orchestrator: supplied code to SUCCEEDED.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dev := &opsDev{addr: procs["orchestrator"].addr}
	runs := orchestratorv1.NewOrchestratorServiceClient(dev.conn(t, ops))
	waitRun := func(id string, until func(orchestratorv1.RunState) bool) *orchestratorv1.Run {
		for {
			r, err := runs.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: id})
			require.NoError(t, err)
			if until(r.GetRun().GetState()) || r.GetRun().GetFinishedAt() != nil {
				return r.GetRun()
			}
			require.NoError(t, ctx.Err(), "run %s stuck in %s", id, r.GetRun().GetState())
			time.Sleep(50 * time.Millisecond)
		}
	}
	code := "import pandas as pd\nimport os\nos.makedirs('/data/out', exist_ok=True)\n" +
		"pd.DataFrame({'region': ['N', 'S'], 'revenue': [3, 4]}).to_csv('/data/out/summary.csv', index=False)\nprint('ok')\n"
	sub, err := runs.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{Source: &orchestratorv1.SubmitRunRequest_Code{Code: code}})
	require.NoError(t, err)
	r := waitRun(sub.GetRun().GetId(), func(orchestratorv1.RunState) bool { return false })
	require.Equal(t, orchestratorv1.RunState_RUN_STATE_SUCCEEDED, r.GetState(), "%s\norchestrator log:\n%s", r.GetFailureReason(), tail(procs["orchestrator"].log))
	require.Len(t, r.GetOutputs(), 1)
	require.Equal(t, "summary.csv", r.GetOutputs()[0].GetName())

	// A run the policy sends to review waits; an operator approves it on the
	// approval service (in a cluster: through a port-forward), and it runs.
	sub, err = runs.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{Source: &orchestratorv1.SubmitRunRequest_Code{Code: opsReviewCode}})
	require.NoError(t, err)
	r = waitRun(sub.GetRun().GetId(), func(s orchestratorv1.RunState) bool {
		return s == orchestratorv1.RunState_RUN_STATE_AWAITING_APPROVAL
	})
	require.Equal(t, orchestratorv1.RunState_RUN_STATE_AWAITING_APPROVAL, r.GetState(), r.GetFailureReason())
	approvals := approvalv1.NewApprovalServiceClient((&opsDev{addr: procs["approval"].addr}).conn(t, reviewer))
	_, err = approvals.Approve(ctx, &approvalv1.ApproveRequest{ApprovalId: r.GetApprovalId(), Reason: "sleeps briefly"})
	require.NoError(t, err)
	r = waitRun(r.GetId(), func(orchestratorv1.RunState) bool { return false })
	require.Equal(t, orchestratorv1.RunState_RUN_STATE_SUCCEEDED, r.GetState(), r.GetFailureReason())
}

// stopComposeProcess sends SIGTERM, as `docker compose down` does, and
// expects a clean exit within the grace period.
func stopComposeProcess(t *testing.T, p *composeProcess) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM:\n%s", p.name, err, tail(p.log))
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
	}
}
