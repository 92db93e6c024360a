package analysis

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Verdict is what a finding, or a whole check, asks for.
type Verdict int

// Verdicts, from most to least permissive.
const (
	Allow Verdict = iota + 1
	Review
	Deny
)

// String returns ALLOW, REVIEW or DENY.
func (v Verdict) String() string {
	switch v {
	case Allow:
		return "ALLOW"
	case Review:
		return "REVIEW"
	case Deny:
		return "DENY"
	}
	return "UNSPECIFIED"
}

// ParseVerdict reads allow, review or deny (any case).
func ParseVerdict(s string) (Verdict, bool) {
	switch strings.ToLower(s) {
	case "allow":
		return Allow, true
	case "review":
		return Review, true
	case "deny":
		return Deny, true
	}
	return 0, false
}

// Severity says how dangerous a finding is.
type Severity int

// Severities, from least to most dangerous.
const (
	Info Severity = iota + 1
	Low
	Medium
	High
	Critical
)

// String returns the severity's upper-case name.
func (s Severity) String() string {
	return [...]string{"UNSPECIFIED", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"}[max(0, min(int(s), 5))]
}

// ParseSeverity reads info, low, medium, high or critical (any case).
func ParseSeverity(s string) (Severity, bool) {
	for i, n := range []string{"info", "low", "medium", "high", "critical"} {
		if strings.EqualFold(s, n) {
			return Severity(i + 1), true
		}
	}
	return 0, false
}

// Finding is one rule's objection to the code.
type Finding struct {
	Span
	RuleID   string
	Severity Severity
	Action   Verdict
	Message  string
	FixHint  string
}

// Rule describes a built-in rule.
type Rule struct {
	ID       string
	Severity Severity
	Action   Verdict
	Summary  string
}

// Built-in rule ids.
const (
	RuleSyntax         = "syntax.error"
	RuleIncomplete     = "analysis.incomplete"
	RuleImport         = "import.not_allowed"
	RuleDynamicImport  = "import.dynamic"
	RuleDynamicCode    = "code.dynamic"
	RuleIntrospection  = "code.introspection"
	RuleCodeObjects    = "code.objects"
	RuleReflective     = "attr.reflective"
	RuleEscapeAttr     = "attr.escape"
	RuleDunderAttr     = "attr.dunder"
	RuleSuspiciousAttr = "attr.suspicious"
	RuleEscapeString   = "string.escape"
	RuleFormatAttr     = "string.format_attr"
	RuleConfusable     = "name.confusable"
	RuleSystem         = "call.system"
	RuleDeserialize    = "call.deserialize"
	RulePandasEval     = "call.pandas_eval"
	RuleDeniedCall     = "call.denied"
	RuleReviewCall     = "call.review"
	RuleNetwork        = "io.network"
	RuleWriteOutside   = "io.write_outside"
	RuleWriteUnknown   = "io.write_unknown"
	RuleReadOutside    = "io.read_outside"
	RuleDelete         = "io.delete"
	RuleInputModified  = "io.input_modified"
	RuleUnboundedLoop  = "loop.unbounded"
)

// Rules lists every built-in rule with its default severity and action.
var Rules = []Rule{
	{RuleSyntax, High, Deny, "the code does not parse as Python 3"},
	{RuleIncomplete, High, Deny, "the code is too large, deep or slow to analyse completely"},
	{RuleImport, High, Deny, "an import outside the policy's allow-list"},
	{RuleDynamicImport, Critical, Deny, "__import__, importlib and other imports by computed name"},
	{RuleDynamicCode, Critical, Deny, "exec, eval, compile and other ways to run code built at run time"},
	{RuleIntrospection, Critical, Deny, "globals, vars, locals, breakpoint, frames, sys.modules, gc and inspect"},
	{RuleCodeObjects, Critical, Deny, "building functions or code objects by hand (types.FunctionType, CodeType)"},
	{RuleReflective, High, Deny, "getattr/setattr/delattr with a computed name, or passed around as values"},
	{RuleEscapeAttr, Critical, Deny, "dunder and frame attributes used to escape a sandbox (__subclasses__, __globals__, f_globals...)"},
	{RuleDunderAttr, Medium, Review, "other dunder attributes"},
	{RuleSuspiciousAttr, Medium, Review, "process, frame or import functions (.system, .popen, ._getframe...) on a value of unknown origin"},
	{RuleEscapeString, High, Deny, "a string that spells a sandbox-escape name"},
	{RuleFormatAttr, High, Deny, "a format string that reaches attributes or items of its arguments"},
	{RuleConfusable, Medium, Review, "an identifier written with look-alike Unicode characters"},
	{RuleSystem, Critical, Deny, "processes, signals, sockets and native code (subprocess, os.system, socket, ctypes...)"},
	{RuleDeserialize, Critical, Deny, "unsafe deserialisation (pickle, marshal, shelve, read_pickle, numpy.load(allow_pickle=True))"},
	{RulePandasEval, High, Deny, "pandas.eval, DataFrame.query and DataFrame.eval with a computed or dunder expression"},
	{RuleDeniedCall, High, Deny, "a call the policy denies"},
	{RuleReviewCall, Medium, Review, "a call the policy wants a person to review"},
	{RuleNetwork, High, Deny, "a file read or write from a URL"},
	{RuleWriteOutside, High, Deny, "a write to a literal path outside the output folders"},
	{RuleWriteUnknown, Medium, Review, "a write to a path that cannot be worked out before running"},
	{RuleReadOutside, Medium, Review, "a read from a literal path outside the input and output folders"},
	{RuleDelete, Medium, Review, "a deletion or rename outside the output folders"},
	{RuleInputModified, High, Deny, "a write, deletion or rename of an input file"},
	{RuleUnboundedLoop, Medium, Review, "a loop with no way out"},
}

// RuleByID finds a built-in rule.
func RuleByID(id string) (Rule, bool) {
	for _, r := range Rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// Config is the part of a policy the built-in rules read.
type Config struct {
	// AllowedImports are modules (and their submodules) code may import.
	AllowedImports []string
	// DeniedCalls are qualified names or glob patterns that are refused.
	DeniedCalls []string
	// ReviewCalls are qualified names or glob patterns that need review.
	ReviewCalls []string
	// InputRoot is where inputs live (/data/in).
	InputRoot string
	// WriteRoots are where code may write (/data/out, /tmp).
	WriteRoots []string
	// ReadRoots are where code may read without review.
	ReadRoots []string
	// Actions override a rule's default action; Allow drops its findings.
	Actions map[string]Verdict
}

// DefaultConfig returns the roots of the sandbox's file layout.
func DefaultConfig() Config {
	return Config{InputRoot: "/data/in", WriteRoots: []string{"/data/out", "/tmp"},
		ReadRoots: []string{"/data/in", "/data/out", "/tmp"}}
}

// Check runs the built-in rules over facts and returns findings in source
// order, at most one per rule and place.
func Check(f *Facts, cfg *Config) []Finding {
	c := checker{cfg: cfg, seen: map[findingKey]bool{}, denied: newNameList(cfg.DeniedCalls), review: newNameList(cfg.ReviewCalls)}
	c.run(f)
	sort.SliceStable(c.out, func(i, j int) bool { return less(c.out[i].Pos, c.out[j].Pos) })
	return c.out
}

// Decide returns the strictest action among findings, or Allow.
func Decide(findings []Finding) Verdict {
	v := Allow
	for _, f := range findings {
		v = max(v, f.Action)
	}
	return v
}

type checker struct {
	cfg            *Config
	denied, review *nameList
	out            []Finding
	seen           map[findingKey]bool
}

// findingKey is a rule at a place; a rule reports a place once.
type findingKey struct {
	rule         string
	line, column int
}

func (c *checker) add(rule string, sp Span, msg, hint string) {
	r, _ := RuleByID(rule)
	action := r.Action
	if a, ok := c.cfg.Actions[rule]; ok {
		action = a
	}
	if action == Allow {
		return
	}
	key := findingKey{rule, sp.Line, sp.Column}
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.out = append(c.out, Finding{Span: sp, RuleID: rule, Severity: r.Severity, Action: action, Message: msg, FixHint: hint})
}

func (c *checker) run(f *Facts) {
	for _, s := range f.SyntaxErrors {
		c.add(RuleSyntax, s, fmt.Sprintf("Python cannot parse the code at line %d (%s).", s.Line, s.Snippet),
			"Return complete, valid Python 3 code; check brackets, quotes and indentation near this line.")
	}
	if f.Incomplete != "" {
		c.add(RuleIncomplete, Span{Pos: Pos{Line: 1, Column: 1}}, "The analysis could not finish: "+f.Incomplete+".",
			"Return a shorter, simpler script.")
	}
	for _, imp := range f.Imports {
		c.importRule(imp)
		for _, name := range imp.Names {
			if name != "*" && !strings.HasPrefix(imp.Module, ".") {
				c.refRules(Ref{Span: imp.Span, Name: cleanQualified(imp.Module + "." + name)})
			}
		}
	}
	for _, r := range f.Refs {
		c.refRules(r)
	}
	for _, call := range f.Calls {
		c.callRules(call)
	}
	for _, a := range f.Attrs {
		if EscapeName(a.Name) {
			c.add(RuleEscapeAttr, a.Span, fmt.Sprintf("%s reaches interpreter internals; it is a known sandbox-escape route.", a.Name),
				"Do not use "+a.Name+"; work with the data through pandas, openpyxl and the standard library only.")
		} else if !benignDunders[a.Name] {
			c.add(RuleDunderAttr, a.Span, fmt.Sprintf("The dunder attribute %s is unusual in data code.", a.Name),
				"Avoid dunder attributes; use ordinary functions and methods.")
		}
	}
	for _, a := range f.Suspicious {
		c.add(RuleSuspiciousAttr, a.Span, fmt.Sprintf("%s is called on a value whose origin cannot be traced; it may be a process or interpreter function.", a.Name),
			"Call functions through their module directly; do not hide modules in containers or variables.")
	}
	for _, s := range f.Strings {
		c.stringRules(s)
	}
	for _, id := range f.Confusables {
		c.add(RuleConfusable, id.Span, fmt.Sprintf("The identifier %q uses look-alike characters; Python reads it as %q.", id.Written, id.Normalized),
			"Write identifiers in plain ASCII.")
	}
	for _, op := range f.FileOps {
		c.fileRules(op)
	}
	for _, l := range f.Loops {
		c.add(RuleUnboundedLoop, l.Span, "This loop may never end: "+l.Reason+".",
			"Loop over the data (for row in ...), or add a clear exit condition with break.")
	}
}

func (c *checker) importRule(imp Import) {
	mod := imp.Module
	if mod == "" || strings.HasPrefix(mod, ".") {
		c.add(RuleImport, imp.Span, "Relative imports are not allowed: the script runs on its own.",
			"Import only these modules: "+strings.Join(c.cfg.AllowedImports, ", ")+".")
		return
	}
	if moduleAllowed(mod, c.cfg.AllowedImports) {
		return
	}
	msg := fmt.Sprintf("The module %s is not on this policy's import allow-list.", mod)
	if builtinIndex.lists(mod)&onSystem != 0 {
		msg = fmt.Sprintf("The module %s runs processes, opens network connections or loads native code.", mod)
	}
	c.add(RuleImport, imp.Span, msg, "Do not import "+mod+". Allowed modules: "+strings.Join(c.cfg.AllowedImports, ", ")+".")
}

func moduleAllowed(mod string, allowed []string) bool {
	for _, a := range allowed {
		if mod == a || strings.HasPrefix(mod, a+".") {
			return true
		}
	}
	return false
}

// nameList is a list of qualified names and glob patterns, split for
// fast matching.
type nameList struct {
	exact map[string]bool
	globs []string
	// literals are the globs' leading literal parts: a name that does not
	// start with one cannot match its glob.
	literals []string
}

func newNameList(list []string) *nameList {
	l := &nameList{exact: make(map[string]bool, len(list))}
	for _, p := range list {
		if isGlob(p) {
			l.globs = append(l.globs, p)
			l.literals = append(l.literals, globLiteral(p))
		} else {
			l.exact[p] = true
		}
	}
	return l
}

func isGlob(p string) bool { return strings.ContainsAny(p, "*?[\\") }

// globLiteral returns the part of a glob pattern before its first special
// character, which a matching name starts with.
func globLiteral(p string) string {
	if i := strings.IndexAny(p, "*?[\\"); i >= 0 {
		return p[:i]
	}
	return p
}

// match returns the pattern matching name or one of its dotted prefixes
// ("os.system" matches "os.system.__call__"), or "".
func (l *nameList) match(name string) string {
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			continue
		}
		p := name[:i]
		if l.exact[p] {
			return p
		}
		for j, pat := range l.globs {
			if !strings.HasPrefix(p, l.literals[j]) {
				continue
			}
			if ok, _ := path.Match(pat, p); ok {
				return pat
			}
		}
	}
	return ""
}

func (c *checker) refRules(r Ref) {
	n := r.Name
	on := builtinIndex.lists(n)
	switch {
	case on&onDynamicImport != 0:
		c.add(RuleDynamicImport, r.Span, n+" imports a module chosen at run time, which defeats the import allow-list.",
			"Use a plain import statement for an allowed module.")
	case on&onDynamicCode != 0:
		c.add(RuleDynamicCode, r.Span, n+" runs code built at run time, which cannot be checked beforehand.",
			"Write the logic directly in Python; never build code as strings.")
	case on&onIntrospection != 0:
		c.add(RuleIntrospection, r.Span, n+" reaches the interpreter's internals (scopes, frames or loaded modules).",
			"Pass values explicitly instead of looking them up through "+n+".")
	case on&onCodeObjects != 0:
		c.add(RuleCodeObjects, r.Span, n+" builds functions or code objects by hand.",
			"Define functions with def; do not construct code objects.")
	case on&onSystem != 0:
		c.add(RuleSystem, r.Span, n+" runs processes, sends signals, opens sockets or loads native code; the sandbox forbids it.",
			"Do the work in Python with pandas or the standard library; never start processes or open connections.")
	case on&onDeserialize != 0:
		c.add(RuleDeserialize, r.Span, n+" deserialises data in a way that can run arbitrary code.",
			"Read data as CSV, JSON or XLSX (pandas.read_csv, json.load, openpyxl) instead.")
	case (n == "getattr" || n == "setattr" || n == "delattr") && !r.Called:
		c.add(RuleReflective, r.Span, n+" is passed around as a value, hiding which attribute is used.",
			"Access attributes directly (obj.name).")
	}
	if m := c.denied.match(n); m != "" {
		c.add(RuleDeniedCall, r.Span, fmt.Sprintf("%s is denied by this policy (%s).", n, m),
			"Do not use "+n+"; find another way with the allowed modules.")
	} else if m := c.review.match(n); m != "" {
		c.add(RuleReviewCall, r.Span, fmt.Sprintf("%s needs a person's review under this policy (%s).", n, m),
			"If you can, do without "+n+"; otherwise an operator will review the code.")
	}
}

func (c *checker) callRules(call Call) {
	switch call.Name {
	case "getattr", "setattr", "delattr", "operator.attrgetter", "operator.methodcaller":
		i := 1
		if strings.HasPrefix(call.Name, "operator.") {
			i = 0
		}
		if call.StarArgs || i >= len(call.Args) || !call.Args[i].Exact {
			c.add(RuleReflective, call.Span, call.Name+" with a computed attribute name can reach anything, including sandbox escapes.",
				"Access attributes by their literal name (obj.name), or use a dict for dynamic keys.")
		} else if name := call.Args[i].Text; EscapeName(name) {
			c.add(RuleEscapeAttr, call.Span, fmt.Sprintf("%s(..., %q) reaches interpreter internals.", call.Name, name),
				"Do not access "+name+".")
		}
	case "numpy.load":
		if v, ok := call.Kwargs["allow_pickle"]; ok && !(v.Exact && v.Text == "False") {
			c.add(RuleDeserialize, call.Span, "numpy.load with allow_pickle can run arbitrary code from the file.",
				"Call numpy.load without allow_pickle, or read CSV instead.")
		}
	case "pandas.eval":
		c.pandasEval(call)
	case "":
		if call.Method == "query" || call.Method == "eval" {
			c.pandasEval(call)
		}
	}
}

func (c *checker) pandasEval(call Call) {
	v, ok := pathArg(call, 0, "expr")
	if !ok && !call.StarArgs {
		return
	}
	if !v.Exact || call.StarArgs {
		c.add(RulePandasEval, call.Span, "The expression passed to "+call.Method+" is built at run time; pandas evaluates it as code.",
			"Filter with boolean masks (df[df['amount'] > 100]) or pass a literal expression string.")
		return
	}
	if strings.Contains(v.Text, "__") || strings.Contains(v.Text, "import") {
		c.add(RulePandasEval, call.Span, "The expression passed to "+call.Method+" reaches Python internals.",
			"Use a plain comparison of columns, such as \"amount > 100\".")
	}
}

func (c *checker) stringRules(s StringLit) {
	if name := escapeIn(s.Value); name != "" {
		c.add(RuleEscapeString, s.Span, fmt.Sprintf("The string spells %s, a sandbox-escape name.", name),
			"Remove the reference to "+name+".")
	}
	if s.FormatReceiver && formatReachesAttributes(s.Value) {
		c.add(RuleFormatAttr, s.Span, "The format string reads attributes or items of its arguments ({0.x} or {0[x]}), which can leak internals.",
			"Format plain values: \"{}\".format(value) or an f-string over local variables.")
	}
}

// escapeIn returns the escape name a string spells, or "".
func escapeIn(s string) string {
	if strings.Contains(s, "__") {
		for _, n := range escapeList {
			if strings.Contains(s, n) {
				return n
			}
		}
	}
	// Tokens are runs of ASCII letters, digits and _; every other rune
	// (each byte of a multi-byte one) separates them.
	for i := 0; i < len(s); {
		if !isWordByte(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && isWordByte(s[j]) {
			j++
		}
		if tok := s[i:j]; isFrameAttr(tok) {
			return tok
		}
		i = j
	}
	return ""
}

func isWordByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// formatReachesAttributes reports whether a str.format template has a
// replacement field with attribute or index access.
func formatReachesAttributes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && s[j] != '}' && s[j] != '!' && s[j] != ':' {
			if s[j] == '.' || s[j] == '[' {
				return true
			}
			j++
		}
		i = j
	}
	return false
}

// place says where a path is relative to a set of roots.
type place int

const (
	inside place = iota
	maybe
	outside
)

func placeOf(v Value, roots []string) place {
	best := outside
	for _, root := range roots {
		root = strings.TrimSuffix(root, "/")
		var p place
		if v.Exact {
			c := path.Clean(v.Text)
			if c == root || strings.HasPrefix(c, root+"/") {
				p = inside
			} else {
				p = outside
			}
		} else {
			pv := cleanValue(v)
			switch {
			case !pv.Known:
				p = maybe
			case strings.HasPrefix(pv.Text, root+"/"):
				p = inside
			case strings.HasPrefix(root+"/", pv.Text):
				p = maybe
			default:
				p = outside
			}
		}
		best = min(best, p)
	}
	return best
}

func (c *checker) fileRules(op FileOp) {
	v := op.Path
	if v.Stream {
		return
	}
	if v.Known && isURL(v.Text) {
		c.add(RuleNetwork, op.Span, fmt.Sprintf("%s reaches the network (%s); the sandbox has no network.", op.Call, v.Text),
			"Read only the input files under "+c.cfg.InputRoot+".")
		return
	}
	desc := "an unknown path"
	if v.Known {
		desc = v.Text
		if !v.Exact {
			desc += "..."
		}
	}
	inInput := c.cfg.InputRoot != "" && v.Known && placeOf(v, []string{c.cfg.InputRoot}) == inside
	switch op.Kind {
	case FileWrite:
		switch {
		case inInput:
			c.add(RuleInputModified, op.Span, fmt.Sprintf("%s writes to the input %s; inputs must not change.", op.Call, desc),
				"Write results to a new file under "+firstOr(c.cfg.WriteRoots, "/data/out")+".")
		case !v.Known:
			c.add(RuleWriteUnknown, op.Span, op.Call+" writes to a path that cannot be known before running.",
				"Build output paths from a literal folder, such as os.path.join(\""+firstOr(c.cfg.WriteRoots, "/data/out")+"\", name).")
		default:
			switch placeOf(v, c.cfg.WriteRoots) {
			case inside:
			case maybe:
				c.add(RuleWriteUnknown, op.Span, fmt.Sprintf("%s writes to %s, which may fall outside the output folders.", op.Call, desc),
					"Build output paths from a literal folder, such as os.path.join(\""+firstOr(c.cfg.WriteRoots, "/data/out")+"\", name).")
			case outside:
				c.add(RuleWriteOutside, op.Span, fmt.Sprintf("%s writes to %s, outside the output folders (%s).", op.Call, desc, strings.Join(c.cfg.WriteRoots, ", ")),
					"Write output files only under "+firstOr(c.cfg.WriteRoots, "/data/out")+".")
			}
		}
	case FileDelete:
		switch {
		case inInput:
			c.add(RuleInputModified, op.Span, fmt.Sprintf("%s deletes or moves the input %s; inputs must not change.", op.Call, desc),
				"Leave input files alone; write new files under "+firstOr(c.cfg.WriteRoots, "/data/out")+".")
		case v.Known && placeOf(v, c.cfg.WriteRoots) == inside:
		default:
			c.add(RuleDelete, op.Span, fmt.Sprintf("%s deletes or moves %s.", op.Call, desc),
				"Do not delete files; only create new ones under "+firstOr(c.cfg.WriteRoots, "/data/out")+".")
		}
	case FileRead:
		if v.Known && placeOf(v, c.cfg.ReadRoots) == outside {
			c.add(RuleReadOutside, op.Span, fmt.Sprintf("%s reads %s, outside the input and output folders.", op.Call, desc),
				"Read inputs from "+c.cfg.InputRoot+" (for example "+c.cfg.InputRoot+"/sales.csv).")
		}
	}
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
