package sandbox

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pool keeps sandboxes made ahead of time, each used for exactly one run
// and then destroyed; a background goroutine refills it. The warm pool's
// are started with pandas, numpy and openpyxl imported; the spares are
// prepared only (directories, cgroup, a launch helper waiting in it).
type pool struct {
	r       *Runner
	what    string // for logs
	newInst func() (*instance, error)
	size    int
	ready   chan *instance
	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newPool(r *Runner, what string, size int, newInst func() (*instance, error)) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{r: r, what: what, newInst: newInst, size: size, ready: make(chan *instance, size), wake: make(chan struct{}, 1), cancel: cancel}
	p.wg.Add(1)
	go p.fill(ctx)
	return p
}

// newWarmPool keeps size warm sandboxes.
func newWarmPool(r *Runner, size int) *pool {
	return newPool(r, "warm pool", size, func() (*instance, error) {
		inst, err := r.start(true, r.cfg.Max)
		if err == nil {
			if err = inst.waitReady(30 * time.Second); err != nil {
				inst.cleanup()
				return nil, err
			}
		}
		return inst, err
	})
}

// DefaultSpares is the executor's default Config.Spares (--executor-spares).
const DefaultSpares = 2

// newSpares keeps Config.Spares prepared sandboxes for cold runs: what a cold
// run would otherwise wait for before bwrap starts (its directories, its
// cgroup, a launch helper started and moved into it, and the helper's
// network namespace) is done ahead of time. Each is still fresh: made for
// one run and never reused.
func newSpares(r *Runner) *pool {
	return newPool(r, "cold spares", r.cfg.Spares, func() (*instance, error) {
		inst, err := r.prepare(r.cfg.Max)
		if err == nil {
			if err = inst.awaitHelper(helperTimeout); err != nil {
				inst.cleanup()
				return nil, err
			}
		}
		return inst, err
	})
}

// take returns a ready sandbox, or nil when none is waiting. With refill,
// the pool starts replacing it at once; else at the caller's signal.
func (p *pool) take(refill bool) *instance {
	if p == nil {
		return nil
	}
	if refill {
		defer p.signal()
	}
	select {
	case inst := <-p.ready:
		return inst
	default:
		return nil
	}
}

func (p *pool) signal() {
	if p == nil {
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// fill starts sandboxes one at a time until the pool is full, then sleeps
// until a run takes one. One at a time keeps a refill from starving the
// runs it is meant to speed up.
func (p *pool) fill(ctx context.Context) {
	defer p.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		for len(p.ready) < p.size {
			if ctx.Err() != nil {
				return
			}
			inst, err := p.newInst()
			if err != nil {
				p.r.log.Warn(p.what+": starting a sandbox", "error", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 10*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			select {
			case p.ready <- inst:
			default:
				inst.cleanup()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
	}
}

// close stops refilling and destroys the waiting sandboxes.
func (p *pool) close() {
	p.cancel()
	p.wg.Wait()
	for {
		select {
		case inst := <-p.ready:
			inst.cleanup()
		default:
			return
		}
	}
}

// IdleWarmMemory reports the memory of one idle warm sandbox: its cgroup's
// charge (resident memory plus page cache it brought in) and the resident
// set summed over its processes. ok is false when no warm sandbox waits or
// it has no cgroup of its own (the rlimit fallback), which leaves nothing to
// read its processes from.
func (r *Runner) IdleWarmMemory() (cgroupBytes, rssBytes int64, ok bool) {
	if r.pool == nil {
		return 0, 0, false
	}
	select {
	case inst := <-r.pool.ready:
		ok = inst.cg != nil
		cgroupBytes = inst.cg.currentMemory()
		for _, p := range inst.cg.pids() {
			rssBytes += procRSS(p)
		}
		select {
		case r.pool.ready <- inst:
		default:
			inst.cleanup()
		}
		return cgroupBytes, rssBytes, ok
	default:
		return 0, 0, false
	}
}

func procRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
