package sandbox

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

//go:embed bootstrap.py
var bootstrapPy []byte

// Config configures a Runner.
type Config struct {
	// Bwrap is the bubblewrap binary; default /usr/bin/bwrap.
	Bwrap string
	// Python is the interpreter with pandas, numpy and openpyxl; default /usr/bin/python3.
	Python string
	// WorkDir holds per-sandbox directories; default the system temp dir.
	WorkDir string
	// HelperPath is the binary that serves RunHelper. Default: HelperName
	// (airlock-sandbox) next to os.Executable() when it is there and of this
	// build, else os.Executable() itself.
	HelperPath string
	// PoolSize is how many warm sandboxes wait ready; 0 disables the pool.
	PoolSize int
	// MaxConcurrent caps runs at once (warm or cold); default 8.
	MaxConcurrent int
	// TmpBytes is the size of each sandbox's private /tmp; default 64 MiB.
	TmpBytes int64
	// Defaults fill unset request limits; Max bounds them. Zero values take
	// DefaultLimits and DefaultMaxLimits.
	Defaults, Max Limits
	// UIDBase is the first of 65536 host uids given to sandboxes, one each
	// while it lives; default 1,000,000. Used only when running as root.
	UIDBase int
	// NoCgroups forces the rlimit fallback even where cgroups work.
	NoCgroups bool
	// NoLandlock skips the Landlock layer.
	NoLandlock bool
	// Spares is how many cold sandboxes are kept prepared (directories,
	// cgroup, launch helper) for cold runs; 0 keeps none, and every cold run
	// prepares its sandbox on its own time. The executor's default is
	// DefaultSpares.
	Spares int
	// Log receives the runner's logs.
	Log *slog.Logger
}

// Errors a Runner returns.
var (
	// ErrUnavailable means the sandbox runtime is missing or broken.
	ErrUnavailable = errors.New("sandbox runtime unavailable")
	// ErrClosed means the Runner was closed.
	ErrClosed = errors.New("sandbox runner closed")
)

// Runner starts sandboxes and runs code in them.
type Runner struct {
	cfg       Config
	log       *slog.Logger
	dir       string // private work directory
	bootstrap string // host path of bootstrap.py
	helper    string // host path of the helper binary copy
	seccomp   []byte
	cgroups   *cgroupRoot
	root      bool
	slots     chan struct{}
	pool      *pool // warm sandboxes
	spares    *pool // prepared sandboxes for cold runs
	setupErr  error // from the deep check at start (python, pandas)

	mu       sync.Mutex
	closed   bool
	cleanups sync.WaitGroup // removing finished sandboxes' cgroups and directories
}

// New checks the runtime, prepares the work directory and starts the warm
// pool. A missing bwrap or Python does not fail New: Check reports it, so a
// server can start and answer health NOT_SERVING.
func New(cfg Config) (*Runner, error) {
	if cfg.Bwrap == "" {
		cfg.Bwrap = "/usr/bin/bwrap"
	}
	if cfg.Python == "" {
		cfg.Python = "/usr/bin/python3"
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = os.TempDir()
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 8
	}
	if cfg.TmpBytes <= 0 {
		cfg.TmpBytes = 64 << 20
	}
	if cfg.Defaults == (Limits{}) {
		cfg.Defaults = DefaultLimits()
	}
	if cfg.Max == (Limits{}) {
		cfg.Max = DefaultMaxLimits()
	}
	if cfg.UIDBase <= 0 {
		cfg.UIDBase = 1_000_000
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := Resolve(cfg.Defaults, cfg.Defaults, cfg.Max); err != nil {
		return nil, fmt.Errorf("default limits: %w", err)
	}
	prog, err := seccompProgram()
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, log: cfg.Log, seccomp: prog, root: os.Geteuid() == 0,
		slots: make(chan struct{}, cfg.MaxConcurrent)}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the helper binary: %w", err)
	}
	helper, err := findHelper(cfg.HelperPath, self, r.log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating work dir: %w", err)
	}
	r.dir, err = os.MkdirTemp(cfg.WorkDir, "airlock-executor-")
	if err != nil {
		return nil, fmt.Errorf("creating work dir: %w", err)
	}
	// Sandboxes run as other uids: they must traverse, not list, this dir
	// and every one above it.
	if err := os.Chmod(r.dir, 0o711); err != nil {
		return nil, err
	}
	if r.root {
		for d := filepath.Dir(r.dir); ; d = filepath.Dir(d) {
			if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
				os.Remove(r.dir)
				return nil, fmt.Errorf("work dir %s: %s is not searchable by other users (needs o+x) and the sandboxes run as other uids", cfg.WorkDir, d)
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	// Orphans of our sandboxes (bwrap's pid 1 when its monitor exits first)
	// come to us, so cleanup can reap them at once.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		r.log.Warn("sandbox: cannot become a child subreaper", "error", err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, ownerFile), []byte(processIdentity(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	r.bootstrap = filepath.Join(r.dir, "bootstrap.py")
	if err := os.WriteFile(r.bootstrap, bootstrapPy, 0o444); err != nil {
		return nil, err
	}
	// A copy the sandbox uid can read, wherever the original lives.
	r.helper = filepath.Join(r.dir, "init")
	if err := copyFile(helper, r.helper, 0o555); err != nil {
		return nil, fmt.Errorf("copying the helper binary: %w", err)
	}
	switch {
	case cfg.NoCgroups:
		r.cgroups = &cgroupRoot{reason: "disabled by configuration"}
	case !r.root:
		r.cgroups = &cgroupRoot{reason: "not running as root"}
	default:
		r.cgroups = detectCgroups(filepath.Base(r.dir))
	}
	if r.root {
		r.sweepStale()
	}
	if r.cgroups.version == cgroupNone {
		r.log.Warn("sandbox: per-run cgroups unavailable, falling back to rlimits (memory via RLIMIT_AS, processes via RLIMIT_NPROC)",
			"reason", r.cgroups.reason)
	}
	r.setupErr = r.deepCheck()
	r.log.Info("sandbox runner ready", "isolation", r.Details(), "work_dir", r.dir, "pool_size", cfg.PoolSize,
		"helper", helper, "error", errString(r.setupErr))
	if r.setupErr == nil {
		if cfg.Spares > 0 {
			r.spares = newSpares(r)
		}
		if cfg.PoolSize > 0 {
			r.pool = newWarmPool(r, cfg.PoolSize)
		}
	}
	return r, nil
}

// findHelper picks the helper binary: configured when set (it must be of
// this build); else HelperName next to self (resolving symlinks) when it is
// of this build; else self, which then must call RunHelper, and whose own
// start-up every cold run then pays.
func findHelper(configured, self string, log *slog.Logger) (string, error) {
	if configured != "" {
		if err := checkHelper(configured); err != nil {
			return "", fmt.Errorf("%w: sandbox helper %s: %v", ErrUnavailable, configured, err)
		}
		return configured, nil
	}
	if real, err := filepath.EvalSymlinks(self); err == nil {
		self = real
	}
	if filepath.Base(self) == HelperName {
		return self, nil
	}
	sibling := filepath.Join(filepath.Dir(self), HelperName)
	if _, err := os.Stat(sibling); err != nil {
		log.Info("sandbox: no "+HelperName+" next to this binary; it serves as its own sandbox helper (slower cold runs)",
			"binary", self)
		return self, nil
	}
	if err := checkHelper(sibling); err != nil {
		log.Warn("sandbox: "+sibling+" is unusable; this binary serves as its own sandbox helper (slower cold runs)",
			"error", err)
		return self, nil
	}
	return sibling, nil
}

// checkHelper runs a helper binary to ask which protocol it speaks.
func checkHelper(path string) error {
	cmd := exec.Command(path, protocolArg)
	cmd.Env = []string{}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("asking it for its protocol: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != helperProtocol {
		return fmt.Errorf("it speaks %q, not %q: a helper from another build", got, helperProtocol)
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// deepCheck proves bwrap and Python with pandas, numpy and openpyxl work.
func (r *Runner) deepCheck() error {
	if err := r.Check(); err != nil {
		return err
	}
	out, err := exec.Command(r.cfg.Python, "-I", "-c", "import pandas, numpy, openpyxl").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s cannot import pandas, numpy and openpyxl: %v: %s", ErrUnavailable, r.cfg.Python, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Check reports whether the runtime is usable: bwrap and Python present and,
// at start, Python able to import pandas, numpy and openpyxl.
func (r *Runner) Check() error {
	for _, p := range []string{r.cfg.Bwrap, r.cfg.Python} {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if st.Mode()&0o111 == 0 {
			return fmt.Errorf("%w: %s is not executable", ErrUnavailable, p)
		}
	}
	if r.setupErr != nil {
		return r.setupErr
	}
	return nil
}

// Details describes the isolation in force, for health details and logs.
func (r *Runner) Details() string {
	parts := []string{"bwrap", "seccomp (amd64, foreign ABIs killed)"}
	if r.cgroups.version == cgroupNone {
		parts = append(parts, "limits: rlimits only ("+r.cgroups.reason+")")
	} else {
		parts = append(parts, "limits: "+r.cgroups.version.String()+" + rlimits")
	}
	if r.cfg.NoLandlock {
		parts = append(parts, "landlock off")
	} else if v, err := landlockABI(); err == nil && v > 0 {
		parts = append(parts, fmt.Sprintf("landlock abi %d", v))
	} else {
		parts = append(parts, "landlock unavailable")
	}
	if !r.root {
		parts = append(parts, "sandbox uid = executor uid (not root)")
	}
	return strings.Join(parts, "; ")
}

// CgroupsEnabled reports whether per-run cgroups are in use.
func (r *Runner) CgroupsEnabled() bool { return r.cgroups.version != cgroupNone }

// PoolReady returns how many warm sandboxes are waiting.
func (r *Runner) PoolReady() int {
	if r.pool == nil {
		return 0
	}
	return len(r.pool.ready)
}

// Close destroys the warm sandboxes and the work directory. Runs in flight
// are killed by their own cleanup.
func (r *Runner) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	if r.pool != nil {
		r.pool.close()
	}
	if r.spares != nil {
		r.spares.close()
	}
	// Wait for running sandboxes to finish cleaning up.
	for range cap(r.slots) {
		r.slots <- struct{}{}
	}
	r.cleanups.Wait()
	r.cgroups.close()
	return os.RemoveAll(r.dir)
}

// Run runs spec.Code on a warm sandbox when one is ready, else on a cold one.
func (r *Runner) Run(ctx context.Context, spec Spec) (*Result, error) {
	if err := ValidateInputs(spec.Inputs); err != nil {
		return nil, err
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.slots }()
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	var inst *instance
	if !spec.Cold && r.pool != nil {
		inst = r.pool.take(true)
	}
	if inst != nil {
		res, err := inst.run(ctx, spec)
		if !errors.Is(err, errNotReleased) {
			return res, err
		}
		r.log.Warn("warm sandbox unusable, running cold", "error", err)
	}
	// The spare is replaced once this run is over, not beside it: the
	// replacement's process start and namespace would compete with the
	// run for the CPU.
	defer r.spares.signal()
	if inst = r.spares.take(false); inst != nil {
		err := inst.launch(false, spec.Limits)
		if err == nil {
			return inst.run(ctx, spec)
		}
		inst.cleanup()
		r.log.Warn("spare sandbox unusable, preparing another", "error", err)
	}
	inst, err := r.start(false, spec.Limits)
	if err != nil {
		return nil, err
	}
	return inst.run(ctx, spec)
}

// Host uids are handed out process-wide (several Runners may share a
// process), starting at a random offset so two executors on one host are
// unlikely to meet.
var uids = struct {
	sync.Mutex
	next int
	live map[int]bool
}{next: mathrand.IntN(65536), live: map[int]bool{}}

func (r *Runner) allocUID() int {
	if !r.root {
		return -1
	}
	uids.Lock()
	defer uids.Unlock()
	for {
		uid := r.cfg.UIDBase + uids.next%65536
		uids.next++
		if !uids.live[uid] {
			uids.live[uid] = true
			return uid
		}
	}
}

func (r *Runner) freeUID(uid int) {
	uids.Lock()
	delete(uids.live, uid)
	uids.Unlock()
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
