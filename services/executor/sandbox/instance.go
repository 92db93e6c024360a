package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errNotReleased means a warm sandbox could not take the run; the run has
// not started and may go to a cold sandbox.
var errNotReleased = errors.New("sandbox not released")

// warmNice is the priority of a warm sandbox until it is released.
const warmNice = 10

// helperTimeout bounds the wait for a launch helper to join its cgroups.
const helperTimeout = 10 * time.Second

// helperProcs is the allowance of processes and threads for bwrap and the
// init helper, on top of the code's own max_processes.
const helperProcs = 16

// instance is one sandbox: started (cold: just now; warm: ahead of time),
// released with one run's code and inputs, then destroyed.
type instance struct {
	r        *Runner
	id       string
	uid      int
	dir      string
	inDir    string
	outDir   string
	codeDir  string
	mounted  bool
	cg       *runCgroup
	cmd      *exec.Cmd
	stdin    *os.File
	stdout   *os.File
	stderr   *os.File
	status   *os.File
	warm     bool
	done     chan struct{}
	cleaned  bool
	childPID chan int // host pid of the sandbox's pid 1, 0 if unknown
	reapOnce sync.Once
	// Until launch: the launch helper's control socket, whether it has
	// joined the cgroups, and the limits the sandbox was prepared with.
	ctl        *os.File
	joined     bool
	prepLimits Limits
}

// start prepares a sandbox and launches it at once. lim sizes it: a warm
// sandbox gets the maxima and is narrowed to the run's limits at release.
func (r *Runner) start(warm bool, lim Limits) (*instance, error) {
	inst, err := r.prepare(lim)
	if err != nil {
		return nil, err
	}
	if err := inst.launch(warm, lim); err != nil {
		inst.cleanup()
		return nil, err
	}
	return inst, nil
}

// prepare makes a sandbox's directories and cgroup (sized by lim) and starts
// its launch helper, which joins the cgroup and waits for launch. As root
// the helper is forked into a new, empty network namespace, which the
// sandbox then runs in (bwrap's --unshare-net would make the same
// namespace later, on the run's time).
func (r *Runner) prepare(lim Limits) (inst *instance, err error) {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	inst = &instance{r: r, id: hex.EncodeToString(idb[:]), uid: r.allocUID(), prepLimits: lim, done: make(chan struct{})}
	defer func() {
		if err != nil {
			inst.cleanup()
			inst = nil
		}
	}()
	inst.dir = filepath.Join(r.dir, inst.id)
	inst.inDir = filepath.Join(inst.dir, "in")
	inst.outDir = filepath.Join(inst.dir, "out")
	inst.codeDir = filepath.Join(inst.dir, "code")
	for _, d := range []string{inst.dir, inst.inDir, inst.outDir, inst.codeDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if !r.root {
		if err := os.Chmod(inst.outDir, 0o700); err != nil {
			return nil, err
		}
	}
	if inst.cg, err = r.cgroups.newRun(inst.id, lim.MemoryBytes, lim.MaxProcesses+helperProcs); err != nil {
		return nil, err
	}
	arg, err := json.Marshal(launchPrep{CgroupProcs: inst.cg.procsFiles()})
	if err != nil {
		return nil, err
	}
	var pipes [12]*os.File
	defer func() {
		for _, f := range pipes {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i := 0; i < len(pipes); i += 2 {
		if pipes[i], pipes[i+1], err = os.Pipe(); err != nil {
			return nil, err
		}
	}
	ctl, helperCtl, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer helperCtl.Close()
	inst.ctl = ctl
	// 0,1: stdin; 2,3: stdout; 4,5: stderr; 6,7: seccomp; 8,9: status; 10,11: bwrap info.
	if _, err := pipes[7].Write(r.seccomp); err != nil {
		return nil, err
	}
	pipes[7].Close()
	pipes[7] = nil
	cmd := exec.Command(r.helper, launchArg, string(arg))
	cmd.Env = []string{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pipes[0], pipes[3], pipes[5]
	// fd 3: seccomp, fd 4: status, fd 5: info, fd 6: control.
	cmd.ExtraFiles = []*os.File{pipes[6], pipes[9], pipes[11], helperCtl}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if r.root {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: starting the sandbox: %v", ErrUnavailable, err)
	}
	inst.cmd = cmd
	inst.stdin, inst.stdout, inst.stderr, inst.status = pipes[1], pipes[2], pipes[4], pipes[8]
	info := pipes[10]
	pipes[1], pipes[2], pipes[4], pipes[8], pipes[10] = nil, nil, nil, nil, nil
	inst.childPID = make(chan int, 1)
	go func() {
		// bwrap names the host pid of the sandbox's pid 1, so cleanup can
		// wait for the pid namespace to be gone.
		defer info.Close()
		var v struct {
			ChildPID int `json:"child-pid"`
		}
		_ = json.NewDecoder(info).Decode(&v)
		inst.childPID <- v.ChildPID
	}()
	go func() {
		_ = cmd.Wait()
		close(inst.done)
	}()
	return inst, nil
}

// socketPair returns the two ends of a stream socket pair: ours (with
// deadlines) and the helper's.
func socketPair() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control"), nil
}

// awaitHelper waits until the launch helper is in the sandbox's cgroups.
func (inst *instance) awaitHelper(timeout time.Duration) error {
	if inst.joined {
		return nil
	}
	_ = inst.ctl.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	n, err := inst.ctl.Read(b[:])
	_ = inst.ctl.SetReadDeadline(time.Time{})
	if n != 1 || b[0] != launchReady {
		msg := tail(drainStderr(inst.stderr))
		return fmt.Errorf("%w: the sandbox's launch helper failed: %v%s", ErrUnavailable, err, msg)
	}
	inst.joined = true
	return nil
}

// drainStderr returns what is already in the stderr pipe, without waiting.
func drainStderr(f *os.File) []byte {
	_ = f.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer f.SetReadDeadline(time.Time{})
	var out []byte
	buf := make([]byte, 4096)
	for len(out) < 1<<16 {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	return out
}

// launch hands a prepared sandbox its bwrap command line and its run's
// limits: the output tmpfs's size, the cgroup's memory and process limits
// (when they differ from the ones it was prepared with) and the rlimits.
func (inst *instance) launch(warm bool, lim Limits) error {
	r := inst.r
	inst.warm = warm
	if r.root {
		// /data/out is a tmpfs of its own: its size and inode count are the
		// output caps, and noexec keeps anything written there from running.
		opts := fmt.Sprintf("size=%d,nr_inodes=%d,mode=0700,uid=%d,gid=%d",
			lim.MaxOutputBytes, 2*lim.MaxOutputFiles+16, inst.uid, inst.uid)
		if err := unix.Mount("tmpfs", inst.outDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
			return fmt.Errorf("mounting the output tmpfs: %w", err)
		}
		inst.mounted = true
	}
	if lim != inst.prepLimits {
		if err := inst.cg.setLimits(lim.MemoryBytes, lim.MaxProcesses+helperProcs); err != nil {
			return err
		}
	}
	cpu := uint64(lim.CPUTime.Seconds()) + 2
	if warm {
		cpu += 10 // the imports before the run; the bootstrap narrows it at release
	}
	rl := map[string]uint64{
		"core": 0, "cpu": cpu, "nofile": uint64(max(lim.MaxOpenFiles, 64)),
		"fsize": uint64(lim.MaxOutputBytes), "nproc": uint64(lim.MaxProcesses + helperProcs),
	}
	// Without a cgroup, memory is bounded by RLIMIT_AS, which the bootstrap
	// sets on Python itself before any code runs (the Go init helper
	// reserves more address space than a small limit allows).
	nice := 0
	if warm {
		nice = warmNice
	}
	lc := launchConfig{Rlimits: rl, UID: inst.uid, GID: inst.uid, Nice: nice,
		Bwrap: r.cfg.Bwrap, Args: r.bwrapArgs(inst, warm)}
	if err := inst.awaitHelper(helperTimeout); err != nil {
		return err
	}
	// The config fits the socket's buffer: this does not block.
	err := json.NewEncoder(inst.ctl).Encode(lc)
	if cerr := inst.ctl.Close(); err == nil {
		err = cerr
	}
	inst.ctl = nil
	if err != nil {
		return fmt.Errorf("%w: handing the sandbox its command: %v", ErrUnavailable, err)
	}
	return nil
}

func (r *Runner) bwrapArgs(inst *instance, warm bool) []string {
	mode := "cold"
	if warm {
		mode = "warm"
	}
	ic := initConfig{
		Python: r.cfg.Python,
		Args:   []string{"-I", "-S", "-B", "/airlock/bootstrap.py", mode},
		Env: []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
			"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1", "MPLCONFIGDIR=/tmp"},
		StatusFD: 4,
		Landlock: !r.cfg.NoLandlock,
		ROPaths:  []string{"/usr", "/etc", "/airlock", "/data/in", "/data/code", "/proc", "/dev"},
		RWPaths:  []string{"/data/out", "/tmp"},
	}
	icj, _ := json.Marshal(ic)
	a := []string{"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup"}
	if !r.root {
		// As root the launch helper was forked into a new network
		// namespace (see prepare), owned by the host's user namespace, so
		// the sandbox has no capability in it at all.
		a = append(a, "--unshare-net")
	}
	a = append(a,
		"--uid", "1000", "--gid", "1000", "--hostname", "sandbox",
		"--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
		"--ro-bind", "/usr", "/usr",
		"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		"--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
	)
	for _, f := range []string{"/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/mime.types"} {
		a = append(a, "--ro-bind-try", f, f)
	}
	a = append(a,
		"--proc", "/proc", "--dev", "/dev",
		"--size", strconv.FormatInt(r.cfg.TmpBytes, 10), "--tmpfs", "/tmp",
		"--dir", "/data",
		"--ro-bind", inst.inDir, "/data/in",
		"--ro-bind", inst.codeDir, "/data/code",
		"--bind", inst.outDir, "/data/out",
		"--ro-bind", r.bootstrap, "/airlock/bootstrap.py",
		"--ro-bind", r.helper, "/airlock/init",
		"--remount-ro", "/",
		"--chdir", "/data/out",
		"--seccomp", "3", "--info-fd", "5",
		"/airlock/init", initArg, string(icj),
	)
	return a
}

// waitReady reads the warm bootstrap's ready byte (sent once pandas, numpy
// and openpyxl are imported).
func (inst *instance) waitReady(timeout time.Duration) error {
	_ = inst.stdout.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	n, err := inst.stdout.Read(b[:])
	_ = inst.stdout.SetReadDeadline(time.Time{})
	if err != nil || n != 1 || b[0] != 0 {
		return fmt.Errorf("warm sandbox not ready: %v", err)
	}
	// Whatever the imports wrote to stderr (a library's warning, say) is
	// already in the pipe: drop it, it is not the run's.
	_ = inst.stderr.SetReadDeadline(time.Now().Add(time.Millisecond))
	drain := make([]byte, 4096)
	for {
		if n, err := inst.stderr.Read(drain); err != nil || n == 0 {
			break
		}
	}
	_ = inst.stderr.SetReadDeadline(time.Time{})
	return nil
}

// release hands the sandbox its inputs, limits and code.
func (inst *instance) release(spec Spec) error {
	for _, in := range spec.Inputs {
		f, err := os.OpenFile(filepath.Join(inst.inDir, in.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o444)
		if err != nil {
			return fmt.Errorf("writing input %s: %w", in.Name, err)
		}
		_, err = f.Write(in.Content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing input %s: %w", in.Name, err)
		}
	}
	lim := spec.Limits
	if inst.warm {
		if err := inst.cg.setLimits(lim.MemoryBytes, lim.MaxProcesses+helperProcs); err != nil {
			return fmt.Errorf("%w: %v", errNotReleased, err)
		}
		inst.renice(0)
		if inst.mounted {
			opts := fmt.Sprintf("size=%d,nr_inodes=%d", lim.MaxOutputBytes, 2*lim.MaxOutputFiles+16)
			if err := unix.Mount("tmpfs", inst.outDir, "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
				return fmt.Errorf("%w: resizing the output tmpfs: %v", errNotReleased, err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(inst.codeDir, "main.py"), []byte(spec.Code), 0o444); err != nil {
		return fmt.Errorf("writing the code: %w", err)
	}
	as := int64(0)
	if inst.cg == nil {
		as = lim.MemoryBytes // the rlimit fallback
	}
	guard := 1
	if spec.NoGuard {
		guard = 0
	}
	for _, m := range spec.AllowedImports {
		if !isModuleName(m) {
			return fmt.Errorf("allowed import %q is not a module name", m)
		}
	}
	hdr := fmt.Sprintf("guard=%d cpu=%d nofile=%d fsize=%d as=%d imports=%s\n", guard,
		int64((lim.CPUTime+time.Second-1)/time.Second), lim.MaxOpenFiles, lim.MaxOutputBytes, as,
		strings.Join(spec.AllowedImports, ","))
	// One short line: it fits the pipe buffer, so this never blocks.
	_, err := inst.stdin.WriteString(hdr)
	inst.stdin.Close()
	if err != nil {
		return fmt.Errorf("%w: the sandbox is gone: %v", errNotReleased, err)
	}
	return nil
}

// kill ends every process of the sandbox: SIGKILL to bwrap tears down its
// pid namespace; the cgroup sweep catches anything else.
func (inst *instance) kill() {
	if inst.cmd != nil && inst.cmd.Process != nil {
		_ = inst.cmd.Process.Kill()
	}
	inst.cg.kill(time.Time{}) // one sweep; reap() waits for the end
}

// reap waits, once bwrap has exited, for the pid namespace to be gone and
// then for the cgroup to be empty, killing anything left in it.
func (inst *instance) reap() {
	inst.reapOnce.Do(func() {
		inst.waitPidNamespace()
		inst.cg.kill(time.Now().Add(2 * time.Second))
	})
}

// cleanup kills what is left and removes every trace of the sandbox.
func (inst *instance) cleanup() {
	if inst.cleaned {
		return
	}
	inst.cleaned = true
	if inst.ctl != nil {
		inst.ctl.Close() // a helper still waiting exits
		inst.ctl = nil
	}
	if inst.cmd != nil {
		inst.kill()
		select {
		case <-inst.done:
		case <-time.After(5 * time.Second):
			inst.r.log.Error("sandbox did not exit after SIGKILL", "sandbox", inst.id)
		}
		inst.reap()
	}
	for _, f := range []*os.File{inst.stdin, inst.stdout, inst.stderr, inst.status} {
		if f != nil {
			f.Close()
		}
	}
	// Nothing of the sandbox runs any more: the rest is bookkeeping, done
	// off the caller's time (Runner.Close waits for it).
	inst.r.cleanups.Add(1)
	go func() {
		defer inst.r.cleanups.Done()
		inst.removeTraces()
	}()
}

func (inst *instance) removeTraces() {
	inst.cg.remove()
	if inst.mounted {
		if err := unix.Unmount(inst.outDir, unix.MNT_DETACH); err != nil {
			inst.r.log.Warn("unmounting sandbox output", "sandbox", inst.id, "error", err)
		}
	}
	if inst.dir != "" {
		_ = os.RemoveAll(inst.dir)
	}
	if inst.uid >= 0 {
		inst.r.freeUID(inst.uid)
	}
}

// waitPidNamespace waits until the sandbox's pid 1 has finished exiting,
// which the kernel completes only once every process of the namespace is
// gone, and reaps it: the executor is a child subreaper, so when bwrap's
// monitor exits first its orphaned pid 1 comes to us rather than to the
// host's init, which may take its time.
func (inst *instance) waitPidNamespace() {
	var pid int
	select {
	case pid = <-inst.childPID:
	case <-time.After(time.Second):
	}
	if pid <= 0 {
		return
	}
	// A pidfd turns readable when the process exits, so the wait below
	// ends at once rather than at the next poll.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		defer unix.Close(pidfd)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG|unix.WALL, nil)
		if wpid == pid {
			return
		}
		if err != nil && err != unix.EINTR {
			// Not our child: watch it through /proc instead.
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				return
			}
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X' {
				return
			}
			if inst.uid >= 0 && !procHasUID(pid, inst.uid) {
				return // the pid was reused
			}
		}
		if pidfd >= 0 {
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 10)
		} else {
			time.Sleep(500 * time.Microsecond)
		}
	}
	inst.r.log.Error("sandbox pid namespace still alive", "sandbox", inst.id, "pid", pid)
}

func procHasUID(pid, uid int) bool {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		return false
	}
	return int(st.Uid) == uid
}

// isModuleName reports whether m is a plain top-level module name.
func isModuleName(m string) bool {
	if m == "" {
		return false
	}
	for i, c := range m {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// renice sets the priority of every process of the sandbox (raising it
// needs root, which is also what made the cgroup to list them).
func (inst *instance) renice(nice int) {
	for _, p := range inst.cg.pids() {
		// Threads have their own nice value: set each one's.
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		if err != nil {
			continue
		}
		for _, tk := range tasks {
			if tid, err := strconv.Atoi(tk.Name()); err == nil {
				_ = unix.Setpriority(unix.PRIO_PROCESS, tid, nice)
			}
		}
	}
}
