package policydoc

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
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
	// fields are the fields of `fact` the expression reads (allFields when
	// it uses fact as a whole); evaluation builds only these.
	fields factField
	// loops is set when the expression has a comprehension, the only
	// place CEL checks for cancellation; without one, Eval and ContextEval
	// do the same work and Eval skips setting up the context.
	loops bool
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
		r.fields, r.loops = inspectExpr(ast.NativeRep())
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

// factField is one field of a CEL fact map, as a bit.
type factField uint32

const (
	ffLine factField = 1 << iota
	ffColumn
	ffSnippet
	ffName
	ffMethod
	ffArgs
	ffLiteral
	ffKwargs
	ffModule
	ffNames
	ffCalled
	ffPath
	ffExact
	ffKnown
	ffCall
	ffURL
	ffValue

	allFields factField = 1<<32 - 1
)

// factFieldNames are the fields a fact map may hold, across all kinds.
var factFieldNames = map[string]factField{
	"line": ffLine, "column": ffColumn, "snippet": ffSnippet, "name": ffName, "method": ffMethod, "args": ffArgs,
	"literal": ffLiteral, "kwargs": ffKwargs, "module": ffModule, "names": ffNames, "called": ffCalled,
	"path": ffPath, "exact": ffExact, "known": ffKnown, "call": ffCall, "url": ffURL, "value": ffValue,
}

// inspectExpr returns the fields of `fact` a checked expression selects,
// or allFields when it uses `fact` any other way (as a whole, by index,
// or a comprehension variable of that name), and whether it has a
// comprehension. A fact map holding only the selected fields evaluates
// exactly as the full map: every selection finds the same value, and a
// field of no kind is missing from both.
func inspectExpr(a *celast.AST) (factField, bool) {
	var fields factField
	loops := false
	selected := map[int64]bool{}
	var idents []int64
	celast.PostOrderVisit(celast.NavigateAST(a), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.ComprehensionKind:
			loops = true
		case celast.IdentKind:
			if e.AsIdent() == "fact" {
				idents = append(idents, e.ID())
			}
		case celast.SelectKind:
			sel := e.AsSelect()
			if op := sel.Operand(); op.Kind() == celast.IdentKind && op.AsIdent() == "fact" {
				selected[op.ID()] = true
				fields |= factFieldNames[sel.FieldName()]
			}
		}
	}))
	for _, id := range idents {
		if !selected[id] {
			return allFields, loops
		}
	}
	return fields, loops
}
