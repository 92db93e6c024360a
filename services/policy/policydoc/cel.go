package policydoc

import (
	"context"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/airlockhq/airlock/services/policy/analysis"
)

// CustomRule is a rule written in CEL over the extracted facts.
type CustomRule struct {
	ID       string
	Over     string
	Action   analysis.Verdict
	Severity analysis.Severity
	Message  string
	FixHint  string
	// Expr is the CEL source.
	Expr string
	prg  cel.Program
}

// factKinds are what a rule may range over, with the CEL shape of each.
var factKinds = []string{"calls", "imports", "refs", "reads", "writes", "deletes", "urls", "strings"}

var celEnv = func() *cel.Env {
	dyn := cel.MapType(cel.StringType, cel.DynType)
	env, err := cel.NewEnv(
		cel.Variable("fact", dyn),
		cel.Variable("facts", dyn),
		cel.ParserExpressionSizeLimit(4096),
		cel.ParserRecursionLimit(64),
	)
	if err != nil {
		panic(err) // fixed declarations; an error is a programming bug
	}
	return env
}()

func (p *parser) rules(n *yaml.Node, field string, pol *Policy) error {
	if n.Kind != yaml.SequenceNode {
		return p.errAt(n, field, "want a list, got a %s", kindName(n))
	}
	ids := map[string]bool{}
	for i, rn := range n.Content {
		rf := fmt.Sprintf("%s[%d]", field, i)
		r := &CustomRule{Action: analysis.Deny, Severity: analysis.High}
		var whenNode *yaml.Node
		err := p.mapping(rn, rf, map[string]func(*yaml.Node, string) error{
			"id": func(n *yaml.Node, f string) error {
				s, err := p.str(n, f)
				if err != nil {
					return err
				}
				if !strings.HasPrefix(s, "custom.") || !validIdentifier(strings.ReplaceAll(strings.TrimPrefix(s, "custom."), ".", "_")) {
					return p.errAt(n, f, "%q must look like custom.name (lower-case letters, digits, _ and -)", s)
				}
				if ids[s] {
					return p.errAt(n, f, "rule id %q is used twice", s)
				}
				ids[s] = true
				r.ID = s
				return nil
			},
			"over": func(n *yaml.Node, f string) error {
				s, err := p.str(n, f)
				if err != nil {
					return err
				}
				if s != "" && !contains(factKinds, s) {
					return p.errAt(n, f, "%q is not one of %s", s, strings.Join(factKinds, ", "))
				}
				r.Over = s
				return nil
			},
			"when": func(n *yaml.Node, f string) (err error) {
				whenNode = n
				r.Expr, err = p.str(n, f)
				return err
			},
			"action": func(n *yaml.Node, f string) (err error) {
				r.Action, err = p.verdict(n, f)
				return err
			},
			"severity": func(n *yaml.Node, f string) error {
				s, err := p.str(n, f)
				if err != nil {
					return err
				}
				sev, ok := analysis.ParseSeverity(s)
				if !ok {
					return p.errAt(n, f, "%q is not info, low, medium, high or critical", s)
				}
				r.Severity = sev
				return nil
			},
			"message": func(n *yaml.Node, f string) (err error) {
				r.Message, err = p.str(n, f)
				return err
			},
			"fix_hint": func(n *yaml.Node, f string) (err error) {
				r.FixHint, err = p.str(n, f)
				return err
			},
		})
		if err != nil {
			return err
		}
		switch {
		case r.ID == "":
			return p.errAt(rn, rf+".id", "missing")
		case whenNode == nil:
			return p.errAt(rn, rf+".when", "missing: a CEL expression that is true when the rule fires")
		case r.Message == "":
			return p.errAt(rn, rf+".message", "missing: say what is wrong, for a person")
		}
		ast, iss := celEnv.Compile(r.Expr)
		if iss != nil && iss.Err() != nil {
			return p.errAt(whenNode, rf+".when", "CEL: %s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
		}
		if ast.OutputType() != cel.BoolType {
			return p.errAt(whenNode, rf+".when", "CEL expression gives %s, want bool", ast.OutputType())
		}
		prg, err := celEnv.Program(ast, cel.CostLimit(pol.CostLimit), cel.InterruptCheckFrequency(100))
		if err != nil {
			return p.errAt(whenNode, rf+".when", "CEL: %v", err)
		}
		r.prg = prg
		pol.Rules = append(pol.Rules, r)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// evalCustom runs the custom rules. A rule that errors or runs out of its
// cost budget fires, so a hostile input cannot switch a rule off.
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
	for _, r := range p.Rules {
		items, spans := factsOf(f, r.Over)
		if r.Over == "" {
			items, spans = []map[string]any{nil}, []analysis.Span{{Pos: analysis.Pos{Line: 1, Column: 1}}}
		}
		for i, item := range items {
			vars := map[string]any{"facts": summary, "fact": item}
			if item == nil {
				vars["fact"] = map[string]any{}
			}
			val, det, err := r.prg.ContextEval(ctx, vars)
			if det != nil && det.ActualCost() != nil {
				cost := *det.ActualCost()
				if cost >= budget {
					budget = 0
				} else {
					budget -= cost
				}
			}
			fired, msg := false, r.Message
			switch {
			case err != nil:
				fired, msg = true, fmt.Sprintf("%s (the rule could not be evaluated: %v)", r.Message, err)
			case budget == 0:
				fired, msg = true, r.Message+" (the rule ran out of its evaluation budget)"
			default:
				b, ok := val.Value().(bool)
				fired = ok && b
			}
			if fired {
				out = append(out, analysis.Finding{Span: spans[i], RuleID: r.ID, Severity: r.Severity,
					Action: r.Action, Message: msg, FixHint: r.FixHint})
			}
			if budget == 0 {
				return out
			}
		}
	}
	return out
}

func values(vs []analysis.Value) ([]string, []bool) {
	s := make([]string, len(vs))
	b := make([]bool, len(vs))
	for i, v := range vs {
		s[i], b[i] = v.Text, v.Exact
	}
	return s, b
}

func posMap(sp analysis.Span, m map[string]any) map[string]any {
	m["line"] = int64(sp.Line)
	m["column"] = int64(sp.Column)
	m["snippet"] = sp.Snippet
	return m
}

// factsOf turns one kind of fact into CEL maps.
func factsOf(f *analysis.Facts, kind string) ([]map[string]any, []analysis.Span) {
	var items []map[string]any
	var spans []analysis.Span
	add := func(sp analysis.Span, m map[string]any) {
		items = append(items, posMap(sp, m))
		spans = append(spans, sp)
	}
	switch kind {
	case "calls":
		for _, c := range f.Calls {
			args, lit := values(c.Args)
			kw := make(map[string]string, len(c.Kwargs))
			for k, v := range c.Kwargs {
				if v.Exact {
					kw[k] = v.Text
				}
			}
			add(c.Span, map[string]any{"name": c.Name, "method": c.Method, "args": args, "literal": lit, "kwargs": kw})
		}
	case "imports":
		for _, imp := range f.Imports {
			add(imp.Span, map[string]any{"module": imp.Module, "names": append([]string{}, imp.Names...)})
		}
	case "refs":
		for _, r := range f.Refs {
			add(r.Span, map[string]any{"name": r.Name, "called": r.Called})
		}
	case "reads", "writes", "deletes":
		want := map[string]analysis.FileOpKind{"reads": analysis.FileRead, "writes": analysis.FileWrite, "deletes": analysis.FileDelete}[kind]
		for _, op := range f.FileOps {
			if op.Kind == want {
				add(op.Span, map[string]any{"path": op.Path.Text, "exact": op.Path.Exact, "known": op.Path.Known, "call": op.Call})
			}
		}
	case "urls":
		for _, u := range f.URLs {
			add(u.Span, map[string]any{"url": u.URL})
		}
	case "strings":
		for _, s := range f.Strings {
			add(s.Span, map[string]any{"value": s.Value})
		}
	}
	return items, spans
}
