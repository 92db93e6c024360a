package analysis

import (
	"context"
	"time"
)

// The Go parser: a recursive-descent parser for Python 3.11 that accepts
// what CPython 3.11 accepts and builds the tree tree-sitter-python v0.23.6
// builds for it (node types, the fields the analyser reads, spans).

// pnode is a node under construction.
type pnode struct {
	sym         sym
	field       field
	start, end  uint32
	first, last int32
	next        int32
}

const noPos = ^uint32(0)

type parser struct {
	lx    *lexer
	src   []byte
	tok   token
	nodes []pnode

	err       bool
	errPos    int
	truncated bool
	cancelled bool

	depth    int
	maxDepth int
	maxNodes int
	steps    int
	deadline time.Time
	ctx      context.Context

	items     []int32 // stack of expression lists being parsed
	lastComma uint32  // offset of the last comma consumed by a list parser
	lastBytes bool    // the last string literal was bytes
	futureOK  bool    // a from __future__ import may come here

	funcDepth  int // enclosing function bodies
	asyncDepth int // set while in an async def body (not nested defs)
	loopDepth  int
	inClass    bool
}

func (p *parser) advance() {
	p.lx.next()
	p.tok = p.lx.tok
	if p.tok.kind == tErr && !p.err {
		p.failAt(int(p.tok.start))
	}
	p.steps++
	if p.steps&1023 == 0 {
		if time.Now().After(p.deadline) || p.ctx.Err() != nil {
			p.cancelled = true
			p.failAt(int(p.tok.start))
		}
	}
}

func (p *parser) failAt(pos int) {
	if !p.err {
		p.err = true
		p.errPos = pos
	}
	p.tok = token{kind: tErr, start: uint32(pos), end: uint32(pos)}
	p.lx.tok = p.tok
}

func (p *parser) fail() { p.failAt(int(p.tok.start)) }

// enter guards recursion; it reports false (and stops the parse as
// truncated) past the depth limit.
func (p *parser) enter() bool {
	p.depth++
	if p.depth > p.maxDepth {
		if !p.err {
			p.truncated = true
			p.failAt(int(p.tok.start))
		}
		return false
	}
	return true
}

func (p *parser) leave() { p.depth-- }

func (p *parser) newNode(s sym) int32 {
	if len(p.nodes) >= p.maxNodes {
		if !p.err {
			p.truncated = true
			p.failAt(int(p.tok.start))
		}
		// keep building into a scratch node so callers need no checks
		if len(p.nodes) > p.maxNodes {
			p.nodes[p.maxNodes] = pnode{sym: s, start: noPos, first: -1, last: -1, next: -1}
			return int32(p.maxNodes)
		}
	}
	p.nodes = append(p.nodes, pnode{sym: s, start: noPos, first: -1, last: -1, next: -1})
	return int32(len(p.nodes) - 1)
}

// leaf makes a node for the current token and advances.
func (p *parser) leaf(s sym) int32 {
	n := p.newNode(s)
	p.nodes[n].start, p.nodes[n].end = p.tok.start, p.tok.end
	p.advance()
	return n
}

func (p *parser) leafAt(s sym, start, end uint32) int32 {
	n := p.newNode(s)
	p.nodes[n].start, p.nodes[n].end = start, end
	return n
}

// add appends child c to n with field f.
func (p *parser) add(n, c int32, f field) {
	if c < 0 || n == c {
		return
	}
	cn := &p.nodes[c]
	cn.field = f
	cn.next = -1
	nn := &p.nodes[n]
	if nn.last >= 0 {
		p.nodes[nn.last].next = c
	} else {
		nn.first = c
	}
	nn.last = c
	if nn.start == noPos || cn.start < nn.start {
		nn.start = cn.start
	}
	if cn.end > nn.end {
		nn.end = cn.end
	}
}

// span widens n over the current token and advances.
func (p *parser) span(n int32) {
	p.cover(n, p.tok.start, p.tok.end)
	p.advance()
}

func (p *parser) cover(n int32, start, end uint32) {
	nn := &p.nodes[n]
	if nn.start == noPos || start < nn.start {
		nn.start = start
	}
	if end > nn.end {
		nn.end = end
	}
}

// expect consumes a token of kind k into n's span, or fails.
func (p *parser) expect(n int32, k tokKind) bool {
	if p.tok.kind != k {
		p.fail()
		return false
	}
	if n >= 0 {
		p.span(n)
	} else {
		p.advance()
	}
	return true
}

// opNode adds the current token as an anonymous operator child of n.
func (p *parser) opNode(n int32, f field) {
	s := sAnon
	switch p.tok.kind {
	case tPlus:
		s = sPlusTok
	case tSlash:
		s = sSlashTok
	}
	c := p.leafAt(s, p.tok.start, p.tok.end)
	p.add(n, c, f)
	p.advance()
}

// parsePython parses src into the analyser's tree.
func parsePython(ctx context.Context, src []byte, lim parseLimits) (t *tree, err error) {
	defer func() {
		// A bug must not take the service down: report the code as not
		// parsed (the fuzz tests hunt these).
		if r := recover(); r != nil {
			t = &tree{src: src, hasError: true, nodes: []node{
				{kind: kModule, named: true, end: uint32(len(src)), parent: -1, firstChild: 1, nextSibling: -1},
				{kind: kError, named: true, end: uint32(len(src)), parent: 0, firstChild: -1, nextSibling: -1}}}
			err = nil
		}
	}()
	return parseGo(ctx, src, lim)
}

func parseGo(ctx context.Context, src []byte, lim parseLimits) (*tree, error) {
	if ctx.Err() != nil || !time.Now().Before(lim.deadline) {
		return nil, parseCancelled{}
	}
	p := &parser{src: src, lx: newLexer(src), maxDepth: lim.maxDepth, maxNodes: lim.maxNodes,
		deadline: lim.deadline, ctx: ctx}
	if p.maxDepth <= 0 {
		p.maxDepth = 400
	}
	if p.maxNodes <= 0 {
		p.maxNodes = 400_000
	}
	p.nodes = make([]pnode, 0, len(src)/3+16)
	if len(src) >= 3 && src[0] == 0xEF && src[1] == 0xBB && src[2] == 0xBF {
		p.lx.pos = 3
	}
	for _, b := range src {
		if b == 0 {
			p.failAt(0)
			break
		}
	}
	root := p.newNode(sModule)
	if !p.err {
		p.advance()
	}
	completed := int32(-1) // last statement of the root that parsed whole
	p.futureOK = true
	for first := true; !p.err && p.tok.kind != tEOF; first = false {
		p.statement(root)
		if p.err {
			break
		}
		completed = p.nodes[root].last
		// from __future__ imports may follow only a docstring and each other.
		st := &p.nodes[completed]
		if st.sym != sFutureImportStatement && !(first && st.sym == sExpressionStatement && st.first == st.last &&
			st.first >= 0 && (p.nodes[st.first].sym == sString || p.nodes[st.first].sym == sConcatenatedString)) {
			p.futureOK = false
		}
	}
	if p.cancelled {
		return nil, parseCancelled{}
	}
	t := &tree{src: src, truncated: p.truncated}
	if p.err {
		// Keep the statements that parsed; mark the fault.
		rn := &p.nodes[root]
		rn.last = completed
		if completed < 0 {
			rn.first = -1
		} else {
			p.nodes[completed].next = -1
		}
		if !p.truncated {
			t.hasError = true
			end := p.errPos
			for end < len(src) && src[end] != '\n' {
				end++
			}
			if p.errPos > len(src) {
				p.errPos = len(src)
			}
			e := p.leafAt(sError, uint32(p.errPos), uint32(end))
			if len(p.nodes) > p.maxNodes+1 {
				e = int32(len(p.nodes) - 1)
			}
			p.add(root, e, fNone)
		}
	}
	if !p.err {
		for _, c := range p.lx.conts {
			p.insertExtra(root, sLineContinuation, c.start, c.end)
		}
	}
	// The module spans from its first token (or comment) to the end.
	rn := &p.nodes[root]
	start := uint32(len(src))
	if rn.first >= 0 {
		start = p.nodes[rn.first].start
	}
	if len(p.lx.comments) > 0 && p.lx.comments[0].start < start {
		start = p.lx.comments[0].start
	}
	rn.start, rn.end = start, uint32(len(src))
	t.nodes = p.layout(root)
	if keepSyms {
		t.syms = p.layoutSyms(root)
	}
	return t, nil
}

// layout copies the nodes under root into preorder.
func (p *parser) layout(root int32) []node {
	out := make([]node, 0, len(p.nodes))
	type frame struct{ src, parentSrc, dst int32 }
	stack := make([]frame, 0, 64)
	stack = append(stack, frame{root, -1, -1})
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if len(out) >= p.maxNodes {
			p.truncated = true
			break
		}
		pn := &p.nodes[f.src]
		idx := int32(len(out))
		s, e := pn.start, pn.end
		if s == noPos {
			s = e
		}
		out = append(out, node{kind: symKinds[pn.sym], field: pn.field, named: pn.sym > sSlashTok,
			start: s, end: e, parent: f.dst, firstChild: -1, nextSibling: -1})
		if f.dst >= 0 {
			// The parent's pnode.last now holds its last laid-out child.
			pp := &p.nodes[f.parentSrc]
			if pp.last >= 0 {
				out[pp.last].nextSibling = idx
			} else {
				out[f.dst].firstChild = idx
			}
			pp.last = idx
		}
		n0 := len(stack)
		for c := pn.first; c >= 0; c = p.nodes[c].next {
			stack = append(stack, frame{c, f.src, idx})
		}
		pn.last = -1
		for i, j := n0, len(stack)-1; i < j; i, j = i+1, j-1 {
			stack[i], stack[j] = stack[j], stack[i]
		}
	}
	return out
}

// keepSyms makes parsePython record each node's tree-sitter type in
// tree.syms (for the differential tests).
var keepSyms = false

// layoutSyms lists the syms of the nodes under root in preorder.
func (p *parser) layoutSyms(root int32) []sym {
	var out []sym
	stack := []int32{root}
	for len(stack) > 0 && len(out) < p.maxNodes {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, p.nodes[n].sym)
		n0 := len(stack)
		for c := p.nodes[n].first; c >= 0; c = p.nodes[c].next {
			stack = append(stack, c)
		}
		for i, j := n0, len(stack)-1; i < j; i, j = i+1, j-1 {
			stack[i], stack[j] = stack[j], stack[i]
		}
	}
	return out
}

// insertExtra places an extra token (a line continuation) where
// tree-sitter puts it: in the deepest node that has tokens on both sides.
func (p *parser) insertExtra(root int32, s sym, start, end uint32) {
	n := root
	for {
		var prev int32 = -1
		var into int32 = -1
		for c := p.nodes[n].first; c >= 0; c = p.nodes[c].next {
			cn := &p.nodes[c]
			if cn.start != noPos && cn.start < start && cn.end > start {
				into = c
				break
			}
			if cn.start != noPos && cn.start < start {
				prev = c
			}
		}
		if into >= 0 {
			n = into
			continue
		}
		e := p.newNode(s)
		p.nodes[e].start, p.nodes[e].end = start, end
		if prev < 0 {
			p.nodes[e].next = p.nodes[n].first
			p.nodes[n].first = e
			if p.nodes[n].last < 0 {
				p.nodes[n].last = e
			}
		} else {
			p.nodes[e].next = p.nodes[prev].next
			p.nodes[prev].next = e
			if p.nodes[n].last == prev {
				p.nodes[n].last = e
			}
		}
		return
	}
}
