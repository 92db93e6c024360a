package analysis

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzAnalyze proves the analyser never panics and always finishes: every
// input either completes or is marked incomplete within its time limit.
// The seed corpus (both policy corpora plus hostile shapes) runs in plain
// `go test`.
func FuzzAnalyze(f *testing.F) {
	for _, dir := range []string{"adversarial", "benign"} {
		files, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.py"))
		for _, file := range files {
			if src, err := os.ReadFile(file); err == nil {
				f.Add(src)
			}
		}
	}
	for _, s := range []string{
		"", "\x00", "\xff\xfe", "(((((", strings.Repeat("[", 2000), strings.Repeat("x.", 5000) + "y",
		"'\\N{", "'\\x'", "'\\N{LATIN SMALL LETTER}'", "f'{'", "f'{x!r:{y}}'", "def f(*, **k): pass",
		"a = b = c = a", "x = x + x", "def f(p=f): return f(p)", "class A(A): pass", "import a.b.c as d\nd.e()",
		"from . import *\nfrom .. import x", "while True:\n" + strings.Repeat(" ", 100) + "pass",
		"p = p / p\nopen(p, 'w')", "for a, (b, c) in x: pass", "with a as (b, c): pass",
		"lambda *a, **k: a", "x: int = 1", "async def f():\n    async with a as b:\n        await b",
		"s = '" + strings.Repeat("\\x5f", 500) + "'", "match x:\n    case {'a': [b, *c]}: pass",
	} {
		f.Add([]byte(s))
	}
	cfg := testConfig()
	f.Fuzz(func(t *testing.T, src []byte) {
		opts := Options{Timeout: time.Second}
		start := time.Now()
		facts, err := Analyze(context.Background(), src, opts)
		if err != nil {
			if err == ErrTooLarge && len(src) > 1<<20 {
				return
			}
			t.Fatalf("Analyze: %v", err)
		}
		findings := Check(facts, cfg)
		elapsed := time.Since(start)
		// The analyser stops itself at its time limit; a generous margin
		// covers a loaded machine and -race.
		if elapsed > opts.Timeout+10*time.Second {
			t.Fatalf("analysis ran %s, past its %s limit", elapsed, opts.Timeout)
		}
		for _, fd := range findings {
			if fd.Line < 1 || fd.Column < 1 || fd.Action < Allow || fd.Action > Deny {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}

// TestAnalyzeBoundedOnBlowups feeds shapes that would be exponential or
// quadratic without memoisation and work caps; each must finish.
func TestAnalyzeBoundedOnBlowups(t *testing.T) {
	t.Parallel()
	var selfChain strings.Builder
	selfChain.WriteString("class A:\n    def __init__(self):\n        self.a0 = '/data/out/'\n")
	for i := 1; i < 60; i++ {
		selfChain.WriteString("        self.a" + itoa(i) + " = self.a" + itoa(i-1) + " + self.a" + itoa(i-1) + "\n")
	}
	selfChain.WriteString("        open(self.a59, 'w')\n")
	var nameChain strings.Builder
	nameChain.WriteString("a0 = 'x'\n")
	for i := 1; i < 60; i++ {
		nameChain.WriteString("a" + itoa(i) + " = a" + itoa(i-1) + " + a" + itoa(i-1) + "\n")
	}
	nameChain.WriteString("open(a59, 'w')\n")
	nested := ""
	for i := 0; i < 90; i++ {
		nested += strings.Repeat(" ", i) + "while True:\n"
	}
	nested += strings.Repeat(" ", 90) + strings.Repeat("x = 1\n"+strings.Repeat(" ", 90), 200) + "pass\n"
	for name, src := range map[string]string{"self chain": selfChain.String(), "name chain": nameChain.String(), "nested loops": nested} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			go func() {
				defer close(done)
				f, err := Analyze(context.Background(), []byte(src), Options{Timeout: time.Second})
				if err != nil {
					t.Error(err)
					return
				}
				Check(f, testConfig())
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("analysis did not finish")
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// FuzzParsePython proves the Go parser never panics, stays within its node
// and depth caps, and builds a well-formed arena (parents before children,
// spans inside the source and inside their parents).
func FuzzParsePython(f *testing.F) {
	for _, s := range []string{"", "x = (1,\n", "f'{a!r:>{w}}'", "match x:\n  case [a, *b]: pass\n",
		strings.Repeat("(", 300) + "x", strings.Repeat("not ", 2000) + "x", strings.Repeat("-", 5000) + "1",
		"if x:\n\tpass\n        pass\n", "x = 1 \\\n  + 2\n", "def f(a, /, *, b): pass\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		// A roomy cap, and a small one that cuts most trees short.
		for _, maxNodes := range []int{5000, 40} {
			tr, err := parseGo(context.Background(), src, parseLimits{maxNodes: maxNodes, maxDepth: 100, deadline: time.Now().Add(time.Second)})
			if err != nil {
				return
			}
			checkArena(t, tr, src, maxNodes)
		}
	})
}

func checkArena(t *testing.T, tr *tree, src []byte, maxNodes int) {
	t.Helper()
	if len(tr.nodes) > maxNodes {
		t.Fatalf("%d nodes past the cap of %d", len(tr.nodes), maxNodes)
	}
	n := int32(len(tr.nodes))
	for i, nd := range tr.nodes {
		if nd.start > nd.end || int(nd.end) > len(src) {
			t.Fatalf("node %d span [%d,%d) outside %d bytes", i, nd.start, nd.end, len(src))
		}
		if i > 0 && (nd.parent < 0 || int(nd.parent) >= i) {
			t.Fatalf("node %d parent %d", i, nd.parent)
		}
		if nd.firstChild >= 0 && int(nd.firstChild) <= i || nd.nextSibling >= 0 && int(nd.nextSibling) <= i {
			t.Fatalf("node %d links backwards", i)
		}
		if nd.firstChild >= n || nd.nextSibling >= n {
			t.Fatalf("node %d links past the %d nodes (truncated=%v)", i, n, tr.truncated)
		}
		if nd.firstChild >= 0 && tr.nodes[nd.firstChild].parent != int32(i) ||
			nd.nextSibling >= 0 && tr.nodes[nd.nextSibling].parent != nd.parent {
			t.Fatalf("node %d: a child or sibling names another parent", i)
		}
	}
}
