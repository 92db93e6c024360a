package analysis

import (
	"context"
	"os"
	"path/filepath"
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
