package analysis

import (
	"bytes"
	"context"
	"sync"
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

// stackEntry is an open ancestor in layout: its arena and preorder index.
type stackEntry struct{ src, dst int32 }

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

	items     []int32      // stack of expression lists being parsed
	stack     []stackEntry // layout's stack of open ancestors
	lastComma uint32       // offset of the last comma consumed by a list parser
	lastBytes bool         // the last string literal was bytes
	futureOK  bool         // a from __future__ import may come here

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

// newNode appends a node of type s. The arena's capacity never exceeds
// maxNodes (see newNodeSlow), so the fast path needs one check.
func (p *parser) newNode(s sym) int32 {
	n := len(p.nodes)
	if n < cap(p.nodes) {
		p.nodes = p.nodes[:n+1]
		p.nodes[n] = pnode{sym: s, start: noPos, first: -1, last: -1, next: -1}
		return int32(n)
	}
	return p.newNodeSlow(s)
}

func (p *parser) newNodeSlow(s sym) int32 {
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
	n := len(p.nodes)
	p.nodes = p.nodes[:n:min(cap(p.nodes), max(p.maxNodes, n))]
	return int32(n - 1)
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

// nameSet finds a repeated name among parameters or keyword arguments.
// ASCII names are compared in place; once a name has a non-ASCII byte (its
// NFKC form may equal an ASCII name) or the list grows long, it switches to
// a map of normalised names, as Python compares them.
type nameSet struct {
	buf [8]int32
	n   int
	m   map[string]bool
}

// add records identifier id; it reports false when the name was seen
// before or is __debug__.
func (s *nameSet) add(p *parser, id int32) bool {
	txt := p.src[p.nodes[id].start:p.nodes[id].end]
	if s.m == nil && (s.n == len(s.buf) || !isASCII(txt)) {
		s.m = make(map[string]bool, s.n+4)
		for _, k := range s.buf[:s.n] {
			s.m[string(p.src[p.nodes[k].start:p.nodes[k].end])] = true
		}
	}
	if s.m != nil {
		name := normIdent(string(txt))
		if s.m[name] || name == "__debug__" {
			return false
		}
		s.m[name] = true
		s.n++
		return true
	}
	if string(txt) == "__debug__" {
		return false
	}
	for _, k := range s.buf[:s.n] {
		if string(p.src[p.nodes[k].start:p.nodes[k].end]) == string(txt) {
			return false
		}
	}
	s.buf[s.n] = id
	s.n++
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
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

// parse parses src into the analyser's tree. It returns parseCancelled when
// the deadline or ctx stops it.
func parse(ctx context.Context, src []byte, lim parseLimits) (t *tree, err error) {
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

// scratch is one parse's working memory, reused through scratchPool: the
// node arena under construction and the lexer's stacks. Nothing the
// returned tree holds points into it.
type scratch struct {
	p  parser
	lx lexer
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledNodes bounds the arena a scratch keeps for the next parse, so
// one huge input does not pin its memory.
const maxPooledNodes = 1 << 16

func getScratch(ctx context.Context, src []byte, lim parseLimits) *scratch {
	s := scratchPool.Get().(*scratch)
	lx := &s.lx
	*lx = lexer{src: src, atLineStart: true,
		indents: append(lx.indents[:0], 0), altInds: append(lx.altInds[:0], 0), tsInds: append(lx.tsInds[:0], 0),
		parens: lx.parens[:0], dedentEnds: lx.dedentEnds[:0], comments: lx.comments[:0], conts: lx.conts[:0],
		fstr: lx.fstr[:0]}
	p := &s.p
	*p = parser{src: src, lx: lx, maxDepth: lim.maxDepth, maxNodes: lim.maxNodes, deadline: lim.deadline, ctx: ctx,
		nodes: p.nodes[:0], items: p.items[:0], stack: p.stack[:0]}
	if p.maxDepth <= 0 {
		p.maxDepth = 400
	}
	if p.maxNodes <= 0 {
		p.maxNodes = 400_000
	}
	// About one node per three bytes of source.
	if want := min(len(src)/3+16, p.maxNodes); cap(p.nodes) < want {
		p.nodes = make([]pnode, 0, want)
	}
	p.nodes = p.nodes[:0:min(cap(p.nodes), p.maxNodes)]
	return s
}

func putScratch(s *scratch) {
	if cap(s.p.nodes) > maxPooledNodes {
		s.p.nodes = nil
	}
	if cap(s.p.items) > 4096 {
		s.p.items = nil
	}
	if cap(s.lx.comments) > 4096 {
		s.lx.comments = nil
	}
	if cap(s.lx.conts) > 4096 {
		s.lx.conts = nil
	}
	s.p.src, s.p.ctx, s.lx.src = nil, nil, nil
	scratchPool.Put(s)
}

func parseGo(ctx context.Context, src []byte, lim parseLimits) (*tree, error) {
	if ctx.Err() != nil || !time.Now().Before(lim.deadline) {
		return nil, parseCancelled{}
	}
	s := getScratch(ctx, src, lim)
	t, err := s.p.run()
	putScratch(s)
	return t, err
}

func (p *parser) run() (*tree, error) {
	src := p.src
	if len(src) >= 3 && src[0] == 0xEF && src[1] == 0xBB && src[2] == 0xBF {
		p.lx.pos = 3
	}
	if bytes.IndexByte(src, 0) >= 0 {
		p.failAt(0)
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
	errEmpty := false
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
			// The ERROR node runs from the fault to the end of its line. A
			// fault at the end of the input is placed after the last token,
			// not past the final newline.
			t.hasError = true
			pos, end := min(p.errPos, len(src)), 0
			if pos == len(src) {
				for pos > 0 && (src[pos-1] == ' ' || src[pos-1] == '\t' || src[pos-1] == '\f' ||
					src[pos-1] == '\n' || src[pos-1] == '\r') {
					pos--
				}
				end = pos
			} else {
				end = pos + bytes.IndexAny(src[pos:], "\r\n")
				if end < pos {
					end = len(src)
				}
			}
			errEmpty = pos == end
			e := p.leafAt(sError, uint32(pos), uint32(end))
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
	t.truncated = p.truncated
	// An empty ERROR node (the fault is at a line's end: a token is
	// missing there) is marked as tree-sitter marks a missing token. It is
	// the root's last child, so the last node in preorder.
	if last := len(t.nodes) - 1; errEmpty && t.nodes[last].kind == kError {
		t.nodes[last].missing = true
	}
	return t, nil
}

// layout copies the nodes under root into preorder, walking down first
// children and along next links with a stack of the open ancestors.
func (p *parser) layout(root int32) []node {
	n := len(p.nodes)
	if n > p.maxNodes {
		n = p.maxNodes
	}
	out := make([]node, 0, n)
	stack := p.stack[:0]
	pn := p.nodes
	cur, parent := root, int32(-1)
	for {
		if len(out) >= p.maxNodes {
			// Cut here: drop the links to nodes not laid out.
			p.truncated = true
			for i := range out {
				if out[i].firstChild >= int32(len(out)) {
					out[i].firstChild = -1
				}
				if out[i].nextSibling >= int32(len(out)) {
					out[i].nextSibling = -1
				}
			}
			break
		}
		nd := &pn[cur]
		idx := int32(len(out))
		s, e := nd.start, nd.end
		if s == noPos {
			s = e
		}
		out = append(out, node{kind: symKinds[nd.sym], field: nd.field, named: nd.sym > sSlashTok,
			start: s, end: e, parent: parent, firstChild: -1, nextSibling: -1})
		if nd.first >= 0 {
			stack = append(stack, stackEntry{cur, idx})
			parent = idx
			cur = nd.first
			out[idx].firstChild = idx + 1
			continue
		}
		// A leaf: move to the next sibling of the nearest node that has one.
		prev := idx
		for {
			if next := pn[cur].next; next >= 0 {
				out[prev].nextSibling = int32(len(out))
				cur = next
				break
			}
			if len(stack) == 0 {
				p.stack = stack
				return out
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cur, prev = top.src, top.dst
			parent = out[prev].parent
		}
	}
	p.stack = stack
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
