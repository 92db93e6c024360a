package analysis

// Statements.

// statement parses one statement (or a line of simple statements) into
// parent.
func (p *parser) statement(parent int32) {
	if !p.enter() {
		return
	}
	defer p.leave()
	switch p.tok.kind {
	case tIf:
		p.ifStatement(parent)
	case tWhile:
		p.whileStatement(parent)
	case tFor:
		p.forStatement(parent, -1)
	case tTry:
		p.tryStatement(parent)
	case tWith:
		p.withStatement(parent, -1)
	case tDef:
		p.add(parent, p.funcDef(-1), fNone)
	case tClass:
		p.add(parent, p.classDef(), fNone)
	case tAt:
		p.decorated(parent)
	case tAsync:
		start := p.tok
		p.advance()
		switch p.tok.kind {
		case tDef:
			p.add(parent, p.funcDef(int32(start.start)), fNone)
		case tFor:
			if p.asyncDepth == 0 {
				p.failAt(int(start.start))
				return
			}
			p.forStatement(parent, int32(start.start))
		case tWith:
			if p.asyncDepth == 0 {
				p.failAt(int(start.start))
				return
			}
			p.withStatement(parent, int32(start.start))
		default:
			p.fail()
		}
	case tIndent:
		p.fail() // unexpected indent
	case tName:
		if p.isMatchStatement() {
			p.matchStatement(parent)
			return
		}
		if p.isTypeAlias() {
			p.typeAlias(parent)
			return
		}
		p.simpleStatements(parent)
	default:
		p.simpleStatements(parent)
	}
}

// simpleStatements parses `stmt (; stmt)* [;] NEWLINE`.
func (p *parser) simpleStatements(parent int32) {
	for !p.err {
		p.simpleStatement(parent)
		if p.tok.kind == tSemi {
			p.advance()
			if p.tok.kind == tNewline {
				break
			}
			continue
		}
		break
	}
	if p.tok.kind != tNewline {
		p.fail()
		return
	}
	p.cover(parent, p.tok.start, p.tok.end)
	p.advance()
}

func (p *parser) simpleStatement(parent int32) {
	switch p.tok.kind {
	case tPass:
		n := p.newNode(sPassStatement)
		p.span(n)
		p.add(parent, n, fNone)
	case tBreak, tContinue:
		s := sBreakStatement
		if p.tok.kind == tContinue {
			s = sContinueStatement
		}
		if p.loopDepth == 0 {
			p.fail()
			return
		}
		n := p.newNode(s)
		p.span(n)
		p.add(parent, n, fNone)
	case tReturn:
		if p.funcDepth == 0 {
			p.fail()
			return
		}
		n := p.newNode(sReturnStatement)
		p.span(n)
		if !p.atStatementEnd() {
			p.add(n, p.starExpressionsNode(sExpressionList), fNone)
		}
		p.add(parent, n, fNone)
	case tRaise:
		n := p.newNode(sRaiseStatement)
		p.span(n)
		if !p.atStatementEnd() {
			p.add(n, p.expression(), fNone)
			if p.tok.kind == tFrom {
				p.span(n)
				p.add(n, p.expression(), fNone)
			}
		}
		p.add(parent, n, fNone)
	case tGlobal, tNonlocal:
		s := sGlobalStatement
		if p.tok.kind == tNonlocal {
			s = sNonlocalStatement
			if p.funcDepth == 0 {
				p.fail()
				return
			}
		}
		n := p.newNode(s)
		p.span(n)
		for !p.err {
			if p.tok.kind != tName {
				p.fail()
				return
			}
			p.add(n, p.leaf(sIdentifier), fNone)
			if p.tok.kind != tComma {
				break
			}
			p.span(n)
		}
		p.add(parent, n, fNone)
	case tDel:
		n := p.newNode(sDeleteStatement)
		p.span(n)
		t := p.starExpressionsNode(sExpressionList)
		p.checkDelTarget(t)
		p.add(n, t, fNone)
		p.add(parent, n, fNone)
	case tAssert:
		n := p.newNode(sAssertStatement)
		p.span(n)
		p.add(n, p.expression(), fNone)
		if p.tok.kind == tComma {
			p.span(n)
			p.add(n, p.expression(), fNone)
		}
		p.add(parent, n, fNone)
	case tImport:
		p.importStatement(parent)
	case tFrom:
		p.fromImport(parent)
	default:
		p.expressionStatement(parent)
	}
}

func (p *parser) atStatementEnd() bool {
	return p.tok.kind == tNewline || p.tok.kind == tSemi || p.tok.kind == tEOF || p.tok.kind == tErr
}

func (p *parser) expressionStatement(parent int32) {
	stmt := p.newNode(sExpressionStatement)
	if p.tok.kind == tYield {
		p.add(stmt, p.yieldExpr(), fNone)
		p.add(parent, stmt, fNone)
		return
	}
	first := p.tok.start
	items, trailing := p.starExpressions()
	if p.err {
		return
	}
	switch p.tok.kind {
	case tEqual:
		p.add(stmt, p.assignment(first, items, trailing), fNone)
	case tColon:
		// annotated assignment
		if len(items) != 1 || trailing || !p.annTarget(items[0]) {
			p.fail()
			return
		}
		a := p.newNode(sAssignment)
		p.add(a, p.toPattern(items[0]), fLeft)
		p.span(a)
		p.add(a, p.typeNode(), fNone)
		if p.tok.kind == tEqual {
			p.span(a)
			p.add(a, p.rightHandSide(), fRight)
		}
		p.add(stmt, a, fNone)
	case tPlusEqual, tMinEqual, tStarEqual, tSlashEqual, tPercentEqual, tAmperEqual, tVBarEqual,
		tCircumflexEqual, tLShiftEqual, tRShiftEqual, tDoubleStarEqual, tDoubleSlashEqual, tAtEqual:
		if len(items) != 1 || trailing || !p.augTarget(items[0]) {
			p.fail()
			return
		}
		a := p.newNode(sAugmentedAssignment)
		p.add(a, items[0], fLeft)
		p.opNode(a, fOperator)
		p.add(a, p.rightHandSide(), fRight)
		p.add(stmt, a, fNone)
	default:
		for _, it := range items {
			if p.nodes[it].sym == sListSplat && len(items) == 1 && !trailing {
				p.failAt(int(p.nodes[it].start)) // can't use starred expression here
				return
			}
			p.add(stmt, it, fNone)
		}
		if trailing {
			p.cover(stmt, p.lastComma, p.lastComma+1)
		}
	}
	p.add(parent, stmt, fNone)
}

// assignment parses `targets = rhs` after the first target list.
func (p *parser) assignment(first uint32, items []int32, trailing bool) int32 {
	a := p.newNode(sAssignment)
	if !p.checkTargets(items, trailing) {
		p.failAt(int(first))
		return a
	}
	p.add(a, p.targetNode(items, trailing), fLeft)
	p.span(a) // '='
	p.add(a, p.rightHandSide(), fRight)
	return a
}

// rightHandSide parses what follows '=' or an augmented operator: yield,
// star expressions, or a further assignment.
func (p *parser) rightHandSide() int32 {
	if p.tok.kind == tYield {
		return p.yieldExpr()
	}
	first := p.tok.start
	items, trailing := p.starExpressions()
	if p.err {
		return -1
	}
	if p.tok.kind == tEqual {
		return p.assignment(first, items, trailing)
	}
	return p.listNode(sExpressionList, items, trailing)
}

// listNode wraps items in an expression_list (or pattern_list) when there
// is more than one or a trailing comma.
func (p *parser) listNode(s sym, items []int32, trailing bool) int32 {
	if len(items) == 1 && !trailing {
		return items[0]
	}
	n := p.newNode(s)
	for _, it := range items {
		p.add(n, it, fNone)
	}
	if trailing {
		p.cover(n, p.lastComma, p.lastComma+1)
	}
	return n
}

// targetNode converts parsed target expressions into patterns.
func (p *parser) targetNode(items []int32, trailing bool) int32 {
	for i, it := range items {
		items[i] = p.toPattern(it)
	}
	return p.listNode(sPatternList, items, trailing)
}

// toPattern retags a target expression as tree-sitter's pattern.
func (p *parser) toPattern(n int32) int32 {
	if n < 0 {
		return n
	}
	nd := &p.nodes[n]
	switch nd.sym {
	case sTuple, sParenthesizedExpression:
		nd.sym = sTuplePattern
	case sList:
		nd.sym = sListPattern
	case sListSplat:
		nd.sym = sListSplatPattern
	default:
		return n
	}
	for c := nd.first; c >= 0; c = p.nodes[c].next {
		p.toPattern(c)
	}
	return n
}

// checkTargets reports whether items are assignment targets.
func (p *parser) checkTargets(items []int32, trailing bool) bool {
	stars := 0
	for _, it := range items {
		if p.nodes[it].sym == sListSplat {
			stars++
			if !p.target(p.nodes[it].first, true) {
				return false
			}
			continue
		}
		if !p.target(it, true) {
			return false
		}
	}
	if stars > 1 || stars == 1 && len(items) == 1 && !trailing {
		return false
	}
	return true
}

// target reports whether n may be assigned to.
func (p *parser) target(n int32, star bool) bool {
	if n < 0 {
		return false
	}
	nd := &p.nodes[n]
	switch nd.sym {
	case sIdentifier:
		return !p.isDebug(n)
	case sAttribute:
		a := p.childField(n, fAttribute)
		return a < 0 || !p.isDebug(a)
	case sSubscript:
		return true
	case sParenthesizedExpression:
		c := nd.first
		if c >= 0 && p.nodes[c].sym == sListSplat {
			return false
		}
		return p.target(c, false)
	case sTuple, sList:
		var items []int32
		for c := nd.first; c >= 0; c = p.nodes[c].next {
			items = append(items, c)
		}
		if len(items) == 0 {
			return nd.sym == sList || nd.sym == sTuple
		}
		stars := 0
		for _, c := range items {
			if p.nodes[c].sym == sListSplat {
				stars++
				if !p.target(p.nodes[c].first, true) {
					return false
				}
			} else if !p.target(c, true) {
				return false
			}
		}
		return stars <= 1
	}
	return false
}

func (p *parser) annTarget(n int32) bool {
	switch p.nodes[n].sym {
	case sIdentifier, sAttribute, sSubscript:
		return p.target(n, false)
	case sParenthesizedExpression:
		c := p.nodes[n].first
		return c >= 0 && p.nodes[c].sym != sListSplat && p.annTarget(c)
	}
	return false
}

func (p *parser) augTarget(n int32) bool {
	switch p.nodes[n].sym {
	case sIdentifier, sAttribute, sSubscript:
		return p.target(n, false)
	}
	return false
}

func (p *parser) checkDelTarget(n int32) {
	if n < 0 || p.err {
		return
	}
	var ok func(n int32) bool
	ok = func(n int32) bool {
		nd := &p.nodes[n]
		switch nd.sym {
		case sIdentifier:
			return !p.isDebug(n)
		case sAttribute, sSubscript:
			return true
		case sParenthesizedExpression:
			return nd.first >= 0 && ok(nd.first)
		case sTuple, sList, sExpressionList:
			for c := nd.first; c >= 0; c = p.nodes[c].next {
				if !ok(c) {
					return false
				}
			}
			return true
		}
		return false
	}
	if !ok(n) {
		p.failAt(int(p.nodes[n].start))
	}
}

func (p *parser) childField(n int32, f field) int32 {
	for c := p.nodes[n].first; c >= 0; c = p.nodes[c].next {
		if p.nodes[c].field == f {
			return c
		}
	}
	return -1
}

// isDebug reports whether identifier n is __debug__ (after NFKC, as Python
// reads names).
func (p *parser) isDebug(n int32) bool {
	txt := p.src[p.nodes[n].start:p.nodes[n].end]
	if isASCII(txt) {
		return string(txt) == "__debug__"
	}
	return normIdent(string(txt)) == "__debug__"
}

// Imports.

func (p *parser) dottedName() int32 {
	n := p.newNode(sDottedName)
	for !p.err {
		if p.tok.kind != tName {
			p.fail()
			return n
		}
		p.add(n, p.leaf(sIdentifier), fNone)
		if p.tok.kind != tDot {
			break
		}
		p.span(n)
	}
	return n
}

func (p *parser) importStatement(parent int32) {
	n := p.newNode(sImportStatement)
	p.span(n)
	for !p.err {
		d := p.dottedName()
		if p.tok.kind == tAs {
			a := p.newNode(sAliasedImport)
			p.add(a, d, fName)
			p.span(a)
			if p.tok.kind != tName {
				p.fail()
				return
			}
			p.add(a, p.leaf(sIdentifier), fAlias)
			d = a
		}
		p.add(n, d, fName)
		if p.tok.kind != tComma {
			break
		}
		p.span(n)
	}
	p.add(parent, n, fNone)
}

func (p *parser) fromImport(parent int32) {
	n := p.newNode(sImportFromStatement)
	p.span(n)
	if p.tok.kind == tDot || p.tok.kind == tEllipsis {
		r := p.newNode(sRelativeImport)
		pre := p.newNode(sImportPrefix)
		for p.tok.kind == tDot || p.tok.kind == tEllipsis {
			p.span(pre)
		}
		p.add(r, pre, fNone)
		if p.tok.kind == tName {
			p.add(r, p.dottedName(), fNone)
		}
		p.add(n, r, fModuleName)
	} else {
		d := p.dottedName()
		if p.tok.kind == tImport && p.nodes[d].first == p.nodes[d].last && string(p.src[p.nodes[d].start:p.nodes[d].end]) == "__future__" {
			p.nodes[n].sym = sFutureImportStatement
			if !p.futureOK {
				p.failAt(int(p.nodes[n].start))
				return
			}
		} else {
			p.add(n, d, fModuleName)
		}
	}
	if !p.expect(n, tImport) {
		return
	}
	if p.tok.kind == tStar {
		if p.nodes[n].sym == sFutureImportStatement || p.funcDepth > 0 || p.inClass {
			p.fail()
			return
		}
		w := p.leaf(sWildcardImport)
		p.add(n, w, fNone)
		p.add(parent, n, fNone)
		return
	}
	paren := false
	if p.tok.kind == tLPar {
		paren = true
		p.span(n)
	}
	for !p.err {
		if p.tok.kind != tName {
			p.fail()
			return
		}
		d := p.newNode(sDottedName)
		p.add(d, p.leaf(sIdentifier), fNone)
		if p.nodes[n].sym == sFutureImportStatement {
			if !futureFeatures[string(p.src[p.nodes[d].start:p.nodes[d].end])] {
				p.failAt(int(p.nodes[d].start))
				return
			}
		}
		if p.tok.kind == tAs {
			a := p.newNode(sAliasedImport)
			p.add(a, d, fName)
			p.span(a)
			if p.tok.kind != tName {
				p.fail()
				return
			}
			p.add(a, p.leaf(sIdentifier), fAlias)
			d = a
		}
		p.add(n, d, fName)
		if p.tok.kind != tComma {
			break
		}
		p.span(n)
		if paren && p.tok.kind == tRPar {
			break
		}
	}
	if paren {
		p.expect(n, tRPar)
	}
	p.add(parent, n, fNone)
}

var futureFeatures = map[string]bool{"nested_scopes": true, "generators": true, "division": true,
	"absolute_import": true, "with_statement": true, "print_function": true, "unicode_literals": true,
	"barry_as_FLUFL": true, "generator_stop": true, "annotations": true}

// Compound statements.

// suite parses ':' and a block into n under field f.
func (p *parser) suite(n int32, f field) {
	if !p.expect(n, tColon) {
		return
	}
	b := p.newNode(sBlock)
	saveFuture := p.futureOK
	p.futureOK = false
	defer func() { p.futureOK = saveFuture }()
	if p.tok.kind != tNewline {
		// simple statements on the same line
		p.simpleStatements(b)
		p.add(n, b, f)
		return
	}
	p.advance()
	if p.tok.kind != tIndent {
		p.fail() // expected an indented block
		return
	}
	p.advance()
	for !p.err && p.tok.kind != tDedent {
		if p.tok.kind == tEOF {
			p.fail()
			return
		}
		p.statement(b)
	}
	if p.err {
		return
	}
	p.cover(b, p.tok.start, p.tok.end)
	p.add(n, b, f)
	p.advance()
}

func (p *parser) ifStatement(parent int32) {
	n := p.newNode(sIfStatement)
	p.span(n)
	p.add(n, p.namedExpression(), fCondition)
	p.suite(n, fNone)
	for !p.err && p.tok.kind == tElif {
		e := p.newNode(sElifClause)
		p.span(e)
		p.add(e, p.namedExpression(), fCondition)
		p.suite(e, fNone)
		p.add(n, e, fNone)
	}
	if !p.err && p.tok.kind == tElse {
		p.elseClause(n)
	}
	p.add(parent, n, fNone)
}

func (p *parser) elseClause(n int32) {
	e := p.newNode(sElseClause)
	p.span(e)
	p.suite(e, fBody)
	p.add(n, e, fNone)
}

func (p *parser) whileStatement(parent int32) {
	n := p.newNode(sWhileStatement)
	p.span(n)
	p.add(n, p.namedExpression(), fCondition)
	p.loopDepth++
	p.suite(n, fBody)
	p.loopDepth--
	if !p.err && p.tok.kind == tElse {
		p.elseClause(n)
	}
	p.add(parent, n, fNone)
}

func (p *parser) forStatement(parent int32, asyncStart int32) {
	n := p.newNode(sForStatement)
	if asyncStart >= 0 {
		p.cover(n, uint32(asyncStart), uint32(asyncStart)+5)
	}
	p.span(n)
	p.add(n, p.forTargets(), fLeft)
	if !p.expect(n, tIn) {
		return
	}
	p.add(n, p.starExpressionsNode(sExpressionList), fRight)
	p.loopDepth++
	p.suite(n, fBody)
	p.loopDepth--
	if !p.err && p.tok.kind == tElse {
		p.elseClause(n)
	}
	p.add(parent, n, fNone)
}

// forTargets parses the targets of a for statement or clause (up to `in`).
func (p *parser) forTargets() int32 {
	var items []int32
	trailing := false
	for !p.err {
		var it int32
		if p.tok.kind == tStar {
			s := p.newNode(sListSplat)
			p.span(s)
			p.add(s, p.bitOr(), fNone)
			it = s
		} else {
			it = p.bitOr()
		}
		items = append(items, it)
		if p.tok.kind != tComma {
			break
		}
		p.lastComma = p.tok.start
		p.advance()
		if p.tok.kind == tIn {
			trailing = true
			break
		}
	}
	if p.err {
		return -1
	}
	if !p.checkTargets(items, trailing) {
		p.failAt(int(p.nodes[items[0]].start))
		return -1
	}
	return p.targetNode(items, trailing)
}

func (p *parser) tryStatement(parent int32) {
	n := p.newNode(sTryStatement)
	p.span(n)
	p.suite(n, fBody)
	handlers, group, plain := 0, false, false
	for !p.err && p.tok.kind == tExcept {
		start := p.tok
		p.advance()
		isGroup := false
		if p.tok.kind == tStar && p.tok.start == start.end {
			isGroup = true
		} else if p.tok.kind == tStar {
			isGroup = true
		}
		e := p.newNode(sExceptClause)
		p.cover(e, start.start, start.end)
		if isGroup {
			p.nodes[e].sym = sExceptGroupClause
			p.span(e)
			group = true
		} else {
			plain = true
		}
		if group && plain {
			p.failAt(int(start.start))
			return
		}
		if p.tok.kind != tColon {
			v := p.expression()
			if p.tok.kind == tAs {
				a := p.newNode(sAsPattern)
				p.add(a, v, fNone)
				p.span(a)
				if p.tok.kind != tName {
					p.fail()
					return
				}
				t := p.newNode(sAsPatternTarget)
				p.add(t, p.leaf(sIdentifier), fNone)
				p.add(a, t, fAlias)
				v = a
			}
			f := fValue
			if isGroup {
				f = fNone
			}
			p.add(e, v, f)
		} else if isGroup {
			p.fail()
			return
		}
		p.suite(e, fNone)
		p.add(n, e, fNone)
		handlers++
		if !isGroup && p.nodes[e].first >= 0 && p.nodes[p.nodes[e].first].sym == sBlock && p.tok.kind == tExcept {
			// a bare except must be last
			p.fail()
			return
		}
	}
	if p.err {
		return
	}
	if handlers > 0 && p.tok.kind == tElse {
		p.elseClause(n)
	}
	if !p.err && p.tok.kind == tFinally {
		f := p.newNode(sFinallyClause)
		p.span(f)
		p.suite(f, fNone)
		p.add(n, f, fNone)
	} else if handlers == 0 {
		p.fail()
		return
	}
	p.add(parent, n, fNone)
}

func (p *parser) withStatement(parent int32, asyncStart int32) {
	n := p.newNode(sWithStatement)
	if asyncStart >= 0 {
		p.cover(n, uint32(asyncStart), uint32(asyncStart)+5)
	}
	p.span(n)
	c := p.newNode(sWithClause)
	if p.tok.kind == tLPar && p.parenthesizedWithItems() {
		p.span(c)
		for !p.err {
			p.add(c, p.withItem(), fNone)
			if p.tok.kind != tComma {
				break
			}
			p.span(c)
			if p.tok.kind == tRPar {
				break
			}
		}
		p.expect(c, tRPar)
	} else {
		for !p.err {
			p.add(c, p.withItem(), fNone)
			if p.tok.kind != tComma {
				break
			}
			p.span(c)
		}
	}
	p.add(n, c, fNone)
	p.suite(n, fBody)
	p.add(parent, n, fNone)
}

// parenthesizedWithItems reports whether the '(' after `with` opens a
// parenthesized list of with items, as tree-sitter reads it: the closing
// ')' is followed by ':' and a top-level ',' or `as` is inside.
func (p *parser) parenthesizedWithItems() bool {
	src := p.src
	depth := 0
	sep := false
	for i := int(p.tok.start); i < len(src); i++ {
		switch c := src[i]; c {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				j := i + 1
				for j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '\f') {
					j++
				}
				return sep && j < len(src) && src[j] == ':' && (j+1 >= len(src) || src[j+1] != '=')
			}
		case ',':
			if depth == 1 {
				sep = true
			}
		case 'a':
			if depth == 1 && i+2 < len(src) && src[i+1] == 's' && !isNameChar(src[i+2]) && !isNameChar(src[i-1]) {
				sep = true
			}
		case '"', '\'':
			f := strFlags{quote: c}
			if i+2 < len(src) && src[i+1] == c && src[i+2] == c {
				f.triple = true
				i += 2
			}
			e := stringEnd(src, i+1, f)
			if e < 0 {
				return false
			}
			i = e
			if f.triple {
				i += 2
			}
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		default:
			if isNameChar(c) {
				for i+1 < len(src) && isNameChar(src[i+1]) && src[i+1] != 'a' {
					i++
				}
			}
		}
	}
	return false
}

func (p *parser) withItem() int32 {
	w := p.newNode(sWithItem)
	v := p.expression()
	if p.tok.kind == tAs {
		a := p.newNode(sAsPattern)
		p.add(a, v, fNone)
		p.span(a)
		t := p.newNode(sAsPatternTarget)
		tg := p.starTargetForAs()
		p.add(t, tg, fNone)
		p.add(a, t, fAlias)
		v = a
	}
	p.add(w, v, fValue)
	return w
}

// starTargetForAs parses the target after `with ... as`.
func (p *parser) starTargetForAs() int32 {
	var t int32
	if p.tok.kind == tStar {
		p.fail()
		return -1
	}
	t = p.bitOr()
	if p.err {
		return -1
	}
	if !p.target(t, false) {
		p.failAt(int(p.nodes[t].start))
		return -1
	}
	return t
}

func (p *parser) decorated(parent int32) {
	n := p.newNode(sDecoratedDefinition)
	for !p.err && p.tok.kind == tAt {
		d := p.newNode(sDecorator)
		p.span(d)
		p.add(d, p.namedExpression(), fNone)
		if p.tok.kind != tNewline {
			p.fail()
			return
		}
		p.cover(d, p.tok.start, p.tok.end)
		p.advance()
		p.add(n, d, fNone)
	}
	if p.err {
		return
	}
	switch p.tok.kind {
	case tDef:
		p.add(n, p.funcDef(-1), fDefinition)
	case tClass:
		p.add(n, p.classDef(), fDefinition)
	case tAsync:
		s := p.tok.start
		p.advance()
		if p.tok.kind != tDef {
			p.fail()
			return
		}
		p.add(n, p.funcDef(int32(s)), fDefinition)
	default:
		p.fail()
		return
	}
	p.add(parent, n, fNone)
}

func (p *parser) funcDef(asyncStart int32) int32 {
	n := p.newNode(sFunctionDefinition)
	if asyncStart >= 0 {
		p.cover(n, uint32(asyncStart), uint32(asyncStart)+5)
	}
	p.span(n)
	if p.tok.kind != tName {
		p.fail()
		return n
	}
	p.add(n, p.leaf(sIdentifier), fName)
	if p.tok.kind != tLPar {
		p.fail()
		return n
	}
	ps := p.newNode(sParameters)
	p.span(ps)
	if p.tok.kind != tRPar {
		p.parameterList(ps, true, tRPar)
	}
	p.expect(ps, tRPar)
	p.add(n, ps, fParameters)
	if p.tok.kind == tRArrow {
		p.span(n)
		p.add(n, p.typeNode(), fNone)
	}
	saveF, saveA, saveL, saveC := p.funcDepth, p.asyncDepth, p.loopDepth, p.inClass
	p.funcDepth++
	if asyncStart >= 0 {
		p.asyncDepth = 1
	} else {
		p.asyncDepth = 0
	}
	p.loopDepth = 0
	p.inClass = false
	p.suite(n, fBody)
	p.funcDepth, p.asyncDepth, p.loopDepth, p.inClass = saveF, saveA, saveL, saveC
	return n
}

func (p *parser) classDef() int32 {
	n := p.newNode(sClassDefinition)
	p.span(n)
	if p.tok.kind != tName {
		p.fail()
		return n
	}
	p.add(n, p.leaf(sIdentifier), fName)
	if p.tok.kind == tLPar {
		p.add(n, p.argumentList(), fNone)
	}
	saveF, saveA, saveL, saveC := p.funcDepth, p.asyncDepth, p.loopDepth, p.inClass
	p.funcDepth, p.asyncDepth, p.loopDepth, p.inClass = 0, 0, 0, true
	p.suite(n, fBody)
	p.funcDepth, p.asyncDepth, p.loopDepth, p.inClass = saveF, saveA, saveL, saveC
	return n
}

// parameterList parses def or lambda parameters up to end.
func (p *parser) parameterList(ps int32, annotations bool, end tokKind) {
	seenDefault, seenStar, seenKw, seenSlash := false, false, false, false
	var names nameSet
	addName := func(id int32) bool {
		if !names.add(p, id) {
			p.failAt(int(p.nodes[id].start)) // duplicate argument
			return false
		}
		return true
	}
	lastWasBareStar := false
	for !p.err && p.tok.kind != end {
		switch p.tok.kind {
		case tSlash:
			if seenSlash || seenStar || names.n == 0 {
				p.fail()
				return
			}
			seenSlash = true
			sep := p.leafAt(sPositionalSeparator, p.tok.start, p.tok.end)
			p.add(sep, p.leafAt(sSlashTok, p.tok.start, p.tok.end), fNone)
			p.advance()
			p.add(ps, sep, fNone)
		case tStar:
			if seenStar || seenKw {
				p.fail()
				return
			}
			seenStar = true
			st := p.tok
			p.advance()
			if p.tok.kind == tComma || p.tok.kind == end {
				if p.tok.kind == end {
					p.fail() // named arguments must follow bare *
					return
				}
				p.add(ps, p.leafAt(sKeywordSeparator, st.start, st.end), fNone)
				lastWasBareStar = true
				p.span(ps) // ','
				continue
			}
			if p.tok.kind != tName {
				p.fail()
				return
			}
			sp := p.newNode(sListSplatPattern)
			p.cover(sp, st.start, st.end)
			id := p.leaf(sIdentifier)
			if !addName(id) {
				return
			}
			p.add(sp, id, fNone)
			if annotations && p.tok.kind == tColon {
				tp := p.newNode(sTypedParameter)
				p.add(tp, sp, fNone)
				p.span(tp)
				p.add(tp, p.starAnnotation(), fNone)
				sp = tp
			}
			p.add(ps, sp, fNone)
		case tDoubleStar:
			if lastWasBareStar {
				p.fail() // named arguments must follow bare *
				return
			}
			st := p.tok
			p.advance()
			if p.tok.kind != tName {
				p.fail()
				return
			}
			sp := p.newNode(sDictionarySplatPattern)
			p.cover(sp, st.start, st.end)
			id := p.leaf(sIdentifier)
			if !addName(id) {
				return
			}
			p.add(sp, id, fNone)
			if annotations && p.tok.kind == tColon {
				tp := p.newNode(sTypedParameter)
				p.add(tp, sp, fNone)
				p.span(tp)
				p.add(tp, p.typeNode(), fNone)
				sp = tp
			}
			p.add(ps, sp, fNone)
			seenKw = true
		case tName:
			lastWasBareStar = false
			if seenKw {
				p.fail()
				return
			}
			id := p.leaf(sIdentifier)
			if !addName(id) {
				return
			}
			var typ int32 = -1
			if annotations && p.tok.kind == tColon {
				p.advance()
				typ = p.typeNode()
			}
			switch {
			case p.tok.kind == tEqual:
				s := sDefaultParameter
				if typ >= 0 {
					s = sTypedDefaultParameter
				}
				d := p.newNode(s)
				p.add(d, id, fName)
				if typ >= 0 {
					p.add(d, typ, fNone)
				}
				p.span(d)
				p.add(d, p.expression(), fValue)
				p.add(ps, d, fNone)
				seenDefault = true
			case typ >= 0:
				if seenDefault && !seenStar {
					p.fail()
					return
				}
				d := p.newNode(sTypedParameter)
				p.add(d, id, fNone)
				p.add(d, typ, fNone)
				p.add(ps, d, fNone)
			default:
				if seenDefault && !seenStar {
					p.fail()
					return
				}
				p.add(ps, id, fNone)
			}
		default:
			p.fail()
			return
		}
		if p.tok.kind != tComma {
			break
		}
		p.span(ps)
		if lastWasBareStar && p.tok.kind == end {
			p.fail()
			return
		}
	}
	if lastWasBareStar {
		p.fail()
	}
}

// Match statements.

// isMatchStatement reports whether the `match` at the current token starts
// a match statement: `match subject:` then a newline.
func (p *parser) isMatchStatement() bool {
	if string(p.src[p.tok.start:p.tok.end]) != "match" {
		return false
	}
	// Try it: parse the subject on a copy of the state and look for ':'
	// NEWLINE.
	save := p.save()
	p.advance()
	ok := false
	switch p.tok.kind {
	case tNewline, tEqual, tDot, tLPar, tColon, tComma, tSemi, tEOF, tErr:
		// `match(x)` may still be a match statement
		if p.tok.kind == tLPar {
			break
		}
		p.restore(save)
		return false
	}
	p.starNamedExpressions()
	if !p.err && p.tok.kind == tColon {
		p.advance()
		ok = !p.err && p.tok.kind == tNewline
	}
	p.restore(save)
	return ok
}

type parserState struct {
	lx       lexer
	tok      token
	nodes    int
	comments int
	conts    int
	parens   []byte
	fstr     []fstrState
}

func (p *parser) save() parserState {
	s := parserState{lx: *p.lx, tok: p.tok, nodes: len(p.nodes), comments: len(p.lx.comments), conts: len(p.lx.conts)}
	s.parens = append([]byte(nil), p.lx.parens...)
	s.fstr = append([]fstrState(nil), p.lx.fstr...)
	return s
}

func (p *parser) restore(s parserState) {
	comments, conts := p.lx.comments, p.lx.conts
	*p.lx = s.lx
	p.lx.conts = conts
	p.lx.comments = comments[:s.comments]
	p.lx.conts = p.lx.conts[:s.conts]
	p.lx.parens = s.parens
	p.lx.fstr = s.fstr
	p.tok = s.tok
	p.nodes = p.nodes[:s.nodes]
	if p.err && !p.cancelled && !p.truncated {
		p.err = false
	}
}

func (p *parser) matchStatement(parent int32) {
	n := p.newNode(sMatchStatement)
	p.span(n)
	items, trailing := p.starNamedExpressions()
	if len(items) == 1 && !trailing {
		p.add(n, items[0], fNone)
	} else {
		for _, it := range items {
			p.add(n, it, fNone)
		}
		if trailing {
			p.cover(n, p.lastComma, p.lastComma+1)
		}
	}
	if !p.expect(n, tColon) {
		return
	}
	if p.tok.kind != tNewline {
		p.fail()
		return
	}
	// The block starts at the (empty) indent token, where the newline is.
	b := p.newNode(sBlock)
	p.cover(b, p.tok.start, p.tok.start)
	p.advance()
	if p.tok.kind != tIndent {
		p.fail()
		return
	}
	p.advance()
	for !p.err && p.tok.kind != tDedent {
		if p.tok.kind != tName || p.text2(p.tok) != "case" {
			p.fail()
			return
		}
		p.add(b, p.caseClause(), fNone)
	}
	if p.err {
		return
	}
	p.cover(b, p.tok.start, p.tok.end)
	p.advance()
	p.add(n, b, fBody)
	p.add(parent, n, fNone)
}

func (p *parser) text2(t token) string { return string(p.src[t.start:t.end]) }

func (p *parser) caseClause() int32 {
	c := p.newNode(sCaseClause)
	p.span(c)
	first := p.casePattern(true)
	p.add(c, first, fNone)
	if p.tok.kind == tComma {
		// an open sequence pattern: case a, b:
		for p.tok.kind == tComma && !p.err {
			p.span(c)
			if p.tok.kind == tColon || p.tok.kind == tIf {
				break
			}
			p.add(c, p.casePattern(true), fNone)
		}
	}
	if p.tok.kind == tIf {
		g := p.newNode(sIfClause)
		p.span(g)
		p.add(g, p.namedExpression(), fNone)
		p.add(c, g, fNone)
	}
	p.suite(c, fNone)
	return c
}

// isTypeAlias reports whether the statement is `type <type> = <type>`,
// which tree-sitter reads as a type_alias_statement (Python 3.12 syntax)
// even when Python 3.11 reads an assignment: type(x).y = z.
func (p *parser) isTypeAlias() bool {
	if p.text2(p.tok) != "type" || (p.peekByte() != '(' && p.peekByte() != '[') {
		return false
	}
	save := p.save()
	// Valid Python first: it must parse as an ordinary statement.
	p.simpleStatement(p.newNode(sModule))
	ok := !p.err
	p.restore(save)
	if !ok {
		return false
	}
	p.advance()
	p.typeNode()
	if !p.err && p.tok.kind == tEqual {
		p.advance()
		p.typeNode()
		ok = !p.err && (p.tok.kind == tNewline || p.tok.kind == tSemi)
	} else {
		ok = false
	}
	p.restore(save)
	return ok
}

func (p *parser) typeAlias(parent int32) {
	n := p.newNode(sTypeAliasStatement)
	p.span(n)
	p.add(n, p.typeNode(), fLeft)
	p.span(n) // '='
	p.add(n, p.typeNode(), fRight)
	p.add(parent, n, fNone)
	if p.tok.kind == tSemi {
		p.advance()
		if p.tok.kind != tNewline {
			p.simpleStatements(parent)
			return
		}
	}
	if p.tok.kind != tNewline {
		p.fail()
		return
	}
	p.advance()
}
