//go:build cgo

package analysis

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/services/policy/analysis/internal/tsoracle"
)

// The tree-sitter oracle (cgo) is for tests only: the differential tests
// compare the Go parser's trees and the facts drawn from them with
// tree-sitter's.

// fieldNames are tree-sitter's names of the fields the analyser reads.
var fieldNames = map[string]field{
	"function":    fFunction,
	"arguments":   fArguments,
	"object":      fObject,
	"attribute":   fAttribute,
	"name":        fName,
	"value":       fValue,
	"alias":       fAlias,
	"module_name": fModuleName,
	"left":        fLeft,
	"right":       fRight,
	"operator":    fOperator,
	"body":        fBody,
	"condition":   fCondition,
	"expression":  fExpression,
	"code":        fCode,
	"parameters":  fParameters,
	"definition":  fDefinition,
}

// tsTables map tree-sitter's symbol and field ids to the analyser's kinds
// and fields, built once.
type tsTables struct {
	kinds  []kind
	named  []bool
	fields []field
}

var (
	tsOnce  sync.Once
	tsTable tsTables
)

func loadTSTables() *tsTables {
	tsOnce.Do(func() {
		g := tsoracle.Python()
		tsTable.kinds = make([]kind, len(g.Types))
		tsTable.named = g.Named
		for id, name := range g.Types {
			if k, ok := kindNames[name]; ok && (g.Named[id] || name == "ERROR") {
				tsTable.kinds[id] = k
			}
			if !g.Named[id] {
				switch name {
				case "+":
					tsTable.kinds[id] = kKeywordPlus
				case "/":
					tsTable.kinds[id] = kKeywordSlash
				}
			}
		}
		tsTable.fields = make([]field, len(g.Fields))
		for id, name := range g.Fields {
			if f, ok := fieldNames[name]; ok {
				tsTable.fields[id] = f
			}
		}
	})
	return &tsTable
}

// parseTS parses src with tree-sitter (the oracle) into the analyser's tree.
func parseTS(ctx context.Context, src []byte, lim parseLimits) (*tree, error) {
	g := loadTSTables()
	if ctx.Err() != nil {
		return nil, parseCancelled{}
	}
	ot, err := tsoracle.Parse(src, time.Until(lim.deadline), lim.maxNodes, lim.maxDepth)
	if err != nil {
		return nil, parseCancelled{}
	}
	t := &tree{src: src, hasError: ot.HasError, truncated: ot.Truncated, nodes: make([]node, len(ot.Nodes))}
	for i := range ot.Nodes {
		c := &ot.Nodes[i]
		k := g.kinds[c.Sym]
		t.nodes[i] = node{kind: k, field: g.fields[c.Field], start: c.Start, end: c.End, missing: c.Missing,
			named: k == kError || g.named[c.Sym], parent: c.Parent, firstChild: c.FirstChild, nextSibling: c.NextSibling}
	}
	return t, nil
}

// BenchmarkParseTreeSitter200Lines measures the tree-sitter oracle plus
// the copy into the analyser's tree.
func BenchmarkParseTreeSitter200Lines(b *testing.B) {
	src, err := os.ReadFile("../testdata/bench/script200.py")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseTS(context.Background(), src, parseLimits{maxNodes: 1 << 20, maxDepth: 400, deadline: time.Now().Add(time.Second)}); err != nil {
			b.Fatal(err)
		}
	}
}
