package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every attack runs twice: with the runtime guard (the normal case) and
// without it (NoGuard), to prove the OS layers hold on their own.
func bothLayers(t *testing.T, fn func(t *testing.T, noGuard bool)) {
	for _, noGuard := range []bool{false, true} {
		name := "guard"
		if noGuard {
			name = "os-only"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, noGuard)
		})
	}
}

var attackImports = []string{"os", "sys", "time", "json", "io", "pathlib", "shutil"}

func TestAttackNetworkEgress(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	bothLayers(t, func(t *testing.T, noGuard bool) {
		code := fmt.Sprintf(`import socket
for family in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):
    try:
        s = socket.socket(family, socket.SOCK_STREAM if family in (socket.AF_INET, socket.AF_INET6) else socket.SOCK_RAW)
        print("socket", int(family), "created")
        s.settimeout(2)
        s.connect(("127.0.0.1", %d))
        print("CONNECTED")
    except OSError as e:
        print("socket", int(family), "refused", e.errno)
`, port)
		imports := attackImports
		if noGuard {
			imports = append(imports, "socket")
		}
		res := run(t, r, Spec{Code: code, NoGuard: noGuard, AllowedImports: imports})
		out := string(res.Stdout) + string(res.Stderr)
		require.NotContains(t, out, "CONNECTED")
		require.NotContains(t, out, "created")
		if noGuard {
			require.Equal(t, 0, res.ExitCode, out)
			require.Equal(t, 4, strings.Count(out, "refused 1"), "every non-unix socket fails with EPERM: %s", out)
		} else {
			require.Contains(t, out, "import of 'socket' is not allowed")
		}
	})
	select {
	case <-accepted:
		t.Fatal("the sandbox reached a host listener")
	case <-time.After(100 * time.Millisecond):
	}
}

// Every sandbox has a network namespace of its own, with nothing but a
// loopback device: as root it is made when the launch helper is forked
// (ahead of the run for a spare), not by bwrap.
func TestOwnNetworkNamespace(t *testing.T) {
	t.Parallel()
	r := setup(t, 1)
	host, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	code := `import os
print(os.readlink("/proc/self/ns/net"))
print(sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))
`
	seen := map[string]bool{}
	for _, cold := range []bool{true, true, false} {
		if !cold {
			waitPool(t, r, 1)
		}
		res := run(t, r, Spec{Code: code, Cold: cold, AllowedImports: []string{"os"}})
		require.Equal(t, !cold, res.Warm)
		lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
		require.Len(t, lines, 2, "%s %s", res.Stdout, res.Stderr)
		require.True(t, strings.HasPrefix(lines[0], "net:["), lines[0])
		require.NotEqual(t, host, lines[0], "the host's network namespace")
		require.False(t, seen[lines[0]], "a namespace of its own per run")
		seen[lines[0]] = true
		require.Equal(t, "['lo']", lines[1])
	}
}

func TestAttackReadHostFile(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("TOP-SECRET"), 0o644))
	bothLayers(t, func(t *testing.T, noGuard bool) {
		code := fmt.Sprintf(`import os
for p in [%q, "/etc/shadow", "/etc/passwd", "/root/.bashrc", "/proc/1/root/etc/hostname", %q]:
    try:
        print(p, "READ", open(p).read()[:40])
    except OSError as e:
        print(p, "denied", type(e).__name__)
try:
    print("root", sorted(os.listdir("/")))
except OSError as e:
    print("root listing denied")
`, secret, filepath.Join(r.dir, "bootstrap.py"))
		res := run(t, r, Spec{Code: code, NoGuard: noGuard, AllowedImports: attackImports})
		out := string(res.Stdout)
		require.Equal(t, 0, res.ExitCode, "%s %s", out, res.Stderr)
		require.NotContains(t, out, "TOP-SECRET")
		require.NotContains(t, out, "READ")
		require.Equal(t, 7, strings.Count(out, "denied"), out)
		require.Contains(t, out, "root listing denied", "Landlock grants no access to / itself")
	})
}

func TestAttackHostEnvironment(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	require.NotEmpty(t, os.Getenv(hostSecretEnv))
	bothLayers(t, func(t *testing.T, noGuard bool) {
		code := `import os
print(sorted(os.environ))
for p in ("/proc/self/environ", "/proc/1/environ", "/proc/2/environ"):
    try:
        print(p, open(p, "rb").read())
    except OSError as e:
        print(p, "denied", e.errno)
`
		res := run(t, r, Spec{Code: code, NoGuard: noGuard, AllowedImports: attackImports})
		out := string(res.Stdout)
		require.Equal(t, 0, res.ExitCode, "%s %s", out, res.Stderr)
		require.NotContains(t, out, "sk-host-secret")
		require.NotContains(t, out, hostSecretEnv)
		require.Contains(t, out, "['HOME', 'LANG', 'LC_ALL', 'MKL_NUM_THREADS', 'MPLCONFIGDIR', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'TMPDIR']")
	})
}

func TestAttackWriteOutsideOut(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	bothLayers(t, func(t *testing.T, noGuard bool) {
		code := `import os
for p in ["/usr/lib/evil.py", "/etc/evil", "/evil", "/data/evil", "/airlock/evil", "/data/in/evil.csv", "/proc/evil"]:
    try:
        with open(p, "w") as f:
            f.write("x")
        print(p, "WROTE")
    except OSError as e:
        print(p, "denied")
open("/tmp/scratch", "w").write("ok")
open("/data/out/result.txt", "w").write(open("/tmp/scratch").read())
print("done")
`
		res := run(t, r, Spec{Code: code, NoGuard: noGuard, AllowedImports: attackImports})
		out := string(res.Stdout)
		require.Equal(t, 0, res.ExitCode, "%s %s", out, res.Stderr)
		require.NotContains(t, out, "WROTE")
		require.Equal(t, 7, strings.Count(out, "denied"), out)
		require.Contains(t, out, "done")
		require.Len(t, res.Files, 1)
		require.Equal(t, "result.txt", res.Files[0].Name)
		require.Equal(t, "ok", string(res.Files[0].Content))
	})
}

func TestAttackChangeInput(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	orig := []byte("a,b\n1,2\n")
	sum := sha256.Sum256(orig)
	bothLayers(t, func(t *testing.T, noGuard bool) {
		code := `import os, hashlib
p = "/data/in/data.csv"
attempts = [
    lambda: open(p, "w").write("evil"),
    lambda: open(p, "a").write("evil"),
    lambda: open(p, "r+").write("evil"),
    lambda: os.chmod(p, 0o666),
    lambda: os.rename(p, "/data/in/x.csv"),
    lambda: os.remove(p),
    lambda: os.truncate(p, 0),
    lambda: os.symlink("/etc/passwd", "/data/in/link"),
]
for i, a in enumerate(attempts):
    try:
        a()
        print(i, "CHANGED")
    except OSError:
        print(i, "denied")
print("sha", hashlib.sha256(open(p, "rb").read()).hexdigest())
`
		res := run(t, r, Spec{Code: code, NoGuard: noGuard, AllowedImports: append(attackImports, "hashlib"),
			Inputs: []Input{{Name: "data.csv", Content: orig}}})
		out := string(res.Stdout)
		require.Equal(t, 0, res.ExitCode, "%s %s", out, res.Stderr)
		require.NotContains(t, out, "CHANGED")
		require.Equal(t, 8, strings.Count(out, "denied"), out)
		require.Contains(t, out, "sha "+hex.EncodeToString(sum[:]))
	})
}

// Links in /data/out are never followed when the results are collected.
func TestAttackLinksInOut(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	secret := filepath.Join(t.TempDir(), "host-secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("HOST-SECRET"), 0o644))
	code := fmt.Sprintf(`import os
os.symlink(%q, "/data/out/leak.txt")
os.symlink("/etc/shadow", "/data/out/shadow.txt")
os.symlink("/", "/data/out/root")
os.makedirs("/data/out/d", exist_ok=True)
os.symlink(%q, "/data/out/d/leak2.txt")
for src in ("/data/in/in.txt", "/etc/ld.so.cache", "/tmp"):
    try:
        os.link(src, "/data/out/hard-" + os.path.basename(src))
        print("LINKED", src)
    except OSError as e:
        print("link denied", e.errno)
open("/data/out/a.txt", "w").write("A")
os.link("/data/out/a.txt", "/data/out/b.txt")
os.mkfifo("/data/out/fifo")
open("/data/out/ok.txt", "w").write("fine")
`, secret, filepath.Dir(secret))
	res := run(t, r, Spec{Code: code, NoGuard: true, Inputs: []Input{{Name: "in.txt", Content: []byte("input")}}})
	require.Equal(t, 0, res.ExitCode, "%s %s", res.Stdout, res.Stderr)
	require.NotContains(t, string(res.Stdout), "LINKED")
	var names []string
	for _, f := range res.Files {
		names = append(names, f.Name)
		require.NotContains(t, string(f.Content), "HOST-SECRET")
	}
	require.Equal(t, []string{"ok.txt"}, names, "only the plain regular file comes back")
}

func TestAttackForkBomb(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	code := `import os, time
n = 0
while True:
    try:
        os.fork()
        n += 1
    except OSError:
        time.sleep(0.01)
`
	res := run(t, r, Spec{Code: code, NoGuard: true,
		Limits: limits(func(l *Limits) { l.Timeout = 2 * time.Second; l.MaxProcesses = 32 })})
	require.Equal(t, Timeout, res.Reason, "%s %s", res.Message, res.Stderr)
	// run() proved nothing is left; the runner still works.
	res = run(t, r, Spec{Code: "print('alive')\n"})
	require.Equal(t, "alive\n", string(res.Stdout))

	// With the guard, fork itself is refused.
	res = run(t, r, Spec{Code: "import os\nwhile True:\n    os.fork()\n", AllowedImports: attackImports})
	require.Equal(t, Exited, res.Reason, res.Message)
	require.Contains(t, string(res.Stderr), "os.fork is not allowed")
}

// Denied syscalls fail with EPERM, never with a silent success.
func TestSeccompDeniesWithEPERM(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	code := `import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
calls = {
    "ptrace": (101, 16, 1, 0, 0),        # PTRACE_ATTACH pid 1
    "mount": (165, 0, 0, 0, 0),
    "umount2": (166, 0, 0),
    "unshare": (272, 0x10000000),         # CLONE_NEWUSER
    "setns": (308, 0, 0),
    "keyctl": (250, 0, 0),
    "bpf": (321, 0, 0, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "userfaultfd": (323, 0),
    "kexec_load": (246, 0, 0, 0, 0),
    "init_module": (175, 0, 0, 0),
    "reboot": (169, 0, 0, 0, 0),
    "swapon": (167, 0, 0),
    "clone_newns": (56, 0x00020000 | 17, 0, 0, 0, 0),
    "socket_inet": (41, 2, 1, 0),
    "io_uring_setup": (425, 1, 0),
}
for name, args in calls.items():
    ctypes.set_errno(0)
    rc = libc.syscall(*[ctypes.c_long(a) for a in args])
    print(name, rc, ctypes.get_errno())
ctypes.set_errno(0)
print("unix", libc.syscall(ctypes.c_long(41), ctypes.c_long(1), ctypes.c_long(1), ctypes.c_long(0)) >= 0)
`
	res := run(t, r, Spec{Code: code, NoGuard: true})
	out := string(res.Stdout)
	require.Equal(t, 0, res.ExitCode, "%s %s", out, res.Stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 17, out)
	for _, l := range lines[:16] {
		require.True(t, strings.HasSuffix(l, " -1 1"), "want -1 EPERM: %s", l)
	}
	require.Equal(t, "unix True", lines[16])
}

// The code runs as an unprivileged uid inside a user namespace, mapped to a
// host uid of its own (never root), with no capabilities, no_new_privs and
// the seccomp filter in force.
func TestUnprivilegedIdentity(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	code := `import os
print("ids", os.getuid(), os.geteuid(), os.getgid(), os.getegid())
for line in open("/proc/self/status"):
    k = line.split(":")[0]
    if k in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
        print(k, line.split()[1])
print("hostname", os.uname().nodename)
`
	res := run(t, r, Spec{Code: code, AllowedImports: []string{"os"}})
	out := string(res.Stdout)
	require.Equal(t, 0, res.ExitCode, "%s %s", out, res.Stderr)
	require.Contains(t, out, "ids 1000 1000 1000 1000\n")
	for _, want := range []string{"CapEff 0000000000000000", "CapPrm 0000000000000000", "CapBnd 0000000000000000",
		"CapAmb 0000000000000000", "NoNewPrivs 1", "Seccomp 2", "hostname sandbox"} {
		require.Contains(t, out, want+"\n")
	}
	require.GreaterOrEqual(t, res.HostUID, 1_000_000, "a host uid of its own, not root")
}

// Without cgroups the fork bomb is held by RLIMIT_NPROC (each sandbox has a
// host uid of its own, so the count is its own).
func TestAttackForkBombRlimitFallback(t *testing.T) {
	t.Parallel()
	r := setup(t, 0, func(c *Config) { c.NoCgroups = true })
	code := "import os, time\nn = 0\nwhile True:\n    try:\n        os.fork()\n        n += 1\n    except OSError:\n        time.sleep(0.01)\n"
	res := run(t, r, Spec{Code: code, NoGuard: true,
		Limits: limits(func(l *Limits) { l.Timeout = 2 * time.Second; l.MaxProcesses = 32 })})
	require.Equal(t, Timeout, res.Reason, "%s %s", res.Message, res.Stderr)
	res = run(t, r, Spec{Code: "print('alive')\n"})
	require.Equal(t, "alive\n", string(res.Stdout))
}
