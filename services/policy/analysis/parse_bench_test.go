package analysis

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkParse200Lines measures parse(), the Go parser the analysis uses.
func BenchmarkParse200Lines(b *testing.B) {
	src, err := os.ReadFile("../testdata/bench/script200.py")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(context.Background(), src, parseLimits{maxNodes: 1 << 20, maxDepth: 400, deadline: time.Now().Add(time.Second)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnalyze200Lines measures parsing plus fact extraction.
func BenchmarkAnalyze200Lines(b *testing.B) {
	src, err := os.ReadFile("../testdata/bench/script200.py")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Analyze(context.Background(), src, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
