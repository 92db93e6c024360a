// Package analysis parses Python (a Go parser that builds the tree
// tree-sitter-python builds, in pyparse.go) and extracts the facts the
// policy rules judge: imports, calls with their literal arguments, file
// reads, writes and deletions, URLs, dangerous attributes and loops.
package analysis

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"time"
	"unicode/utf8"
)

// ErrTooLarge reports source larger than Options.MaxBytes.
var ErrTooLarge = errors.New("source too large")

// Options bound one analysis. Zero values take the defaults.
type Options struct {
	// MaxBytes caps the source size (default 1 MiB).
	MaxBytes int
	// MaxNodes caps the syntax nodes examined (default 400,000).
	MaxNodes int
	// MaxDepth caps the nesting depth of the syntax tree (default 400).
	MaxDepth int
	// Timeout bounds parsing plus fact extraction (default 2s).
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = 400_000
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 400
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	return o
}

// Pos is a place in the source: 1-based line and column (in characters).
type Pos struct {
	Line, Column       int
	EndLine, EndColumn int
}

// Span is a fact's location and the source text it came from.
type Span struct {
	Pos
	// Snippet is the offending source, shortened when long.
	Snippet string
}

// Import is one imported module.
type Import struct {
	Span
	// Module is the dotted module name ("os.path"); relative imports start
	// with dots.
	Module string
	// Names are the names imported by a from-import ("*" for a star import).
	Names []string
}

// Value is a statically known part of an expression: a literal string, or
// a path whose leading part is known.
type Value struct {
	// Text is the known text (the whole value when Exact).
	Text string
	// Exact is true when Text is the whole value.
	Exact bool
	// Known is true when Text is a known prefix of the value.
	Known bool
	// Stream is true for an in-memory buffer or standard stream
	// (io.StringIO(), sys.stdout): writing to it touches no file.
	Stream bool
}

// Call is one call expression.
type Call struct {
	Span
	// Name is the qualified name of the callee after resolving imports and
	// aliases ("pandas.read_csv", "exec"); empty when the callee is not a
	// module attribute or builtin (a method on a local value).
	Name string
	// Method is the last attribute of the callee ("to_csv" in df.to_csv),
	// or the bare name.
	Method string
	// Args are the positional arguments.
	Args []Value
	// Kwargs are the keyword arguments by name.
	Kwargs map[string]Value
	// StarArgs is true when *args or **kwargs hide arguments.
	StarArgs bool
	// Receiver is true for a method call (the callee is an attribute).
	Receiver bool
	// ReceiverPath is the receiver's value when it is a known path
	// (Path("/data/out").write_text).
	ReceiverPath Value
}

// Ref is a use of a qualified name: a module attribute or builtin named in
// the code, called or not ("os.system" in `f = os.system`).
type Ref struct {
	Span
	// Name is the qualified name.
	Name string
	// Called is true when the reference is the callee of a call.
	Called bool
}

// Attr is an attribute access by a name that can reach interpreter
// internals (dunders, frame and code attributes).
type Attr struct {
	Span
	// Name is the attribute name after NFKC normalisation.
	Name string
}

// FileOpKind says what a file operation does.
type FileOpKind string

// File operation kinds.
const (
	FileRead   FileOpKind = "read"
	FileWrite  FileOpKind = "write"
	FileDelete FileOpKind = "delete"
)

// FileOp is a read, write or deletion of a path.
type FileOp struct {
	Span
	// Kind is read, write or delete.
	Kind FileOpKind
	// Path is what is known of the path.
	Path Value
	// Call is the qualified name or method of the call doing it.
	Call string
}

// StringLit is a string literal (after escapes and implicit concatenation).
type StringLit struct {
	Span
	// Value is the literal's value; f-strings contribute their literal parts.
	Value string
	// FormatReceiver is true when the literal is the receiver of .format or
	// .format_map.
	FormatReceiver bool
}

// URL is a URL-looking string literal.
type URL struct {
	Span
	// URL is the literal.
	URL string
}

// Loop is a loop with no way out.
type Loop struct {
	Span
	// Reason says why the loop looks endless.
	Reason string
}

// Identifier is a name written with characters that NFKC changes.
type Identifier struct {
	Span
	// Written is the name as written.
	Written string
	// Normalized is the name Python sees.
	Normalized string
}

// Facts are everything the rules judge about one module.
type Facts struct {
	// Lines is the number of source lines.
	Lines int
	// SyntaxErrors lists where the parser failed; Python would refuse to
	// run the code.
	SyntaxErrors []Span
	// Incomplete is set when a limit stopped the analysis; it says which.
	Incomplete string
	// Imports are the import statements' modules.
	Imports []Import
	// Calls are every call expression with what is known of its arguments.
	Calls []Call
	// Refs are uses of module attributes and builtins, called or not.
	Refs []Ref
	// Attrs are dunder and frame attribute accesses.
	Attrs []Attr
	// FileOps are file reads, writes and deletions.
	FileOps []FileOp
	// Strings are string literals and folded string expressions.
	Strings []StringLit
	// URLs are string literals that look like URLs.
	URLs []URL
	// Loops are loops with no way out.
	Loops []Loop
	// Suspicious lists process, frame and import attribute names used on
	// values of unknown origin.
	Suspicious []Attr
	// Confusables lists identifiers written with look-alike characters.
	Confusables []Identifier
}

// Analyze parses src and extracts its facts. It never panics on any input
// and stops at the limits in opts, setting Facts.Incomplete; the only
// error is ErrTooLarge.
func Analyze(ctx context.Context, src []byte, opts Options) (*Facts, error) {
	return analyze(ctx, src, opts, parse)
}

// analyze is Analyze with the parser given (tests run it with tree-sitter's
// too).
func analyze(ctx context.Context, src []byte, opts Options, parse func(context.Context, []byte, parseLimits) (*tree, error)) (*Facts, error) {
	opts = opts.withDefaults()
	if len(src) > opts.MaxBytes {
		return nil, ErrTooLarge
	}
	deadline := time.Now().Add(opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	f := &Facts{}
	lines := newLineIndex(src)
	f.Lines = lines.count()
	if !utf8.Valid(src) {
		f.SyntaxErrors = append(f.SyntaxErrors, Span{Pos: lines.pos(invalidUTF8Offset(src), invalidUTF8Offset(src)), Snippet: "invalid UTF-8"})
		return f, nil
	}
	t, err := parse(ctx, src, parseLimits{maxNodes: opts.MaxNodes, maxDepth: opts.MaxDepth, deadline: deadline})
	if err != nil {
		f.Incomplete = "parsing took longer than the time limit"
		return f, nil
	}
	if t.truncated {
		f.Incomplete = "the code is too large or too deeply nested to analyse"
	}
	w := newWalker(ctx, t, lines, f, deadline)
	w.run()
	sortFacts(f)
	return f, nil
}

func invalidUTF8Offset(src []byte) int {
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(src)
}

func sortFacts(f *Facts) {
	sort.SliceStable(f.SyntaxErrors, func(i, j int) bool { return less(f.SyntaxErrors[i].Pos, f.SyntaxErrors[j].Pos) })
}

func less(a, b Pos) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
}

// lineIndex maps byte offsets to lines and columns.
type lineIndex struct {
	src    []byte
	starts []int
	// ascii is set when every character is one byte, so a column is a
	// byte count.
	ascii bool
}

func newLineIndex(src []byte) *lineIndex {
	starts := make([]int, 1, bytes.Count(src, []byte{'\n'})+1)
	for i := 0; ; {
		j := bytes.IndexByte(src[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		starts = append(starts, i)
	}
	ascii := true
	for _, b := range src {
		if b >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	return &lineIndex{src: src, starts: starts, ascii: ascii}
}

func (li *lineIndex) count() int {
	n := len(li.starts)
	if n > 1 && li.starts[n-1] == len(li.src) {
		n--
	}
	return n
}

func (li *lineIndex) lineCol(off int) (int, int) {
	return li.lineColFrom(0, off)
}

// lineColFrom is lineCol for an offset known to be on line first+1 or
// after.
func (li *lineIndex) lineColFrom(first, off int) (int, int) {
	if off > len(li.src) {
		off = len(li.src)
	}
	// The last line start at or before off, by binary search over
	// starts[first:].
	lo, hi := first, len(li.starts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if li.starts[m] > off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	i := lo - 1
	if li.ascii {
		return i + 1, off - li.starts[i] + 1
	}
	return i + 1, utf8.RuneCount(li.src[li.starts[i]:off]) + 1
}

func (li *lineIndex) pos(start, end int) Pos {
	l, c := li.lineCol(start)
	el, ec := l, c
	switch {
	case end > start: // on the start's line or after
		el, ec = li.lineColFrom(l-1, end)
	case end < start:
		el, ec = li.lineCol(end)
	}
	return Pos{Line: l, Column: c, EndLine: el, EndColumn: ec}
}
