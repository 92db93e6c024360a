package sandbox

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExitedWithCode(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	res := run(t, r, Spec{Code: "print('hello')\nraise SystemExit(3)\n"})
	require.Equal(t, Exited, res.Reason, res.Message)
	require.Equal(t, 3, res.ExitCode)
	require.Equal(t, "hello\n", string(res.Stdout))
	require.False(t, res.Warm)

	res = run(t, r, Spec{Code: "x = 1 / 0\n"})
	require.Equal(t, Exited, res.Reason)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, string(res.Stderr), "ZeroDivisionError")
	require.Contains(t, string(res.Stderr), `File "/data/code/main.py", line 1`)
	require.Contains(t, string(res.Stderr), "x = 1 / 0", "tracebacks show the source line")
}

// Python starts with -S (no .pth file or sitecustomize runs): the bootstrap
// gives the code the same sys.path as "python3 -I" and the exit and quit
// builtins, so exit(n) works as usual.
func TestPythonSiteSetup(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	want, err := exec.Command("/usr/bin/python3", "-I", "-c", "import sys; print(sys.path)").Output()
	require.NoError(t, err)
	res := run(t, r, Spec{Code: "import sys\nprint(sys.path)\nprint(sys.flags.no_site, sys.flags.isolated)\nquit.__call__\nexit(4)\n", AllowedImports: []string{"sys"}})
	require.Equal(t, Exited, res.Reason, "%s %s", res.Message, res.Stderr)
	require.Equal(t, 4, res.ExitCode, "%s", res.Stderr)
	require.Equal(t, string(want)+"1 1\n", string(res.Stdout))
}

func TestTimeoutKillsTheWholeTree(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	res := run(t, r, Spec{
		Code:   "import time\nprint('started', flush=True)\ntime.sleep(600)\n",
		Limits: limits(func(l *Limits) { l.Timeout = 500 * time.Millisecond }),
	})
	require.Equal(t, Timeout, res.Reason, res.Message)
	require.Equal(t, "started\n", string(res.Stdout), "output before the kill is kept")
}

// A daemonised grandchild (double fork, new session) must die with the run,
// both when the run times out and when its parent exits at once.
func TestDaemonisedGrandchildDies(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	daemon := `import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            time.sleep(0.05)
    os._exit(0)
os.waitpid(pid, 0)
print("daemon started", flush=True)
`
	for _, tc := range []struct {
		name, tail string
		want       Reason
		timeout    time.Duration
	}{
		{"parent-times-out", "time.sleep(600)\n", Timeout, time.Second},
		{"parent-exits", "", Exited, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, r, Spec{Code: daemon + tc.tail, NoGuard: true,
				Limits: limits(func(l *Limits) { l.Timeout = tc.timeout })})
			require.Equal(t, tc.want, res.Reason, "%s %s", res.Message, res.Stderr)
			require.Equal(t, "daemon started\n", string(res.Stdout))
			// run() has checked no process of the sandbox is left.
		})
	}
}

func TestCPULimit(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	res := run(t, r, Spec{
		Code:   "while True:\n    pass\n",
		Limits: limits(func(l *Limits) { l.CPUTime = time.Second; l.Timeout = 30 * time.Second }),
	})
	require.Equal(t, CPULimit, res.Reason, res.Message)
	require.GreaterOrEqual(t, res.CPUTime, time.Second)
}

// Two processes each under the per-process RLIMIT_CPU still hit the run's
// CPU limit: the cgroup counts them together.
func TestCPULimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	require.True(t, r.CgroupsEnabled(), "this host has cgroups; the fallback is tested on its own")
	res := run(t, r, Spec{
		Code:    "import os\nos.fork()\nos.fork()\nwhile True:\n    pass\n",
		NoGuard: true,
		Limits:  limits(func(l *Limits) { l.CPUTime = 2 * time.Second; l.Timeout = 30 * time.Second }),
	})
	require.Equal(t, CPULimit, res.Reason, res.Message)
	// Each process alone stays under 2s of CPU when the run is stopped.
	require.Less(t, res.CPUTime, 6*time.Second, "the run's total, not each process's, is limited")
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	bomb := "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n"
	t.Run("cgroup", func(t *testing.T) {
		t.Parallel()
		r := setup(t, 0)
		require.True(t, r.CgroupsEnabled())
		res := run(t, r, Spec{Code: bomb, Limits: limits(func(l *Limits) { l.MemoryBytes = 64 << 20 })})
		require.Equal(t, MemoryLimit, res.Reason, res.Message)
		require.Contains(t, res.Message, "OOM")
	})
	t.Run("rlimit-fallback", func(t *testing.T) {
		t.Parallel()
		r := setup(t, 0, func(c *Config) { c.NoCgroups = true })
		require.False(t, r.CgroupsEnabled())
		require.Contains(t, r.Details(), "rlimits only")
		res := run(t, r, Spec{Code: bomb, Limits: limits(func(l *Limits) { l.MemoryBytes = 256 << 20 })})
		require.Equal(t, MemoryLimit, res.Reason, "%s %s", res.Message, res.Stderr)
	})
}

// 1 GB of stdout is cut at the cap, quickly, keeping what came before it.
func TestStdoutCap(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	res := run(t, r, Spec{
		Code:   "line = 'x' * 1023\nfor _ in range(1024 * 1024):\n    print(line)\nprint('finished')\n",
		Limits: limits(func(l *Limits) { l.MaxStdoutBytes = 1 << 20 }),
	})
	require.Equal(t, OutputLimit, res.Reason, res.Message)
	require.True(t, res.StdoutTruncated)
	require.Len(t, res.Stdout, 1<<20)
	require.Equal(t, bytes.Repeat([]byte(strings.Repeat("x", 1023)+"\n"), 1024), res.Stdout)
	require.Contains(t, res.Message, "stdout passed its cap", "the cap stops the run; it is not read to the end")
}

func TestStderrCap(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	res := run(t, r, Spec{
		Code:   "print('before', flush=True)\nraise ValueError('e' * 5_000_000)\n",
		Limits: limits(func(l *Limits) { l.MaxStderrBytes = 4096 }),
	})
	require.Equal(t, OutputLimit, res.Reason, res.Message)
	require.True(t, res.StderrTruncated)
	require.Len(t, res.Stderr, 4096)
	require.Equal(t, "before\n", string(res.Stdout))
}

func TestOutputFileCaps(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	t.Run("count", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, Spec{
			Code:   "for i in range(10):\n    open(f'f{i:02}.txt', 'w').write(str(i))\n",
			Limits: limits(func(l *Limits) { l.MaxOutputFiles = 4 }),
		})
		require.Equal(t, OutputLimit, res.Reason, "%s %s", res.Message, res.Stderr)
		require.Contains(t, res.Message, "max_output_files")
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, Spec{
			Code:   "open('big.bin', 'wb').write(b'0' * (4 << 20))\n",
			Limits: limits(func(l *Limits) { l.MaxOutputBytes = 1 << 20 }),
		})
		require.Equal(t, OutputLimit, res.Reason, "%s %s", res.Message, res.Stderr)
		require.Contains(t, res.Message, "max_output_bytes")
	})
	t.Run("within", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, Spec{Code: "import os\nos.makedirs('sub', exist_ok=True)\nopen('sub/a.txt', 'w').write('A')\nopen('b.txt', 'w').write('BB')\n",
			AllowedImports: []string{"os"}})
		require.Equal(t, Exited, res.Reason, "%s %s", res.Message, res.Stderr)
		require.Equal(t, 0, res.ExitCode)
		require.Len(t, res.Files, 2)
		require.Equal(t, "b.txt", res.Files[0].Name)
		require.Equal(t, "BB", string(res.Files[0].Content))
		require.Equal(t, "sub/a.txt", res.Files[1].Name)
	})
}

// A syscall through the i386 ABI (int 0x80) kills the process: KILLED by
// SIGSYS. So does one through the x32 ABI.
func TestForeignABISyscallKilled(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	int80 := `import ctypes, mmap
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))  # mov eax, 20 (i386 getpid); int 0x80; ret
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
print("calling", flush=True)
print("returned", ctypes.CFUNCTYPE(ctypes.c_int)(addr)())
`
	res := run(t, r, Spec{Code: int80, NoGuard: true})
	require.Equal(t, Killed, res.Reason, "%s %s", res.Message, res.Stderr)
	require.Equal(t, "SIGSYS", res.Signal)
	require.Equal(t, "calling\n", string(res.Stdout))

	x32 := "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('calling', flush=True)\nprint(libc.syscall(0x40000000 | 39))\n"
	res = run(t, r, Spec{Code: x32, NoGuard: true})
	require.Equal(t, Killed, res.Reason, "%s %s", res.Message, res.Stderr)
	require.Equal(t, "SIGSYS", res.Signal)
}

// Any other death by signal is KILLED, with the signal named.
func TestKilledBySignal(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	res := run(t, r, Spec{Code: "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", NoGuard: true})
	require.Equal(t, Killed, res.Reason, res.Message)
	require.Equal(t, "SIGSEGV", res.Signal)
}

func TestResolveLimits(t *testing.T) {
	t.Parallel()
	def, maxl := DefaultLimits(), DefaultMaxLimits()
	got, err := Resolve(Limits{}, def, maxl)
	require.NoError(t, err)
	require.Equal(t, def, got)
	got, err = Resolve(Limits{MemoryBytes: 100 << 20}, def, maxl)
	require.NoError(t, err)
	require.Equal(t, int64(100<<20), got.MemoryBytes)
	require.Equal(t, def.Timeout, got.Timeout)

	for _, tc := range []struct {
		req   Limits
		field string
	}{
		{Limits{MemoryBytes: maxl.MemoryBytes + 1}, "memory_bytes"},
		{Limits{Timeout: maxl.Timeout + time.Second}, "timeout"},
		{Limits{CPUTime: -time.Second}, "cpu_time"},
		{Limits{MaxProcesses: maxl.MaxProcesses + 1}, "max_processes"},
		{Limits{MaxStdoutBytes: -1}, "max_stdout_bytes"},
		{Limits{MaxOpenFiles: 3}, "max_open_files"},
		{Limits{MaxOutputFiles: maxl.MaxOutputFiles * 2}, "max_output_files"},
	} {
		_, err := Resolve(tc.req, def, maxl)
		var le *LimitError
		require.ErrorAs(t, err, &le)
		require.Equal(t, tc.field, le.Field)
		require.ErrorIs(t, err, ErrLimit)
	}
}
