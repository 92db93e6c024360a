package analysis

// Match statement patterns, shaped as tree-sitter shapes them.

// casePattern parses a pattern into a case_pattern node: an as-pattern, a
// union or a simple pattern.
func (p *parser) casePattern(top bool) int32 {
	if !p.enter() {
		return -1
	}
	defer p.leave()
	c := p.newNode(sCasePattern)
	p.unionPattern(c)
	for p.tok.kind == tAs && !p.err {
		a := p.newNode(sAsPattern)
		p.add(a, c, fNone)
		p.span(a)
		if p.tok.kind != tName || p.text2(p.tok) == "_" {
			p.fail()
			return c
		}
		p.add(a, p.leaf(sIdentifier), fNone)
		c = p.newNode(sCasePattern)
		p.add(c, a, fNone)
	}
	return c
}

// unionPattern parses simple patterns joined by '|' into parent.
func (p *parser) unionPattern(parent int32) {
	u := p.newNode(sUnionPattern)
	p.simplePattern(u)
	if p.tok.kind != tVBar {
		// not a union: move u's children to parent
		for c := p.nodes[u].first; c >= 0; {
			next := p.nodes[c].next
			p.add(parent, c, p.nodes[c].field)
			c = next
		}
		p.cover(parent, p.nodes[u].start, p.nodes[u].end)
		return
	}
	for p.tok.kind == tVBar && !p.err {
		p.span(u)
		p.simplePattern(u)
	}
	p.add(parent, u, fNone)
}

// simplePattern parses one simple pattern into parent.
func (p *parser) simplePattern(parent int32) {
	if !p.enter() {
		return
	}
	defer p.leave()
	switch p.tok.kind {
	case tMinus, tInt, tFloat:
		p.numberPattern(parent)
	case tString:
		p.add(parent, p.strings(), fNone)
	case tNone:
		p.add(parent, p.leaf(sNone), fNone)
	case tTrue:
		p.add(parent, p.leaf(sTrue), fNone)
	case tFalse:
		p.add(parent, p.leaf(sFalse), fNone)
	case tStar:
		s := p.newNode(sSplatPattern)
		p.span(s)
		if p.tok.kind != tName {
			p.fail()
			return
		}
		if p.text2(p.tok) == "_" {
			p.span(s)
		} else {
			p.add(s, p.leaf(sIdentifier), fNone)
		}
		p.add(parent, s, fNone)
	case tName:
		if p.text2(p.tok) == "_" && p.peekByte() != '.' && p.peekByte() != '(' {
			p.add(parent, p.leaf(sAnon), fNone)
			return
		}
		d := p.dottedName()
		if p.tok.kind == tLPar {
			cp := p.newNode(sClassPattern)
			p.add(cp, d, fNone)
			p.span(cp)
			seenKw := false
			for !p.err && p.tok.kind != tRPar {
				if p.tok.kind == tName && p.peekEqual() {
					seenKw = true
					k := p.newNode(sCasePattern)
					kp := p.newNode(sKeywordPattern)
					p.add(kp, p.leaf(sIdentifier), fNone)
					p.span(kp)
					p.unionPatternInto(kp)
					p.add(k, kp, fNone)
					p.add(cp, k, fNone)
				} else {
					if seenKw {
						p.fail()
						return
					}
					p.add(cp, p.casePattern(false), fNone)
				}
				if p.tok.kind != tComma {
					break
				}
				p.span(cp)
			}
			p.expect(cp, tRPar)
			p.add(parent, cp, fNone)
			return
		}
		p.add(parent, d, fNone)
	case tLSqb, tLPar:
		s := sListPattern
		end := tRSqb
		if p.tok.kind == tLPar {
			s, end = sTuplePattern, tRPar
		}
		l := p.newNode(s)
		p.span(l)
		for !p.err && p.tok.kind != end {
			p.add(l, p.casePattern(false), fNone)
			if p.tok.kind != tComma {
				break
			}
			p.span(l)
		}
		p.expect(l, end)
		p.add(parent, l, fNone)
	case tLBrace:
		d := p.newNode(sDictPattern)
		p.span(d)
		for !p.err && p.tok.kind != tRBrace {
			if p.tok.kind == tDoubleStar {
				s := p.newNode(sSplatPattern)
				p.span(s)
				if p.tok.kind != tName || p.text2(p.tok) == "_" {
					p.fail()
					return
				}
				p.add(s, p.leaf(sIdentifier), fNone)
				p.add(d, s, fNone)
			} else {
				p.simplePattern(d)
				p.expect(d, tColon)
				p.add(d, p.casePattern(false), fValue)
			}
			if p.tok.kind != tComma {
				break
			}
			p.span(d)
		}
		p.expect(d, tRBrace)
		p.add(parent, d, fNone)
	default:
		p.fail()
	}
}

// unionPatternInto parses the value of a keyword pattern (a simple pattern
// or a union of them) into parent.
func (p *parser) unionPatternInto(parent int32) {
	p.unionPattern(parent)
}

// numberPattern parses [-] number [(+|-) number].
func (p *parser) numberPattern(parent int32) {
	c := p.newNode(sComplexPattern)
	if p.tok.kind == tMinus {
		p.span(c)
	}
	if p.tok.kind != tInt && p.tok.kind != tFloat {
		p.fail()
		return
	}
	num := sInteger
	if p.tok.kind == tFloat {
		num = sFloat
	}
	p.add(c, p.leaf(num), fNone)
	if p.tok.kind == tPlus || p.tok.kind == tMinus {
		p.opNode(c, fNone)
		if p.tok.kind != tInt && p.tok.kind != tFloat {
			p.fail()
			return
		}
		num = sInteger
		if p.tok.kind == tFloat {
			num = sFloat
		}
		p.add(c, p.leaf(num), fNone)
		p.add(parent, c, fNone)
		return
	}
	// not complex: the parts belong to the parent
	for ch := p.nodes[c].first; ch >= 0; {
		next := p.nodes[ch].next
		p.add(parent, ch, fNone)
		ch = next
	}
	p.cover(parent, p.nodes[c].start, p.nodes[c].end)
}
