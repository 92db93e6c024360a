package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// makeXLSX builds a workbook with the host's Python and openpyxl (a test
// fixture; the code under test reads it inside the sandbox).
func makeXLSX(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "regions.xlsx")
	script := `import sys, openpyxl
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "regions"
ws.append(["customer", "region"])
for c, r in [("acme", "north"), ("globex", "south"), ("initech", "north"), ("umbrella", "east")]:
    ws.append([c, r])
wb.save(sys.argv[1])
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, p).CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// readXLSX returns the first sheet's rows as text, read by the host's Python.
func readXLSX(t *testing.T, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.xlsx")
	require.NoError(t, os.WriteFile(p, content, 0o600))
	out, err := exec.Command("/usr/bin/python3", "-c",
		"import sys, openpyxl\nfor row in openpyxl.load_workbook(sys.argv[1]).active.iter_rows(values_only=True): print(row)", p).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

const pandasJob = `import pandas as pd
sales = pd.read_csv("/data/in/sales.csv")
regions = pd.read_excel("/data/in/regions.xlsx")
df = sales.merge(regions, on="customer")
top = df.groupby("region", as_index=False)["revenue"].sum().sort_values("revenue", ascending=False)
top.to_excel("/data/out/top.xlsx", index=False)
print(top.to_string(index=False))
`

const salesCSV = "customer,revenue\nacme,100\nglobex,250\ninitech,50\numbrella,75\nacme,20\n"

// A real pandas job reads a CSV and an XLSX and writes an XLSX, on the cold
// and the warm path, with the same result.
func TestPandasJobColdAndWarm(t *testing.T) {
	t.Parallel()
	r := setup(t, 1)
	inputs := []Input{{Name: "sales.csv", Content: []byte(salesCSV)}, {Name: "regions.xlsx", Content: makeXLSX(t)}}
	spec := Spec{Code: pandasJob, Inputs: inputs, AllowedImports: []string{"pandas"}}

	warm := run(t, r, spec)
	spec.Cold = true
	cold := run(t, r, spec)
	require.True(t, warm.Warm, "the pool was full: the first run is warm")
	require.False(t, cold.Warm)
	// The warm sandbox's imports before release are not billed to the run:
	// it used less CPU than the cold run, which imported pandas itself.
	require.Less(t, warm.CPUTime, cold.CPUTime)
	want := "region  revenue\n south      250\n north      170\n  east       75\n"
	for _, res := range []*Result{warm, cold} {
		require.Equal(t, Exited, res.Reason, "%s %s", res.Message, res.Stderr)
		require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
		require.Equal(t, want, string(res.Stdout))
		require.Empty(t, string(res.Stderr))
		require.Len(t, res.Files, 1)
		require.Equal(t, "top.xlsx", res.Files[0].Name)
		require.Equal(t, "('region', 'revenue')\n('south', 250)\n('north', 170)\n('east', 75)\n", readXLSX(t, res.Files[0].Content))
	}
}

// Each warm sandbox serves one run and is destroyed; the pool refills in
// the background; when it is empty the run goes cold.
func TestWarmPoolOneRunEach(t *testing.T) {
	t.Parallel()
	r := setup(t, 1)
	// Two runs at once on a pool of one: one is warm, the other goes cold
	// rather than wait for a refill (which takes a Python start and the
	// pandas import).
	var wg sync.WaitGroup
	var both [2]*Result
	for i := range both {
		wg.Add(1)
		go func() {
			defer wg.Done()
			both[i] = run(t, r, Spec{Code: "open('/tmp/left-behind', 'w').write('x')\nprint('one')\n"})
		}()
	}
	wg.Wait()
	require.NotEqual(t, both[0].Warm, both[1].Warm, "one warm, one cold")
	waitPool(t, r, 1)
	third := run(t, r, Spec{Code: "import os\nprint(os.path.exists('/tmp/left-behind'))\n", AllowedImports: []string{"os"}})
	require.True(t, third.Warm)
	require.Equal(t, "False\n", string(third.Stdout), "nothing of an earlier run survives")
	require.NotEqual(t, both[0].SandboxID, third.SandboxID)
	require.NotEqual(t, both[1].SandboxID, third.SandboxID)
	waitPool(t, r, 1)
}

// The warm path keeps the same isolation and limits as the cold one.
func TestWarmPathSameIsolation(t *testing.T) {
	t.Parallel()
	r := setup(t, 2)
	inline := setup(t, 0, func(c *Config) { c.Spares = 0 })
	secret := filepath.Join(t.TempDir(), "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("TOP-SECRET"), 0o644))
	cases := []struct {
		name    string
		spec    Spec
		reason  Reason
		contain string
	}{
		{"env", Spec{Code: "import os\nprint(sorted(os.environ))\n", AllowedImports: []string{"os"}}, Exited, "'OPENBLAS_NUM_THREADS', 'PATH', 'TMPDIR']"},
		{"host file", Spec{Code: "try:\n    open('" + secret + "').read()\nexcept OSError:\n    print('denied')\n"}, Exited, "denied"},
		{"write outside", Spec{Code: "try:\n    open('/usr/x', 'w')\nexcept OSError:\n    print('denied')\n", NoGuard: true}, Exited, "denied"},
		{"guard import", Spec{Code: "try:\n    import socket\nexcept ImportError:\n    print('denied')\n", AllowedImports: []string{"math"}}, Exited, "denied"},
		{"memory", Spec{Code: "b = []\nwhile True:\n    b.append(bytearray(8 << 20))\n", Limits: limits(func(l *Limits) { l.MemoryBytes = 256 << 20 })}, MemoryLimit, ""},
		{"timeout", Spec{Code: "import time\ntime.sleep(60)\n", AllowedImports: []string{"time"}, Limits: limits(func(l *Limits) { l.Timeout = 500 * time.Millisecond })}, Timeout, ""},
		{"cpu", Spec{Code: "while True:\n    pass\n", Limits: limits(func(l *Limits) { l.CPUTime = time.Second })}, CPULimit, ""},
		{"stdout", Spec{Code: "while True:\n    print('x' * 1000)\n", Limits: limits(func(l *Limits) { l.MaxStdoutBytes = 10000 })}, OutputLimit, ""},
		{"open files", Spec{Code: "fs = []\ntry:\n    while True:\n        fs.append(open('/dev/null'))\nexcept OSError as e:\n    print('capped', len(fs) < 64)\n", Limits: limits(func(l *Limits) { l.MaxOpenFiles = 64 })}, Exited, "capped True"},
	}
	for _, tc := range cases {
		// cold takes a spare; inline prepares the sandbox on the run's
		// time, as when the spares are used up.
		for _, path := range []string{"warm", "cold", "inline"} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				spec := tc.spec
				spec.Cold = path != "warm"
				on := r
				switch path {
				case "warm":
					waitPool(t, r, 1)
				case "cold":
					require.Eventually(t, func() bool { return len(r.spares.ready) > 0 }, 30*time.Second, 5*time.Millisecond, "no spare")
				case "inline":
					on = inline
				}
				res := run(t, on, spec)
				require.Equal(t, path == "warm", res.Warm)
				require.Equal(t, tc.reason, res.Reason, "%s %s", res.Message, res.Stderr)
				require.Contains(t, string(res.Stdout), tc.contain)
				require.NotContains(t, string(res.Stdout), "TOP-SECRET")
			})
		}
	}
}

// Cold runs take spares: each is used once, every run gets a sandbox, a
// host uid and a cgroup of its own, and Close ends the spares' waiting
// launch helpers and removes their directories and cgroups. Spares 0 keeps
// none.
func TestSpares(t *testing.T) {
	t.Parallel()
	none := setup(t, 0, func(c *Config) { c.Spares = 0 })
	require.Nil(t, none.spares)
	res := run(t, none, Spec{Code: "print('ok')\n"})
	require.Equal(t, "ok\n", string(res.Stdout))

	const spares = 3 // not the default, so the setting is seen to count
	r := setup(t, 0, func(c *Config) { c.Spares = spares })
	require.Eventually(t, func() bool { return len(r.spares.ready) == spares }, 30*time.Second, 5*time.Millisecond)
	ids := map[string]bool{}
	for range 2 * spares {
		res := run(t, r, Spec{Code: "print('ok')\n"})
		require.Equal(t, "ok\n", string(res.Stdout))
		require.False(t, ids[res.SandboxID])
		ids[res.SandboxID] = true
	}
	require.Eventually(t, func() bool { return len(r.spares.ready) == spares }, 30*time.Second, 5*time.Millisecond)
	var waiting []*instance
	for range spares {
		inst := <-r.spares.ready
		require.False(t, ids[inst.id], "a spare is never one that ran")
		waiting = append(waiting, inst)
	}
	for _, inst := range waiting {
		r.spares.ready <- inst
	}
	require.NoError(t, r.Close())
	for _, inst := range waiting {
		_, err := os.Stat("/proc/" + strconv.Itoa(inst.cmd.Process.Pid))
		require.True(t, os.IsNotExist(err), "the spare's launch helper is gone")
		_, err = os.Stat(inst.dir)
		require.True(t, os.IsNotExist(err), "the spare's directory is gone")
		for _, d := range inst.cg.dirs {
			_, err = os.Stat(d)
			require.True(t, os.IsNotExist(err), "the spare's cgroup is gone")
		}
	}
}

// Many callers at once: every run gets its own sandbox and its own result.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	r := setup(t, 2)
	var wg sync.WaitGroup
	results := make([]*Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Run(context.Background(), Spec{
				Code:           "import os\nprint(len(os.listdir('/data/in')), open('/data/in/n.txt').read())\n",
				Inputs:         []Input{{Name: "n.txt", Content: []byte(strings.Repeat("n", i))}},
				AllowedImports: []string{"os"}, Limits: limits(nil),
			})
			if err == nil {
				results[i] = res
			}
		}()
	}
	wg.Wait()
	warm := 0
	for i, res := range results {
		require.NotNil(t, res)
		require.Equal(t, "1 "+strings.Repeat("n", i)+"\n", string(res.Stdout), "%s", res.Stderr)
		if res.Warm {
			warm++
		}
		requireNothingLeft(t, res)
	}
	require.GreaterOrEqual(t, warm, 1)
}

// An idle warm sandbox's memory is read from its cgroup; without one (the
// rlimit fallback) it is reported as not measured rather than as zero.
func TestIdleWarmMemory(t *testing.T) {
	t.Parallel()
	cg, rss, ok := setup(t, 1).IdleWarmMemory()
	require.True(t, ok)
	require.Positive(t, cg)
	require.Greater(t, rss, int64(10<<20), "pandas, numpy and openpyxl are imported")

	_, _, ok = setup(t, 1, func(c *Config) { c.NoCgroups = true }).IdleWarmMemory()
	require.False(t, ok)
}
