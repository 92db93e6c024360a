package check

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// The compose file CI loads, relative to this package.
const composeFile = "../../docker-compose.yaml"

// loadCompose loads path with the compose-spec library as `docker compose`
// would, with the given profiles and a fixed, empty environment (so the
// file's defaults are what is checked). Schema validation, interpolation,
// normalisation and the consistency checks (every depends_on, network and
// volume declared) all run.
func loadCompose(t *testing.T, path string, profiles ...string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(path)
	require.NoError(t, err)
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv([]string{}),
		cli.WithProfiles(profiles),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithDiscardEnvFile,
	)
	require.NoError(t, err)
	p, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "loading %s", path)
	return p
}

func TestComposeLoadRefusesMistakes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, bad := range map[string]string{
		"unknown key":         "services:\n  a:\n    image: x\n    comand: [serve]\n",
		"undeclared network":  "services:\n  a:\n    image: x\n    networks: [nope]\n",
		"missing dependency":  "services:\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: service_healthy\n",
		"bad port":            "services:\n  a:\n    image: x\n    ports: [\"127.0.0.1:notaport:50051\"]\n",
		"bad condition":       "services:\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: service_happy\n  b:\n    image: x\n",
		"dependency on cycle": "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
		opts, err := cli.NewProjectOptions([]string{path}, cli.WithWorkingDirectory(dir), cli.WithEnv([]string{}), cli.WithConsistency(true))
		require.NoError(t, err)
		_, err = opts.LoadProject(context.Background())
		require.Error(t, err, name)
	}
}

// airlockServices are the compose services that run the airlock image.
func airlockServices(p *types.Project) map[string]types.ServiceConfig {
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if strings.HasPrefix(s.Image, "airlock:") {
			out[name] = s
		}
	}
	return out
}

func env(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

func TestComposeServicesAndImage(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, composeFile)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	want := append([]string{"migrate", "postgres"}, Services...)
	require.ElementsMatch(t, want, p.ServiceNames(), "services without a profile")
	require.ElementsMatch(t, []string{"otel-collector", "jaeger"}, mapKeys(p.DisabledServices), "services behind the otel profile")

	svcs := airlockServices(p)
	require.Len(t, svcs, len(Services)+1)
	for name, s := range svcs {
		require.NotNil(t, s.Build, "%s: no build", name)
		require.Equal(t, root, s.Build.Context, name)
		_, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile))
		require.NoError(t, err, "%s: dockerfile", name)
		require.Equal(t, "deploy/Dockerfile", s.Build.Dockerfile, name)
		require.True(t, s.ReadOnly, "%s: read-only root", name)
		require.Equal(t, []string{"ALL"}, s.CapDrop, name)
		require.Contains(t, s.SecurityOpt, "no-new-privileges:true", name)
		require.False(t, s.Privileged, name)
		if name == "migrate" {
			require.Equal(t, types.ShellCommand{"migrate"}, s.Command)
			continue
		}
		require.Equal(t, types.ShellCommand{"serve", name}, s.Command, name)
	}
	// Bind-mounted files exist (paths are resolved against the project).
	for _, prof := range [][]string{nil, {"otel"}} {
		for name, s := range loadCompose(t, composeFile, prof...).Services {
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				_, err := os.Stat(v.Source)
				require.NoError(t, err, "%s mounts %s", name, v.Source)
			}
		}
	}
}

// listenPort is the port a service's server listens on (AIRLOCK_ADDR).
func listenPort(t *testing.T, s types.ServiceConfig) string {
	t.Helper()
	addr, ok := env(s, "AIRLOCK_ADDR")
	require.True(t, ok, "%s: no AIRLOCK_ADDR", s.Name)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "%s: AIRLOCK_ADDR", s.Name)
	return port
}

func TestComposeHealthChecksAndDependencies(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, composeFile, "otel")
	all := p.Services
	for name, s := range airlockServices(p) {
		if name == "migrate" {
			require.Equal(t, map[string]types.ServiceDependency{"postgres": {Condition: types.ServiceConditionHealthy, Required: true}}, map[string]types.ServiceDependency(s.DependsOn))
			continue
		}
		// The health check asks the service's own server.
		require.NotNil(t, s.HealthCheck, name)
		require.False(t, s.HealthCheck.Disable, name)
		require.Equal(t, types.HealthCheckTest{"CMD", "airlock", "health", "--addr", "127.0.0.1:" + listenPort(t, s)}, s.HealthCheck.Test, name)
		// Services wait for the migrations.
		if name != "orchestrator" {
			require.Equal(t, types.ServiceConditionCompletedSuccessfully, s.DependsOn["migrate"].Condition, name)
		}
	}
	for name, s := range all {
		for dep, d := range s.DependsOn {
			target, ok := all[dep]
			require.True(t, ok, "%s depends on unknown %s", name, dep)
			switch d.Condition {
			case types.ServiceConditionHealthy:
				require.NotNil(t, target.HealthCheck, "%s waits for %s to be healthy, which has no health check", name, dep)
				require.False(t, target.HealthCheck.Disable, "%s waits for %s to be healthy, whose health check is off", name, dep)
			case types.ServiceConditionCompletedSuccessfully:
				require.Equal(t, "no", target.Restart, "%s waits for %s to finish, which restarts", name, dep)
			case types.ServiceConditionStarted:
			default:
				t.Fatalf("%s: depends_on %s: condition %q", name, dep, d.Condition)
			}
		}
	}
	// The orchestrator starts once every service it calls is healthy.
	orch := all["orchestrator"]
	for _, peer := range Internal {
		require.Equal(t, types.ServiceConditionHealthy, orch.DependsOn[peer].Condition, "orchestrator -> %s", peer)
	}
}

func TestComposePortsAndWiring(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, composeFile, "otel")
	published := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			require.Equal(t, "127.0.0.1", port.HostIP, "%s publishes %s beyond this machine", name, port.Published)
			require.NotEmpty(t, port.Published, name)
			require.NotZero(t, port.Target, name)
			prev, dup := published[port.Published]
			require.False(t, dup, "%s and %s both publish %s", prev, name, port.Published)
			published[port.Published] = name
		}
	}
	// Of the airlock services only the orchestrator is published, on its gRPC port.
	for name, s := range airlockServices(p) {
		if name != "orchestrator" {
			require.Empty(t, s.Ports, "%s is published", name)
			continue
		}
		require.Len(t, s.Ports, 1)
		require.Equal(t, listenPort(t, s), s.Ports[0].Published)
		require.Equal(t, listenPort(t, s), strconv.FormatUint(uint64(s.Ports[0].Target), 10))
	}

	// The orchestrator reaches each peer by the peer's service name and
	// listening port, over a network they share.
	orch := p.Services["orchestrator"]
	for _, peer := range Internal {
		addr, ok := env(orch, "AIRLOCK_"+strings.ToUpper(peer)+"_ADDR")
		require.True(t, ok, "orchestrator has no address for %s", peer)
		host, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		target, ok := p.Services[host]
		require.True(t, ok, "orchestrator's %s address names unknown service %q", peer, host)
		require.Equal(t, peer, host)
		require.Equal(t, listenPort(t, target), port, "orchestrator -> %s port", peer)
		require.True(t, shareNetwork(orch, target), "orchestrator and %s share no network", peer)
	}

	// The database URL names the postgres service, reachable on a shared
	// network; the services and the migration use the same one.
	var dbURL string
	for name, s := range airlockServices(p) {
		u, ok := env(s, "DATABASE_URL")
		stateful := name == "orchestrator" || name == "budget" || name == "approval" || name == "migrate"
		require.Equal(t, stateful, ok, "%s: DATABASE_URL", name)
		if !ok {
			continue
		}
		if dbURL == "" {
			dbURL = u
		}
		require.Equal(t, dbURL, u, name)
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		require.Equal(t, "postgres", parsed.Hostname())
		require.True(t, shareNetwork(s, p.Services["postgres"]), "%s cannot reach postgres", name)
	}
	// All services present the same service token.
	var token string
	for name, s := range airlockServices(p) {
		if name == "migrate" {
			continue
		}
		v, ok := env(s, "AIRLOCK_SERVICE_TOKEN")
		require.True(t, ok && v != "", name)
		if token == "" {
			token = v
		}
		require.Equal(t, token, v, name)
	}
}

func TestComposeIsolation(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, composeFile, "otel")
	// The model key reaches only the generator.
	for name, s := range p.Services {
		_, ok := env(s, "XAI_API_KEY")
		require.Equal(t, name == "generator", ok, "%s: XAI_API_KEY", name)
	}
	// The executor is only on internal networks and shares none with postgres
	// or the generator; it reaches nothing outside.
	ex := p.Services["executor"]
	require.NotEmpty(t, ex.Networks)
	for n := range ex.Networks {
		require.True(t, p.Networks[n].Internal, "executor is on non-internal network %s", n)
	}
	for name, s := range p.Services {
		if name == "executor" || name == "orchestrator" {
			continue
		}
		require.False(t, shareNetwork(ex, s), "executor shares a network with %s", name)
	}
	// The executor gets what bubblewrap needs and nothing more.
	for _, opt := range []string{"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined", "no-new-privileges:true"} {
		require.Contains(t, ex.SecurityOpt, opt)
	}
	require.Empty(t, ex.CapAdd)
	// Postgres and the services' own networks are internal; only the
	// orchestrator's published port and the generator's egress are not.
	for _, n := range []string{"backend", "sandbox", "db"} {
		require.True(t, p.Networks[n].Internal, n)
	}
	for name, s := range airlockServices(p) {
		for n := range s.Networks {
			if !p.Networks[n].Internal {
				require.Contains(t, []string{"orchestrator/frontend", "generator/egress"}, name+"/"+n)
			}
		}
	}
}

func shareNetwork(a, b types.ServiceConfig) bool {
	for n := range a.Networks {
		if _, ok := b.Networks[n]; ok {
			return true
		}
	}
	return false
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestComposePolicyAndPrices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, composeFile)
	mounts := func(s types.ServiceConfig) map[string]string {
		out := map[string]string{}
		for _, v := range s.Volumes {
			out[v.Target] = v.Source
		}
		return out
	}
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	for name, s := range airlockServices(p) {
		if name == "migrate" {
			continue
		}
		prices, ok := env(s, "AIRLOCK_PRICES")
		require.True(t, ok, name)
		require.Equal(t, filepath.Join(root, "deploy/k8s/base/config/prices.yaml"), mounts(s)[prices], "%s: the price table", name)
	}
	pol := p.Services["policy"]
	dir, ok := env(pol, "AIRLOCK_POLICY_DIR")
	require.True(t, ok)
	require.Equal(t, filepath.Join(root, "policies"), mounts(pol)[dir])
}

// TestComposeExecutorTmpIsExecutable: Docker mounts a tmpfs noexec unless
// told otherwise, and the executor runs its sandbox helper from /tmp.
func TestComposeExecutorTmpIsExecutable(t *testing.T) {
	t.Parallel()
	ex := loadCompose(t, composeFile).Services["executor"]
	var found bool
	for _, m := range ex.Tmpfs {
		path, opts, _ := strings.Cut(m, ":")
		if path == "/tmp" {
			found = true
			require.Contains(t, strings.Split(opts, ","), "exec", "the executor's /tmp must be mounted exec")
		}
	}
	require.True(t, found, "the executor has no /tmp tmpfs")
}
