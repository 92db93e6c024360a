package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// buildAirlock builds the root module's binary (with -race when this test
// binary has it, so the build reuses what `make test` compiled and links)
// and, next to it as in the image, its sandbox helper airlock-sandbox.
func buildAirlock(t *testing.T) string {
	t.Helper()
	// Outside t.TempDir (0700), so the pods' non-root uid can run it.
	dir := worldDir(t, "airlock-bin-", 0o755)
	out := filepath.Join(dir, "airlock")
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
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/airlock")...)
	cmd.Dir = repoRoot
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	cmd = exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "airlock-sandbox"), "./cmd/airlock-sandbox")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err = cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	return out
}

// worldDir makes a directory under the system temp dir with mode perm,
// removed when the test ends: what a pod's non-root user can reach.
func worldDir(t *testing.T, prefix string, perm os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, perm))
	return dir
}

// asPodUser runs cmd as the pod's runAsUser and runAsGroup, as the kubelet
// would; it needs root (CI runs as root), and otherwise runs it as is.
func asPodUser(t *testing.T, cmd *exec.Cmd, spec corev1.PodSpec) {
	t.Helper()
	sc := spec.SecurityContext
	require.NotNil(t, sc.RunAsUser)
	require.NotNil(t, sc.RunAsGroup)
	if os.Geteuid() != 0 {
		t.Logf("not root: running %s as uid %d instead of the pod's %d", cmd.Args[1], os.Geteuid(), *sc.RunAsUser)
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(*sc.RunAsUser), Gid: uint32(*sc.RunAsGroup)}}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// podProcess is one pod's container running as a local process.
type podProcess struct {
	name  string
	cmd   *exec.Cmd
	log   string
	done  chan struct{} // closed when the process has exited
	err   error         // its exit status, once done is closed
	addr  string        // where its gRPC port listens here
	early bool          // it exited before the test stopped it (already reported)
}

func exitedEarly(p *podProcess) bool { return p.early }

// kubelet turns rendered pod specs into local processes: each Service name
// and port becomes a loopback address, each volume a directory (ConfigMap
// volumes filled with the ConfigMap's files), the Secret a fixed set of
// values, and every path a container sees the matching directory here.
type kubelet struct {
	t       *testing.T
	bin     string
	o       *objects
	secret  map[string]string
	podAddr map[string]string // Deployment name -> its gRPC address here
	svcAddr map[string]string // "service:port" -> address here
}

func (k *kubelet) env(name string, spec corev1.PodSpec, c corev1.Container, grpcAddr string) []string {
	t := k.t
	vols := map[string]string{}
	for _, v := range spec.Volumes {
		// Like the kubelet's: world-writable (an emptyDir is 0777), directly
		// under the system temp dir, so the sandbox's own uids reach it.
		dir := worldDir(t, "airlock-k8s-"+v.Name+"-", 0o1777)
		if v.ConfigMap != nil {
			cm, ok := k.o.configMaps[v.ConfigMap.Name]
			require.True(t, ok, "%s: volume %s: no ConfigMap %s", name, v.Name, v.ConfigMap.Name)
			mode := os.FileMode(0o644) // the kubelet's default for ConfigMap files
			if v.ConfigMap.DefaultMode != nil {
				mode = os.FileMode(*v.ConfigMap.DefaultMode)
			}
			for file, data := range cm.Data {
				require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(data), 0o600))
				require.NoError(t, os.Chmod(filepath.Join(dir, file), mode))
			}
		}
		vols[v.Name] = dir
	}
	path := func(p string) string {
		for _, m := range c.VolumeMounts {
			if p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/") {
				return vols[m.Name] + strings.TrimPrefix(p, m.MountPath)
			}
		}
		t.Fatalf("%s/%s: %s is on no mounted volume", name, c.Name, p)
		return ""
	}
	vars := map[string]string{}
	for _, ef := range c.EnvFrom {
		for key, v := range k.o.configMaps[ef.ConfigMapRef.Name].Data {
			vars[key] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil:
			ref := e.ValueFrom.SecretKeyRef
			require.NotNil(t, ref)
			v, ok := k.secret[ref.Key]
			require.True(t, ok, "%s: secret key %s", name, ref.Key)
			vars[e.Name] = v
		default:
			vars[e.Name] = e.Value
		}
	}
	for key, v := range vars {
		switch {
		case key == "AIRLOCK_METRICS_ADDR":
			vars[key] = freeAddr(t)
		case strings.HasSuffix(key, "_ADDR"):
			local, ok := k.svcAddr[v]
			require.True(t, ok, "%s: %s=%s is no Service's address", name, key, v)
			vars[key] = local
		case strings.HasPrefix(v, "/"):
			vars[key] = path(v)
		}
	}
	// The container's gRPC port: serve's default --addr, 0.0.0.0:50051 in a pod.
	vars["AIRLOCK_ADDR"] = grpcAddr
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+worldDir(t, "airlock-home-", 0o1777))
	for key, v := range vars {
		env = append(env, key+"="+v)
	}
	return env
}

func (k *kubelet) run(name string, spec corev1.PodSpec, c corev1.Container, grpcAddr string) *exec.Cmd {
	require.Empty(k.t, c.Command, "%s: the image's entrypoint is airlock", name)
	cmd := exec.Command(k.bin, c.Args...)
	cmd.Env = k.env(name, spec, c, grpcAddr)
	cmd.Dir = worldDir(k.t, "airlock-cwd-", 0o1777)
	asPodUser(k.t, cmd, spec)
	return cmd
}

func (k *kubelet) start(d *appsv1.Deployment) *podProcess {
	t := k.t
	spec := d.Spec.Template.Spec
	for _, ic := range spec.InitContainers {
		out, err := k.run(d.Name+"/"+ic.Name, spec, ic, "").CombinedOutput()
		require.NoError(t, err, "%s init container %s: %s", d.Name, ic.Name, out)
	}
	p := &podProcess{name: d.Name, addr: k.podAddr[d.Name], log: filepath.Join(t.TempDir(), d.Name+".log")}
	p.cmd = k.run(d.Name, spec, spec.Containers[0], p.addr)
	logf, err := os.Create(p.log)
	require.NoError(t, err)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
	p.done = make(chan struct{})
	go func() { p.err = p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		select {
		case <-p.done:
			if p.err != nil && !exitedEarly(p) {
				t.Errorf("%s exited with %v after SIGTERM:\n%s", p.name, p.err, tailFile(p.log))
			}
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("%s outlived its %s grace period", p.name, grace)
		}
	})
	return p
}

// ready runs the readiness probe: the gRPC health check on the probe's port.
func (k *kubelet) ready(p *podProcess, probe *corev1.Probe) bool {
	require.NotNil(k.t, probe.GRPC)
	require.Equal(k.t, int32(50051), probe.GRPC.Port)
	args := []string{"health", "--addr", p.addr, "--timeout", strconv.Itoa(int(probe.TimeoutSeconds)) + "s"}
	if probe.GRPC.Service != nil {
		args = append(args, "--service", *probe.GRPC.Service)
	}
	return exec.Command(k.bin, args...).Run() == nil
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// TestKustomizeTreeRunsThePipeline runs the rendered Deployments as real
// processes of the airlock binary with exactly their args, user (runAsUser,
// so the executor sandboxes as a non-root user as in the image), environment
// (ConfigMaps and the Secret's keys), volumes and Service addresses, all
// started at once as a cluster would, against one shared database (SQLite
// here; docker-compose's twin test uses Postgres). The migration Job runs
// first and every init container before its pod; each pod must pass its
// readiness probe; then `airlock run` through the orchestrator's Service
// takes supplied code to SUCCEEDED.
func TestKustomizeTreeRunsThePipeline(t *testing.T) {
	t.Parallel()
	o := render(t, baseDir)
	bin := buildAirlock(t)
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	k := &kubelet{
		t: t, bin: bin, o: o,
		secret: map[string]string{
			"database-url":  "sqlite:" + filepath.Join(worldDir(t, "airlock-db-", 0o1777), "airlock.db"),
			"service-token": hex.EncodeToString(tok[:]),
			"xai-api-key":   "",
		},
		podAddr: map[string]string{}, svcAddr: map[string]string{},
	}
	for name := range o.deployments {
		k.podAddr[name] = freeAddr(t)
	}
	for _, s := range o.services {
		var target *appsv1.Deployment
		for _, d := range o.deployments {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				target = d
			}
		}
		require.NotNil(t, target, "Service %s selects no Deployment", s.Name)
		for _, p := range s.Spec.Ports {
			if p.Name == "grpc" {
				k.svcAddr[s.Name+":"+strconv.Itoa(int(p.Port))] = k.podAddr[target.Name]
			}
		}
	}

	// The migration Job, then every pod at once.
	require.Len(t, o.jobs, 1)
	job := o.jobs[0].Spec.Template.Spec
	out, err := k.run("job/"+o.jobs[0].Name, job, job.Containers[0], "").CombinedOutput()
	require.NoError(t, err, "migration Job: %s", out)
	pods := map[string]*podProcess{}
	for name, d := range o.deployments {
		pods[name] = k.start(d)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for name, p := range pods {
		probe := o.deployments[name].Spec.Template.Spec.Containers[0].ReadinessProbe
		for !k.ready(p, probe) {
			select {
			case <-p.done:
				p.early = true
				t.Fatalf("%s exited (%v):\n%s", name, p.err, tailFile(p.log))
			default:
			}
			require.True(t, time.Now().Before(deadline), "%s never ready:\n%s", name, tailFile(p.log))
			time.Sleep(200 * time.Millisecond)
		}
	}

	// An admin key, made in the database as the guide says, then a run
	// through the orchestrator's Service with the CLI.
	orch := k.svcAddr["airlock-orchestrator:50051"]
	require.NotEmpty(t, orch)
	keyCmd := exec.Command(bin, "keys", "create", "--tenant", "acme", "--subject", "ops", "--role", "admin",
		"--database-url", k.secret["database-url"])
	keyCmd.Dir = worldDir(t, "airlock-cwd-", 0o1777)
	asPodUser(t, keyCmd, job) // as `kubectl run` with the image would
	var stdout, stderr bytes.Buffer
	keyCmd.Stdout, keyCmd.Stderr = &stdout, &stderr
	require.NoError(t, keyCmd.Run(), "keys create: %s", stderr.String())
	token := strings.TrimSpace(stdout.String())
	dir := t.TempDir()
	code := filepath.Join(dir, "job.py")
	require.NoError(t, os.WriteFile(code, []byte("import os\nimport pandas as pd\nos.makedirs('/data/out', exist_ok=True)\n"+
		"pd.DataFrame({'n': [1, 2, 3]}).to_csv('/data/out/n.csv', index=False)\nprint('rows', 3)\n"), 0o600))
	// Pods start in no order, so the orchestrator may be ready before the
	// services it calls; a run that fails on a refused connection in those
	// first seconds is retried, as a client would.
	var last string
	for attempt := 0; attempt < 20; attempt++ {
		run := exec.Command(bin, "run", "--code", code, "--out", filepath.Join(dir, "out"))
		run.Env = append(os.Environ(), "AIRLOCK_ADDR="+orch, "AIRLOCK_TOKEN="+token)
		b, err := run.CombinedOutput()
		if err == nil {
			got, err := os.ReadFile(filepath.Join(dir, "out", "n.csv"))
			require.NoError(t, err, "airlock run wrote no output: %s", b)
			require.Equal(t, "n\n1\n2\n3\n", string(got))
			return
		}
		last = string(b)
		require.Contains(t, last, "connect", "airlock run failed:\n%s\norchestrator log:\n%s\nexecutor log:\n%s",
			last, tailFile(pods["airlock-orchestrator"].log), tailFile(pods["airlock-executor"].log))
		time.Sleep(time.Second)
	}
	t.Fatalf("airlock run never succeeded; last:\n%s", last)
}
