package analysis

import (
	"context"
	"os"
	"testing"
	"time"
)

func benchTree(b *testing.B) (*tree, *lineIndex) {
	b.Helper()
	src, err := os.ReadFile("../testdata/bench/script200.py")
	if err != nil {
		b.Fatal(err)
	}
	t, err := parse(context.Background(), src, parseLimits{maxNodes: 400_000, maxDepth: 400, deadline: time.Now().Add(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	return t, newLineIndex(src)
}

// BenchmarkFacts200Lines measures fact extraction alone: the script is
// parsed once, and each iteration runs a fresh walker over the tree.
func BenchmarkFacts200Lines(b *testing.B) {
	t, _ := benchTree(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		li := newLineIndex(t.src)
		f := &Facts{Lines: li.count()}
		w := newWalker(ctx, t, li, f, time.Now().Add(time.Minute))
		w.run()
		sortFacts(f)
		if len(f.Calls) == 0 {
			b.Fatal("no calls found")
		}
	}
}

// BenchmarkRules200Lines measures the built-in rules alone over the facts
// of the 200-line script.
func BenchmarkRules200Lines(b *testing.B) {
	src, err := os.ReadFile("../testdata/bench/script200.py")
	if err != nil {
		b.Fatal(err)
	}
	f, err := Analyze(context.Background(), src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	b.ReportAllocs()
	for b.Loop() {
		Check(f, cfg)
	}
}
