package analysis

import (
	"unicode/utf8"
)

// strings parses one or more adjacent string literals.
func (p *parser) strings() int32 {
	first := p.stringLit()
	if p.tok.kind != tString || p.err {
		return first
	}
	c := p.newNode(sConcatenatedString)
	p.add(c, first, fNone)
	bytesKind := p.lastBytes
	for p.tok.kind == tString && !p.err {
		s := p.stringLit()
		if s < 0 {
			return c
		}
		if p.lastBytes != bytesKind {
			p.failAt(int(p.nodes[s].start)) // cannot mix bytes and nonbytes literals
			return c
		}
		p.add(c, s, fNone)
	}
	return c
}

// stringLit parses the string literal whose start token is current.
func (p *parser) stringLit() int32 {
	tok := p.tok
	f := flagsOf(p.src[tok.start:tok.end])
	p.lastBytes = f.bytes
	qlen := uint32(1)
	if f.triple {
		qlen = 3
	}
	body := int(tok.end)
	end := stringEnd(p.src, body, f)
	if end < 0 {
		p.failAt(int(tok.start)) // unterminated string literal
		return -1
	}
	s := p.newNode(sString)
	p.add(s, p.leafAt(sStringStart, tok.start, tok.end), fNone)
	endStart := uint32(end)
	if !f.format {
		if !p.checkEscapes(body, end, f) {
			return s
		}
		if f.raw && rawOnlyEscapes(p.src[body:end], f.quote) {
			// tree-sitter's scanner folds a raw run of only escaped
			// characters into the string_end token.
			endStart = uint32(body)
		} else {
			p.content(s, body, end, f)
		}
	} else {
		p.fstring(s, body, end, f)
		if p.err {
			return s
		}
	}
	p.add(s, p.leafAt(sStringEnd, endStart, uint32(end)+qlen), fNone)
	p.lx.pos = end + int(qlen)
	p.lx.sawToken = true
	p.lx.tok = token{kind: tString, start: tok.start, end: uint32(end) + qlen}
	p.advance()
	return s
}

// content adds a string_content node over [from, to), with the
// escape_sequence and escape_interpolation children tree-sitter gives it.
func (p *parser) content(parent int32, from, to int, f strFlags) {
	if from >= to {
		return
	}
	src := p.src
	c := p.newNode(sStringContent)
	p.cover(c, uint32(from), uint32(to))
	if f.raw && !f.format {
		p.add(parent, c, fNone)
		return
	}
	for i := from; i < to; {
		ch := src[i]
		if f.format && (ch == '{' || ch == '}') && i+1 < to && src[i+1] == ch {
			p.add(c, p.leafAt(sEscapeInterpolation, uint32(i), uint32(i+2)), fNone)
			i += 2
			continue
		}
		if ch != '\\' || f.raw {
			if ch == '\\' && i+1 < to {
				i += 2
				continue
			}
			i++
			continue
		}
		if f.bytes && i+1 < to && (src[i+1] == 'N' || src[i+1] == 'u' || src[i+1] == 'U') {
			i += 3 // tree-sitter's scanner steps over one more character
			continue
		}
		if n := escapeLen(src[i:to]); n > 0 {
			p.add(c, p.leafAt(sEscapeSequence, uint32(i), uint32(i+n)), fNone)
			i += n
			continue
		}
		i++
	}
	p.nodes[c].start, p.nodes[c].end = uint32(from), uint32(to)
	p.add(parent, c, fNone)
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' }

// escapeLen is the length of tree-sitter's escape_sequence token at b
// (which starts with a backslash), or 0.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	hexRun := func(n int) int {
		if len(b) < 2+n {
			return 0
		}
		for _, c := range b[2 : 2+n] {
			if !isHex(c) {
				return 0
			}
		}
		return 2 + n
	}
	switch c := b[1]; {
	case c == 'u':
		return hexRun(4)
	case c == 'U':
		return hexRun(8)
	case c == 'x':
		return hexRun(2)
	case c >= '0' && c <= '9':
		n := 2
		for n < 4 && n < len(b) && b[n] >= '0' && b[n] <= '9' {
			n++
		}
		return n
	case c == '\r':
		if len(b) > 2 && b[2] == '\n' {
			return 3
		}
		return 0
	case c == '\n':
		return 2
	case c == '\'' || c == '"' || c == 'a' || c == 'b' || c == 'f' || c == 'r' || c == 'n' || c == 't' || c == 'v' || c == '\\':
		return 2
	case c == 'N':
		if len(b) > 3 && b[2] == '{' && b[3] != '}' {
			for i := 3; i < len(b); i++ {
				if b[i] == '}' {
					return i + 1
				}
			}
		}
	}
	return 0
}

// checkEscapes applies CPython's checks to a literal's body: complete
// \x, \u, \U and \N escapes, ASCII-only bytes.
func (p *parser) checkEscapes(from, to int, f strFlags) bool {
	src := p.src
	for i := from; i < to; i++ {
		c := src[i]
		if c >= 0x80 && f.bytes {
			p.failAt(i) // bytes can only contain ASCII literal characters
			return false
		}
		if c != '\\' || f.raw {
			if c == '\\' {
				i++
			}
			continue
		}
		if i+1 >= to {
			break
		}
		switch src[i+1] {
		case 'x':
			if i+3 >= to+1 || !isHex(src[i+2]) || !isHex(src[i+3]) {
				p.failAt(i)
				return false
			}
		case 'u', 'U', 'N':
			if f.bytes {
				break
			}
			switch src[i+1] {
			case 'u':
				if i+5 >= to || !allHex(src[i+2:i+6]) {
					p.failAt(i)
					return false
				}
			case 'U':
				if i+9 >= to || !allHex(src[i+2:i+10]) || parseHex(src[i+2:i+10]) > utf8.MaxRune {
					p.failAt(i)
					return false
				}
			case 'N':
				j := i + 2
				if j >= to || src[j] != '{' {
					p.failAt(i)
					return false
				}
				k := j + 1
				for k < to && src[k] != '}' {
					k++
				}
				if k >= to || k == j+1 || !unicodeName(string(src[j+1:k])) {
					p.failAt(i)
					return false
				}
			}
		}
		i++
	}
	return true
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !isHex(c) {
			return false
		}
	}
	return true
}

func parseHex(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		default:
			r |= rune(c|0x20-'a') + 10
		}
		if r > utf8.MaxRune {
			return r
		}
	}
	return r
}

// fstring parses the body [from, to) of an f-string into s.
func (p *parser) fstring(s int32, from, to int, f strFlags) {
	src := p.src
	i := from
	segStart := from
	for i < to && !p.err {
		c := src[i]
		switch {
		case c == '\\' && !f.raw:
			if n := escapeLen(src[i:to]); n > 0 {
				i += n
			} else {
				i++
			}
			continue
		case c == '\\' && f.raw:
			i++
			if i < to && (src[i] == f.quote || src[i] == '\\') {
				i++
			}
			continue
		case (c == '{' || c == '}') && i+1 < to && src[i+1] == c:
			i += 2
			continue
		case c == '}':
			p.failAt(i) // single '}' is not allowed
			return
		case c == '{':
			p.content(s, segStart, i, f)
			if !p.checkEscapes(segStart, i, f) {
				return
			}
			i = p.interpolation(s, sInterpolation, i, to, f, 0)
			segStart = i
			continue
		}
		i++
	}
	if p.err {
		return
	}
	if !p.checkEscapes(segStart, to, f) {
		return
	}
	p.content(s, segStart, to, f)
}

// interpolation parses a replacement field starting at '{' (offset at)
// and returns the offset after its '}'.
func (p *parser) interpolation(parent int32, s sym, at, limit int, f strFlags, nest int) int {
	if nest >= 2 {
		p.failAt(at) // f-string: expressions nested too deeply
		return limit
	}
	if !p.enter() {
		return limit
	}
	defer p.leave()
	n := p.newNode(s)
	p.cover(n, uint32(at), uint32(at+1))
	lx := p.lx
	lx.fstr = append(lx.fstr, fstrState{end: uint32(limit), quote: f.quote, triple: f.triple, inExpr: true})
	// The field's brackets stack on past the enclosing ones (which it
	// must not see), in the same backing array.
	savedParens := lx.parens
	lx.parens = savedParens[len(savedParens):]
	lx.pos = at + 1
	lx.tok = token{kind: tLBrace, start: uint32(at), end: uint32(at + 1)}
	p.advance()
	defer func() {
		lx.fstr = lx.fstr[:len(lx.fstr)-1]
		lx.parens = savedParens
	}()
	if p.err {
		return limit
	}
	// the expression
	var e int32
	if p.tok.kind == tYield {
		e = p.yieldExpr()
	} else {
		if p.tok.kind == tRBrace || p.tok.kind == tBang || p.tok.kind == tColon || p.tok.kind == tEqual {
			p.fail() // f-string: empty expression not allowed
			return limit
		}
		items, trailing := p.starNamedExpressions()
		if p.err {
			return limit
		}
		e = p.listNode(sExpressionList, items, trailing)
	}
	p.add(n, e, fExpression)
	if p.err {
		return limit
	}
	if p.tok.kind == tEqual {
		p.span(n)
	}
	if p.tok.kind == tBang {
		b := p.tok
		pos := int(b.end)
		if pos+1 >= limit || !(p.src[pos] == 'r' || p.src[pos] == 's' || p.src[pos] == 'a') ||
			!(p.src[pos+1] == ':' || p.src[pos+1] == '}') {
			p.failAt(pos)
			return limit
		}
		p.add(n, p.leafAt(sTypeConversion, b.start, uint32(pos+1)), fNone)
		lx.pos = pos + 1
		lx.tok = token{kind: tName, start: uint32(pos), end: uint32(pos + 1)}
		p.advance()
		if p.err {
			return limit
		}
	}
	if p.tok.kind == tColon {
		spec := p.newNode(sFormatSpecifier)
		p.cover(spec, p.tok.start, p.tok.end)
		i := int(p.tok.end)
		lx.fstr[len(lx.fstr)-1].inExpr = false
		for i < limit && !p.err {
			c := p.src[i]
			if c == '{' {
				i = p.interpolation(spec, sFormatExpression, i, limit, f, nest+1)
				continue
			}
			if c == '}' {
				break
			}
			if c == '\\' && !f.raw {
				if n := escapeLen(p.src[i:limit]); n > 0 {
					i += n
					p.cover(spec, uint32(i-n), uint32(i))
					continue
				}
			}
			i++
			p.cover(spec, uint32(i-1), uint32(i))
		}
		if p.err {
			return limit
		}
		if i >= limit {
			p.failAt(i)
			return limit
		}
		p.add(n, spec, fNone)
		p.cover(n, uint32(i), uint32(i+1))
		p.add(parent, n, fNone)
		return i + 1
	}
	if p.tok.kind != tRBrace {
		p.fail() // f-string: expecting '}'
		return limit
	}
	p.cover(n, p.tok.start, p.tok.end)
	p.add(parent, n, fNone)
	return int(p.tok.end)
}

// unicodeName reports whether name may be a Unicode character name. The
// names themselves are not checked (Go has no name table in the standard
// library): an unknown name is accepted here and rejected by Python.
func unicodeName(name string) bool { return name != "" }

// rawOnlyEscapes reports whether a raw literal's body is only backslashes
// each stepping over a quote, backslash or newline (which tree-sitter's
// scanner does not count as content).
func rawOnlyEscapes(b []byte, quote byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); {
		if b[i] != '\\' {
			return false
		}
		i++
		if i < len(b) && (b[i] == quote || b[i] == '\\') {
			i++
		}
		if i < len(b) && b[i] == '\r' {
			i++
			if i < len(b) && b[i] == '\n' {
				i++
			}
		} else if i < len(b) && b[i] == '\n' {
			i++
		}
	}
	return true
}
