package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const hostSecretEnv = "AIRLOCK_TEST_HOST_SECRET"

// testHelper is cmd/airlock-sandbox, built for these tests: the helper
// binary the executor ships and runs.
var testHelper string

func TestMain(m *testing.M) {
	RunHelper() // for the tests of the fallback to the test binary itself
	dir, err := os.MkdirTemp("", "airlock-sandbox-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testHelper = filepath.Join(dir, HelperName)
	// go test puts its own go first on the PATH. Built as make build and
	// the image build it: without cgo.
	build := exec.Command("go", "build", "-o", testHelper, "github.com/airlockhq/airlock/cmd/airlock-sandbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building cmd/airlock-sandbox: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// A variable the sandbox must never see.
	os.Setenv(hostSecretEnv, "sk-host-secret-0123456789")
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// setup returns a Runner for one test, with the executor's default spares;
// poolSize 0 means cold only.
func setup(t *testing.T, poolSize int, mod ...func(*Config)) *Runner {
	t.Helper()
	cfg := Config{PoolSize: poolSize, Spares: DefaultSpares, HelperPath: testHelper,
		Log: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	for _, f := range mod {
		f(&cfg)
	}
	r, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, r.Check())
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	if poolSize > 0 {
		waitPool(t, r, poolSize)
	}
	return r
}

func waitPool(t *testing.T, r *Runner, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return r.PoolReady() >= n }, 60*time.Second, 10*time.Millisecond, "warm pool never filled")
}

// limits returns the default limits with mod applied.
func limits(mod func(*Limits)) Limits {
	l := DefaultLimits()
	l.Timeout = 20 * time.Second
	if mod != nil {
		mod(&l)
	}
	return l
}

func run(t *testing.T, r *Runner, spec Spec) *Result {
	t.Helper()
	if spec.Limits == (Limits{}) {
		spec.Limits = limits(nil)
	}
	if spec.AllowedImports == nil {
		spec.AllowedImports = []string{"pandas", "numpy", "openpyxl", "math", "json", "time", "io"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := r.Run(ctx, spec)
	require.NoError(t, err)
	requireNothingLeft(t, res)
	return res
}

// requireNothingLeft proves no process of the sandbox outlived the run: every
// sandbox runs as a host uid of its own, so no process may still have it.
// Right away none may be alive; a zombie bwrap left to the host's init to
// reap must be gone within seconds.
func requireNothingLeft(t *testing.T, res *Result) {
	t.Helper()
	if res.HostUID == os.Getuid() {
		t.Fatalf("sandbox ran as the test's own uid; these tests need root")
	}
	procs := sandboxProcs(t, res.HostUID)
	for _, p := range procs {
		if !strings.Contains(p, "State:\tZ") {
			t.Fatalf("sandbox %s (uid %d) left a live process:\n%s", res.SandboxID, res.HostUID, p)
		}
	}
	require.Eventually(t, func() bool { return len(sandboxProcs(t, res.HostUID)) == 0 }, 5*time.Second, 10*time.Millisecond,
		"sandbox %s (uid %d) left zombies nobody reaps", res.SandboxID, res.HostUID)
}

// sandboxProcs returns /proc/PID/status of every process with host uid.
func sandboxProcs(t *testing.T, uid int) []string {
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	want := strconv.Itoa(uid)
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == want {
				cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				head := strings.SplitN(string(b), "\n", 8)
				out = append(out, "pid "+e.Name()+" cmdline "+strings.ReplaceAll(string(cmd), "\x00", " ")+"\n"+strings.Join(head[:min(7, len(head))], "\n"))
			}
		}
	}
	return out
}

// waitExecutable waits until the file just written at path can be executed.
// A process forked meanwhile by a parallel test holds the write descriptor
// until it execs, and until then exec fails with ETXTBSY ("text file busy").
func waitExecutable(t *testing.T, path string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = exec.Command(path, protocolArg).Run(); err == nil || !errors.Is(err, syscall.ETXTBSY) {
			return
		}
	}
	t.Fatalf("%s stayed busy: %v", path, err)
}

// The Runner finds its helper: a configured one must be of this build; else
// airlock-sandbox next to the executable when it is of this build; else the
// executable itself. Each serves a run.
func TestHelperDiscovery(t *testing.T) {
	t.Parallel()
	// Logged, so a helper passed over says why.
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	dir := t.TempDir()
	self := filepath.Join(dir, "airlock")
	require.NoError(t, os.WriteFile(self, []byte("x"), 0o755))

	got, err := findHelper("", self, log)
	require.NoError(t, err)
	require.Equal(t, self, got, "no airlock-sandbox next to it")

	require.NoError(t, copyFile(testHelper, filepath.Join(dir, HelperName), 0o755))
	waitExecutable(t, filepath.Join(dir, HelperName))
	got, err = findHelper("", self, log)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, HelperName), got)

	// A helper of another build is refused: configured, an error; next to
	// the executable, passed over.
	stale := filepath.Join(t.TempDir(), HelperName)
	require.NoError(t, os.WriteFile(stale, []byte("#!/bin/sh\necho airlock-sandbox/1\n"), 0o755))
	waitExecutable(t, stale)
	_, err = findHelper(stale, self, log)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "another build")
	_, err = New(Config{HelperPath: stale, Log: log})
	require.ErrorContains(t, err, "another build")
	other := t.TempDir()
	require.NoError(t, os.Rename(stale, filepath.Join(other, HelperName)))
	got, err = findHelper("", filepath.Join(other, "airlock"), log)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(other, "airlock"), got)

	// The test binary itself (it calls RunHelper) and the built helper
	// both run code.
	for _, helper := range []string{"", testHelper} {
		r := setup(t, 0, func(c *Config) { c.HelperPath = helper })
		res := run(t, r, Spec{Code: "print('ok')\n"})
		require.Equal(t, "ok\n", string(res.Stdout), "%s", res.Stderr)
	}
}
