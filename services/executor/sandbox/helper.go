package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	"golang.org/x/sys/unix"
)

// The helper binary (airlock-sandbox, or without it the binary that made the
// Runner) serves as two small helpers, chosen by argv[1]:
//
//   - launch runs on the host as root: it joins the run's cgroups (in a
//     network namespace of its own, made when the executor forks it), tells
//     the executor so on its control socket, and waits there for what to
//     run. Then it sets the rlimits, drops to the sandbox's unprivileged uid
//     and gid and execs bwrap. Doing this in a process of its own means bwrap
//     and everything it starts is inside the cgroups and limits from its
//     first instruction. Joining a cgroup can cost a few milliseconds (on
//     cgroup v1 the kernel waits for an RCU grace period), which is why a
//     cold sandbox can take a launch helper started ahead of time (spares).
//   - init runs inside the sandbox (as the command bwrap starts, under the
//     seccomp filter): it makes itself undumpable, applies Landlock, starts
//     Python and reports Python's exact wait status (exit code or signal) and
//     rusage on a pipe, which bwrap's own exit status cannot tell apart.
const (
	launchArg   = "__airlock-sandbox-launch"
	initArg     = "__airlock-sandbox-init"
	protocolArg = "__airlock-sandbox-protocol"
)

// HelperName is the dedicated helper binary (cmd/airlock-sandbox), which a
// Runner looks for next to its own executable.
const HelperName = "airlock-sandbox"

// helperProtocol names what the Runner and its helpers exchange: arguments,
// descriptors and messages. Change it with any of them, so a helper binary
// from another build is refused instead of misread.
const helperProtocol = "airlock-sandbox/2 (launch: control socket on fd 6)"

// launchCtlFD is the launch helper's control socket.
const launchCtlFD = 6

// launchReady is the byte the launch helper sends once in its cgroups.
const launchReady = 'J'

// launchPrep is what the launch helper gets in argv[2].
type launchPrep struct {
	CgroupProcs []string `json:"cgroup_procs"`
}

// launchConfig is what the launch helper then reads from its control
// socket: how to start the sandbox.
type launchConfig struct {
	Rlimits map[string]uint64 `json:"rlimits"`
	UID     int               `json:"uid"` // -1 keeps the current credentials
	Nice    int               `json:"nice"`
	GID     int               `json:"gid"`
	Bwrap   string            `json:"bwrap"`
	Args    []string          `json:"args"`
}

// initConfig is what the init helper gets in argv[2].
type initConfig struct {
	Python   string   `json:"python"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	StatusFD int      `json:"status_fd"`
	Landlock bool     `json:"landlock"`
	ROPaths  []string `json:"ro_paths"`
	RWPaths  []string `json:"rw_paths"`
}

// initStatus is what init reports about Python.
type initStatus struct {
	Exited   bool   `json:"exited"`
	ExitCode int    `json:"exit_code"`
	Signal   int    `json:"signal"`
	UserUS   int64  `json:"user_us"`
	SysUS    int64  `json:"sys_us"`
	MaxRSSKB int64  `json:"max_rss_kb"`
	Landlock string `json:"landlock"`
	Error    string `json:"error,omitempty"`
}

var rlimitNames = map[string]int{
	"cpu": unix.RLIMIT_CPU, "nofile": unix.RLIMIT_NOFILE, "fsize": unix.RLIMIT_FSIZE,
	"core": unix.RLIMIT_CORE, "as": unix.RLIMIT_AS, "nproc": unix.RLIMIT_NPROC,
}

// RunHelper runs a sandbox helper when os.Args names one and then exits; it
// returns at once otherwise. cmd/airlock-sandbox is nothing else. A binary
// that creates a Runner without an airlock-sandbox next to it (or a
// Config.HelperPath) must call it first thing in main (or TestMain): the
// sandbox then re-executes that binary.
func RunHelper() {
	if len(os.Args) == 2 && os.Args[1] == protocolArg {
		fmt.Println(helperProtocol)
		os.Exit(0)
	}
	if len(os.Args) < 3 {
		return
	}
	switch os.Args[1] {
	case launchArg:
		err := launch(os.Args[2])
		fmt.Fprintf(os.Stderr, "airlock sandbox launch: %v\n", err)
		os.Exit(125)
	case initArg:
		os.Exit(runInit(os.Args[2]))
	}
}

func launch(arg string) error {
	// bwrap must not inherit the control socket.
	unix.CloseOnExec(launchCtlFD)
	ctl := os.NewFile(launchCtlFD, "control")
	var p launchPrep
	if err := json.Unmarshal([]byte(arg), &p); err != nil {
		return err
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, f := range p.CgroupProcs {
		if err := os.WriteFile(f, pid, 0); err != nil {
			return fmt.Errorf("joining cgroup: %w", err)
		}
	}
	if _, err := ctl.Write([]byte{launchReady}); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	var c launchConfig
	if err := json.NewDecoder(ctl).Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			os.Exit(0) // a spare the executor dropped unused
		}
		return fmt.Errorf("reading the launch config: %w", err)
	}
	ctl.Close()
	for name, v := range c.Rlimits {
		res, ok := rlimitNames[name]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", name)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("setting rlimit %s=%d: %w", name, v, err)
		}
	}
	if c.Nice != 0 {
		// A warm sandbox starts at low priority, so filling the pool does
		// not slow the runs in progress; release raises it.
		_ = unix.Setpriority(unix.PRIO_PROCESS, 0, c.Nice)
	}
	if c.UID >= 0 {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("clearing groups: %w", err)
		}
		if err := syscall.Setresgid(c.GID, c.GID, c.GID); err != nil {
			return fmt.Errorf("setting gid: %w", err)
		}
		if err := syscall.Setresuid(c.UID, c.UID, c.UID); err != nil {
			return fmt.Errorf("setting uid: %w", err)
		}
	}
	// Changing credentials clears the parent-death signal: set it again so
	// the sandbox dies with the executor.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return err
	}
	if os.Getppid() == 1 {
		return fmt.Errorf("executor already gone")
	}
	return syscall.Exec(c.Bwrap, append([]string{c.Bwrap}, c.Args...), []string{})
}

func runInit(arg string) int {
	var c initConfig
	status := initStatus{}
	report := func() int {
		f := os.NewFile(uintptr(c.StatusFD), "status")
		if f != nil {
			_ = json.NewEncoder(f).Encode(status)
		}
		return 0
	}
	if err := json.Unmarshal([]byte(arg), &c); err != nil {
		status.Error = err.Error()
		return report()
	}
	// Undumpable: the code, running as the same uid, cannot open our
	// /proc/PID/fd entries to forge the status.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	closeExtraFDs(c.StatusFD)
	if c.Landlock {
		rules := []landlock.Rule{
			landlock.RODirs(c.ROPaths...).IgnoreIfMissing(),
			landlock.RWDirs(c.RWPaths...),
			landlock.RWFiles("/dev/null", "/dev/zero", "/dev/full").IgnoreIfMissing(),
			landlock.ROFiles("/dev/random", "/dev/urandom").IgnoreIfMissing(),
		}
		if err := landlock.V7.BestEffort().Restrict(rules...); err != nil {
			status.Landlock = "failed: " + err.Error()
		} else if v, err := landlockABI(); err == nil && v > 0 {
			status.Landlock = "abi " + strconv.Itoa(v)
		} else {
			status.Landlock = "unavailable"
		}
	} else {
		status.Landlock = "off"
	}
	cmd := exec.Command(c.Python, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = "/data/out"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		status.Error = "starting python: " + err.Error()
		return report()
	}
	_ = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		status.UserUS = ru.Utime.Usec + ru.Utime.Sec*1e6
		status.SysUS = ru.Stime.Usec + ru.Stime.Sec*1e6
		status.MaxRSSKB = ru.Maxrss
	}
	if ws.Signaled() {
		status.Signal = int(ws.Signal())
	} else {
		status.Exited = true
		status.ExitCode = ws.ExitStatus()
	}
	return report()
}

// closeExtraFDs marks every descriptor above stderr, except keep,
// close-on-exec, so Python inherits only stdin, stdout and stderr.
func closeExtraFDs(keep int) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 || fd == keep {
			continue
		}
		unix.CloseOnExec(fd)
	}
	unix.CloseOnExec(keep)
}

func landlockABI() (int, error) {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1) // LANDLOCK_CREATE_RULESET_VERSION
	if errno != 0 {
		return 0, errno
	}
	return int(v), nil
}
