package sandbox

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const hostSecretEnv = "AIRLOCK_TEST_HOST_SECRET"

func TestMain(m *testing.M) {
	RunHelper()
	// A variable the sandbox must never see.
	os.Setenv(hostSecretEnv, "sk-host-secret-0123456789")
	goleak.VerifyTestMain(m)
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// setup returns a Runner for one test; poolSize 0 means cold only.
func setup(t *testing.T, poolSize int, mod ...func(*Config)) *Runner {
	t.Helper()
	cfg := Config{PoolSize: poolSize, Log: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
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
