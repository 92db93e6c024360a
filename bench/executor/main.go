// Command executor measures the sandbox: cold and warm latency against bare
// Python, throughput with concurrent callers, sustained pandas jobs per
// second past the pool's refill rate, and an idle warm sandbox's memory.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlockhq/airlock/services/executor/sandbox"
)

const trivial = "print('ok')\n"

const groupby = `import pandas as pd
df = pd.read_csv("%s")
print(df.groupby("region")["revenue"].sum().round(2).to_dict())
`

func main() {
	sandbox.RunHelper()
	n := flag.Int("n", 20, "samples per latency figure")
	concurrency := flag.Int("c", 8, "concurrent callers")
	sustain := flag.Duration("sustain", 10*time.Second, "how long the throughput runs last")
	pool := flag.Int("pool", 2, "warm pool size")
	helper := flag.String("helper", "auto", "sandbox helper binary; auto means bin/"+sandbox.HelperName+" when built (as `make bench` does), else this program itself")
	flag.Parse()
	if *helper == "auto" {
		*helper = ""
		if _, err := os.Stat("bin/" + sandbox.HelperName); err == nil {
			*helper = "bin/" + sandbox.HelperName
		}
	}
	if err := run(*n, *concurrency, *sustain, *pool, *helper); err != nil {
		fmt.Fprintln(os.Stderr, "bench/executor:", err)
		os.Exit(1)
	}
}

func run(n, concurrency int, sustain time.Duration, poolSize int, helper string) error {
	dir, err := os.MkdirTemp("", "bench-executor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var csv strings.Builder
	csv.WriteString("customer,region,revenue\n")
	regions := []string{"north", "south", "east", "west"}
	for i := range 10_000 {
		fmt.Fprintf(&csv, "c%05d,%s,%d.%02d\n", i, regions[i%4], i%997, i%100)
	}
	csvPath := filepath.Join(dir, "sales.csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o644); err != nil {
		return err
	}
	inputs := []sandbox.Input{{Name: "sales.csv", Content: []byte(csv.String())}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := sandbox.New(sandbox.Config{PoolSize: poolSize, MaxConcurrent: concurrency, Spares: sandbox.DefaultSpares,
		HelperPath: helper, Log: log})
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Check(); err != nil {
		return err
	}
	// The same, without cold spares: what a cold run costs once the spares
	// are used up.
	noSpares, err := sandbox.New(sandbox.Config{HelperPath: helper, Log: log})
	if err != nil {
		return err
	}
	defer noSpares.Close()
	fmt.Printf("isolation: %s\n", r.Details())
	if helper == "" {
		helper = "this program (no bin/" + sandbox.HelperName + ")"
	}
	fmt.Printf("sandbox helper: %s\n", helper)
	waitPool(r, poolSize)

	lim := sandbox.DefaultLimits()
	spec := func(code string, cold bool) sandbox.Spec {
		return sandbox.Spec{Code: code, Inputs: inputs, Limits: lim, Cold: cold,
			AllowedImports: []string{"pandas"}}
	}
	pandasSandbox := fmt.Sprintf(groupby, "/data/in/sales.csv")
	pandasBare := fmt.Sprintf(groupby, csvPath)

	fmt.Printf("\nlatency, %d samples each (p50 / p99); cold takes a spare, cold* prepares its sandbox itself (spares used up)\n", n)
	for _, w := range []struct {
		name        string
		bare, boxed string
	}{{"trivial script", trivial, trivial}, {"pandas groupby, 10,000 CSV rows", pandasBare, pandasSandbox}} {
		// The four are sampled in turn, round after round, so a change in
		// the machine's load (other work on a shared host) touches them alike.
		// Each run first waits (untimed) for a full pool, so no refill of an
		// earlier warm take runs beside it.
		full := func() error { waitPool(r, poolSize); return nil }
		lat, err := sample(n, []probe{
			{prepare: full, fn: func() error {
				cmd := exec.Command("/usr/bin/python3", "-I", "-c", w.bare)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				if err != nil {
					return fmt.Errorf("bare python: %v: %s", err, out)
				}
				return nil
			}},
			{prepare: full, fn: func() error { return runOK(r, spec(w.boxed, true), false) }},
			{prepare: full, fn: func() error { return runOK(noSpares, spec(w.boxed, true), false) }},
			{prepare: full, fn: func() error { return runOK(r, spec(w.boxed, false), true) }},
		})
		if err != nil {
			return err
		}
		bare, cold, coldNoSpare, warm := lat[0], lat[1], lat[2], lat[3]
		fmt.Printf("  %-34s bare python3 -I %s   cold %s   cold* %s   warm %s\n", w.name, pct(bare), pct(cold), pct(coldNoSpare), pct(warm))
	}

	waitPool(r, poolSize)
	if cg, rss, ok := r.IdleWarmMemory(); ok {
		fmt.Printf("\nidle warm sandbox memory: %.1f MiB resident (processes' RSS), %.1f MiB charged to its cgroup\n",
			float64(rss)/(1<<20), float64(cg)/(1<<20))
	} else {
		fmt.Println("\nidle warm sandbox memory: not measured (no warm sandbox waiting, or no per-run cgroup to read it from)")
	}

	fmt.Printf("\nthroughput, %d concurrent callers for %s, pool of %d\n", concurrency, sustain, poolSize)
	for _, w := range []struct{ name, code string }{{"trivial script", trivial}, {"pandas groupby", pandasSandbox}} {
		waitPool(r, poolSize)
		done, warm, p50, err := hammer(r, concurrency, sustain, spec(w.code, false))
		if err != nil {
			return err
		}
		fmt.Printf("  %-34s %6.1f runs/s   (%d runs, %d warm, p50 %s)\n", w.name, float64(done)/sustain.Seconds(), done, warm, p50.Round(time.Millisecond))
	}
	fmt.Println("  (pandas: calls arrive faster than the pool refills, so most runs go cold; this is the sustained rate)")
	fmt.Println("\nmachine:", machine())
	return nil
}

func runOK(r *sandbox.Runner, spec sandbox.Spec, wantWarm bool) error {
	res, err := r.Run(context.Background(), spec)
	if err != nil {
		return err
	}
	if res.Reason != sandbox.Exited || res.ExitCode != 0 {
		return fmt.Errorf("run ended %s: %s %s", res.Reason, res.Message, res.Stderr)
	}
	if wantWarm && !res.Warm {
		return fmt.Errorf("expected a warm run")
	}
	return nil
}

// probe is one thing sample times: fn, after prepare (untimed) when set.
type probe struct{ prepare, fn func() error }

// sample times each probe n times, in turn, after one untimed round.
func sample(n int, probes []probe) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(probes))
	for i := range n + 1 {
		for j, p := range probes {
			if p.prepare != nil {
				if err := p.prepare(); err != nil {
					return nil, err
				}
			}
			start := time.Now()
			if err := p.fn(); err != nil {
				return nil, err
			}
			if i > 0 {
				out[j] = append(out[j], time.Since(start))
			}
		}
	}
	return out, nil
}

func pct(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	p := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return fmt.Sprintf("%6.1f / %6.1f ms", ms(p(0.50)), ms(p(0.99)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func waitPool(r *sandbox.Runner, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for r.PoolReady() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func hammer(r *sandbox.Runner, callers int, d time.Duration, spec sandbox.Spec) (done, warm int64, p50 time.Duration, err error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				start := time.Now()
				res, err := r.Run(context.Background(), spec)
				if err == nil && (res.Reason != sandbox.Exited || res.ExitCode != 0) {
					err = fmt.Errorf("run ended %s: %s", res.Reason, res.Stderr)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				atomic.AddInt64(&done, 1)
				if res.Warm {
					atomic.AddInt64(&warm, 1)
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, 0, e
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		p50 = lat[len(lat)/2]
	}
	return done, warm, p50, nil
}

func machine() string {
	out, _ := exec.Command("nproc").Output()
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return strings.TrimSpace(string(out)) + " CPUs, " + model
}
