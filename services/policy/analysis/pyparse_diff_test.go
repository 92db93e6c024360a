//go:build cgo

package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/services/policy/analysis/internal/tsoracle"
)

// The Go parser claims to be as exact as tree-sitter-python: these tests
// compare its trees with tree-sitter's, and its verdicts with CPython
// 3.11's, over the policy corpora and real-world code.

// pnodeView is one node as the analyser can see it.
type pnodeView struct {
	name       string // tree-sitter type of a named node; "" for a token
	kind       kind
	field      field
	start, end uint32
	children   []*pnodeView
}

// visible reports whether the analyser can observe a node: named nodes
// but comments, the "+" and "/" tokens, and tokens filling its fields.
func visible(named bool, k kind, f field) bool {
	return named && k != kComment || k == kKeywordPlus || k == kKeywordSlash || f != fNone
}

// viewOracle projects tree-sitter's tree.
func viewOracle(ot *tsoracle.Tree) *pnodeView {
	g, tb := tsoracle.Python(), loadTSTables()
	var rec func(i int32) *pnodeView
	rec = func(i int32) *pnodeView {
		n := &ot.Nodes[i]
		v := &pnodeView{kind: tb.kinds[n.Sym], field: tb.fields[n.Field], start: n.Start, end: n.End}
		if g.Named[n.Sym] {
			v.name = g.Types[n.Sym]
		}
		for c := n.FirstChild; c >= 0; c = ot.Nodes[c].NextSibling {
			cn := &ot.Nodes[c]
			if visible(g.Named[cn.Sym], tb.kinds[cn.Sym], tb.fields[cn.Field]) {
				v.children = append(v.children, rec(c))
			}
		}
		return v
	}
	return rec(0)
}

// viewGo projects the Go parser's tree; syms are its nodes' types.
func viewGo(t *tree, syms []sym) *pnodeView {
	var rec func(i int32) *pnodeView
	rec = func(i int32) *pnodeView {
		n := &t.nodes[i]
		v := &pnodeView{kind: n.kind, field: n.field, start: n.start, end: n.end}
		if n.named {
			v.name = symNames[syms[i]]
		}
		for c := n.firstChild; c >= 0; c = t.nodes[c].nextSibling {
			cn := &t.nodes[c]
			if visible(cn.named, cn.kind, cn.field) {
				v.children = append(v.children, rec(c))
			}
		}
		return v
	}
	return rec(0)
}

// diffViews returns the first difference between two views, or "".
func diffViews(src []byte, want, got *pnodeView, path string) string {
	desc := func(v *pnodeView) string {
		name := v.name
		if name == "" {
			name = fmt.Sprintf("token(kind %d)", v.kind)
		}
		txt := string(src[v.start:v.end])
		if len(txt) > 40 {
			txt = txt[:40] + "…"
		}
		return fmt.Sprintf("%s field=%d [%d,%d) %q", name, v.field, v.start, v.end, txt)
	}
	if want.name != got.name || want.kind != got.kind || want.field != got.field || want.start != got.start || want.end != got.end {
		return fmt.Sprintf("%s: tree-sitter %s, Go %s", path, desc(want), desc(got))
	}
	for i := 0; i < len(want.children) || i < len(got.children); i++ {
		if i >= len(want.children) {
			return fmt.Sprintf("%s/%s: extra child %s", path, want.name, desc(got.children[i]))
		}
		if i >= len(got.children) {
			return fmt.Sprintf("%s/%s: missing child %s", path, want.name, desc(want.children[i]))
		}
		if d := diffViews(src, want.children[i], got.children[i], path+"/"+want.name); d != "" {
			return d
		}
	}
	return ""
}

// goParse runs the Go parser (without parse's recovery, so a panic
// fails the test) and returns its tree and the nodes' types in the same
// order.
func goParse(t testing.TB, src []byte) (*tree, []sym) {
	s := getScratch(context.Background(), src, parseLimits{maxNodes: 1 << 22, maxDepth: 1000, deadline: time.Now().Add(time.Minute)})
	defer putScratch(s)
	tr, err := s.p.run()
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tr, s.p.layoutSyms(0) // the module is the arena's first node
}

// layoutSyms lists the syms of the nodes under root in preorder.
func (p *parser) layoutSyms(root int32) []sym {
	var out []sym
	stack := []int32{root}
	for len(stack) > 0 && len(out) < p.maxNodes {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, p.nodes[n].sym)
		n0 := len(stack)
		for c := p.nodes[n].first; c >= 0; c = p.nodes[c].next {
			stack = append(stack, c)
		}
		for i, j := n0, len(stack)-1; i < j; i, j = i+1, j-1 {
			stack[i], stack[j] = stack[j], stack[i]
		}
	}
	return out
}

// splatAsPrimary reports tree-sitter's misparse of a starred attribute,
// call or subscript in some positions of a list, tuple or argument list:
// [*a.b] comes out as (*a).b, a list_splat as an attribute's object, while
// [x, *a.b] comes out right (and so does the Go parser, both times). Python
// never makes a splat a primary.
func splatAsPrimary(ot *tsoracle.Tree) bool {
	g := tsoracle.Python()
	for _, n := range ot.Nodes {
		if n.Parent < 0 || g.Types[n.Sym] != "list_splat" || ot.Nodes[n.Parent].FirstChild < 0 {
			continue
		}
		p := &ot.Nodes[n.Parent]
		if first := &ot.Nodes[p.FirstChild]; first.Start == n.Start && first.Sym == n.Sym {
			switch g.Types[p.Sym] {
			case "attribute", "call", "subscript":
				return true
			}
		}
	}
	return false
}

// compareTrees checks one CPython-valid source: the Go parser must accept
// it and, unless tree-sitter itself fails on it, build the same tree.
func compareTrees(t testing.TB, name string, src []byte) (tsFailed bool, diff string) {
	gt, syms := goParse(t, src)
	if gt.hasError || gt.truncated {
		return false, fmt.Sprintf("%s: Go parser rejects valid code: %s", name, errorLine(src, gt))
	}
	ot, err := tsoracle.Parse(src, time.Minute, 1<<22, 1000)
	if err != nil {
		return false, fmt.Sprintf("%s: tree-sitter: %v", name, err)
	}
	if ot.HasError || splatAsPrimary(ot) {
		return true, ""
	}
	if d := diffViews(src, viewOracle(ot), viewGo(gt, syms), ""); d != "" {
		return false, name + ": " + d
	}
	return false, ""
}

func errorLine(src []byte, t *tree) string {
	for _, n := range t.nodes {
		if n.kind == kError {
			li := newLineIndex(src)
			l, c := li.lineCol(int(n.start))
			txt := string(src[n.start:n.end])
			return fmt.Sprintf("line %d col %d: %q", l, c, txt)
		}
	}
	return "(no ERROR node)"
}

// cpythonVerdicts runs /usr/bin/python3 once and reports, per source,
// whether CPython 3.11's compile() accepts it.
func cpythonVerdicts(t testing.TB, srcs [][]byte) []bool {
	t.Helper()
	dir := t.TempDir()
	var list strings.Builder
	for i, s := range srcs {
		f := filepath.Join(dir, fmt.Sprintf("%d.py", i))
		if err := os.WriteFile(f, s, 0o600); err != nil {
			t.Fatal(err)
		}
		list.WriteString(f + "\n")
	}
	script := `
import sys, json, warnings
warnings.simplefilter("ignore")
out = []
for path in sys.stdin.read().split("\n"):
    if not path:
        continue
    with open(path, "rb") as f:
        data = f.read()
    try:
        compile(data.decode("utf-8"), path, "exec", dont_inherit=True)
        out.append(True)
    except (SyntaxError, ValueError, MemoryError, RecursionError, UnicodeDecodeError, OverflowError):
        out.append(False)
json.dump(out, sys.stdout)
`
	cmd := exec.Command("/usr/bin/python3", "-I", "-c", script)
	cmd.Stdin = strings.NewReader(list.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var verdicts []bool
	if err := json.Unmarshal(out, &verdicts); err != nil || len(verdicts) != len(srcs) {
		t.Fatalf("python3 verdicts: %v (%d of %d)", err, len(verdicts), len(srcs))
	}
	return verdicts
}

// corpusFiles lists the test corpus: the policy's test data, and either a
// deterministic sample of the system's Python sources or, with
// AIRLOCK_PARSER_FULL=1, all of them.
func corpusFiles(t testing.TB) []string {
	var files []string
	filepath.WalkDir("../testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".py") {
			files = append(files, path)
		}
		return nil
	})
	full := os.Getenv("AIRLOCK_PARSER_FULL") == "1"
	var system []string
	for _, root := range []string{"/usr/lib/python3.11", "/usr/lib/python3/dist-packages/pandas",
		"/usr/lib/python3/dist-packages/numpy", "/usr/lib/python3/dist-packages/openpyxl"} {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".py") {
				system = append(system, path)
			}
			return nil
		})
	}
	sort.Strings(system)
	if len(system) == 0 {
		t.Fatal("no Python sources under /usr/lib/python3.11: the differential tests need Debian's python3")
	}
	for _, f := range system {
		if full || hashOf(f)%20 == 0 {
			files = append(files, f)
		}
	}
	return files
}

func hashOf(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func readCorpus(t testing.TB) (names []string, srcs [][]byte) {
	for _, f := range corpusFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil || !utf8.Valid(src) || len(src) > 1<<20 {
			continue
		}
		names = append(names, f)
		srcs = append(srcs, src)
	}
	return names, srcs
}

// TestParserMatchesTreeSitter compares the trees on every file CPython
// accepts, and the verdicts on every file.
func TestParserMatchesTreeSitter(t *testing.T) {
	names, srcs := readCorpus(t)
	verdicts := cpythonVerdicts(t, srcs)
	var failures []string
	tsErrors, compared := 0, 0
	for i, src := range srcs {
		if !verdicts[i] {
			if gt, _ := goParse(t, src); !gt.hasError && !gt.truncated {
				failures = append(failures, names[i]+": CPython rejects it, the Go parser accepts it")
			}
			continue
		}
		tsFailed, d := compareTrees(t, names[i], src)
		if tsFailed {
			tsErrors++
		} else if d == "" {
			compared++
		}
		if d != "" {
			failures = append(failures, d)
		}
	}
	t.Logf("%d files: %d trees identical, %d where tree-sitter fails on valid code or misparses [*a.b] (Go accepts), %d failures",
		len(srcs), compared, tsErrors, len(failures))
	for i, f := range failures {
		if i == 30 {
			t.Errorf("... and %d more", len(failures)-30)
			break
		}
		t.Error(f)
	}
}

// mutations returns deterministic variants of the adversarial and benign
// corpora: perFile per file, each with a byte or a token-sized run deleted.
func mutations(perFile int) [][]byte {
	var files []string
	for _, dir := range []string{"adversarial", "benign"} {
		m, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.py"))
		files = append(files, m...)
	}
	sort.Strings(files)
	seed := uint32(1)
	rnd := func(n int) int {
		seed = seed*1664525 + 1013904223
		return int(seed>>8) % n
	}
	var srcs [][]byte
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil || len(src) < 2 {
			continue
		}
		for k := 0; k < perFile; k++ {
			i := rnd(len(src))
			n := 1 + rnd(3)
			if i+n > len(src) {
				n = len(src) - i
			}
			m := append(append([]byte{}, src[:i]...), src[i+n:]...)
			// Go has no Unicode name table: \N{...} names are not checked
			// (a known gap, documented at unicodeName).
			if utf8.Valid(m) && !strings.Contains(string(m), "\\N{") {
				srcs = append(srcs, m)
			}
		}
	}
	return srcs
}

// TestParserVerdictsMatchCPython checks accept/reject parity with CPython
// 3.11 on invalid snippets and on deterministic mutations of the policy
// corpora (a byte or a token-sized run deleted).
func TestParserVerdictsMatchCPython(t *testing.T) {
	srcs := [][]byte{}
	for _, s := range []string{
		"def f(:\n  pass\n", "x = (1,\n", "if x\n  pass\n", "return 1\n", "break\n", "yield x\n",
		"f() = 1\n", "del f()\n", "x = 1 +\n", "a b\n", "print 'x'\n",
		"class A:\n  return 1\n", "for x in y:\n  pass\n else:\n  pass\n", "  x = 1\n", "if x:\npass\n",
		"if x:\n\tpass\n        pass\n", "x = '\n", "x = '''\n", "f(x for x in y, 1)\n", "f(a=1, b)\n",
		"f(a=1, a=2)\n", "def f(a, a): pass\n", "def f(a=1, b): pass\n", "lambda: (yield)\n", "x = 0777\n",
		"x = 1_\n", "x = 1__0\n", "x = 0b2\n", "x = 1e\n", "x = \"\\x4\"\n", "x = b'é'\n", "x = 'a' b'b'\n",
		"from __future__ import braces\n", "x = 1\nfrom __future__ import annotations\n", "f'{}'\n", "f'{x!z}'\n",
		"f'{x'\n", "f'}'\n", "f'{lambda x: 1}'\n", "f'{a['b']}'\n", "async def f():\n  yield from x\n",
		"def f():\n  await x\n", "await x\n", "x := 1\n", "(*a)\n", "*a = 1\n", "a, *b, *c = d\n",
		"try:\n  pass\n", "try:\n  pass\nexcept:\n  pass\nexcept E:\n  pass\n", "with a as f(): pass\n",
		"match x:\n  case 1:\n    pass\n", "x = [i for i in range(3) if i else 0]\n", "import a.b as c.d\n",
		"from . import *\ndef f(): from os import *\n", "@x\nclass\n", "x = {**a: 1}\n", "x = (yield)\n",
		"nonlocal x\n", "def f(*): pass\n", "def f(*, **k): pass\n", "def f(/, a): pass\n", "x = 1 if y\n",
		"a = 1; ; b = 2\n", "x = a[]\n", "x = a.1\n", "x = not\n", "x = ...\n", "__debug__ = 1\n", "\\\n",
		"x = 1 \\ y\n", "if True:\n    x = 1\n  y = 2\n", "x = $\n", "x = `a`\n", "x = 1 <> 2\n", "exec 'x'\n",
		// names compare after NFKC: \uFB01 is the "fi" ligature, \uFF41 and
		// \uFF44 are fullwidth a and d
		"f(xfi=1, x\uFB01=2)\n", "f(\uFB01=1, fi=2)\n", "def f(a, \uFF41): pass\n", "lambda xa, x\uFF41: 0\n",
		"__\uFF44ebug__ = 1\n", "x.__\uFF44ebug__ = 1\n", "def f(**__\uFF44ebug__): pass\n", "f(__\uFF44ebug__=1)\n",
		"def f(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a1): pass\n",
		"def f(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11): pass\n",
	} {
		srcs = append(srcs, []byte(s))
	}
	srcs = append(srcs, mutations(4)...)
	verdicts := cpythonVerdicts(t, srcs)
	bad := 0
	for i, src := range srcs {
		gt, _ := goParse(t, src)
		goOK := !gt.hasError && !gt.truncated
		if goOK != verdicts[i] {
			bad++
			if bad <= 20 {
				t.Errorf("CPython accepts=%v, Go accepts=%v (%s):\n%s", verdicts[i], goOK, errorLine(src, gt), src)
			}
		}
	}
	t.Logf("%d sources, %d verdicts differ", len(srcs), bad)
}
