package analysis

import (
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

var unknown = Value{}

// maxValueLen caps folded strings: doubling a string in a loop of
// assignments must not make the analyser build gigabytes. A longer value
// keeps its first maxValueLen bytes as a prefix.
const maxValueLen = 4096

func exact(s string) Value {
	if len(s) > maxValueLen {
		return prefix(s)
	}
	return Value{Text: s, Exact: true, Known: true}
}

func prefix(s string) Value {
	if s == "" {
		return unknown
	}
	if len(s) > maxValueLen {
		s = s[:maxValueLen]
	}
	return Value{Text: s, Known: true}
}

// value folds an expression to what is statically known of it: literal
// strings, implicit and + concatenation, f-string prefixes, names bound
// once to such a value, and path building (os.path.join, pathlib.Path and
// its / operator). Everything else is unknown.
func (w *walker) value(n int32) Value {
	if n < 0 {
		return unknown
	}
	w.valueDepth++
	defer func() { w.valueDepth-- }()
	if w.valueDepth > 64 || !w.tick() {
		return unknown
	}
	t := w.t
	switch t.nodes[n].kind {
	case kString:
		return w.stringValue(n)
	case kConcatenatedString:
		var b textAcc
		for c := w.firstNamed(n); c >= 0; c = w.nextNamed(c) {
			v := w.stringValue(c)
			b.add(v.Text)
			if !v.Exact || b.len() > maxValueLen {
				return prefix(b.String())
			}
		}
		return exact(b.String())
	case kTrue:
		return exact("True")
	case kFalse:
		return exact("False")
	case kNone:
		return exact("None")
	case kInteger:
		return exact(w.text(n))
	case kParenthesized:
		if c := w.soleNamed(n); c >= 0 {
			return w.value(c)
		}
	case kIdentifier:
		return w.nameValue(w.lookup(n, w.ident(n)))
	case kBinaryOperator:
		op := t.child(n, fOperator)
		l, r := w.value(t.child(n, fLeft)), w.value(t.child(n, fRight))
		switch t.kindOf(op) {
		case kKeywordPlus:
			return concat(l, r)
		case kKeywordSlash:
			return joinPath(l, r)
		}
	case kAttribute:
		for _, q := range w.resolve(n) {
			if q == "sys.stdout" || q == "sys.stderr" {
				return Value{Stream: true}
			}
		}
		if a := t.child(n, fAttribute); a >= 0 && w.ident(a) == "parent" {
			return parentDir(w.value(t.child(n, fObject)))
		}
		if key := w.selfAttr(n); key != "" {
			return w.attrValue(key)
		}
	case kCall:
		return w.callValue(n)
	}
	return unknown
}

// nameValue returns the value of a name bound exactly once in the file.
func (w *walker) nameValue(key symKey) Value {
	name := key.name
	if v, ok := w.values[key]; ok {
		return v
	}
	sites := w.sites[key]
	if len(sites) != 1 || (sites[0].node < 0 && sites[0].kind != siteParam) || w.valuing[key] {
		return unknown
	}
	w.valuing[key] = true
	var v Value
	switch sites[0].kind {
	case siteAssign:
		v = w.value(sites[0].node)
	case siteFor:
		v = w.elementValue(sites[0].node)
	case siteParam:
		v = w.paramValue(name, sites[0])
	}
	delete(w.valuing, key)
	w.values[key] = v
	return v
}

// attrValue returns the value of self.x when it is assigned exactly once.
func (w *walker) attrValue(attr string) Value {
	sites := w.attrSites[attr]
	key := symKey{-2, attr}
	if v, ok := w.values[key]; ok {
		return v
	}
	if len(sites) != 1 || sites[0].node < 0 || w.valuing[key] {
		return unknown
	}
	w.valuing[key] = true
	v := w.value(sites[0].node)
	delete(w.valuing, key)
	w.values[key] = v
	return v
}

// paramValue is what every call of the function passes for a parameter:
// the common prefix of the arguments at all call sites in the module.
// A method's calls are only known for __init__ (through the class name).
func (w *walker) paramValue(name string, s site) Value {
	fi := w.funcs[s.fn]
	if fi == nil {
		return unknown
	}
	callee, offset := s.fn, 0
	if cls, method, ok := strings.Cut(s.fn, "."); ok {
		if method != "__init__" {
			return unknown
		}
		callee, offset = cls, 1
	}
	calls := w.callSites[callee]
	if len(calls) == 0 || len(calls) > 64 {
		return unknown
	}
	var vals []Value
	for _, c := range calls {
		pos, kw, star := w.arguments(w.t.child(c, fArguments))
		switch kv, _ := kw.get(name); {
		case kv > 0:
			vals = append(vals, w.value(kv))
		case star:
			return unknown
		case s.index-offset >= 0 && s.index-offset < len(pos):
			vals = append(vals, w.value(pos[s.index-offset]))
		case fi.defaults[name] > 0:
			vals = append(vals, w.value(fi.defaults[name]))
		default:
			return unknown
		}
	}
	return commonPrefix(vals)
}

// elementValue is what is known of each element a for loop takes from
// an iterable: a literal list's common prefix, or the directory a glob or
// listing walks.
func (w *walker) elementValue(n int32) Value {
	t := w.t
	switch t.nodes[n].kind {
	case kList, kTuple, kSet:
		var vals []Value
		for c := w.firstNamed(n); c >= 0; c = w.nextNamed(c) {
			vals = append(vals, w.value(c))
		}
		return commonPrefix(vals)
	case kCall:
		names, method := w.callee(n)
		args := w.positional(t.child(n, fArguments))
		for _, q := range names {
			switch q {
			case "glob.glob", "glob.iglob":
				if len(args) > 0 {
					return globPrefix(w.value(args[0]))
				}
			case "sorted", "list", "reversed", "tuple", "set":
				if len(args) > 0 {
					return w.elementValue(args[0])
				}
			}
		}
		if len(names) == 0 {
			switch method {
			case "glob", "rglob", "iterdir":
				recv := w.value(t.child(t.child(n, fFunction), fObject))
				return joinPath(recv, unknown)
			}
		}
	}
	return unknown
}

func globPrefix(v Value) Value {
	if !v.Known {
		return unknown
	}
	s := v.Text
	if i := strings.IndexAny(s, "*?["); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return prefix(s[:i+1])
	}
	return unknown
}

func commonPrefix(vals []Value) Value {
	if len(vals) == 0 {
		return unknown
	}
	if len(vals) == 1 {
		return vals[0]
	}
	p := vals[0].Text
	for _, v := range vals {
		if !v.Known {
			return unknown
		}
		for !strings.HasPrefix(v.Text, p) {
			p = p[:len(p)-1]
		}
	}
	return prefix(p)
}

// callValue folds calls that build strings and paths.
func (w *walker) callValue(n int32) Value {
	t := w.t
	names, method := w.callee(n)
	argsNode := t.child(n, fArguments)
	args := w.positional(argsNode)
	for _, q := range names {
		switch q {
		case "os.path.join", "posixpath.join", "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath",
			"pathlib.PurePosixPath":
			return w.joinArgs(args)
		case "str", "os.fspath", "os.path.abspath", "os.path.normpath", "os.path.realpath", "os.path.expanduser":
			if len(args) == 1 {
				v := w.value(args[0])
				if q == "os.path.normpath" || q == "os.path.abspath" || q == "os.path.realpath" {
					return cleanValue(v)
				}
				return v
			}
		case "os.path.dirname":
			if len(args) == 1 {
				return parentDir(w.value(args[0]))
			}
		case "io.StringIO", "io.BytesIO":
			return Value{Stream: true}
		case "open", "io.open", "pandas.ExcelWriter":
			// The handle stands for the file it opened.
			if len(args) > 0 {
				return w.value(args[0])
			}
		case "tempfile.TemporaryDirectory", "tempfile.mkdtemp", "tempfile.NamedTemporaryFile",
			"tempfile.gettempdir", "tempfile.TemporaryFile", "tempfile.SpooledTemporaryFile":
			_, kw, _ := w.arguments(argsNode)
			if d, ok := kw.get("dir"); ok {
				return joinPath(w.value(d), unknown)
			}
			return prefix("/tmp/")
		}
	}
	if len(names) > 0 {
		return unknown
	}
	fn := t.child(n, fFunction)
	if t.kindOf(fn) != kAttribute {
		return unknown
	}
	recvNode := t.child(fn, fObject)
	switch method {
	case "joinpath":
		return joinPath(w.value(recvNode), w.joinArgs(args))
	case "resolve", "absolute", "as_posix", "expanduser":
		return cleanValue(w.value(recvNode))
	case "with_suffix", "with_name", "with_stem":
		return joinPath(parentDir(w.value(recvNode)), unknown)
	case "join":
		sep := w.value(recvNode)
		if sep.Exact && len(args) == 1 {
			switch t.kindOf(args[0]) {
			case kList, kTuple:
				var parts []string
				for c := w.firstNamed(args[0]); c >= 0; c = w.nextNamed(c) {
					v := w.value(c)
					if !v.Exact || len(parts) > 256 {
						return unknown
					}
					parts = append(parts, v.Text)
				}
				return exact(strings.Join(parts, sep.Text))
			}
		}
	case "format":
		if v := w.value(recvNode); v.Exact {
			if i := strings.IndexByte(v.Text, '{'); i >= 0 {
				return prefix(v.Text[:i])
			}
			return v
		}
	}
	return unknown
}

func (w *walker) joinArgs(args []int32) Value {
	if len(args) == 0 {
		return exact(".")
	}
	v := w.value(args[0])
	for _, a := range args[1:] {
		v = joinPath(v, w.value(a))
	}
	return v
}

// concat is the + of two strings.
func concat(l, r Value) Value {
	if !l.Known {
		return unknown
	}
	if !l.Exact {
		return l
	}
	if len(l.Text)+len(r.Text) > maxValueLen {
		return prefix(l.Text)
	}
	if r.Exact {
		return exact(l.Text + r.Text)
	}
	return prefix(l.Text + r.Text)
}

// joinPath joins two path parts as os.path.join and pathlib do: an
// absolute right-hand side replaces the left.
func joinPath(l, r Value) Value {
	if r.Known && strings.HasPrefix(r.Text, "/") {
		return r
	}
	if !l.Known {
		return unknown
	}
	if !l.Exact {
		return l
	}
	sep := "/"
	if l.Text == "" || strings.HasSuffix(l.Text, "/") {
		sep = ""
	}
	if len(l.Text)+len(r.Text) > maxValueLen {
		return prefix(l.Text)
	}
	if r.Exact {
		return exact(l.Text + sep + r.Text)
	}
	return prefix(l.Text + sep + r.Text)
}

func parentDir(v Value) Value {
	if !v.Known {
		return unknown
	}
	if v.Exact {
		return exact(path.Dir(v.Text))
	}
	if i := strings.LastIndexByte(v.Text, '/'); i >= 0 {
		return prefix(v.Text[:i+1])
	}
	return unknown
}

// cleanValue resolves . and .. in what is known of a path.
func cleanValue(v Value) Value {
	if !v.Known {
		return v
	}
	if v.Exact {
		return exact(path.Clean(v.Text))
	}
	dir := v.Text
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		dir = dir[:i+1]
	} else {
		return unknown
	}
	c := path.Clean(dir)
	if c != "/" {
		c += "/"
	}
	return prefix(c)
}

// stringValue decodes a string node; an f-string yields its text up to the
// first interpolation that does not fold.
func (w *walker) stringValue(n int32) Value {
	t := w.t
	raw, fstr := false, false
	var b textAcc
	for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		switch t.nodes[c].kind {
		case kStringStart:
			p := strings.ToLower(w.text(c))
			raw = strings.ContainsRune(p, 'r')
			fstr = strings.ContainsRune(p, 'f')
		case kStringContent:
			txt := w.text(c)
			if fstr {
				txt = strings.ReplaceAll(strings.ReplaceAll(txt, "{{", "{"), "}}", "}")
			}
			if raw {
				b.add(txt)
			} else {
				b.add(unescape(txt))
			}
		case kInterpolation:
			v := w.value(t.child(c, fExpression))
			if !v.Exact || b.len()+len(v.Text) > maxValueLen {
				return prefix(b.String())
			}
			b.add(v.Text)
		}
	}
	return exact(b.String())
}

// textAcc joins pieces of text; one piece is kept as it is, uncopied.
type textAcc struct {
	one  string
	b    strings.Builder
	many bool
}

func (a *textAcc) add(s string) {
	switch {
	case a.many:
		a.b.WriteString(s)
	case s == "":
	case a.one == "":
		a.one = s
	default:
		a.b.Grow(len(a.one) + len(s))
		a.b.WriteString(a.one)
		a.b.WriteString(s)
		a.many = true
	}
}

func (a *textAcc) len() int {
	if a.many {
		return a.b.Len()
	}
	return len(a.one)
}

func (a *textAcc) String() string {
	if a.many {
		return a.b.String()
	}
	return a.one
}

// unescape decodes Python's backslash escapes in a non-raw literal.
func unescape(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		c := s[i+1]
		switch c {
		case '\n':
			i += 2
		case '\\', '\'', '"':
			b.WriteByte(c)
			i += 2
		case 'n':
			b.WriteByte('\n')
			i += 2
		case 't':
			b.WriteByte('\t')
			i += 2
		case 'r':
			b.WriteByte('\r')
			i += 2
		case 'a', 'b', 'f', 'v':
			b.WriteByte(map[byte]byte{'a': 7, 'b': 8, 'f': 12, 'v': 11}[c])
			i += 2
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+2+width <= len(s) {
				if v, err := strconv.ParseUint(s[i+2:i+2+width], 16, 32); err == nil && v <= utf8.MaxRune {
					b.WriteRune(rune(v))
					i += 2 + width
					continue
				}
			}
			b.WriteByte('\\')
			i++
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i + 1
			for j < len(s) && j < i+4 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(s[i+1:j], 8, 32)
			b.WriteRune(rune(v))
			i = j
		case 'N':
			if end := strings.IndexByte(s[i:], '}'); i+2 < len(s) && s[i+2] == '{' && end > 3 {
				b.WriteRune(namedEscape(strings.ToUpper(s[i+3 : i+end])))
				i += end + 1
				continue
			}
			b.WriteByte('\\')
			i++
		default:
			b.WriteByte('\\')
			i++
		}
	}
	return b.String()
}

// namedEscape decodes the \N{...} names an attacker uses to spell names;
// others decode to U+FFFD.
func namedEscape(name string) rune {
	if r, ok := namedEscapes[name]; ok {
		return r
	}
	for _, p := range []struct {
		prefix string
		base   rune
	}{{"LATIN SMALL LETTER ", 'a'}, {"LATIN CAPITAL LETTER ", 'A'}, {"DIGIT ", '0'}} {
		if rest, ok := strings.CutPrefix(name, p.prefix); ok && (len(rest) == 1 || p.base == '0') {
			if p.base == '0' {
				for i, d := range []string{"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"} {
					if rest == d {
						return rune('0' + i)
					}
				}
				return utf8.RuneError
			}
			if rest[0] >= 'A' && rest[0] <= 'Z' {
				return p.base + rune(rest[0]-'A')
			}
		}
	}
	return utf8.RuneError
}

// namedEscapes covers the \N{...} names an attacker uses to spell dunders.
var namedEscapes = map[string]rune{
	"LOW LINE": '_', "FULL STOP": '.', "SPACE": ' ', "SOLIDUS": '/',
}
