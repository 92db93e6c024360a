package policydoc

import (
	"context"
	"encoding/binary"
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"

	"github.com/airlockhq/airlock/services/policy/analysis"
)

// posFields are the fields that place a fact; a rule reading one sees a
// different fact every time.
const posFields = ffLine | ffColumn | ffSnippet

// evalResult is what one evaluation of a rule gave.
type evalResult struct {
	val     ref.Val
	err     error
	cost    uint64
	hasCost bool
}

// evalCustom runs the custom rules. A rule that errors or runs out of its
// cost budget fires, so a hostile input cannot switch a rule off.
//
// A rule without comprehensions is a pure function of the fact fields it
// reads (and of the summary, the same for the whole check), so facts that
// agree on those fields share one evaluation, its result and its cost:
// `fact.name == "input"` is evaluated once per distinct callee, not once
// per call.
func (p *Policy) evalCustom(ctx context.Context, f *analysis.Facts) []analysis.Finding {
	if len(p.Rules) == 0 {
		return nil
	}
	summary := map[string]any{"lines": int64(f.Lines)}
	mods := make([]string, 0, len(f.Imports))
	for _, imp := range f.Imports {
		mods = append(mods, imp.Module)
	}
	summary["imports"] = mods
	calls := make([]string, 0, len(f.Calls))
	for _, c := range f.Calls {
		if c.Name != "" {
			calls = append(calls, c.Name)
		}
	}
	summary["calls"] = calls
	var out []analysis.Finding
	budget := p.CostLimit
	// One activation and one fact map serve every evaluation of a rule:
	// each fact of a kind sets the same fields, and CEL keeps neither after
	// the evaluation.
	fact := make(map[string]any, 8)
	vars := map[string]any{"facts": summary, "fact": fact}
	var key []byte
	for _, r := range p.Rules {
		clear(fact)
		var memo map[string]evalResult
		if !r.loops && r.fields&(posFields|ffKwargs) == 0 {
			memo = make(map[string]evalResult, min(factCount(f, r.Over)/2, 512))
		}
		stop := false
		visit := func(sp analysis.Span, x factRef) bool {
			var res evalResult
			hit := false
			if memo != nil {
				key = x.appendKey(key[:0], r.fields)
				res, hit = memo[string(key)]
			}
			if !hit {
				x.fill(fact, r.fields)
				res = r.eval(ctx, vars)
				if memo != nil {
					memo[string(key)] = res
				}
			}
			if res.hasCost {
				if res.cost >= budget {
					budget = 0
				} else {
					budget -= res.cost
				}
			}
			fired, msg := false, r.Message
			switch {
			case res.err != nil:
				fired, msg = true, fmt.Sprintf("%s (the rule could not be evaluated: %v)", r.Message, res.err)
			case budget == 0:
				fired, msg = true, r.Message+" (the rule ran out of its evaluation budget)"
			default:
				b, ok := res.val.Value().(bool)
				fired = ok && b
			}
			if fired {
				out = append(out, analysis.Finding{Span: sp, RuleID: r.ID, Severity: r.Severity,
					Action: r.Action, Message: msg, FixHint: r.FixHint})
			}
			stop = budget == 0
			return !stop
		}
		if r.Over == "" {
			visit(analysis.Span{Pos: analysis.Pos{Line: 1, Column: 1}}, factRef{})
		} else {
			eachFact(f, r.Over, visit)
		}
		if stop {
			return out
		}
	}
	return out
}

// eval runs the rule once. Only a comprehension checks for cancellation,
// so a rule without one runs with Eval, sparing ContextEval's set-up.
func (r *CustomRule) eval(ctx context.Context, vars map[string]any) evalResult {
	var res evalResult
	var det *cel.EvalDetails
	if r.loops {
		res.val, det, res.err = r.prg.ContextEval(ctx, vars)
	} else {
		res.val, det, res.err = r.prg.Eval(vars)
	}
	if det != nil && det.ActualCost() != nil {
		res.cost, res.hasCost = *det.ActualCost(), true
	}
	return res
}

// factRef is one fact of a kind: the i-th call, import, reference, file
// operation, URL or string.
type factRef struct {
	f    *analysis.Facts
	kind string
	i    int
}

// eachFact calls fn with each fact of one kind and its place until fn
// returns false.
func eachFact(f *analysis.Facts, kind string, fn func(analysis.Span, factRef) bool) {
	each := func(n int, span func(int) analysis.Span) {
		for i := range n {
			if !fn(span(i), factRef{f: f, kind: kind, i: i}) {
				return
			}
		}
	}
	switch kind {
	case "calls":
		each(len(f.Calls), func(i int) analysis.Span { return f.Calls[i].Span })
	case "imports":
		each(len(f.Imports), func(i int) analysis.Span { return f.Imports[i].Span })
	case "refs":
		each(len(f.Refs), func(i int) analysis.Span { return f.Refs[i].Span })
	case "reads", "writes", "deletes":
		opKind := fileOpKinds[kind]
		for i := range f.FileOps {
			if f.FileOps[i].Kind == opKind && !fn(f.FileOps[i].Span, factRef{f: f, kind: kind, i: i}) {
				return
			}
		}
	case "urls":
		each(len(f.URLs), func(i int) analysis.Span { return f.URLs[i].Span })
	case "strings":
		each(len(f.Strings), func(i int) analysis.Span { return f.Strings[i].Span })
	}
}

// factCount returns how many facts of a kind there are.
func factCount(f *analysis.Facts, kind string) int {
	switch kind {
	case "calls":
		return len(f.Calls)
	case "imports":
		return len(f.Imports)
	case "refs":
		return len(f.Refs)
	case "reads", "writes", "deletes":
		return len(f.FileOps)
	case "urls":
		return len(f.URLs)
	case "strings":
		return len(f.Strings)
	}
	return 0
}

var fileOpKinds = map[string]analysis.FileOpKind{"reads": analysis.FileRead, "writes": analysis.FileWrite, "deletes": analysis.FileDelete}

func values(vs []analysis.Value) ([]string, []bool) {
	s := make([]string, len(vs))
	b := make([]bool, len(vs))
	for i, v := range vs {
		s[i], b[i] = v.Text, v.Exact
	}
	return s, b
}

// fill sets m to the fact's wanted fields, in the CEL shapes the rules
// see; a kind always sets the same fields, so nothing stale is left.
func (x factRef) fill(m map[string]any, want factField) {
	var sp analysis.Span
	switch x.kind {
	case "":
		return
	case "calls":
		c := &x.f.Calls[x.i]
		sp = c.Span
		if want&ffName != 0 {
			m["name"] = c.Name
		}
		if want&ffMethod != 0 {
			m["method"] = c.Method
		}
		if want&(ffArgs|ffLiteral) != 0 {
			args, lit := values(c.Args)
			if want&ffArgs != 0 {
				m["args"] = args
			}
			if want&ffLiteral != 0 {
				m["literal"] = lit
			}
		}
		if want&ffKwargs != 0 {
			kw := make(map[string]string, len(c.Kwargs))
			for k, v := range c.Kwargs {
				if v.Exact {
					kw[k] = v.Text
				}
			}
			m["kwargs"] = kw
		}
	case "imports":
		imp := &x.f.Imports[x.i]
		sp = imp.Span
		if want&ffModule != 0 {
			m["module"] = imp.Module
		}
		if want&ffNames != 0 {
			m["names"] = append([]string{}, imp.Names...)
		}
	case "refs":
		r := &x.f.Refs[x.i]
		sp = r.Span
		if want&ffName != 0 {
			m["name"] = r.Name
		}
		if want&ffCalled != 0 {
			m["called"] = r.Called
		}
	case "reads", "writes", "deletes":
		op := &x.f.FileOps[x.i]
		sp = op.Span
		if want&ffPath != 0 {
			m["path"] = op.Path.Text
		}
		if want&ffExact != 0 {
			m["exact"] = op.Path.Exact
		}
		if want&ffKnown != 0 {
			m["known"] = op.Path.Known
		}
		if want&ffCall != 0 {
			m["call"] = op.Call
		}
	case "urls":
		u := &x.f.URLs[x.i]
		sp = u.Span
		if want&ffURL != 0 {
			m["url"] = u.URL
		}
	case "strings":
		s := &x.f.Strings[x.i]
		sp = s.Span
		if want&ffValue != 0 {
			m["value"] = s.Value
		}
	}
	if want&ffLine != 0 {
		m["line"] = int64(sp.Line)
	}
	if want&ffColumn != 0 {
		m["column"] = int64(sp.Column)
	}
	if want&ffSnippet != 0 {
		m["snippet"] = sp.Snippet
	}
}

// appendKey appends an encoding of the fact's wanted fields (other than
// its place and keyword arguments) to b: two facts of a kind with the same
// key fill the same map.
func (x factRef) appendKey(b []byte, want factField) []byte {
	str := func(b []byte, s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	flag := func(b []byte, v bool) []byte {
		if v {
			return append(b, 1)
		}
		return append(b, 0)
	}
	switch x.kind {
	case "calls":
		c := &x.f.Calls[x.i]
		if want&ffName != 0 {
			b = str(b, c.Name)
		}
		if want&ffMethod != 0 {
			b = str(b, c.Method)
		}
		if want&(ffArgs|ffLiteral) != 0 {
			b = binary.AppendUvarint(b, uint64(len(c.Args)))
			for _, a := range c.Args {
				b = flag(str(b, a.Text), a.Exact)
			}
		}
	case "imports":
		imp := &x.f.Imports[x.i]
		if want&ffModule != 0 {
			b = str(b, imp.Module)
		}
		if want&ffNames != 0 {
			b = binary.AppendUvarint(b, uint64(len(imp.Names)))
			for _, n := range imp.Names {
				b = str(b, n)
			}
		}
	case "refs":
		r := &x.f.Refs[x.i]
		if want&ffName != 0 {
			b = str(b, r.Name)
		}
		if want&ffCalled != 0 {
			b = flag(b, r.Called)
		}
	case "reads", "writes", "deletes":
		op := &x.f.FileOps[x.i]
		if want&ffPath != 0 {
			b = str(b, op.Path.Text)
		}
		if want&ffExact != 0 {
			b = flag(b, op.Path.Exact)
		}
		if want&ffKnown != 0 {
			b = flag(b, op.Path.Known)
		}
		if want&ffCall != 0 {
			b = str(b, op.Call)
		}
	case "urls":
		b = str(b, x.f.URLs[x.i].URL)
	case "strings":
		b = str(b, x.f.Strings[x.i].Value)
	}
	return b
}
