// Command policy measures the policy check: checks per second and p50/p99
// latency for a realistic 200-line script under the default policy, on one
// goroutine and on every core, in process (no network).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/airlockhq/airlock/services/policy/analysis"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/policy:", err)
		os.Exit(1)
	}
}

func run() error {
	script := flag.String("script", "services/policy/testdata/bench/script200.py", "Python file to check")
	policy := flag.String("policy", "policies/default.yaml", "policy file")
	dur := flag.Duration("duration", 3*time.Second, "how long each phase runs")
	flag.Parse()
	pol, err := policydoc.LoadFile(*policy)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(*script)
	if err != nil {
		return err
	}
	ctx := context.Background()
	res, err := pol.Check(ctx, src, analysis.Options{})
	if err != nil {
		return err
	}
	lines := 0
	for _, b := range src {
		if b == '\n' {
			lines++
		}
	}
	fmt.Printf("policy check: %s (%d lines, %d bytes), policy %s, verdict %s, GOMAXPROCS=%d\n",
		*script, lines, len(src), pol.ID, res.Verdict, runtime.GOMAXPROCS(0))
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		cpu0 := cpuTime()
		lat, elapsed, err := phase(ctx, pol, src, workers, *dur)
		if err != nil {
			return err
		}
		cpu := cpuTime() - cpu0
		slices.Sort(lat)
		fmt.Printf("  %d worker(s): %d checks in %s = %.0f checks/s; p50 %s, p99 %s, max %s; CPU %s per check\n",
			workers, len(lat), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(),
			pct(lat, 0.50), pct(lat, 0.99), lat[len(lat)-1].Round(time.Microsecond),
			(cpu / time.Duration(len(lat))).Round(time.Microsecond))
	}
	return nil
}

func phase(ctx context.Context, pol *policydoc.Policy, src []byte, workers int, dur time.Duration) ([]time.Duration, time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var lat []time.Duration
			for time.Since(start) < dur {
				t0 := time.Now()
				if _, err := pol.Check(ctx, src, analysis.Options{}); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, time.Since(start), firstErr
}

// cpuTime is the process's user plus system CPU time; on a shared machine
// it shows the cost of a check apart from waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p)
	return sorted[i].Round(time.Microsecond)
}
