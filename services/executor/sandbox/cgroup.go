package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupVersion says how per-run cgroups are made on this host.
type cgroupVersion int

const (
	cgroupNone cgroupVersion = iota // rlimit fallback
	cgroupV1
	cgroupV2
)

func (v cgroupVersion) String() string {
	switch v {
	case cgroupV1:
		return "cgroup v1"
	case cgroupV2:
		return "cgroup v2"
	}
	return "none (rlimit fallback)"
}

// cgroupRoot is where this executor makes its per-run cgroups.
type cgroupRoot struct {
	version cgroupVersion
	// v1: the parent directory per controller; v2: "unified" only.
	parents map[string]string
	reason  string // why cgroups are not used, for cgroupNone
}

const cgroupMount = "/sys/fs/cgroup"

// detectCgroups finds a place for per-run cgroups: v2 when the unified
// hierarchy offers the memory and pids controllers, else v1 when the memory
// and pids hierarchies are mounted and writable, else none.
func detectCgroups(name string) *cgroupRoot {
	own, err := ownCgroups()
	if err != nil {
		return &cgroupRoot{reason: "reading /proc/self/cgroup: " + err.Error()}
	}
	var reasons []string
	if r, err := setupV2(own, name); err == nil {
		return r
	} else {
		reasons = append(reasons, "v2: "+err.Error())
	}
	if r, err := setupV1(own, name); err == nil {
		return r
	} else {
		reasons = append(reasons, "v1: "+err.Error())
	}
	return &cgroupRoot{reason: strings.Join(reasons, "; ")}
}

// ownCgroups maps a v1 controller (or "" for v2) to this process's cgroup path.
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

func setupV2(own map[string]string, name string) (*cgroupRoot, error) {
	mount := cgroupMount
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
		mount = filepath.Join(cgroupMount, "unified")
	}
	ctrls, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(strings.Fields(string(ctrls)), c) {
			return nil, fmt.Errorf("controller %s not available at %s", c, mount)
		}
	}
	parentOwn := filepath.Join(mount, own[""])
	// Delegate memory, pids and cpu to our subtree; fails when our cgroup
	// holds processes and is not the root (no internal processes rule).
	enable := "+memory +pids +cpu"
	if err := os.WriteFile(filepath.Join(parentOwn, "cgroup.subtree_control"), []byte(enable), 0); err != nil {
		if err2 := os.WriteFile(filepath.Join(parentOwn, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err2 != nil {
			return nil, fmt.Errorf("enabling controllers in %s: %w", parentOwn, err)
		}
	}
	dir := filepath.Join(parentOwn, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("enabling controllers in %s: %w", dir, err)
	}
	_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+cpu"), 0)
	return &cgroupRoot{version: cgroupV2, parents: map[string]string{"unified": dir}}, nil
}

func setupV1(own map[string]string, name string) (*cgroupRoot, error) {
	r := &cgroupRoot{version: cgroupV1, parents: map[string]string{}}
	for _, c := range []string{"memory", "pids", "cpuacct"} {
		mount := filepath.Join(cgroupMount, c)
		if _, err := os.Stat(filepath.Join(mount, "cgroup.procs")); err != nil {
			if c == "cpuacct" {
				continue // optional: CPU time then comes from rusage
			}
			return nil, fmt.Errorf("%s hierarchy not mounted", c)
		}
		dir := filepath.Join(mount, own[c], name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			if c == "cpuacct" {
				continue
			}
			return nil, err
		}
		r.parents[c] = dir
	}
	return r, nil
}

// parentsOf returns where a runner whose work dir is named name kept its
// per-run cgroups, under this process's cgroups.
func (r *cgroupRoot) parentsOf(name string) []string {
	var out []string
	for _, p := range r.parents {
		out = append(out, filepath.Join(filepath.Dir(p), name))
	}
	return out
}

// close removes the parent directories; they are empty when every run ended.
func (r *cgroupRoot) close() {
	for _, d := range r.parents {
		_ = os.Remove(d)
	}
}

// runCgroup is one sandbox's cgroup (one directory per v1 controller).
type runCgroup struct {
	version cgroupVersion
	dirs    map[string]string
}

// newRun makes a sandbox's cgroup with its memory and process limits.
func (r *cgroupRoot) newRun(id string, memory int64, procs int) (*runCgroup, error) {
	if r.version == cgroupNone {
		return nil, nil
	}
	cg := &runCgroup{version: r.version, dirs: map[string]string{}}
	for c, parent := range r.parents {
		d := filepath.Join(parent, id)
		if err := os.Mkdir(d, 0o755); err != nil {
			cg.remove()
			return nil, fmt.Errorf("creating cgroup %s: %w", d, err)
		}
		cg.dirs[c] = d
	}
	if err := cg.setLimits(memory, procs); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// setLimits sets the memory (no swap) and process limits.
func (cg *runCgroup) setLimits(memory int64, procs int) error {
	if cg == nil {
		return nil // the rlimit fallback: the helper applies the run's limits itself
	}
	mem, pr := strconv.FormatInt(memory, 10), strconv.Itoa(procs)
	var writes [][2]string
	if cg.version == cgroupV2 {
		d := cg.dirs["unified"]
		writes = [][2]string{{d + "/memory.max", mem}, {d + "/memory.swap.max", "0"}, {d + "/pids.max", pr}}
	} else {
		m := cg.dirs["memory"]
		writes = [][2]string{{m + "/memory.limit_in_bytes", mem}, {m + "/memory.memsw.limit_in_bytes", mem},
			{m + "/memory.swappiness", "0"}, {cg.dirs["pids"] + "/pids.max", pr}}
	}
	for i, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0); err != nil {
			if strings.Contains(w[0], "swap") && !errors.Is(err, syscall.EBUSY) {
				continue // no swap accounting on this kernel: nothing to limit
			}
			// memsw must stay >= limit: when lowering, write limit first, else memsw first.
			if i == 0 && cg.version == cgroupV1 {
				if err2 := os.WriteFile(writes[1][0], []byte(w[1]), 0); err2 == nil {
					if err = os.WriteFile(w[0], []byte(w[1]), 0); err == nil {
						continue
					}
				}
			}
			return fmt.Errorf("setting %s=%s: %w", w[0], w[1], err)
		}
	}
	return nil
}

// procsFiles are the cgroup.procs files a process writes its pid to.
func (cg *runCgroup) procsFiles() []string {
	if cg == nil {
		return nil
	}
	var out []string
	for _, d := range cg.dirs {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// oomKills returns how many processes the kernel's OOM killer ended here.
func (cg *runCgroup) oomKills() int64 {
	if cg == nil {
		return 0
	}
	if cg.version == cgroupV2 {
		return readKeyed(filepath.Join(cg.dirs["unified"], "memory.events"), "oom_kill")
	}
	return readKeyed(filepath.Join(cg.dirs["memory"], "memory.oom_control"), "oom_kill")
}

// cpuTime returns the CPU time used by the cgroup's processes, or -1. It
// takes the larger of the cgroup's own accounting (absent or reading zero
// on some v1 hosts) and the sum over its live processes of their own and
// their reaped children's CPU time from /proc.
func (cg *runCgroup) cpuTime() time.Duration {
	if cg == nil {
		return -1
	}
	var acct time.Duration
	if cg.version == cgroupV2 {
		if v := readKeyed(filepath.Join(cg.dirs["unified"], "cpu.stat"), "usage_usec"); v >= 0 {
			acct = time.Duration(v) * time.Microsecond
		}
	} else if d, ok := cg.dirs["cpuacct"]; ok {
		if b, err := os.ReadFile(filepath.Join(d, "cpuacct.usage")); err == nil {
			v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			acct = time.Duration(v)
		}
	}
	return max(acct, procsCPUTime(cg.pids()))
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTick = 10 * time.Millisecond

func procsCPUTime(pids []int) time.Duration {
	var total time.Duration
	for _, p := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// After the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
		if len(f) < 15 {
			continue
		}
		for _, k := range f[11:15] {
			v, _ := strconv.ParseInt(k, 10, 64)
			total += time.Duration(v) * clockTick
		}
	}
	return total
}

// peakMemory returns the cgroup's peak memory use, or 0.
func (cg *runCgroup) peakMemory() int64 {
	if cg == nil {
		return 0
	}
	f := filepath.Join(cg.dirs["memory"], "memory.max_usage_in_bytes")
	if cg.version == cgroupV2 {
		f = filepath.Join(cg.dirs["unified"], "memory.peak")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// currentMemory returns the cgroup's memory use now, or 0.
func (cg *runCgroup) currentMemory() int64 {
	if cg == nil {
		return 0
	}
	f := filepath.Join(cg.dirs["memory"], "memory.usage_in_bytes")
	if cg.version == cgroupV2 {
		f = filepath.Join(cg.dirs["unified"], "memory.current")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// pids lists the processes in the cgroup.
func (cg *runCgroup) pids() []int {
	if cg == nil {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	for _, f := range cg.procsFiles() {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for s := range strings.FieldsSeq(string(b)) {
			if p, err := strconv.Atoi(s); err == nil && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// kill SIGKILLs every live process in the cgroup until none is left or
// the deadline passes (a zero deadline: one sweep); v2 uses cgroup.kill.
func (cg *runCgroup) kill(deadline time.Time) bool {
	if cg == nil {
		return true
	}
	if cg.version == cgroupV2 {
		_ = os.WriteFile(filepath.Join(cg.dirs["unified"], "cgroup.kill"), []byte("1"), 0)
	}
	for {
		var live []int
		for _, p := range cg.pids() {
			if !isZombie(p) {
				live = append(live, p)
			}
		}
		if len(live) == 0 {
			return true
		}
		for _, p := range live {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// isZombie reports whether pid has exited (or is gone) but not been reaped.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// remove kills what is left and removes the cgroup directories.
func (cg *runCgroup) remove() {
	if cg == nil {
		return
	}
	cg.kill(time.Now().Add(2 * time.Second))
	for _, d := range cg.dirs {
		for range 50 {
			if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// readKeyed reads "key value" lines and returns key's value, or -1.
func readKeyed(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}
