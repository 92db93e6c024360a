package analysis

import "time"

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

// node is one syntax node: tree-sitter-python's node types and fields,
// built by the Go parser (pyparse.go) in an arena of plain structs.
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

// child returns the first child of n filling field f, or -1.
func (t *tree) child(n int32, f field) int32 {
	for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		if t.nodes[c].field == f {
			return c
		}
	}
	return -1
}

// kindOf returns the kind of n, or kOther for -1.
func (t *tree) kindOf(n int32) kind {
	if n < 0 {
		return kOther
	}
	return t.nodes[n].kind
}
