package analysis

import (
	"context"
	"strings"
	"time"
)

// maxFacts caps each kind of fact, so hostile input cannot make the
// analyser's output unbounded; passing it marks the analysis incomplete.
const maxFacts = 20_000

// walker extracts facts from one tree.
type walker struct {
	ctx context.Context
	t   *tree
	// src is the source as a string, so node texts are substrings of it
	// rather than a copy each.
	src      string
	li       *lineIndex
	f        *Facts
	deadline time.Time
	steps    int
	stopped  bool

	sites    map[symKey][]site
	scope    []int32
	globals  map[symKey]bool
	star     []string
	resolved map[symKey][]string
	chains   map[int32][]string // resolved names and attribute chains, by node
	// Small slices come out of blocks, one allocation per block.
	argVals    arena[Value]
	argNodes   arena[int32]
	siteList   arena[site]
	resolving  map[symKey]bool
	values     map[symKey]Value
	valuing    map[symKey]bool
	valueDepth int
	seenString map[int32]bool
	funcs      map[string]*funcInfo
	callSites  map[string][]int32
	attrSites  map[string][]site
}

func newWalker(ctx context.Context, t *tree, li *lineIndex, f *Facts, deadline time.Time) *walker {
	return &walker{
		ctx: ctx, t: t, src: string(t.src), li: li, f: f, deadline: deadline,
		globals:    map[symKey]bool{},
		resolving:  map[symKey]bool{},
		values:     map[symKey]Value{},
		valuing:    map[symKey]bool{},
		seenString: map[int32]bool{},
		funcs:      map[string]*funcInfo{},
		callSites:  map[string][]int32{},
		attrSites:  map[string][]site{},
	}
}

func (w *walker) run() {
	if len(w.t.nodes) == 0 {
		return
	}
	if w.t.hasError {
		w.syntaxErrors()
	}
	w.computeScopes()
	w.collectSymbols()
	w.visit(0)
	w.trimFacts()
}

// presize gives the fact lists room for the calls and strings the tree
// holds, and the symbol tables room for a share of its identifiers
// (capped, so hostile input cannot make it allocate much), sparing the
// growth of large structs and maps.
func (w *walker) presize(calls, strs, idents, attrs int) {
	f := w.f
	f.Calls = make([]Call, 0, min(calls, 4096))
	f.Strings = make([]StringLit, 0, min(strs, 4096))
	w.sites = make(map[symKey][]site, min(idents/4, 4096))
	w.resolved = make(map[symKey][]string, min(idents/4, 4096))
	w.chains = make(map[int32][]string, min(attrs+idents/2, 4096))
}

// trimFacts restores nil for empty fact lists, as appending alone leaves
// them.
func (w *walker) trimFacts() {
	f := w.f
	if len(f.Calls) == 0 {
		f.Calls = nil
	}
	if len(f.Strings) == 0 {
		f.Strings = nil
	}
}

// arena hands out small slices cut from larger blocks. Each slice's
// capacity is its length, so appending to one copies it rather than
// running into its neighbour.
type arena[T any] struct{ block []T }

func (a *arena[T]) take(n int) []T {
	const blockLen = 128
	if n > blockLen/4 {
		return make([]T, n)
	}
	if len(a.block) < n {
		a.block = make([]T, blockLen)
	}
	s := a.block[:n:n]
	a.block = a.block[n:]
	return s
}

// text returns the source text of n.
func (w *walker) text(n int32) string {
	nd := &w.t.nodes[n]
	return w.src[nd.start:nd.end]
}

// firstNamed returns the first named, non-comment child of n, or -1.
func (w *walker) firstNamed(n int32) int32 { return w.namedFrom(w.t.nodes[n].firstChild) }

// nextNamed returns the next named, non-comment sibling of c, or -1.
func (w *walker) nextNamed(c int32) int32 { return w.namedFrom(w.t.nodes[c].nextSibling) }

func (w *walker) namedFrom(c int32) int32 {
	for ; c >= 0; c = w.t.nodes[c].nextSibling {
		if nd := &w.t.nodes[c]; nd.named && nd.kind != kComment {
			return c
		}
	}
	return -1
}

// soleNamed returns n's only named, non-comment child, or -1 when it has
// none or several.
func (w *walker) soleNamed(n int32) int32 {
	if c := w.firstNamed(n); c >= 0 && w.nextNamed(c) < 0 {
		return c
	}
	return -1
}

func (w *walker) syntaxErrors() {
	for i := range w.t.nodes {
		nd := &w.t.nodes[i]
		if nd.kind != kError && !nd.missing {
			continue
		}
		sp := w.span(int32(i))
		if nd.missing {
			sp.Snippet = "missing token"
		}
		w.f.SyntaxErrors = append(w.f.SyntaxErrors, sp)
		if len(w.f.SyntaxErrors) >= 5 {
			return
		}
	}
	if len(w.f.SyntaxErrors) == 0 {
		w.f.SyntaxErrors = append(w.f.SyntaxErrors, w.span(0))
	}
}

// span locates node n.
func (w *walker) span(n int32) Span {
	nd := &w.t.nodes[n]
	txt := w.src[nd.start:nd.end]
	if i := strings.IndexByte(txt, '\n'); i >= 0 {
		txt = txt[:i] + " ..."
	}
	if len(txt) > 160 {
		cut := 157
		for cut > 0 && !isRuneStart(txt[cut]) {
			cut--
		}
		txt = txt[:cut] + "..."
	}
	return Span{Pos: w.li.pos(int(nd.start), int(nd.end)), Snippet: txt}
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func (w *walker) full() bool {
	f := w.f
	if len(f.Calls) > maxFacts || len(f.Refs) > maxFacts || len(f.Strings) > maxFacts || len(f.FileOps) > maxFacts ||
		len(f.Attrs) > maxFacts || len(f.Imports) > maxFacts {
		f.Incomplete = "the code has too many statements to analyse"
		w.stopped = true
		return true
	}
	return false
}

// tick counts a unit of work and reports whether the analysis may go on;
// every few hundred units it checks the deadline and the fact caps.
func (w *walker) tick() bool {
	if w.stopped {
		return false
	}
	w.steps++
	if w.steps&511 == 0 {
		if time.Now().After(w.deadline) || w.ctx.Err() != nil {
			w.f.Incomplete = "analysis took longer than the time limit"
			w.stopped = true
			return false
		}
		if w.full() {
			return false
		}
	}
	return true
}

func (w *walker) visit(n int32) {
	if !w.tick() {
		return
	}
	t := w.t
	switch t.nodes[n].kind {
	case kImport, kImportFrom:
		w.imports(n)
		return
	case kFutureImport, kComment:
		return
	case kCall:
		w.call(n)
	case kAttribute:
		w.attribute(n)
	case kIdentifier:
		w.identifier(n)
	case kString, kConcatenatedString:
		w.str(n)
	case kBinaryOperator:
		w.binop(n)
	case kWhile:
		w.whileLoop(n)
	case kFor:
		w.forLoop(n)
	}
	for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		w.visit(c)
	}
}

func (w *walker) imports(n int32) {
	t := w.t
	if t.nodes[n].kind == kImport {
		for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
			if t.nodes[c].field != fName {
				continue
			}
			mod := ""
			switch t.nodes[c].kind {
			case kDottedName:
				mod = w.dotted(c)
			case kAliasedImport:
				mod = w.dotted(t.child(c, fName))
			}
			w.confusablesIn(c)
			w.f.Imports = append(w.f.Imports, Import{Span: w.span(c), Module: mod})
		}
		return
	}
	imp := Import{Span: w.span(n), Module: w.fromModule(n)}
	for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		switch {
		case t.nodes[c].kind == kWildcardImport:
			imp.Names = append(imp.Names, "*")
		case t.nodes[c].field == fName && t.nodes[c].kind == kDottedName:
			imp.Names = append(imp.Names, w.dotted(c))
		case t.nodes[c].field == fName && t.nodes[c].kind == kAliasedImport:
			imp.Names = append(imp.Names, w.dotted(t.child(c, fName)))
		}
	}
	w.confusablesIn(n)
	w.f.Imports = append(w.f.Imports, imp)
}

// confusablesIn records look-alike identifiers under n (imports are not
// visited node by node).
func (w *walker) confusablesIn(n int32) {
	t := w.t
	end := t.nodes[n].end
	for i := n; int(i) < len(t.nodes) && t.nodes[i].start < end; i++ {
		if t.nodes[i].kind == kIdentifier {
			w.confusable(i)
		}
	}
}

func (w *walker) confusable(n int32) string {
	written := w.text(n)
	name := normIdent(written)
	if name != written {
		w.f.Confusables = append(w.f.Confusables, Identifier{Span: w.span(n), Written: written, Normalized: name})
	}
	return name
}

func (w *walker) identifier(n int32) {
	t := w.t
	name := w.confusable(n)
	nd := &t.nodes[n]
	if nd.parent < 0 {
		return
	}
	pk, f := t.nodes[nd.parent].kind, nd.field
	switch {
	case pk == kAttribute && f == fAttribute, // the attribute handles its name
		pk == kKeywordArgument && f == fName,
		(pk == kFunctionDef || pk == kClassDef) && f == fName,
		pk == kParameters, pk == kLambdaParameters, pk == kTypedParameter,
		(pk == kDefaultParameter || pk == kTypedDefaultParameter) && f == fName,
		pk == kListSplatPattern, pk == kDictSplatPattern, pk == kDottedName, pk == kAliasedImport,
		pk == kGlobal, pk == kNonlocal:
		return
	}
	if isEscapeName(name) {
		w.f.Attrs = append(w.f.Attrs, Attr{Span: w.span(n), Name: name})
	}
	if pk == kAttribute {
		return // the object of a chain: the chain records the reference
	}
	if (pk == kAssignment || pk == kFor || pk == kForInClause) && f == fLeft {
		return
	}
	w.refs(n, name)
}

// refs records every qualified name node n may stand for.
func (w *walker) refs(n int32, _ string) {
	t := w.t
	nd := &t.nodes[n]
	called := nd.parent >= 0 && t.nodes[nd.parent].kind == kCall && nd.field == fFunction
	for _, q := range w.resolve(n) {
		w.f.Refs = append(w.f.Refs, Ref{Span: w.span(n), Name: q, Called: called})
	}
}

func (w *walker) attribute(n int32) {
	t := w.t
	a := t.child(n, fAttribute)
	if a < 0 {
		return
	}
	name := normIdent(w.text(a))
	if isDunder(name) || isFrameAttr(name) {
		w.f.Attrs = append(w.f.Attrs, Attr{Span: w.span(n), Name: name})
	}
	nd := &t.nodes[n]
	if suspiciousAttrs[name] && len(w.resolve(t.child(n, fObject))) == 0 {
		// os.system reached through a value the analysis cannot trace
		// ([os][0].system, d["m"].popen).
		w.f.Suspicious = append(w.f.Suspicious, Attr{Span: w.span(n), Name: name})
	}
	if nd.parent >= 0 && t.nodes[nd.parent].kind == kAttribute && nd.field == fObject {
		return // not the whole chain
	}
	w.refs(n, name)
}

// suspiciousAttrs are attribute names of process, frame and import
// functions; on a value of unknown origin they ask for review.
var suspiciousAttrs = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`system popen fork forkpty execl execle execlp execlpe execv execve execvp
		execvpe spawnl spawnle spawnlp spawnlpe spawnv spawnve spawnvp spawnvpe posix_spawn posix_spawnp killpg
		_getframe load_module exec_module import_module __import__ check_output check_call Popen`) {
		suspiciousAttrs[n] = true
	}
}

func (w *walker) str(n int32) {
	t := w.t
	if w.seenString[n] {
		return
	}
	if t.nodes[n].kind == kConcatenatedString {
		for c := w.firstNamed(n); c >= 0; c = w.nextNamed(c) {
			w.seenString[c] = true
		}
	}
	v := w.value(n)
	if !v.Exact {
		// An f-string, or a literal longer than folding keeps: judge all
		// of its literal parts.
		v = Value{Text: w.literalParts(n)}
	}
	if v.Text == "" {
		return
	}
	lit := StringLit{Span: w.span(n), Value: v.Text}
	nd := &t.nodes[n]
	if p := nd.parent; p >= 0 && t.nodes[p].kind == kAttribute && nd.field == fObject {
		if a := t.child(p, fAttribute); a >= 0 {
			switch normIdent(w.text(a)) {
			case "format", "format_map":
				lit.FormatReceiver = true
			}
		}
	}
	w.f.Strings = append(w.f.Strings, lit)
	if isURL(v.Text) {
		w.f.URLs = append(w.f.URLs, URL{Span: lit.Span, URL: v.Text})
	}
}

// literalParts joins the literal parts of a string or concatenation.
func (w *walker) literalParts(n int32) string {
	t := w.t
	var b textAcc
	end := t.nodes[n].end
	for i := n; int(i) < len(t.nodes) && t.nodes[i].start < end; i++ {
		if t.nodes[i].kind == kStringContent {
			b.add(unescape(w.text(i)))
		}
	}
	return b.String()
}

func (w *walker) binop(n int32) {
	t := w.t
	nd := &t.nodes[n]
	if nd.parent >= 0 && t.nodes[nd.parent].kind == kBinaryOperator {
		return
	}
	if t.kindOf(t.child(n, fOperator)) != kKeywordPlus {
		return
	}
	if v := w.value(n); v.Known && strings.Contains(v.Text, "_") {
		w.f.Strings = append(w.f.Strings, StringLit{Span: w.span(n), Value: v.Text})
	}
}

// callee returns the qualified names a call's function may stand for and
// its last name (the method).
func (w *walker) callee(n int32) ([]string, string) {
	t := w.t
	fn := t.child(n, fFunction)
	method := ""
	switch t.kindOf(fn) {
	case kAttribute:
		if a := t.child(fn, fAttribute); a >= 0 {
			method = normIdent(w.text(a))
		}
	case kIdentifier:
		method = w.ident(fn)
	}
	return w.resolve(fn), method
}

// kwArg is a keyword argument: its name and value node.
type kwArg struct {
	name  string
	value int32
}

// kwArgs are a call's keyword arguments in source order.
type kwArgs []kwArg

// get returns the value node of the keyword argument called name; of
// repeats (which Python refuses) the last wins, as in a dict.
func (k kwArgs) get(name string) (int32, bool) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i].name == name {
			return k[i].value, true
		}
	}
	return 0, false
}

// arguments splits an argument list into positional nodes, keyword
// arguments and whether splats hide more.
func (w *walker) arguments(args int32) (pos []int32, kw kwArgs, star bool) {
	t := w.t
	if args < 0 {
		return nil, nil, false
	}
	if t.nodes[args].kind == kGenerator {
		return []int32{args}, nil, false
	}
	npos, nkw := 0, 0
	for c := t.nodes[args].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		if !t.nodes[c].named {
			continue
		}
		switch t.nodes[c].kind {
		case kComment, kListSplat, kDictSplat:
		case kKeywordArgument:
			nkw++
		default:
			npos++
		}
	}
	if npos > 0 {
		pos = w.argNodes.take(npos)[:0]
	}
	if nkw > 0 {
		kw = make(kwArgs, 0, nkw)
	}
	for c := t.nodes[args].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		if !t.nodes[c].named {
			continue
		}
		switch t.nodes[c].kind {
		case kComment:
		case kKeywordArgument:
			if name := t.child(c, fName); name >= 0 {
				kw = append(kw, kwArg{w.ident(name), t.child(c, fValue)})
			}
		case kListSplat, kDictSplat:
			star = true
		default:
			pos = append(pos, c)
		}
	}
	return pos, kw, star
}

func (w *walker) positional(args int32) []int32 {
	pos, _, _ := w.arguments(args)
	return pos
}

func (w *walker) call(n int32) {
	t := w.t
	names, method := w.callee(n)
	pos, kw, star := w.arguments(t.child(n, fArguments))
	c := Call{Span: w.span(n), Method: method, StarArgs: star}
	if len(pos) > 0 {
		c.Args = w.argVals.take(len(pos))
		for i, p := range pos {
			c.Args[i] = w.value(p)
		}
	}
	if len(kw) > 0 {
		c.Kwargs = make(map[string]Value, len(kw))
		for i, a := range kw {
			if _, later := kw[i+1:].get(a.name); !later {
				c.Kwargs[a.name] = w.value(a.value)
			}
		}
	}
	fn := t.child(n, fFunction)
	c.Receiver = t.kindOf(fn) == kAttribute
	if c.Receiver && (method == "format" || method == "format_map") {
		// A template held in a name: "{0.__class__}" then tpl.format(x).
		if recv := t.child(fn, fObject); t.kindOf(recv) != kString && t.kindOf(recv) != kConcatenatedString {
			if v := w.value(recv); v.Exact {
				w.f.Strings = append(w.f.Strings, StringLit{Span: w.span(recv), Value: v.Text, FormatReceiver: true})
			}
		}
	}
	if c.Receiver && pathMethods[method] {
		c.ReceiverPath = w.value(t.child(fn, fObject))
	}
	if len(names) == 0 {
		w.f.Calls = append(w.f.Calls, c)
	}
	for _, q := range names {
		cq := c
		cq.Name = q
		w.f.Calls = append(w.f.Calls, cq)
		switch q {
		case "getattr", "setattr", "delattr", "hasattr":
			// A literal attribute name is an attribute access: getattr(os,
			// "system") is os.system.
			if len(pos) >= 2 && c.Args[1].Exact {
				lit := c.Args[1].Text
				for _, obj := range w.resolve(pos[0]) {
					w.f.Refs = append(w.f.Refs, Ref{Span: c.Span, Name: cleanQualified(obj + "." + lit), Called: false})
				}
				if isDunder(lit) || isFrameAttr(lit) {
					w.f.Attrs = append(w.f.Attrs, Attr{Span: c.Span, Name: lit})
				}
			}
		}
	}
	w.fileOps(n, names, method, pos, kw, c)
}

func isDunder(s string) bool {
	return len(s) > 4 && strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__")
}

// escapeNames are names that reach interpreter internals; referring to one
// is how sandbox escapes start.
var escapeNames = map[string]bool{}

// escapeList holds escapeNames in a fixed order, for stable messages.
var escapeList []string

// frameAttrs are frame, code, generator and traceback attributes that
// reach other scopes' globals.
var frameAttrs = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`__subclasses__ __globals__ __builtins__ __code__ __mro__ __bases__ __base__
		__import__ __loader__ __spec__ __getattribute__ __dict__ __closure__ __func__ __self__ __reduce__
		__reduce_ex__ __traceback__ __defaults__ __kwdefaults__ __objclass__ __init_subclass__ __class_getitem__
		__getattr__ __setattr__ __delattr__ __set_name__ __build_class__ __weakref__ __wrapped__ __cached__`) {
		escapeNames[n] = true
		escapeList = append(escapeList, n)
	}
	for _, n := range strings.Fields(`f_globals f_locals f_builtins f_back f_code f_trace gi_frame gi_code
		gi_yieldfrom cr_frame cr_code cr_await ag_frame ag_code tb_frame tb_next co_code co_consts co_names
		func_globals func_code im_func im_self`) {
		frameAttrs[n] = true
	}
}

// EscapeName reports whether name reaches interpreter internals.
func EscapeName(name string) bool { return isEscapeName(name) || isFrameAttr(name) }

// isEscapeName is escapeNames[name]; every escape name is a dunder, so
// other names skip the look-up.
func isEscapeName(name string) bool { return isDunder(name) && escapeNames[name] }

// isFrameAttr is frameAttrs[name]; every frame attribute has an
// underscore, so other names skip the look-up.
func isFrameAttr(name string) bool { return strings.IndexByte(name, '_') >= 0 && frameAttrs[name] }

func isURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 || i > 10 {
		return false
	}
	for _, r := range s[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}
