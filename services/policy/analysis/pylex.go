package analysis

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// tokKind is a token of Python 3.11's tokenizer. Keywords and operators
// each have their own kind.
type tokKind uint8

const (
	tEOF tokKind = iota
	tNewline
	tIndent
	tDedent
	tName
	tInt
	tFloat
	tString // a string literal's prefix and opening quotes; the parser scans the rest
	tErr

	// keywords
	tFalse
	tNone
	tTrue
	tAnd
	tAs
	tAssert
	tAsync
	tAwait
	tBreak
	tClass
	tContinue
	tDef
	tDel
	tElif
	tElse
	tExcept
	tFinally
	tFor
	tFrom
	tGlobal
	tIf
	tImport
	tIn
	tIs
	tLambda
	tNonlocal
	tNot
	tOr
	tPass
	tRaise
	tReturn
	tTry
	tWhile
	tWith
	tYield

	// operators and delimiters
	tLPar
	tRPar
	tLSqb
	tRSqb
	tLBrace
	tRBrace
	tColon
	tComma
	tSemi
	tPlus
	tMinus
	tStar
	tSlash
	tVBar
	tAmper
	tLess
	tGreater
	tEqual
	tDot
	tPercent
	tEqEqual
	tNotEqual
	tLessEqual
	tGreaterEqual
	tTilde
	tCircumflex
	tLShift
	tRShift
	tDoubleStar
	tPlusEqual
	tMinEqual
	tStarEqual
	tSlashEqual
	tPercentEqual
	tAmperEqual
	tVBarEqual
	tCircumflexEqual
	tLShiftEqual
	tRShiftEqual
	tDoubleStarEqual
	tDoubleSlash
	tDoubleSlashEqual
	tAt
	tAtEqual
	tRArrow
	tEllipsis
	tColonEqual
	tBang // '!' (only inside an f-string replacement field)
)

// keyword returns the keyword kind of an ASCII name, or tName.
func keyword(b []byte) tokKind {
	if len(b) < 2 || len(b) > 8 {
		return tName
	}
	var k tokKind
	switch b[0] {
	case 'F':
		k = kwIf(b, "False", tFalse)
	case 'N':
		k = kwIf(b, "None", tNone)
	case 'T':
		k = kwIf(b, "True", tTrue)
	case 'a':
		switch len(b) {
		case 2:
			k = kwIf(b, "as", tAs)
		case 3:
			k = kwIf(b, "and", tAnd)
		case 5:
			if k = kwIf(b, "async", tAsync); k == tName {
				k = kwIf(b, "await", tAwait)
			}
		case 6:
			k = kwIf(b, "assert", tAssert)
		}
	case 'b':
		k = kwIf(b, "break", tBreak)
	case 'c':
		if k = kwIf(b, "class", tClass); k == tName {
			k = kwIf(b, "continue", tContinue)
		}
	case 'd':
		if k = kwIf(b, "def", tDef); k == tName {
			k = kwIf(b, "del", tDel)
		}
	case 'e':
		switch len(b) {
		case 4:
			if k = kwIf(b, "elif", tElif); k == tName {
				k = kwIf(b, "else", tElse)
			}
		case 6:
			k = kwIf(b, "except", tExcept)
		}
	case 'f':
		switch len(b) {
		case 3:
			k = kwIf(b, "for", tFor)
		case 4:
			k = kwIf(b, "from", tFrom)
		case 7:
			k = kwIf(b, "finally", tFinally)
		}
	case 'g':
		k = kwIf(b, "global", tGlobal)
	case 'i':
		switch len(b) {
		case 2:
			switch b[1] {
			case 'f':
				k = tIf
			case 'n':
				k = tIn
			case 's':
				k = tIs
			default:
				k = tName
			}
		case 6:
			k = kwIf(b, "import", tImport)
		}
	case 'l':
		k = kwIf(b, "lambda", tLambda)
	case 'n':
		if k = kwIf(b, "not", tNot); k == tName {
			k = kwIf(b, "nonlocal", tNonlocal)
		}
	case 'o':
		k = kwIf(b, "or", tOr)
	case 'p':
		k = kwIf(b, "pass", tPass)
	case 'r':
		if k = kwIf(b, "raise", tRaise); k == tName {
			k = kwIf(b, "return", tReturn)
		}
	case 't':
		k = kwIf(b, "try", tTry)
	case 'w':
		if k = kwIf(b, "while", tWhile); k == tName {
			k = kwIf(b, "with", tWith)
		}
	case 'y':
		k = kwIf(b, "yield", tYield)
	}
	if k == tEOF {
		return tName
	}
	return k
}

func kwIf(b []byte, kw string, k tokKind) tokKind {
	if string(b) == kw {
		return k
	}
	return tName
}

// token is one token: its kind and byte span. A dedent's span is empty and
// sits where tree-sitter ends the block it closes (after any comments the
// block keeps); a newline's span is empty and sits after the line's last
// token or its trailing comment.
type token struct {
	kind       tokKind
	start, end uint32
}

// comment is one comment: where it is and, when it is the first thing on
// its line, its indentation as tree-sitter measures it (tab = 8), else -1.
type comment struct {
	start, end uint32
	indent     int32
}

// fstrState is an f-string being parsed: where its literal ends and its
// quote.
type fstrState struct {
	end    uint32 // offset of the closing quotes
	quote  byte
	triple bool
	depth  int // bracket depth inside the current replacement field
	inExpr bool
}

// lexer tokenizes Python source the way CPython 3.11 does.
type lexer struct {
	src  []byte
	pos  int
	tok  token
	prev token // the last token that was not a newline, indent or dedent

	parens  []byte // open brackets
	indents []int  // CPython columns (tab to multiple of 8)
	altInds []int  // columns with tab = 1, for TabError
	tsInds  []int  // tree-sitter's measure (tab = 8), for block ends

	pendingDedents int
	dedentEnds     []uint32
	dedentNext     int
	atLineStart    bool
	sawToken       bool // a token on the current logical line

	comments []comment
	conts    []comment // line continuations (backslash-newline)
	fstr     []fstrState

	err    string
	errPos int
}

func (lx *lexer) fail(pos int, msg string) {
	if lx.err == "" {
		lx.err = msg
		lx.errPos = pos
	}
	lx.tok = token{kind: tErr, start: uint32(pos), end: uint32(pos)}
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' || c >= 0x80
}

// next advances to the next token (lx.tok).
func (lx *lexer) next() {
	if lx.tok.kind == tErr {
		return
	}
	if lx.tok.kind != tNewline && lx.tok.kind != tIndent && lx.tok.kind != tDedent && lx.tok.kind != tEOF {
		lx.prev = lx.tok
	}
	if lx.pendingDedents > 0 {
		lx.pendingDedents--
		e := lx.dedentEnds[lx.dedentNext]
		lx.dedentNext++
		lx.tok = token{kind: tDedent, start: e, end: e}
		return
	}
	if lx.atLineStart && len(lx.parens) == 0 && len(lx.fstr) == 0 {
		if lx.lineStart() {
			return
		}
	}
	lx.scan()
}

// lineStart measures the indentation of the next logical line, skipping
// blank and comment-only lines, and emits indent or dedent tokens. It
// reports whether it set lx.tok.
func (lx *lexer) lineStart() bool {
	src := lx.src
	firstComment := len(lx.comments)
	for {
		col, alt, ts := 0, 0, 0
		i := lx.pos
	loop:
		for i < len(src) {
			switch src[i] {
			case ' ':
				col++
				alt++
				ts++
			case '\t':
				col = (col/8 + 1) * 8
				alt++
				ts += 8
			case '\f':
				col, alt, ts = 0, 0, 0
			default:
				break loop
			}
			i++
		}
		if i >= len(src) {
			// End of input: dedent everything.
			lx.pos = i
			lx.atLineStart = false
			return lx.dedentTo(0, 0, i, firstComment, true)
		}
		switch src[i] {
		case '#':
			j := i
			for j < len(src) && src[j] != '\n' && src[j] != '\r' {
				j++
			}
			lx.comments = append(lx.comments, comment{start: uint32(i), end: uint32(j), indent: int32(ts)})
			lx.pos = skipNewline(src, j)
			continue
		case '\n', '\r':
			lx.pos = skipNewline(src, i)
			continue
		}
		lx.pos = i
		lx.atLineStart = false
		top := lx.indents[len(lx.indents)-1]
		alttop := lx.altInds[len(lx.altInds)-1]
		switch {
		case col == top:
			if alt != alttop {
				lx.fail(i, "inconsistent use of tabs and spaces in indentation")
				return true
			}
		case col > top:
			if alt <= alttop {
				lx.fail(i, "inconsistent use of tabs and spaces in indentation")
				return true
			}
			if len(lx.indents) >= 100 {
				lx.fail(i, "too many levels of indentation")
				return true
			}
			lx.indents = append(lx.indents, col)
			lx.altInds = append(lx.altInds, alt)
			lx.tsInds = append(lx.tsInds, ts)
			lx.tok = token{kind: tIndent, start: uint32(i), end: uint32(i)}
			return true
		default:
			return lx.dedentTo(col, alt, i, firstComment, false)
		}
		return false
	}
}

// dedentTo pops indentation levels above col and queues their dedent
// tokens, each ending where tree-sitter ends the block it closes.
func (lx *lexer) dedentTo(col, alt, pos, firstComment int, eof bool) bool {
	n := 0
	for len(lx.indents) > 1 && lx.indents[len(lx.indents)-1] > col {
		n++
		lx.indents = lx.indents[:len(lx.indents)-1]
		lx.altInds = lx.altInds[:len(lx.altInds)-1]
	}
	if !eof && (lx.indents[len(lx.indents)-1] != col) {
		lx.fail(pos, "unindent does not match any outer indentation level")
		return true
	}
	if !eof && lx.altInds[len(lx.altInds)-1] != alt {
		lx.fail(pos, "inconsistent use of tabs and spaces in indentation")
		return true
	}
	if n == 0 {
		if eof {
			lx.tok = token{kind: tEOF, start: uint32(pos), end: uint32(pos)}
			return true
		}
		return false
	}
	// The innermost block keeps the comments after its last token that are
	// indented at least as far as it is; then the next block out, and so on.
	end := lx.prev.end
	lastNL := lx.lastNewlineEnd()
	if lastNL > end {
		end = lastNL
	}
	ci := firstComment
	lx.dedentEnds = lx.dedentEnds[:0]
	for k := 0; k < n; k++ {
		ind := lx.tsInds[len(lx.tsInds)-1]
		lx.tsInds = lx.tsInds[:len(lx.tsInds)-1]
		for ci < len(lx.comments) && int(lx.comments[ci].indent) >= ind {
			end = lx.comments[ci].end
			ci++
		}
		lx.dedentEnds = append(lx.dedentEnds, end)
	}
	lx.pendingDedents = n - 1
	e := lx.dedentEnds[0]
	lx.dedentNext = 1
	lx.tok = token{kind: tDedent, start: e, end: e}
	return true
}

// lastNewlineEnd is the end of the last line's trailing comment, or 0.
func (lx *lexer) lastNewlineEnd() uint32 {
	if n := len(lx.comments); n > 0 && lx.comments[n-1].indent < 0 && lx.comments[n-1].start >= lx.prev.end {
		return lx.comments[n-1].end
	}
	return 0
}

func skipNewline(src []byte, i int) int {
	if i < len(src) && src[i] == '\r' {
		i++
	}
	if i < len(src) && src[i] == '\n' {
		i++
	}
	return i
}

// scan lexes one token from lx.pos.
func (lx *lexer) scan() {
	src := lx.src
	i := lx.pos
	for {
		for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\f') {
			i++
		}
		if i >= len(src) {
			break
		}
		c := src[i]
		if c == '#' {
			if len(lx.fstr) > 0 && lx.fstr[len(lx.fstr)-1].inExpr {
				lx.fail(i, "f-string expression part cannot include '#'")
				return
			}
			j := i
			for j < len(src) && src[j] != '\n' && src[j] != '\r' {
				j++
			}
			lx.comments = append(lx.comments, comment{start: uint32(i), end: uint32(j), indent: -1})
			i = j
			continue
		}
		if c == '\\' {
			if len(lx.fstr) > 0 && lx.fstr[len(lx.fstr)-1].inExpr {
				lx.fail(i, "f-string expression part cannot include a backslash")
				return
			}
			j := i + 1
			if j < len(src) && (src[j] == '\n' || src[j] == '\r') {
				e := skipNewline(src, j)
				if !stringFollows(src, e) {
					lx.conts = append(lx.conts, comment{start: uint32(i), end: uint32(e)})
				}
				i = e
				if i >= len(src) {
					lx.fail(i, "unexpected EOF while parsing")
					return
				}
				continue
			}
			lx.fail(i, "unexpected character after line continuation character")
			return
		}
		if c == '\n' || c == '\r' {
			if len(lx.fstr) > 0 && lx.fstr[len(lx.fstr)-1].inExpr {
				if !lx.fstr[len(lx.fstr)-1].triple {
					lx.fail(i, "unterminated string literal")
					return
				}
				i = skipNewline(src, i)
				continue
			}
			if len(lx.parens) > 0 {
				i = skipNewline(src, i)
				continue
			}
			if !lx.sawToken {
				i = skipNewline(src, i)
				continue
			}
			// End of a logical line: the newline token sits after the last
			// token or its trailing comment.
			e := lx.prev.end
			if lx.tok.kind != tNewline && lx.tok.kind != tIndent && lx.tok.kind != tDedent {
				e = lx.tok.end
			}
			if n := len(lx.comments); n > 0 && lx.comments[n-1].start >= e && lx.comments[n-1].indent < 0 {
				e = lx.comments[n-1].end
			}
			lx.pos = skipNewline(src, i)
			lx.atLineStart = true
			lx.sawToken = false
			lx.tok = token{kind: tNewline, start: e, end: e}
			return
		}
		break
	}
	if i >= len(src) {
		lx.pos = i
		if len(lx.fstr) > 0 {
			lx.fail(i, "unterminated f-string")
			return
		}
		if len(lx.parens) > 0 {
			lx.fail(i, "'"+string(lx.parens[len(lx.parens)-1])+"' was never closed")
			return
		}
		if lx.sawToken {
			e := lx.tok.end
			if n := len(lx.comments); n > 0 && lx.comments[n-1].start >= e && lx.comments[n-1].indent < 0 {
				e = lx.comments[n-1].end
			}
			lx.sawToken = false
			lx.atLineStart = true
			lx.tok = token{kind: tNewline, start: e, end: e}
			return
		}
		lx.atLineStart = true
		if !lx.lineStart() {
			lx.tok = token{kind: tEOF, start: uint32(i), end: uint32(i)}
		}
		return
	}
	if len(lx.fstr) > 0 && lx.fstr[len(lx.fstr)-1].inExpr && i >= int(lx.fstr[len(lx.fstr)-1].end) {
		lx.fail(i, "f-string: expecting '}'")
		return
	}
	lx.sawToken = true
	start := i
	c := src[i]
	switch {
	case isNameStart(c):
		if q, ok := stringPrefix(src, i); ok {
			lx.pos = q
			lx.tok = token{kind: tString, start: uint32(start), end: uint32(q)}
			return
		}
		ascii := true
		for i < len(src) && isNameChar(src[i]) {
			if src[i] >= 0x80 {
				ascii = false
			}
			i++
		}
		lx.pos = i
		if !ascii {
			if !validIdentifier(src[start:i]) {
				lx.fail(start, "invalid character in identifier")
				return
			}
			lx.tok = token{kind: tName, start: uint32(start), end: uint32(i)}
			return
		}
		k := keyword(src[start:i])
		lx.tok = token{kind: k, start: uint32(start), end: uint32(i)}
		return
	case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
		lx.number(i)
		return
	case c == '"' || c == '\'':
		lx.pos = i
		q, _ := stringPrefix(src, i)
		lx.pos = q
		lx.tok = token{kind: tString, start: uint32(start), end: uint32(q)}
		return
	}
	k, n := operator(src[i:])
	if n == 0 {
		lx.fail(i, "invalid character")
		return
	}
	inF := len(lx.fstr) > 0 && lx.fstr[len(lx.fstr)-1].inExpr
	switch k {
	case tLPar, tLSqb, tLBrace:
		if len(lx.parens) >= 200 {
			lx.fail(i, "too many nested parentheses")
			return
		}
		lx.parens = append(lx.parens, src[i])
		if inF {
			lx.fstr[len(lx.fstr)-1].depth++
		}
	case tRPar, tRSqb, tRBrace:
		if inF && lx.fstr[len(lx.fstr)-1].depth == 0 {
			break // the end of a replacement field; the parser handles it
		}
		if len(lx.parens) == 0 {
			lx.fail(i, "unmatched '"+string(src[i])+"'")
			return
		}
		open := lx.parens[len(lx.parens)-1]
		if open == '(' && c != ')' || open == '[' && c != ']' || open == '{' && c != '}' {
			lx.fail(i, "closing parenthesis does not match")
			return
		}
		lx.parens = lx.parens[:len(lx.parens)-1]
		if inF {
			lx.fstr[len(lx.fstr)-1].depth--
		}
	case tColonEqual:
		if inF && lx.fstr[len(lx.fstr)-1].depth == 0 {
			k, n = tColon, 1
		}
	case tBang:
		if !inF {
			lx.fail(i, "invalid syntax")
			return
		}
	}
	lx.pos = i + n
	lx.tok = token{kind: k, start: uint32(start), end: uint32(i + n)}
}

// stringPrefix reports whether a string literal starts at i (after a valid
// prefix) and returns the offset after its opening quotes.
func stringPrefix(src []byte, i int) (int, bool) {
	j := i
	for j < len(src) && j-i < 2 {
		switch src[j] | 0x20 {
		case 'r', 'u', 'b', 'f':
			j++
			continue
		}
		break
	}
	if j >= len(src) || src[j] != '"' && src[j] != '\'' {
		return 0, false
	}
	if !validPrefix(src[i:j]) {
		return 0, false
	}
	q := src[j]
	if j+2 < len(src) && src[j+1] == q && src[j+2] == q {
		return j + 3, true
	}
	return j + 1, true
}

func validPrefix(p []byte) bool {
	switch len(p) {
	case 0:
		return true
	case 1:
		return true
	case 2:
		a, b := p[0]|0x20, p[1]|0x20
		if a > b {
			a, b = b, a
		}
		return a == 'b' && b == 'r' || a == 'f' && b == 'r'
	}
	return false
}

// strFlags describes a string literal from its start token.
type strFlags struct {
	raw, bytes, format, triple bool
	quote                      byte
}

func flagsOf(tok []byte) strFlags {
	var f strFlags
	for _, c := range tok {
		switch c | 0x20 {
		case 'r':
			f.raw = true
		case 'b':
			f.bytes = true
		case 'f':
			f.format = true
		}
		if c == '"' || c == '\'' {
			f.quote = c
			break
		}
	}
	f.triple = len(tok) >= 3 && tok[len(tok)-1] == tok[len(tok)-2] && tok[len(tok)-2] == tok[len(tok)-3] &&
		(tok[len(tok)-1] == '"' || tok[len(tok)-1] == '\'')
	return f
}

// stringEnd finds the closing quotes of a literal whose body starts at i,
// as CPython's tokenizer does; it returns the offset of the closing quotes
// or -1.
func stringEnd(src []byte, i int, f strFlags) int {
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\\':
			i += 2
			if i-1 < len(src) && src[i-1] == '\r' && i < len(src) && src[i] == '\n' {
				i++
			}
			continue
		case c == f.quote:
			if !f.triple {
				return i
			}
			if i+2 < len(src) && src[i+1] == c && src[i+2] == c {
				return i
			}
		case (c == '\n' || c == '\r') && !f.triple:
			return -1
		}
		i++
	}
	return -1
}

// operator returns the operator token at the start of b and its length.
func operator(b []byte) (tokKind, int) {
	c := b[0]
	var c1, c2 byte
	if len(b) > 1 {
		c1 = b[1]
	}
	if len(b) > 2 {
		c2 = b[2]
	}
	switch c {
	case '(':
		return tLPar, 1
	case ')':
		return tRPar, 1
	case '[':
		return tLSqb, 1
	case ']':
		return tRSqb, 1
	case '{':
		return tLBrace, 1
	case '}':
		return tRBrace, 1
	case ',':
		return tComma, 1
	case ';':
		return tSemi, 1
	case '~':
		return tTilde, 1
	case ':':
		if c1 == '=' {
			return tColonEqual, 2
		}
		return tColon, 1
	case '+':
		if c1 == '=' {
			return tPlusEqual, 2
		}
		return tPlus, 1
	case '-':
		if c1 == '=' {
			return tMinEqual, 2
		}
		if c1 == '>' {
			return tRArrow, 2
		}
		return tMinus, 1
	case '*':
		if c1 == '*' {
			if c2 == '=' {
				return tDoubleStarEqual, 3
			}
			return tDoubleStar, 2
		}
		if c1 == '=' {
			return tStarEqual, 2
		}
		return tStar, 1
	case '/':
		if c1 == '/' {
			if c2 == '=' {
				return tDoubleSlashEqual, 3
			}
			return tDoubleSlash, 2
		}
		if c1 == '=' {
			return tSlashEqual, 2
		}
		return tSlash, 1
	case '|':
		if c1 == '=' {
			return tVBarEqual, 2
		}
		return tVBar, 1
	case '&':
		if c1 == '=' {
			return tAmperEqual, 2
		}
		return tAmper, 1
	case '^':
		if c1 == '=' {
			return tCircumflexEqual, 2
		}
		return tCircumflex, 1
	case '%':
		if c1 == '=' {
			return tPercentEqual, 2
		}
		return tPercent, 1
	case '@':
		if c1 == '=' {
			return tAtEqual, 2
		}
		return tAt, 1
	case '=':
		if c1 == '=' {
			return tEqEqual, 2
		}
		return tEqual, 1
	case '!':
		if c1 == '=' {
			return tNotEqual, 2
		}
		return tBang, 1
	case '<':
		if c1 == '<' {
			if c2 == '=' {
				return tLShiftEqual, 3
			}
			return tLShift, 2
		}
		if c1 == '=' {
			return tLessEqual, 2
		}
		return tLess, 1
	case '>':
		if c1 == '>' {
			if c2 == '=' {
				return tRShiftEqual, 3
			}
			return tRShift, 2
		}
		if c1 == '=' {
			return tGreaterEqual, 2
		}
		return tGreater, 1
	case '.':
		if c1 == '.' && c2 == '.' {
			return tEllipsis, 3
		}
		return tDot, 1
	}
	return tEOF, 0
}

// number lexes a numeric literal at i as CPython 3.11 does.
func (lx *lexer) number(i int) {
	src := lx.src
	start := i
	digits := func(i int, ok func(byte) bool) (int, bool) {
		// (_? d)+ with at least one digit first
		if i >= len(src) || !ok(src[i]) {
			return i, false
		}
		for i < len(src) {
			if ok(src[i]) {
				i++
				continue
			}
			if src[i] == '_' && i+1 < len(src) && ok(src[i+1]) {
				i += 2
				continue
			}
			break
		}
		return i, true
	}
	dec := func(c byte) bool { return c >= '0' && c <= '9' }
	kind := tInt
	bad := false
	if src[i] == '0' && i+1 < len(src) && (src[i+1]|0x20 == 'x' || src[i+1]|0x20 == 'o' || src[i+1]|0x20 == 'b') {
		var ok func(byte) bool
		switch src[i+1] | 0x20 {
		case 'x':
			ok = func(c byte) bool { return dec(c) || c|0x20 >= 'a' && c|0x20 <= 'f' }
		case 'o':
			ok = func(c byte) bool { return c >= '0' && c <= '7' }
		default:
			ok = func(c byte) bool { return c == '0' || c == '1' }
		}
		i += 2
		if i < len(src) && src[i] == '_' {
			i++
		}
		var good bool
		i, good = digits(i, ok)
		if !good || i < len(src) && (dec(src[i]) || src[i] == '_') {
			bad = true
		}
	} else {
		intStart := i
		if src[i] != '.' {
			i, _ = digits(i, dec)
		}
		isFloat := false
		if i < len(src) && src[i] == '.' {
			isFloat = true
			i++
			if i < len(src) && dec(src[i]) {
				i, _ = digits(i, dec)
			}
		}
		if i < len(src) && src[i]|0x20 == 'e' {
			j := i + 1
			if j < len(src) && (src[j] == '+' || src[j] == '-') {
				j++
			}
			if k, ok := digits(j, dec); ok {
				i = k
				isFloat = true
			} else {
				bad = true
			}
		}
		imag := false
		if i < len(src) && src[i]|0x20 == 'j' {
			i++
			imag = true
		}
		if isFloat {
			kind = tFloat
		}
		if !isFloat && !imag && src[intStart] == '0' {
			// "0", "00", "0_0": no other leading zeros
			for _, c := range src[intStart:i] {
				if c != '0' && c != '_' {
					bad = true
				}
			}
		}
		if i < len(src) && src[i] == '_' {
			bad = true
		}
	}
	if !bad && i < len(src) && isNameStart(src[i]) {
		// 1if x else y is allowed (with a warning) before these keywords.
		ok := false
		for _, kw := range [...]string{"and", "else", "for", "if", "in", "is", "not", "or"} {
			if len(src)-i >= len(kw) && string(src[i:i+len(kw)]) == kw {
				ok = true
			}
		}
		if !ok {
			bad = true
		}
	}
	if bad {
		lx.fail(start, "invalid number literal")
		return
	}
	lx.pos = i
	lx.tok = token{kind: kind, start: uint32(start), end: uint32(i)}
}

// validIdentifier reports whether a non-ASCII name is an identifier to
// Python: after NFKC, an XID_Start (or _) then XID_Continue characters.
func validIdentifier(b []byte) bool {
	s := norm.NFKC.String(string(b))
	for i, r := range s {
		if r == utf8.RuneError {
			return false
		}
		if i == 0 {
			if !(r == '_' || isIDStart(r)) {
				return false
			}
		} else if !isIDContinue(r) {
			return false
		}
	}
	return s != ""
}

func isIDStart(r rune) bool {
	if r < 0x80 {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
	}
	return unicode.In(r, unicode.L, unicode.Nl, unicode.Other_ID_Start) && !unicode.In(r, unicode.Pattern_Syntax, unicode.Pattern_White_Space)
}

func isIDContinue(r rune) bool {
	if r < 0x80 {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r >= '0' && r <= '9'
	}
	return isIDStart(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc, unicode.Other_ID_Continue) &&
		!unicode.In(r, unicode.Pattern_Syntax, unicode.Pattern_White_Space)
}

// stringFollows reports whether a string literal starts at i after blanks
// and line continuations: tree-sitter's scanner then takes the
// continuation as padding instead of a line_continuation node.
func stringFollows(src []byte, i int) bool {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\f':
			i++
			continue
		case '\\':
			if i+1 < len(src) && (src[i+1] == '\n' || src[i+1] == '\r') {
				i = skipNewline(src, i+1)
				continue
			}
		}
		break
	}
	if i >= len(src) {
		return false
	}
	if src[i] == '"' || src[i] == '\'' {
		return true
	}
	_, ok := stringPrefix(src, i)
	return ok
}
