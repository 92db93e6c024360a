package analysis

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// siteKind says how a name gets bound.
type siteKind uint8

const (
	siteUnknown siteKind = iota // a parameter, tuple target, except alias, del...
	siteImport                  // import x / from m import x
	siteAssign                  // x = expr (expr in site.node)
	siteFor                     // for x in expr (expr in site.node)
	siteDef                     // def x / class x
	siteParam                   // a function's parameter (fn, index)
)

// site is one place a name is bound.
type site struct {
	kind siteKind
	// qualified is the module path an import binds.
	qualified string
	// node is the assigned or iterated expression.
	node int32
	// fn and index locate a parameter: the function's key and position.
	fn    string
	index int
}

// funcInfo is a function defined in the module.
type funcInfo struct {
	params   []string
	defaults map[string]int32
}

// normIdent applies the NFKC normalisation Python applies to identifiers.
func normIdent(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return norm.NFKC.String(s)
		}
	}
	return s
}

// ident returns the normalised name of an identifier node.
func (w *walker) ident(n int32) string {
	return normIdent(w.text(n))
}

// collectSymbols records every binding site of every name, so a name's
// meaning does not depend on where in the file it is used.
func (w *walker) collectSymbols() {
	t := w.t
	for i := range t.nodes {
		n := int32(i)
		switch t.nodes[n].kind {
		case kImport:
			for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
				if t.nodes[c].field != fName {
					continue
				}
				switch t.nodes[c].kind {
				case kDottedName:
					mod := w.dotted(c)
					first, _, _ := strings.Cut(mod, ".")
					w.bind(n, first, site{kind: siteImport, qualified: first})
				case kAliasedImport:
					mod := w.dotted(t.child(c, fName))
					if a := t.child(c, fAlias); a >= 0 {
						w.bind(n, w.ident(a), site{kind: siteImport, qualified: mod})
					}
				}
			}
		case kImportFrom:
			mod := w.fromModule(n)
			for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
				if t.nodes[c].field != fName {
					if t.nodes[c].kind == kWildcardImport {
						w.star = append(w.star, mod)
					}
					continue
				}
				switch t.nodes[c].kind {
				case kDottedName:
					name := w.dotted(c)
					w.bind(n, name, site{kind: siteImport, qualified: mod + "." + name})
				case kAliasedImport:
					name := w.dotted(t.child(c, fName))
					if a := t.child(c, fAlias); a >= 0 {
						w.bind(n, w.ident(a), site{kind: siteImport, qualified: mod + "." + name})
					}
				}
			}
		case kAssignment, kNamedExpression:
			if l := t.child(n, fLeft); t.kindOf(l) == kAttribute {
				if key := w.selfAttr(l); key != "" {
					w.attrSites[key] = append(w.attrSites[key], site{kind: siteAssign, node: t.child(n, fRight)})
				}
			}
			lf, rf := fLeft, fRight
			if t.nodes[n].kind == kNamedExpression {
				lf, rf = fName, fValue
			}
			w.bindTarget(t.child(n, lf), t.child(n, rf), siteAssign)
		case kAugAssignment:
			if key := w.selfAttr(t.child(n, fLeft)); key != "" {
				w.attrSites[key] = append(w.attrSites[key], site{node: -1})
			}
			w.bindTarget(t.child(n, fLeft), -1, siteUnknown)
		case kFor, kForInClause:
			w.bindTarget(t.child(n, fLeft), t.child(n, fRight), siteFor)
		case kAsPatternTarget:
			// with open(p) as f / with pd.ExcelWriter(p) as w: the name
			// stands for the opened path.
			value := int32(-1)
			if p := t.nodes[n].parent; p >= 0 && t.nodes[p].kind == kAsPattern {
				if gp := t.nodes[p].parent; gp >= 0 && t.kindOf(gp) == kWithItem {
					if c := w.firstNamed(p); c >= 0 && c != n {
						value = c
					}
				}
			}
			if c := w.soleNamed(n); c >= 0 && value >= 0 {
				w.bindTarget(c, value, siteAssign)
			} else {
				w.bindTarget(n, -1, siteUnknown)
			}
		case kGlobal, kNonlocal, kDelete:
			w.bindTarget(n, -1, siteUnknown)
		case kCall:
			if fn := t.child(n, fFunction); t.kindOf(fn) == kIdentifier {
				name := w.ident(fn)
				w.callSites[name] = append(w.callSites[name], n)
			}
		case kExceptClause:
			w.bindTarget(t.child(n, fAlias), -1, siteUnknown)
		case kClassDef:
			if c := t.child(n, fName); c >= 0 {
				w.bind(n, w.ident(c), site{kind: siteDef})
			}
		case kFunctionDef:
			w.funcDef(n)
		case kLambdaParameters:
			for p := w.firstNamed(n); p >= 0; p = w.nextNamed(p) {
				w.bindParam(p, "", 0)
			}
		}
	}
}

// funcDef records a function, its parameters, and binds its name. A
// method's key is Class.method.
func (w *walker) funcDef(n int32) {
	t := w.t
	c := t.child(n, fName)
	if c < 0 {
		return
	}
	name := w.ident(c)
	w.bind(n, name, site{kind: siteDef})
	key := name
	if p := t.nodes[n].parent; p >= 0 {
		if t.nodes[n].field == fDefinition { // inside a decorated_definition
			p = t.nodes[p].parent
		}
		if p >= 0 && t.nodes[p].parent >= 0 && t.nodes[t.nodes[p].parent].kind == kClassDef {
			if cn := t.child(t.nodes[p].parent, fName); cn >= 0 {
				key = w.ident(cn) + "." + name
			}
		}
	}
	fi := &funcInfo{defaults: map[string]int32{}}
	if ps := t.child(n, fParameters); ps >= 0 {
		i := 0
		for p := w.firstNamed(ps); p >= 0; p, i = w.nextNamed(p), i+1 {
			pname := w.bindParam(p, key, i)
			fi.params = append(fi.params, pname)
			if k := t.nodes[p].kind; k == kDefaultParameter || k == kTypedDefaultParameter {
				fi.defaults[pname] = t.child(p, fValue)
			}
		}
	}
	if _, dup := w.funcs[key]; dup {
		w.funcs[key] = nil // defined twice: its parameters are unknown
		return
	}
	w.funcs[key] = fi
}

// bindParam binds a parameter and returns its name.
func (w *walker) bindParam(p int32, fn string, index int) string {
	t := w.t
	switch t.nodes[p].kind {
	case kIdentifier:
		name := w.ident(p)
		w.bind(p, name, site{kind: siteParam, fn: fn, index: index, node: -1})
		return name
	case kDefaultParameter, kTypedDefaultParameter:
		if c := t.child(p, fName); t.kindOf(c) == kIdentifier {
			name := w.ident(c)
			w.bind(p, name, site{kind: siteParam, fn: fn, index: index, node: -1})
			return name
		}
		w.bindTarget(t.child(p, fName), -1, siteUnknown)
	case kTypedParameter:
		if c := w.firstNamed(p); c >= 0 {
			return w.bindParam(c, fn, index)
		}
	case kListSplatPattern, kDictSplatPattern:
		if c := w.firstNamed(p); c >= 0 {
			w.bindParam(c, "", 0)
		}
	}
	return ""
}

// bindTarget binds every name in an assignment target. Only a plain name
// keeps the assigned value; names inside tuples and lists become unknown.
func (w *walker) bindTarget(target, value int32, k siteKind) {
	if target < 0 {
		return
	}
	t := w.t
	switch t.nodes[target].kind {
	case kIdentifier:
		w.bind(target, w.ident(target), site{kind: k, node: value})
	case kPatternList, kTuplePattern, kListPattern, kTuple, kList, kExpressionList,
		kAsPatternTarget, kGlobal, kNonlocal, kDelete, kListSplatPattern, kParenthesized:
		for c := w.firstNamed(target); c >= 0; c = w.nextNamed(c) {
			w.bindTarget(c, -1, siteUnknown)
		}
	}
}

// bind records a binding of name in the scope of node n.
func (w *walker) bind(n int32, name string, s site) {
	if name == "" {
		return
	}
	sc := w.scope[n]
	if w.isGlobal(sc, name) {
		sc = -1
	}
	k := symKey{sc, name}
	if old := w.sites[k]; len(old) > 0 {
		w.sites[k] = append(old, s)
	} else {
		one := w.siteList.take(1)
		one[0] = s
		w.sites[k] = one
	}
}

// symKey is a name in a scope: the defining function, lambda or class
// node, or -1 for the module.
type symKey struct {
	scope int32
	name  string
}

// computeScopes gives every node its scope. A def's body and parameters
// are in the def's scope; everything else shares its parent's.
func (w *walker) computeScopes() {
	t := w.t
	w.scope = make([]int32, len(t.nodes))
	calls, strs, idents, attrs := 0, 0, 0, 0
	defer func() { w.presize(calls, strs, idents, attrs) }()
	for i := range t.nodes {
		switch t.nodes[i].kind {
		case kCall:
			calls++
		case kString:
			strs++
		case kIdentifier:
			idents++
		case kAttribute:
			attrs++
		}
		p := t.nodes[i].parent
		if p < 0 {
			w.scope[i] = -1
			continue
		}
		w.scope[i] = w.scope[p]
		switch t.nodes[p].kind {
		case kFunctionDef, kLambda, kClassDef:
			if f := t.nodes[i].field; f == fBody || f == fParameters {
				w.scope[i] = p
			}
		}
		if t.nodes[i].kind == kGlobal {
			for c := w.firstNamed(int32(i)); c >= 0; c = w.nextNamed(c) {
				if t.nodes[c].kind == kIdentifier {
					w.globals[symKey{w.scope[i], w.ident(c)}] = true
				}
			}
		}
	}
}

// isGlobal reports whether scope sc declares name global; most code
// declares nothing, and then no key is hashed.
func (w *walker) isGlobal(sc int32, name string) bool {
	return len(w.globals) > 0 && w.globals[symKey{sc, name}]
}

// lookup finds the scope a name used at node n refers to, as Python does:
// the enclosing functions from the inside out (class bodies only for code
// directly in them), then the module.
func (w *walker) lookup(n int32, name string) symKey {
	sc := w.scope[n]
	for first := true; ; first = false {
		if w.isGlobal(sc, name) {
			sc = -1
		}
		if sc >= 0 && !first && w.t.nodes[sc].kind == kClassDef {
			sc = w.scope[sc]
			continue
		}
		k := symKey{sc, name}
		if _, ok := w.sites[k]; ok || sc < 0 {
			return k
		}
		sc = w.scope[sc]
	}
}

// selfAttr returns "self.x" for an attribute self.x, else "".
func (w *walker) selfAttr(n int32) string {
	t := w.t
	if t.kindOf(n) != kAttribute {
		return ""
	}
	obj, a := t.child(n, fObject), t.child(n, fAttribute)
	if t.kindOf(obj) != kIdentifier || a < 0 || w.ident(obj) != "self" {
		return ""
	}
	return "self." + w.ident(a)
}

// dotted returns the normalised dotted name of a dotted_name node.
func (w *walker) dotted(n int32) string {
	if n < 0 {
		return ""
	}
	var parts []string
	for c := w.firstNamed(n); c >= 0; c = w.nextNamed(c) {
		if w.t.nodes[c].kind == kIdentifier {
			parts = append(parts, w.ident(c))
		}
	}
	return strings.Join(parts, ".")
}

// fromModule returns the module of a from-import; relative imports keep
// their leading dots.
func (w *walker) fromModule(n int32) string {
	m := w.t.child(n, fModuleName)
	if m < 0 {
		return ""
	}
	if w.t.nodes[m].kind == kRelativeImport {
		var b strings.Builder
		for c := w.t.nodes[m].firstChild; c >= 0; c = w.t.nodes[c].nextSibling {
			if w.t.nodes[c].kind == kDottedName {
				b.WriteString(w.dotted(c))
			} else {
				b.WriteString(strings.TrimSpace(w.text(c)))
			}
		}
		return b.String()
	}
	return w.dotted(m)
}

// resolveName returns every qualified name a bare name may stand for: the
// modules and attributes imports or aliases bind it to, names from star
// imports, and the builtin of that name. A builtin is always a candidate,
// because `del` or a failed branch can uncover it again.
func (w *walker) resolveName(key symKey) []string {
	name := key.name
	if q, ok := w.resolved[key]; ok {
		return q
	}
	if w.resolving[key] {
		if builtinNames[name] {
			return []string{name}
		}
		return nil
	}
	w.resolving[key] = true
	var out []string
	sites := w.sites[key]
	for _, s := range sites {
		switch s.kind {
		case siteImport:
			out = append(out, cleanQualified(s.qualified))
		case siteAssign:
			if s.node >= 0 {
				out = append(out, w.resolve(s.node)...)
			}
		}
	}
	if len(sites) == 0 {
		for _, m := range w.star {
			out = append(out, cleanQualified(m+"."+name))
		}
	}
	if builtinNames[name] {
		out = append(out, name)
	}
	out = dedupe(out)
	delete(w.resolving, key)
	w.resolved[key] = out
	return out
}

// cleanQualified maps builtins.X to X so a builtin has one name.
func cleanQualified(q string) string {
	for _, p := range []string{"builtins.", "__builtins__."} {
		if rest, ok := strings.CutPrefix(q, p); ok {
			return rest
		}
	}
	return q
}

// resolve returns the qualified names an expression may stand for.
func (w *walker) resolve(n int32) []string {
	t := w.t
	// A name, or a chain of attributes on one (os.path.join), resolved
	// with no name's resolution under way gives the same answer every time
	// after: each name's answer is memoised by then. Keep it.
	switch t.kindOf(n) {
	case kIdentifier:
		if q, ok := w.chains[n]; ok {
			return q
		}
		keep := len(w.resolving) == 0
		q := w.resolveName(w.lookup(n, w.ident(n)))
		if keep {
			w.chains[n] = q
		}
		return q
	case kAttribute:
		if q, ok := w.chains[n]; ok {
			return q
		}
		keep := len(w.resolving) == 0 && w.nameChain(n)
		obj := w.resolve(t.child(n, fObject))
		a := t.child(n, fAttribute)
		var out []string
		if len(obj) > 0 && a >= 0 {
			attr := w.ident(a)
			out = make([]string, len(obj))
			for i, o := range obj {
				out[i] = cleanQualified(o + "." + attr)
			}
		}
		if keep {
			w.chains[n] = out
		}
		return out
	case kParenthesized:
		if c := w.soleNamed(n); c >= 0 {
			return w.resolve(c)
		}
	case kCall:
		// __import__("os") and importlib.import_module("os") stand for the
		// module they load.
		fn := w.resolve(t.child(n, fFunction))
		for _, f := range fn {
			if f == "__import__" || f == "importlib.import_module" || f == "importlib.__import__" {
				if args := w.positional(t.child(n, fArguments)); len(args) > 0 {
					if v := w.value(args[0]); v.Exact {
						return []string{v.Text}
					}
				}
			}
		}
	}
	return nil
}

// nameChain reports whether n is a chain of attributes on a name.
func (w *walker) nameChain(n int32) bool {
	t := w.t
	for t.kindOf(n) == kAttribute {
		n = t.child(n, fObject)
	}
	return t.kindOf(n) == kIdentifier
}

func dedupe(s []string) []string {
	if len(s) < 2 {
		return s
	}
	seen := make(map[string]bool, len(s))
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// builtinNames are Python's builtins. A name in this set with no import
// or alias binding it refers to the builtin.
var builtinNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr
		classmethod compile complex copyright credits delattr dict dir divmod enumerate eval exec exit filter float
		format frozenset getattr globals hasattr hash help hex id input int isinstance issubclass iter len license
		list locals map max memoryview min next object oct open ord pow print property quit range repr reversed
		round set setattr slice sorted staticmethod str sum super tuple type vars zip __import__ __build_class__
		__builtins__ __loader__ __spec__`) {
		builtinNames[n] = true
	}
}
