//go:build cgo

package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/services/policy/analysis/internal/tsoracle"
)

// TestFactsMatchTreeSitter runs the whole analysis on the tree-sitter tree
// and on the Go parser's tree of every file CPython accepts (the policy
// corpora, mutations of them that stay valid, and the system Python
// sample) and requires the same Facts. A
// file tree-sitter itself fails on, or misparses (splatAsPrimary), is
// counted, not compared: its facts carry tree-sitter's fault.
func TestFactsMatchTreeSitter(t *testing.T) {
	names, srcs := readCorpus(t)
	for i, m := range mutations(8) {
		names = append(names, fmt.Sprintf("mutation %d", i))
		srcs = append(srcs, m)
	}
	verdicts := cpythonVerdicts(t, srcs)
	compared, tsFailed, rejected := 0, 0, 0
	var failures []string
	for i, src := range srcs {
		if !verdicts[i] {
			rejected++
			continue
		}
		ot, err := tsoracle.Parse(src, defaultOptions.Timeout, defaultOptions.MaxNodes, defaultOptions.MaxDepth)
		if err != nil {
			t.Fatalf("%s: tree-sitter: %v", names[i], err)
		}
		if ot.HasError || splatAsPrimary(ot) {
			tsFailed++
			continue
		}
		want, err := analyze(context.Background(), src, Options{}, parseTS)
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		got, err := analyze(context.Background(), src, Options{}, parse)
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		if d := factsDiff(want, got); d != "" {
			failures = append(failures, names[i]+": "+d)
			continue
		}
		compared++
	}
	t.Logf("%d files: %d with identical facts, %d rejected by CPython, %d where tree-sitter fails on valid code or misparses [*a.b], %d differ",
		len(srcs), compared, rejected, tsFailed, len(failures))
	if compared < 100 {
		t.Errorf("only %d files compared", compared)
	}
	for i, f := range failures {
		if i == 20 {
			t.Errorf("... and %d more", len(failures)-20)
			break
		}
		t.Error(f)
	}
}

var defaultOptions = Options{}.withDefaults()

// factsDiff names the first field of Facts that differs, with the first
// differing entry, or returns "".
func factsDiff(want, got *Facts) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	wv, gv := reflect.ValueOf(want).Elem(), reflect.ValueOf(got).Elem()
	for i := 0; i < wv.NumField(); i++ {
		name := wv.Type().Field(i).Name
		w, g := wv.Field(i), gv.Field(i)
		if reflect.DeepEqual(w.Interface(), g.Interface()) {
			continue
		}
		if w.Kind() != reflect.Slice {
			return fmt.Sprintf("%s: tree-sitter %v, Go %v", name, w.Interface(), g.Interface())
		}
		for j := 0; j < w.Len() || j < g.Len(); j++ {
			switch {
			case j >= w.Len():
				return fmt.Sprintf("%s[%d]: Go has an extra %s", name, j, jsonOf(g.Index(j).Interface()))
			case j >= g.Len():
				return fmt.Sprintf("%s[%d]: Go lacks %s", name, j, jsonOf(w.Index(j).Interface()))
			case !reflect.DeepEqual(w.Index(j).Interface(), g.Index(j).Interface()):
				return fmt.Sprintf("%s[%d]: tree-sitter %s, Go %s", name, j, jsonOf(w.Index(j).Interface()), jsonOf(g.Index(j).Interface()))
			}
		}
	}
	return "facts differ"
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestFactsCorpusIsPolicyTestdata guards the corpus: the adversarial and
// benign files are in it.
func TestFactsCorpusIsPolicyTestdata(t *testing.T) {
	names, _ := readCorpus(t)
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, dir := range []string{"adversarial", "benign", "bench"} {
		m, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.py"))
		if len(m) == 0 {
			t.Errorf("no sources in ../testdata/%s", dir)
		}
		for _, f := range m {
			src, err := os.ReadFile(f)
			if err != nil || !utf8.Valid(src) {
				continue
			}
			if !have[f] {
				t.Errorf("%s is not in the differential corpus", f)
			}
		}
	}
}

// TestSplatAsPrimary pins the tree-sitter misparse the differential tests
// set aside, so they stop setting it aside if a new grammar fixes it.
func TestSplatAsPrimary(t *testing.T) {
	for src, want := range map[string]bool{
		"[*a.b]\n": true, "f(*a.b())\n": false, "x = *a.b, c\n": true, "[x, *a.b]\n": false, "[*a]\n": false,
		"f(*a)\n": false, "a[*b]\n": false, "print(*sys.version.split())\n": false,
		"print(\"==\", f(), *sys.version.split())\n": true,
	} {
		ot, err := tsoracle.Parse([]byte(src), time.Second, 1000, 100)
		if err != nil || ot.HasError {
			t.Fatalf("%q: tree-sitter: %v", src, err)
		}
		if got := splatAsPrimary(ot); got != want {
			t.Errorf("splatAsPrimary(%q) = %v, want %v", src, got, want)
		}
	}
}
