package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ownerFile names the process that owns a work directory: "PID STARTTIME".
const ownerFile = "owner"

// processIdentity returns "PID STARTTIME" for pid, or "" when it is gone.
func processIdentity(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + " " + f[19] // field 22: start time
}

// sweepStale removes what executors that died without closing (SIGKILL,
// a crash) left in workDir: output mounts, directories and their cgroups.
// Their sandboxes died with them (--die-with-parent and the launch
// helper's parent-death signal).
func (r *Runner) sweepStale() {
	entries, err := os.ReadDir(r.cfg.WorkDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(r.cfg.WorkDir, name)
		if !e.IsDir() || !strings.HasPrefix(name, "airlock-executor-") || dir == r.dir {
			continue
		}
		// No owner file (being created, or not ours to judge): leave it.
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil || len(strings.Fields(string(owner))) != 2 {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(string(owner))[0])
		if processIdentity(pid) == strings.TrimSpace(string(owner)) {
			continue // its owner is alive
		}
		insts, _ := os.ReadDir(dir)
		for _, in := range insts {
			if in.IsDir() {
				_ = unix.Unmount(filepath.Join(dir, in.Name(), "out"), unix.MNT_DETACH)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("sandbox: removing a dead executor's work dir", "dir", dir, "error", err)
			continue
		}
		for _, parent := range r.cgroups.parentsOf(name) {
			subs, _ := os.ReadDir(parent)
			for _, s := range subs {
				if s.IsDir() {
					cg := &runCgroup{version: r.cgroups.version, dirs: map[string]string{"x": filepath.Join(parent, s.Name())}}
					cg.kill(time.Now().Add(time.Second))
					_ = os.Remove(filepath.Join(parent, s.Name()))
				}
			}
			_ = os.Remove(parent)
		}
		r.log.Info("sandbox: removed a dead executor's leftovers", "dir", dir)
	}
}
