package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/airlockhq/airlock/services/policy/analysis"
)

// BenchmarkCheck200Lines measures one full check (parse, facts, built-in
// and CEL rules) of a realistic 200-line script under the default policy.
func BenchmarkCheck200Lines(b *testing.B) {
	pol := defaultPolicy(b)
	src, err := os.ReadFile(filepath.Join("testdata", "bench", "script200.py"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := pol.Check(ctx, src, analysis.Options{})
		if err != nil || res.Verdict != analysis.Allow {
			b.Fatalf("check: %v %v", err, res)
		}
	}
}

// BenchmarkCheck200LinesParallel is the same with every core busy.
func BenchmarkCheck200LinesParallel(b *testing.B) {
	pol := defaultPolicy(b)
	src, err := os.ReadFile(filepath.Join("testdata", "bench", "script200.py"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := pol.Check(context.Background(), src, analysis.Options{}); err != nil {
				b.Error(err)
			}
		}
	})
}

// BenchmarkJudge200Lines measures everything after fact extraction: the
// built-in and CEL rules, the verdict and the protobuf response, over the
// facts of the 200-line script extracted once.
func BenchmarkJudge200Lines(b *testing.B) {
	pol := defaultPolicy(b)
	src, err := os.ReadFile(filepath.Join("testdata", "bench", "script200.py"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	facts, err := analysis.Analyze(ctx, src, analysis.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res := pol.Judge(ctx, facts, src)
		if res.Verdict != analysis.Allow {
			b.Fatalf("verdict %v", res.Verdict)
		}
		CheckResponsePB(pol, res, MaxFindings)
	}
}
