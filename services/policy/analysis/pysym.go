package analysis

// sym is a node type of tree-sitter-python v0.23.6 that the Go parser
// builds; sAnon is any anonymous token kept because it fills a field or is
// "+" or "/".
type sym uint8

const (
	sAnon sym = iota
	sPlusTok
	sSlashTok
	sError
	sAliasedImport
	sArgumentList
	sAsPattern
	sAsPatternTarget
	sAssertStatement
	sAssignment
	sAttribute
	sAugmentedAssignment
	sAwait
	sBinaryOperator
	sBlock
	sBooleanOperator
	sBreakStatement
	sCall
	sCaseClause
	sCasePattern
	sClassDefinition
	sClassPattern
	sComparisonOperator
	sComplexPattern
	sConcatenatedString
	sConditionalExpression
	sContinueStatement
	sDecoratedDefinition
	sDecorator
	sDefaultParameter
	sDeleteStatement
	sDictPattern
	sDictionary
	sDictionaryComprehension
	sDictionarySplat
	sDictionarySplatPattern
	sDottedName
	sElifClause
	sEllipsis
	sElseClause
	sEscapeInterpolation
	sEscapeSequence
	sExceptClause
	sExceptGroupClause
	sExpressionList
	sExpressionStatement
	sFalse
	sFinallyClause
	sFloat
	sForInClause
	sForStatement
	sFormatExpression
	sFormatSpecifier
	sFunctionDefinition
	sFutureImportStatement
	sGeneratorExpression
	sGenericType
	sGlobalStatement
	sIdentifier
	sIfClause
	sIfStatement
	sImportFromStatement
	sImportPrefix
	sImportStatement
	sInteger
	sInterpolation
	sKeywordArgument
	sKeywordPattern
	sKeywordSeparator
	sLambda
	sLambdaParameters
	sLineContinuation
	sList
	sListComprehension
	sListPattern
	sListSplat
	sListSplatPattern
	sMatchStatement
	sMemberType
	sModule
	sNamedExpression
	sNone
	sNonlocalStatement
	sNotOperator
	sPair
	sParameters
	sParenthesizedExpression
	sPassStatement
	sPatternList
	sPositionalSeparator
	sRaiseStatement
	sRelativeImport
	sReturnStatement
	sSet
	sSetComprehension
	sSlice
	sSplatPattern
	sString
	sStringContent
	sStringEnd
	sStringStart
	sSubscript
	sTrue
	sTryStatement
	sTuple
	sTuplePattern
	sType
	sTypeConversion
	sTypeParameter
	sTypeAliasStatement
	sTypedDefaultParameter
	sTypedParameter
	sUnaryOperator
	sUnionPattern
	sUnionType
	sWhileStatement
	sWildcardImport
	sWithClause
	sWithItem
	sWithStatement
	sYield
	numSyms
)

// symNames are tree-sitter's names of the syms.
var symNames = [numSyms]string{
	sAnon: "", sPlusTok: "+", sSlashTok: "/", sError: "ERROR",
	sAliasedImport: "aliased_import", sArgumentList: "argument_list", sAsPattern: "as_pattern",
	sAsPatternTarget: "as_pattern_target", sAssertStatement: "assert_statement", sAssignment: "assignment",
	sAttribute: "attribute", sAugmentedAssignment: "augmented_assignment", sAwait: "await",
	sBinaryOperator: "binary_operator", sBlock: "block", sBooleanOperator: "boolean_operator",
	sBreakStatement: "break_statement", sCall: "call", sCaseClause: "case_clause", sCasePattern: "case_pattern",
	sClassDefinition: "class_definition", sClassPattern: "class_pattern", sComparisonOperator: "comparison_operator",
	sComplexPattern: "complex_pattern", sConcatenatedString: "concatenated_string",
	sConditionalExpression: "conditional_expression", sContinueStatement: "continue_statement",
	sDecoratedDefinition: "decorated_definition", sDecorator: "decorator", sDefaultParameter: "default_parameter",
	sDeleteStatement: "delete_statement", sDictPattern: "dict_pattern", sDictionary: "dictionary",
	sDictionaryComprehension: "dictionary_comprehension", sDictionarySplat: "dictionary_splat",
	sDictionarySplatPattern: "dictionary_splat_pattern", sDottedName: "dotted_name", sElifClause: "elif_clause",
	sEllipsis: "ellipsis", sElseClause: "else_clause", sEscapeInterpolation: "escape_interpolation",
	sEscapeSequence: "escape_sequence", sExceptClause: "except_clause", sExceptGroupClause: "except_group_clause",
	sExpressionList: "expression_list", sExpressionStatement: "expression_statement", sFalse: "false",
	sFinallyClause: "finally_clause", sFloat: "float", sForInClause: "for_in_clause", sForStatement: "for_statement",
	sFormatExpression: "format_expression", sFormatSpecifier: "format_specifier",
	sFunctionDefinition: "function_definition", sFutureImportStatement: "future_import_statement",
	sGeneratorExpression: "generator_expression", sGenericType: "generic_type", sGlobalStatement: "global_statement",
	sIdentifier: "identifier", sIfClause: "if_clause", sIfStatement: "if_statement",
	sImportFromStatement: "import_from_statement", sImportPrefix: "import_prefix", sImportStatement: "import_statement",
	sInteger: "integer", sInterpolation: "interpolation", sKeywordArgument: "keyword_argument",
	sKeywordPattern: "keyword_pattern", sKeywordSeparator: "keyword_separator", sLambda: "lambda",
	sLambdaParameters: "lambda_parameters", sLineContinuation: "line_continuation", sList: "list", sListComprehension: "list_comprehension",
	sListPattern: "list_pattern", sListSplat: "list_splat", sListSplatPattern: "list_splat_pattern",
	sMatchStatement: "match_statement", sMemberType: "member_type", sModule: "module",
	sNamedExpression: "named_expression", sNone: "none", sNonlocalStatement: "nonlocal_statement",
	sNotOperator: "not_operator", sPair: "pair", sParameters: "parameters",
	sParenthesizedExpression: "parenthesized_expression", sPassStatement: "pass_statement",
	sPatternList: "pattern_list", sPositionalSeparator: "positional_separator", sRaiseStatement: "raise_statement",
	sRelativeImport: "relative_import", sReturnStatement: "return_statement", sSet: "set",
	sSetComprehension: "set_comprehension", sSlice: "slice", sSplatPattern: "splat_pattern", sString: "string",
	sStringContent: "string_content", sStringEnd: "string_end", sStringStart: "string_start",
	sSubscript: "subscript", sTrue: "true", sTryStatement: "try_statement", sTuple: "tuple",
	sTuplePattern: "tuple_pattern", sType: "type", sTypeConversion: "type_conversion",
	sTypeParameter: "type_parameter", sTypeAliasStatement: "type_alias_statement", sTypedDefaultParameter: "typed_default_parameter",
	sTypedParameter: "typed_parameter", sUnaryOperator: "unary_operator", sUnionPattern: "union_pattern",
	sUnionType: "union_type", sWhileStatement: "while_statement", sWildcardImport: "wildcard_import",
	sWithClause: "with_clause", sWithItem: "with_item", sWithStatement: "with_statement", sYield: "yield",
}

// symKinds maps syms to the analyser's kinds.
var symKinds [numSyms]kind

func init() {
	for s := sym(0); s < numSyms; s++ {
		if k, ok := kindNames[symNames[s]]; ok {
			symKinds[s] = k
		}
	}
	symKinds[sAnon] = kOther
	symKinds[sPlusTok] = kKeywordPlus
	symKinds[sSlashTok] = kKeywordSlash
	symKinds[sError] = kError
}
