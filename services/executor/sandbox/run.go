package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// run releases the sandbox with spec, watches it until it ends, collects
// the result and destroys the sandbox.
func (inst *instance) run(ctx context.Context, spec Spec) (*Result, error) {
	defer inst.cleanup()
	if err := inst.release(spec); err != nil {
		return nil, err
	}
	lim := spec.Limits
	start := time.Now()
	cpuStart := inst.cg.cpuTime()

	var (
		killMu     sync.Mutex
		killReason Reason
		killMsg    string
	)
	killFor := func(reason Reason, msg string) {
		killMu.Lock()
		if killReason == 0 {
			killReason, killMsg = reason, msg
		}
		killMu.Unlock()
		inst.kill()
	}

	var wg sync.WaitGroup
	var out, errb capture
	wg.Add(2)
	go func() {
		defer wg.Done()
		out.read(inst.stdout, lim.MaxStdoutBytes, Stdout, spec.OnOutput, func() {
			killFor(OutputLimit, fmt.Sprintf("stdout passed its cap of %d bytes", lim.MaxStdoutBytes))
		})
	}()
	go func() {
		defer wg.Done()
		errb.read(inst.stderr, lim.MaxStderrBytes, Stderr, spec.OnOutput, func() {
			killFor(OutputLimit, fmt.Sprintf("stderr passed its cap of %d bytes", lim.MaxStderrBytes))
		})
	}()

	timer := time.NewTimer(lim.Timeout)
	defer timer.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-inst.done:
			break wait
		case <-timer.C:
			killFor(Timeout, fmt.Sprintf("wall-clock limit of %s passed", lim.Timeout))
		case <-ctx.Done():
			killFor(Killed, "cancelled: "+ctx.Err().Error())
		case <-tick.C:
			// CPU time across every process of the run, which per-process
			// RLIMIT_CPU cannot see.
			if cpuStart >= 0 {
				if used := inst.cg.cpuTime() - cpuStart; used > lim.CPUTime+100*time.Millisecond {
					killFor(CPULimit, fmt.Sprintf("CPU-time limit of %s passed", lim.CPUTime))
				}
			}
		}
	}
	wall := time.Since(start)
	// Everything in the pid namespace dies with bwrap; wait for that, and
	// sweep the cgroup, so the output pipes reach EOF.
	inst.reap()
	readersDone := make(chan struct{})
	go func() { wg.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(2 * time.Second):
		inst.stdout.Close()
		inst.stderr.Close()
		<-readersDone
	}

	res := &Result{Stdout: out.buf, Stderr: errb.buf, StdoutTruncated: out.truncated, StderrTruncated: errb.truncated,
		WallTime: wall, Warm: inst.warm, SandboxID: inst.id, HostUID: inst.uid}
	if res.HostUID < 0 {
		res.HostUID = os.Getuid()
	}
	st, stErr := readStatus(inst.status)
	res.CPUTime = time.Duration(st.UserUS+st.SysUS) * time.Microsecond
	if inst.warm && cpuStart > 0 {
		// A warm sandbox's imports before release are not the run's.
		res.CPUTime = max(0, res.CPUTime-cpuStart)
	}
	if cpuStart >= 0 {
		// Where the cgroup accounts CPU itself (v2, working v1 cpuacct),
		// it also counts processes the code started and did not wait for.
		if c := inst.cg.cpuTime() - cpuStart; c > res.CPUTime {
			res.CPUTime = c
		}
	}
	res.MaxRSSBytes = st.MaxRSSKB * 1024
	if !inst.warm {
		res.MaxRSSBytes = max(res.MaxRSSBytes, inst.cg.peakMemory())
	}
	if st.Signal != 0 {
		res.Signal = unix.SignalName(syscall.Signal(st.Signal))
	}
	ooms := inst.cg.oomKills()

	killMu.Lock()
	kr, km := killReason, killMsg
	killMu.Unlock()
	switch {
	case kr == Timeout || kr == OutputLimit || kr == CPULimit:
		res.Reason, res.Message = kr, km
	case ooms > 0:
		res.Reason = MemoryLimit
		res.Message = fmt.Sprintf("memory limit of %d bytes passed (the kernel's OOM killer ended %d process(es))", lim.MemoryBytes, ooms)
	case kr == Killed:
		res.Reason, res.Message = kr, km
	case stErr != nil:
		res.Reason = Killed
		res.Message = "the sandbox ended without a status: " + stErr.Error() + tail(errb.buf)
	case st.Error != "":
		return nil, fmt.Errorf("%w: sandbox init: %s", ErrUnavailable, st.Error)
	case st.Signal == int(syscall.SIGXCPU) ||
		(st.Signal == int(syscall.SIGKILL) && res.CPUTime >= lim.CPUTime):
		res.Reason, res.Message = CPULimit, fmt.Sprintf("CPU-time limit of %s passed", lim.CPUTime)
	case inst.cg == nil && st.Exited && st.ExitCode != 0 && strings.Contains(string(errb.buf), "MemoryError"):
		res.Reason, res.ExitCode = MemoryLimit, st.ExitCode
		res.Message = fmt.Sprintf("memory limit of %d bytes passed (RLIMIT_AS fallback: MemoryError)", lim.MemoryBytes)
	case st.Signal != 0:
		res.Reason = Killed
		res.Message = "killed by signal " + res.Signal
		if st.Signal == int(syscall.SIGSYS) {
			res.Message += " (a forbidden system call: seccomp)"
		}
	default:
		res.Reason, res.ExitCode = Exited, st.ExitCode
		res.Message = fmt.Sprintf("exited with code %d", st.ExitCode)
	}

	if inst.mounted && res.Reason != OutputLimit {
		// A full output tmpfs means the code hit max_output_bytes (ENOSPC),
		// or max_output_files (no inodes left).
		var fs unix.Statfs_t
		if err := unix.Statfs(inst.outDir, &fs); err == nil && (fs.Bavail == 0 || fs.Ffree == 0) {
			what := fmt.Sprintf("the output directory is full (max_output_bytes %d)", lim.MaxOutputBytes)
			if fs.Ffree == 0 {
				what = fmt.Sprintf("the output directory ran out of entries (max_output_files %d)", lim.MaxOutputFiles)
			}
			if res.Reason == Exited {
				res.Reason, res.Message = OutputLimit, "output files: "+what
			} else {
				res.Message += "; output files: " + what
			}
		}
	}
	if res.Reason == Killed && st.Signal == int(syscall.SIGXFSZ) {
		res.Reason = OutputLimit
		res.Message = fmt.Sprintf("a file passed max_output_bytes (%d)", lim.MaxOutputBytes)
	}
	files, ferr := collectOutputs(inst.outDir, lim.MaxOutputFiles, lim.MaxOutputBytes)
	res.Files = files
	if ferr != nil {
		var capErr *OutputCapError
		if errors.As(ferr, &capErr) {
			if res.Reason == Exited {
				res.Reason = OutputLimit
				res.Message = capErr.Error()
			} else {
				res.Message += "; " + capErr.Error()
			}
		} else {
			return nil, fmt.Errorf("collecting output files: %w", ferr)
		}
	}
	inst.r.log.Debug("sandbox run ended", "sandbox", inst.id, "run_id", spec.RunID, "warm", inst.warm,
		"reason", res.Reason.String(), "wall", wall, "cpu", res.CPUTime, "landlock", st.Landlock)
	return res, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 300 {
		s = s[len(s)-300:]
	}
	return ": " + s
}

func readStatus(f *os.File) (initStatus, error) {
	var st initStatus
	_ = f.SetReadDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if len(b) == 0 {
		if err == nil {
			err = errors.New("no status")
		}
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("bad status: %w", err)
	}
	return st, nil
}

// capture keeps a stream up to its cap.
type capture struct {
	buf       []byte
	truncated bool
}

// read copies r into c.buf up to limit bytes, passing chunks to onOutput;
// past the cap it calls over once and then drains r until EOF.
func (c *capture) read(r io.Reader, limit int64, s Stream, onOutput func(Stream, []byte), over func()) {
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		if n > 0 && !c.truncated {
			data := chunk[:n]
			if room := limit - int64(len(c.buf)); int64(n) > room {
				data = data[:room]
				c.truncated = true
			}
			c.buf = append(c.buf, data...)
			if onOutput != nil && len(data) > 0 {
				onOutput(s, append([]byte(nil), data...))
			}
			if c.truncated {
				over()
			}
		}
		if err != nil {
			return
		}
	}
}
