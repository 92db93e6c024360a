package analysis

/*
#include <stdlib.h>
#include "tsbridge.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
	"unsafe"

	sitter "github.com/tree-sitter/go-tree-sitter"
	python "github.com/tree-sitter/tree-sitter-python/bindings/go"
)

// kind is a node type of the Python grammar that the analyser cares about;
// every other type is kOther.
type kind uint8

const (
	kOther kind = iota
	kError
	kModule
	kIdentifier
	kAttribute
	kCall
	kArgumentList
	kKeywordArgument
	kListSplat
	kDictSplat
	kString
	kStringStart
	kStringContent
	kEscapeSequence
	kEscapeInterpolation
	kInterpolation
	kConcatenatedString
	kBinaryOperator
	kParenthesized
	kAssignment
	kAugAssignment
	kNamedExpression
	kImport
	kImportFrom
	kFutureImport
	kAliasedImport
	kDottedName
	kRelativeImport
	kWildcardImport
	kFor
	kWhile
	kBreak
	kReturn
	kRaise
	kFunctionDef
	kClassDef
	kLambda
	kTrue
	kFalse
	kNone
	kInteger
	kPrintStatement
	kExecStatement
	kComment
	kSubscript
	kPatternList
	kTuple
	kList
	kWith
	kAsPattern
	kAsPatternTarget
	kGenerator
	kListComprehension
	kForInClause
	kKeywordPlus  // the "+" token
	kKeywordSlash // the "/" token
	kDecorator
	kParameters
	kYield
	kDefaultParameter
	kTypedParameter
	kTypedDefaultParameter
	kListSplatPattern
	kDictSplatPattern
	kDelete
	kExceptClause
	kLambdaParameters
	kGlobal
	kNonlocal
	kTuplePattern
	kListPattern
	kExpressionList
	kDictionary
	kPair
	kSet
	kWithItem
	numKinds
)

var kindNames = map[string]kind{
	"ERROR":                    kError,
	"module":                   kModule,
	"identifier":               kIdentifier,
	"attribute":                kAttribute,
	"call":                     kCall,
	"argument_list":            kArgumentList,
	"keyword_argument":         kKeywordArgument,
	"list_splat":               kListSplat,
	"dictionary_splat":         kDictSplat,
	"string":                   kString,
	"string_start":             kStringStart,
	"string_content":           kStringContent,
	"escape_sequence":          kEscapeSequence,
	"escape_interpolation":     kEscapeInterpolation,
	"interpolation":            kInterpolation,
	"concatenated_string":      kConcatenatedString,
	"binary_operator":          kBinaryOperator,
	"parenthesized_expression": kParenthesized,
	"assignment":               kAssignment,
	"augmented_assignment":     kAugAssignment,
	"named_expression":         kNamedExpression,
	"import_statement":         kImport,
	"import_from_statement":    kImportFrom,
	"future_import_statement":  kFutureImport,
	"aliased_import":           kAliasedImport,
	"dotted_name":              kDottedName,
	"relative_import":          kRelativeImport,
	"wildcard_import":          kWildcardImport,
	"for_statement":            kFor,
	"while_statement":          kWhile,
	"break_statement":          kBreak,
	"return_statement":         kReturn,
	"raise_statement":          kRaise,
	"function_definition":      kFunctionDef,
	"class_definition":         kClassDef,
	"lambda":                   kLambda,
	"true":                     kTrue,
	"false":                    kFalse,
	"none":                     kNone,
	"integer":                  kInteger,
	"print_statement":          kPrintStatement,
	"exec_statement":           kExecStatement,
	"comment":                  kComment,
	"subscript":                kSubscript,
	"pattern_list":             kPatternList,
	"tuple":                    kTuple,
	"list":                     kList,
	"with_statement":           kWith,
	"as_pattern":               kAsPattern,
	"as_pattern_target":        kAsPatternTarget,
	"generator_expression":     kGenerator,
	"list_comprehension":       kListComprehension,
	"for_in_clause":            kForInClause,
	"decorator":                kDecorator,
	"parameters":               kParameters,
	"yield":                    kYield,
	"default_parameter":        kDefaultParameter,
	"typed_parameter":          kTypedParameter,
	"typed_default_parameter":  kTypedDefaultParameter,
	"list_splat_pattern":       kListSplatPattern,
	"dictionary_splat_pattern": kDictSplatPattern,
	"delete_statement":         kDelete,
	"except_clause":            kExceptClause,
	"lambda_parameters":        kLambdaParameters,
	"global_statement":         kGlobal,
	"nonlocal_statement":       kNonlocal,
	"tuple_pattern":            kTuplePattern,
	"list_pattern":             kListPattern,
	"expression_list":          kExpressionList,
	"dictionary":               kDictionary,
	"pair":                     kPair,
	"set":                      kSet,
	"with_item":                kWithItem,
}

// field is a grammar field name the analyser reads.
type field uint8

const (
	fNone field = iota
	fFunction
	fArguments
	fObject
	fAttribute
	fName
	fValue
	fAlias
	fModuleName
	fLeft
	fRight
	fOperator
	fBody
	fCondition
	fExpression
	fCode
	fParameters
	fDefinition
	numFields
)

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

// grammar holds the Python language and lookup tables from its symbol and
// field ids to the analyser's kinds and fields, built once.
type grammar struct {
	lang   *sitter.Language
	kinds  []kind
	named  []bool
	fields []field
}

var (
	grammarOnce sync.Once
	pyGrammar   grammar
	// parsers holds idle C parsers; a channel rather than a sync.Pool so a
	// parser is never dropped without being freed.
	parsers = make(chan unsafe.Pointer, 4*runtime.GOMAXPROCS(0))
)

func loadGrammar() *grammar {
	grammarOnce.Do(func() {
		C.al_use_libc_allocator()
		lang := sitter.NewLanguage(python.Language())
		n := lang.NodeKindCount()
		pyGrammar.lang = lang
		pyGrammar.kinds = make([]kind, 1<<16)
		pyGrammar.named = make([]bool, 1<<16)
		for id := uint32(0); id < n; id++ {
			pyGrammar.named[id] = lang.NodeKindIsNamed(uint16(id))
			name := lang.NodeKindForId(uint16(id))
			if k, ok := kindNames[name]; ok && (lang.NodeKindIsNamed(uint16(id)) || name == "ERROR") {
				pyGrammar.kinds[id] = k
			}
			if !lang.NodeKindIsNamed(uint16(id)) {
				switch name {
				case "+":
					pyGrammar.kinds[id] = kKeywordPlus
				case "/":
					pyGrammar.kinds[id] = kKeywordSlash
				}
			}
		}
		pyGrammar.kinds[0xFFFF] = kError // ts_builtin_sym_error
		pyGrammar.fields = make([]field, lang.FieldCount()+1)
		for id := uint32(1); id <= lang.FieldCount(); id++ {
			if f, ok := fieldNames[lang.FieldNameForId(uint16(id))]; ok {
				pyGrammar.fields[id] = f
			}
		}
	})
	return &pyGrammar
}

// node is one syntax node copied out of tree-sitter into Go memory, so the
// analysis walks plain structs instead of making a cgo call per question.
type node struct {
	kind        kind
	field       field // the field this node fills in its parent
	named       bool
	missing     bool
	start, end  uint32
	parent      int32
	firstChild  int32
	nextSibling int32
}

// tree is a parsed module: its nodes in an arena (index 0 is the root),
// parents before children.
type tree struct {
	src      []byte
	nodes    []node
	hasError bool
	// truncated is set when the node or depth cap stopped the copy.
	truncated bool
}

// parseLimits bound the work one parse may do.
type parseLimits struct {
	maxNodes int
	maxDepth int
	deadline time.Time
}

// parseCancelled reports a parse stopped by its deadline or context.
type parseCancelled struct{}

func (parseCancelled) Error() string { return "parse cancelled: time limit reached" }

func getParser() unsafe.Pointer {
	select {
	case p := <-parsers:
		return p
	default:
	}
	p := C.al_parser_new(python.Language())
	if p == nil {
		panic("tree-sitter: cannot load the Python grammar") // a build bug: ABI mismatch
	}
	return p
}

func putParser(p unsafe.Pointer) {
	select {
	case parsers <- p:
	default:
		C.al_parser_delete(p)
	}
}

// parse runs tree-sitter over src and copies the tree out in one cgo call.
// It returns parseCancelled when the deadline or ctx stops it.
func parse(ctx context.Context, src []byte, lim parseLimits) (*tree, error) {
	g := loadGrammar()
	if ctx.Err() != nil {
		return nil, parseCancelled{}
	}
	timeout := time.Until(lim.deadline)
	if timeout <= 0 {
		return nil, parseCancelled{}
	}
	p := getParser()
	defer putParser(p)
	buf := src
	if len(buf) == 0 {
		buf = []byte{0}
	}
	r := C.al_parse(p, (*C.char)(unsafe.Pointer(&buf[0])), C.uint32_t(len(src)), C.int64_t(timeout),
		C.int32_t(lim.maxNodes), C.int32_t(lim.maxDepth))
	runtime.KeepAlive(buf)
	if r.cancelled != 0 {
		return nil, parseCancelled{}
	}
	defer C.free(unsafe.Pointer(r.nodes))
	cn := unsafe.Slice(r.nodes, int(r.count))
	t := &tree{src: src, hasError: r.has_error != 0, truncated: r.truncated != 0, nodes: make([]node, len(cn))}
	for i := range cn {
		c := &cn[i]
		k := g.kinds[c.symbol]
		nd := node{kind: k, start: uint32(c.start), end: uint32(c.end), missing: c.missing != 0,
			named: k == kError || g.named[c.symbol], parent: int32(c.parent),
			firstChild: int32(c.first_child), nextSibling: int32(c.next_sibling)}
		if int(c.field) < len(g.fields) {
			nd.field = g.fields[c.field]
		}
		if nd.end > uint32(len(src)) {
			nd.end = uint32(len(src))
		}
		if nd.start > nd.end {
			nd.start = nd.end
		}
		t.nodes[i] = nd
	}
	return t, nil
}

// child returns the first child of n filling field f, or -1.
func (t *tree) child(n int32, f field) int32 {
	for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		if t.nodes[c].field == f {
			return c
		}
	}
	return -1
}

// children returns the named children of n.
func (t *tree) namedChildren(n int32) []int32 {
	var out []int32
	for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		if t.nodes[c].named && t.nodes[c].kind != kComment {
			out = append(out, c)
		}
	}
	return out
}

// text returns the source text of n.
func (t *tree) text(n int32) string {
	nd := &t.nodes[n]
	return string(t.src[nd.start:nd.end])
}

// kindOf returns the kind of n, or kOther for -1.
func (t *tree) kindOf(n int32) kind {
	if n < 0 {
		return kOther
	}
	return t.nodes[n].kind
}
