package analysis

// Expressions.

// starExpressions parses a comma-separated list of expressions, starred
// expressions allowed; it reports a trailing comma.
func (p *parser) starExpressions() ([]int32, bool) {
	// Items go on p.items, a stack shared by the whole parse (the returned
	// slice is capped, so nested lists append past it).
	base := len(p.items)
	count := 0
	trailing := false
	for !p.err {
		it := p.starExpression()
		// nested lists parsed meanwhile are done with: drop them
		p.items = append(p.items[:base+count], it)
		count++
		if p.tok.kind != tComma {
			break
		}
		p.lastComma = p.tok.start
		p.advance()
		if !p.startsExpression() {
			trailing = true
			break
		}
	}
	n := base + count
	return p.items[base:n:n], trailing
}

// starNamedExpressions is starExpressions with walrus allowed.
func (p *parser) starNamedExpressions() ([]int32, bool) {
	base := len(p.items)
	count := 0
	trailing := false
	for !p.err {
		var it int32
		if p.tok.kind == tStar {
			it = p.starExpression()
		} else {
			it = p.namedExpression()
		}
		p.items = append(p.items[:base+count], it)
		count++
		if p.tok.kind != tComma {
			break
		}
		p.lastComma = p.tok.start
		p.advance()
		if !p.startsExpression() {
			trailing = true
			break
		}
	}
	n := base + count
	return p.items[base:n:n], trailing
}

func (p *parser) starExpressionsNode(s sym) int32 {
	items, trailing := p.starExpressions()
	if p.err {
		return -1
	}
	if len(items) == 1 && !trailing && p.nodes[items[0]].sym == sListSplat {
		p.failAt(int(p.nodes[items[0]].start))
		return -1
	}
	return p.listNode(s, items, trailing)
}

// startsExpression reports whether the current token can start an
// expression.
func (p *parser) startsExpression() bool {
	switch p.tok.kind {
	case tName, tInt, tFloat, tString, tLPar, tLSqb, tLBrace, tMinus, tPlus, tTilde, tStar, tNot, tLambda,
		tAwait, tNone, tTrue, tFalse, tEllipsis:
		return true
	}
	return false
}

func (p *parser) starExpression() int32 {
	if p.tok.kind == tStar {
		n := p.newNode(sListSplat)
		p.span(n)
		p.add(n, p.bitOr(), fNone)
		return n
	}
	return p.expression()
}

// namedExpression parses `name := expression` or an expression.
func (p *parser) namedExpression() int32 {
	if p.tok.kind == tName {
		// Peek: a name followed by ':='.
		if p.peekColonEqual() {
			n := p.newNode(sNamedExpression)
			p.add(n, p.leaf(sIdentifier), fName)
			p.span(n) // ':='
			p.add(n, p.expression(), fValue)
			return n
		}
	}
	return p.expression()
}

// peekColonEqual reports whether ':=' follows the current name token.
func (p *parser) peekColonEqual() bool {
	src := p.src
	i := int(p.tok.end)
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\f') {
		i++
	}
	if i+1 < len(src) && src[i] == ':' && src[i+1] == '=' {
		if f := p.lx.fstr; len(f) > 0 && f[len(f)-1].inExpr && f[len(f)-1].depth == 0 {
			return false
		}
		return true
	}
	if i < len(src) && (src[i] == '\\' || src[i] == '\n' || src[i] == '\r') && len(p.lx.parens) > 0 {
		// rare: ':=' on a later line; use the full lexer
		save := p.save()
		p.advance()
		ok := p.tok.kind == tColonEqual
		p.restore(save)
		return ok
	}
	return false
}

// expression parses a conditional expression or lambda.
func (p *parser) expression() int32 {
	if !p.enter() {
		return -1
	}
	defer p.leave()
	if p.tok.kind == tLambda {
		return p.lambda()
	}
	e := p.disjunction()
	if p.tok.kind == tIf && !p.err {
		c := p.newNode(sConditionalExpression)
		p.add(c, e, fNone)
		p.span(c)
		p.add(c, p.disjunction(), fNone)
		if !p.expect(c, tElse) {
			return c
		}
		p.add(c, p.expression(), fNone)
		return c
	}
	return e
}

func (p *parser) lambda() int32 {
	if f := p.lx.fstr; len(f) > 0 && f[len(f)-1].inExpr && f[len(f)-1].depth == 0 {
		p.fail()
		return -1
	}
	n := p.newNode(sLambda)
	p.span(n)
	if p.tok.kind != tColon {
		ps := p.newNode(sLambdaParameters)
		p.parameterList(ps, false, tColon)
		p.add(n, ps, fParameters)
	}
	if !p.expect(n, tColon) {
		return n
	}
	saveF, saveA, saveL := p.funcDepth, p.asyncDepth, p.loopDepth
	p.funcDepth++
	p.asyncDepth, p.loopDepth = 0, 0
	p.add(n, p.expression(), fBody)
	p.funcDepth, p.asyncDepth, p.loopDepth = saveF, saveA, saveL
	return n
}

func (p *parser) disjunction() int32 {
	l := p.conjunction()
	for p.tok.kind == tOr && !p.err {
		n := p.newNode(sBooleanOperator)
		p.add(n, l, fLeft)
		p.opNode(n, fOperator)
		p.add(n, p.conjunction(), fRight)
		l = n
	}
	return l
}

func (p *parser) conjunction() int32 {
	l := p.inversion()
	for p.tok.kind == tAnd && !p.err {
		n := p.newNode(sBooleanOperator)
		p.add(n, l, fLeft)
		p.opNode(n, fOperator)
		p.add(n, p.inversion(), fRight)
		l = n
	}
	return l
}

func (p *parser) inversion() int32 {
	if p.tok.kind == tNot {
		if !p.enter() {
			return -1
		}
		defer p.leave()
		n := p.newNode(sNotOperator)
		p.span(n)
		p.add(n, p.inversion(), fNone)
		return n
	}
	return p.comparison()
}

func (p *parser) comparison() int32 {
	l := p.bitOr()
	var n int32 = -1
	for !p.err {
		switch p.tok.kind {
		case tLess, tGreater, tEqEqual, tNotEqual, tLessEqual, tGreaterEqual, tIn, tIs:
			if p.tok.kind == tIs {
				p.advance()
				if p.tok.kind == tNot {
					p.advance()
				}
			} else {
				p.advance()
			}
		case tNot:
			p.advance()
			if p.tok.kind != tIn {
				p.fail()
				return l
			}
			p.advance()
		default:
			return orNode(n, l)
		}
		if n < 0 {
			n = p.newNode(sComparisonOperator)
			p.add(n, l, fNone)
		}
		p.add(n, p.bitOr(), fNone)
	}
	return orNode(n, l)
}

func orNode(n, l int32) int32 {
	if n >= 0 {
		return n
	}
	return l
}

func (p *parser) binary(l int32, next func() int32) int32 {
	n := p.newNode(sBinaryOperator)
	p.add(n, l, fLeft)
	p.opNode(n, fOperator)
	p.add(n, next(), fRight)
	return n
}

// binPrec is the binding power of each binary operator below comparison
// (higher binds tighter); 0 for every other token. ** is parsed by power.
var binPrec = [tBang + 1]uint8{
	tVBar:       1,
	tCircumflex: 2,
	tAmper:      3,
	tLShift:     4, tRShift: 4,
	tPlus: 5, tMinus: 5,
	tStar: 6, tSlash: 6, tPercent: 6, tDoubleSlash: 6, tAt: 6,
}

// bitOr parses the left-associative binary operators from | down to the
// multiplicative ones by precedence climbing: the tree is the one a rule
// per level builds (a - b - c is (a - b) - c; a + b * c is a + (b * c)).
func (p *parser) bitOr() int32 { return p.binaryFrom(1) }

func (p *parser) binaryFrom(minPrec uint8) int32 {
	l := p.factor()
	for !p.err {
		prec := binPrec[p.tok.kind]
		if prec == 0 || prec < minPrec {
			return l
		}
		n := p.newNode(sBinaryOperator)
		p.add(n, l, fLeft)
		p.opNode(n, fOperator)
		p.add(n, p.binaryFrom(prec+1), fRight)
		l = n
	}
	return l
}

func (p *parser) factor() int32 {
	switch p.tok.kind {
	case tPlus, tMinus, tTilde:
		if !p.enter() {
			return -1
		}
		defer p.leave()
		n := p.newNode(sUnaryOperator)
		p.opNode(n, fOperator)
		p.add(n, p.factor(), fNone)
		return n
	}
	return p.power()
}

func (p *parser) power() int32 {
	if p.tok.kind == tAwait {
		if p.asyncDepth == 0 {
			p.fail()
			return -1
		}
		if !p.enter() {
			return -1
		}
		defer p.leave()
		n := p.newNode(sAwait)
		p.span(n)
		a := p.primary()
		if p.tok.kind == tDoubleStar && !p.err {
			// tree-sitter: await (a ** b)
			a = p.binary(a, p.factor)
		}
		p.add(n, a, fNone)
		return n
	}
	l := p.primary()
	if p.tok.kind == tDoubleStar && !p.err {
		return p.binary(l, p.factor)
	}
	return l
}

// primary parses an atom and its trailers.
func (p *parser) primary() int32 {
	a := p.atom()
	for !p.err {
		switch p.tok.kind {
		case tDot:
			n := p.newNode(sAttribute)
			p.add(n, a, fObject)
			p.span(n)
			if p.tok.kind != tName {
				p.fail()
				return n
			}
			p.add(n, p.leaf(sIdentifier), fAttribute)
			a = n
		case tLPar:
			n := p.newNode(sCall)
			p.add(n, a, fFunction)
			p.add(n, p.argumentList(), fArguments)
			a = n
		case tLSqb:
			n := p.newNode(sSubscript)
			p.add(n, a, fValue)
			p.subscriptArgs(n)
			a = n
		default:
			return a
		}
	}
	return a
}

func (p *parser) subscriptArgs(n int32) {
	p.span(n) // '['
	if !p.enter() {
		return
	}
	defer p.leave()
	count := 0
	for !p.err {
		if p.tok.kind == tRSqb && count > 0 {
			break
		}
		var it int32
		if p.tok.kind == tStar {
			it = p.starExpression()
		} else {
			it = p.sliceItem()
		}
		p.add(n, it, fNone)
		count++
		if p.tok.kind != tComma {
			break
		}
		p.span(n)
	}
	p.expect(n, tRSqb)
}

func (p *parser) sliceItem() int32 {
	var lo int32 = -1
	if p.tok.kind != tColon {
		lo = p.namedExpression()
		if p.tok.kind != tColon {
			return lo
		}
	}
	s := p.newNode(sSlice)
	p.add(s, lo, fNone)
	p.span(s) // ':'
	if p.tok.kind != tColon && p.tok.kind != tComma && p.tok.kind != tRSqb {
		p.add(s, p.expression(), fNone)
	}
	if p.tok.kind == tColon {
		p.span(s)
		if p.tok.kind != tComma && p.tok.kind != tRSqb {
			p.add(s, p.expression(), fNone)
		}
	}
	return s
}

// argumentList parses '(' arguments ')' (or a lone generator argument).
func (p *parser) argumentList() int32 {
	if !p.enter() {
		return -1
	}
	defer p.leave()
	open := p.tok
	p.advance()
	n := p.newNode(sArgumentList)
	p.cover(n, open.start, open.end)
	seenKw, seenDStar := false, false
	var kwNames nameSet
	count := 0
	for !p.err && p.tok.kind != tRPar {
		switch p.tok.kind {
		case tStar:
			if seenDStar {
				p.fail()
				return n
			}
			s := p.newNode(sListSplat)
			p.span(s)
			p.add(s, p.expression(), fNone)
			p.add(n, s, fNone)
		case tDoubleStar:
			s := p.newNode(sDictionarySplat)
			p.span(s)
			p.add(s, p.expression(), fNone)
			p.add(n, s, fNone)
			seenDStar = true
		default:
			if p.tok.kind == tName && p.peekEqual() {
				k := p.newNode(sKeywordArgument)
				id := p.leaf(sIdentifier)
				if !kwNames.add(p, id) {
					p.failAt(int(p.nodes[id].start)) // keyword argument repeated
					return n
				}
				p.add(k, id, fName)
				p.span(k) // '='
				p.add(k, p.expression(), fValue)
				p.add(n, k, fNone)
				seenKw = true
				break
			}
			e := p.namedExpression()
			if p.tok.kind == tEqual {
				p.fail() // expression cannot contain assignment
				return n
			}
			if p.tok.kind == tFor || p.tok.kind == tAsync {
				g := p.newNode(sGeneratorExpression)
				p.add(g, e, fBody)
				p.comprehensionClauses(g)
				if p.err {
					return n
				}
				if count == 0 && p.tok.kind == tRPar {
					// f(x for x in y): the generator is the arguments
					p.cover(g, open.start, p.tok.end)
					p.advance()
					return g
				}
				if p.tok.kind != tRPar || count > 0 {
					p.fail() // generator expression must be parenthesized
					return n
				}
			}
			if seenKw || seenDStar {
				p.failAt(int(p.nodes[e].start)) // positional argument follows keyword argument
				return n
			}
			p.add(n, e, fNone)
		}
		count++
		if p.tok.kind != tComma {
			break
		}
		p.span(n)
	}
	p.expect(n, tRPar)
	return n
}

// peekEqual reports whether '=' (not '==') follows the current name.
func (p *parser) peekEqual() bool {
	src := p.src
	i := int(p.tok.end)
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\f' || src[i] == '\n' || src[i] == '\r' ||
		src[i] == '\\') {
		i++
	}
	if i < len(src) && src[i] == '#' {
		save := p.save()
		p.advance()
		ok := p.tok.kind == tEqual
		p.restore(save)
		return ok
	}
	return i < len(src) && src[i] == '=' && (i+1 >= len(src) || src[i+1] != '=')
}

// comprehensionClauses parses for/if clauses into n.
func (p *parser) comprehensionClauses(n int32) {
	for !p.err && (p.tok.kind == tFor || p.tok.kind == tAsync) {
		c := p.newNode(sForInClause)
		if p.tok.kind == tAsync {
			if p.asyncDepth == 0 {
				p.fail()
				return
			}
			p.span(c)
		}
		if !p.expect(c, tFor) {
			return
		}
		p.add(c, p.forTargets(), fLeft)
		if !p.expect(c, tIn) {
			return
		}
		p.add(c, p.disjunction(), fRight)
		p.add(n, c, fNone)
		for !p.err && p.tok.kind == tIf {
			f := p.newNode(sIfClause)
			p.span(f)
			p.add(f, p.disjunction(), fNone)
			p.add(n, f, fNone)
		}
	}
}

func (p *parser) yieldExpr() int32 {
	if p.funcDepth == 0 {
		p.fail()
		return -1
	}
	n := p.newNode(sYield)
	p.span(n)
	if p.tok.kind == tFrom {
		if p.asyncDepth > 0 {
			p.fail() // 'yield from' inside async function
			return n
		}
		p.span(n)
		p.add(n, p.expression(), fNone)
		return n
	}
	if p.startsExpression() {
		p.add(n, p.starExpressionsNode(sExpressionList), fNone)
	}
	return n
}

// atom parses an atom.
func (p *parser) atom() int32 {
	switch p.tok.kind {
	case tName:
		return p.leaf(sIdentifier)
	case tInt:
		return p.leaf(sInteger)
	case tFloat:
		return p.leaf(sFloat)
	case tNone:
		return p.leaf(sNone)
	case tTrue:
		return p.leaf(sTrue)
	case tFalse:
		return p.leaf(sFalse)
	case tEllipsis:
		return p.leaf(sEllipsis)
	case tString:
		return p.strings()
	case tLPar:
		return p.parenAtom()
	case tLSqb:
		return p.listAtom()
	case tLBrace:
		return p.braceAtom()
	}
	p.fail()
	return -1
}

func (p *parser) parenAtom() int32 {
	if !p.enter() {
		return -1
	}
	defer p.leave()
	open := p.tok
	p.advance()
	if p.tok.kind == tRPar {
		n := p.newNode(sTuple)
		p.cover(n, open.start, open.end)
		p.span(n)
		return n
	}
	if p.tok.kind == tYield {
		n := p.newNode(sParenthesizedExpression)
		p.cover(n, open.start, open.end)
		p.add(n, p.yieldExpr(), fNone)
		p.expect(n, tRPar)
		return n
	}
	first := p.starOrNamed()
	if p.err {
		return -1
	}
	switch p.tok.kind {
	case tFor, tAsync:
		if p.nodes[first].sym == sListSplat {
			p.failAt(int(p.nodes[first].start))
			return -1
		}
		g := p.newNode(sGeneratorExpression)
		p.cover(g, open.start, open.end)
		p.add(g, first, fBody)
		p.comprehensionClauses(g)
		p.expect(g, tRPar)
		return g
	case tRPar:
		if p.nodes[first].sym == sListSplat {
			p.failAt(int(p.nodes[first].start)) // cannot use starred expression here
			return -1
		}
		n := p.newNode(sParenthesizedExpression)
		p.cover(n, open.start, open.end)
		p.add(n, first, fNone)
		p.span(n)
		return n
	}
	n := p.newNode(sTuple)
	p.cover(n, open.start, open.end)
	p.add(n, first, fNone)
	for !p.err && p.tok.kind == tComma {
		p.span(n)
		if p.tok.kind == tRPar {
			break
		}
		p.add(n, p.starOrNamed(), fNone)
	}
	p.expect(n, tRPar)
	return n
}

func (p *parser) starOrNamed() int32 {
	if p.tok.kind == tStar {
		return p.starExpression()
	}
	return p.namedExpression()
}

func (p *parser) listAtom() int32 {
	if !p.enter() {
		return -1
	}
	defer p.leave()
	n := p.newNode(sList)
	p.span(n)
	if p.tok.kind == tRSqb {
		p.span(n)
		return n
	}
	first := p.starOrNamed()
	if p.tok.kind == tFor || p.tok.kind == tAsync {
		if p.nodes[first].sym == sListSplat {
			p.failAt(int(p.nodes[first].start))
			return n
		}
		p.nodes[n].sym = sListComprehension
		p.add(n, first, fBody)
		p.comprehensionClauses(n)
		p.expect(n, tRSqb)
		return n
	}
	p.add(n, first, fNone)
	for !p.err && p.tok.kind == tComma {
		p.span(n)
		if p.tok.kind == tRSqb {
			break
		}
		p.add(n, p.starOrNamed(), fNone)
	}
	p.expect(n, tRSqb)
	return n
}

func (p *parser) braceAtom() int32 {
	if !p.enter() {
		return -1
	}
	defer p.leave()
	n := p.newNode(sDictionary)
	p.span(n)
	if p.tok.kind == tRBrace {
		p.span(n)
		return n
	}
	isDict := false
	for i := 0; !p.err; i++ {
		if p.tok.kind == tDoubleStar {
			if i > 0 && !isDict {
				p.fail()
				return n
			}
			isDict = true
			s := p.newNode(sDictionarySplat)
			p.span(s)
			p.add(s, p.bitOr(), fNone)
			p.add(n, s, fNone)
		} else {
			var k int32
			if p.tok.kind == tStar {
				if isDict {
					p.fail()
					return n
				}
				k = p.starExpression()
			} else if i == 0 || !isDict {
				k = p.namedExpression()
			} else {
				k = p.expression()
			}
			if p.err {
				return n
			}
			if p.tok.kind == tColon && (i == 0 || isDict) && p.nodes[k].sym != sListSplat {
				isDict = true
				pr := p.newNode(sPair)
				p.add(pr, k, fNone)
				p.span(pr)
				p.add(pr, p.expression(), fValue)
				k = pr
			} else if isDict {
				p.fail()
				return n
			}
			if i == 0 && (p.tok.kind == tFor || p.tok.kind == tAsync) {
				if p.nodes[k].sym == sListSplat {
					p.fail()
					return n
				}
				if isDict {
					p.nodes[n].sym = sDictionaryComprehension
				} else {
					p.nodes[n].sym = sSetComprehension
				}
				p.add(n, k, fBody)
				p.comprehensionClauses(n)
				p.expect(n, tRBrace)
				return n
			}
			p.add(n, k, fNone)
		}
		if p.tok.kind != tComma {
			break
		}
		p.span(n)
		if p.tok.kind == tRBrace {
			break
		}
	}
	if !isDict {
		p.nodes[n].sym = sSet
	}
	p.expect(n, tRBrace)
	return n
}

// Types (annotations), shaped as tree-sitter shapes them.

// typeNode parses an annotation into a `type` node.
func (p *parser) typeNode() int32 {
	t := p.newNode(sType)
	if p.tok.kind == tName && p.peekByte() == '[' {
		// Name[...] is a generic_type, possibly joined with | into a
		// union_type.
		g := p.genericType()
		if p.err {
			return t
		}
		p.add(t, g, fNone)
		for p.tok.kind == tVBar && !p.err {
			// left-associative; an operand that is not Name[...] is an
			// expression and takes the rest of the union
			u := p.newNode(sUnionType)
			p.add(u, t, fNone)
			p.advance()
			r := p.newNode(sType)
			if p.tok.kind == tName && p.peekByte() == '[' {
				p.add(r, p.genericType(), fNone)
			} else {
				p.add(r, p.expression(), fNone)
			}
			p.add(u, r, fNone)
			t = p.newNode(sType)
			p.add(t, u, fNone)
		}
		if p.startsTrailer() {
			p.fail()
		}
		return t
	}
	p.add(t, p.expression(), fNone)
	return t
}

func (p *parser) startsTrailer() bool {
	switch p.tok.kind {
	case tDot, tLPar, tLSqb, tPlus, tMinus, tStar, tSlash, tPercent, tDoubleSlash, tAt, tAmper, tCircumflex,
		tLShift, tRShift, tDoubleStar, tLess, tGreater, tEqEqual, tNotEqual, tLessEqual, tGreaterEqual, tIn, tIs,
		tNot, tAnd, tOr, tIf:
		return true
	}
	return false
}

func (p *parser) peekByte() byte {
	if int(p.tok.end) < len(p.src) {
		return p.src[p.tok.end]
	}
	return 0
}

func (p *parser) genericType() int32 {
	if !p.enter() {
		return -1
	}
	defer p.leave()
	g := p.newNode(sGenericType)
	p.add(g, p.leaf(sIdentifier), fNone)
	tp := p.newNode(sTypeParameter)
	p.span(tp) // '['
	for !p.err {
		p.add(tp, p.typeNode(), fNone)
		if p.tok.kind != tComma {
			break
		}
		p.span(tp)
		if p.tok.kind == tRSqb {
			break
		}
	}
	p.expect(tp, tRSqb)
	p.add(g, tp, fNone)
	return g
}

// starAnnotation parses the annotation of *args (which may be *Ts).
func (p *parser) starAnnotation() int32 {
	if p.tok.kind == tStar {
		t := p.newNode(sType)
		s := p.newNode(sListSplat)
		p.span(s)
		p.add(s, p.expression(), fNone)
		p.add(t, s, fNone)
		return t
	}
	return p.typeNode()
}
