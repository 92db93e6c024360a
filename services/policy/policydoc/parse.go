package policydoc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/airlockhq/airlock/services/policy/analysis"
)

// MaxDocumentBytes caps a policy file.
const MaxDocumentBytes = 1 << 20

// LoadFile reads and validates one policy file.
func LoadFile(file string) (*Policy, error) {
	src, err := readCapped(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, src)
}

func readCapped(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxDocumentBytes {
		return nil, &ValidationError{File: file, Msg: fmt.Sprintf("the document is larger than %d bytes", MaxDocumentBytes)}
	}
	return src, nil
}

// Parse validates a policy document. file names it in errors; a missing id
// defaults to the file's base name.
func Parse(file string, src []byte) (*Policy, error) {
	p := &parser{file: file}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{File: file, Msg: "the document is empty"}
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		return nil, &ValidationError{File: file, Line: line, Column: 1, Msg: "a policy file holds exactly one YAML document"}
	}
	if len(root.Content) == 0 {
		return nil, &ValidationError{File: file, Msg: "the document is empty"}
	}
	doc := root.Content[0]
	sum := sha256.Sum256(src)
	pol := &Policy{
		Version: hex.EncodeToString(sum[:]), Source: src, File: file, LoadedAt: time.Now(),
		Config: analysis.DefaultConfig(), Limits: DefaultLimits(), CostLimit: 1_000_000,
	}
	pol.Config.Actions = map[string]analysis.Verdict{}
	err := p.mapping(doc, "", map[string]func(*yaml.Node, string) error{
		"id": func(n *yaml.Node, f string) (err error) {
			pol.ID, err = p.identifier(n, f)
			return err
		},
		"description": func(n *yaml.Node, f string) (err error) {
			pol.Description, err = p.str(n, f)
			return err
		},
		"tenants": func(n *yaml.Node, f string) (err error) {
			pol.Tenants, err = p.strList(n, f, p.identifier)
			return err
		},
		"allowed_imports": func(n *yaml.Node, f string) (err error) {
			pol.Config.AllowedImports, err = p.strList(n, f, p.dottedName)
			return err
		},
		"denied_calls": func(n *yaml.Node, f string) (err error) {
			pol.Config.DeniedCalls, err = p.strList(n, f, p.pattern)
			return err
		},
		"review_calls": func(n *yaml.Node, f string) (err error) {
			pol.Config.ReviewCalls, err = p.strList(n, f, p.pattern)
			return err
		},
		"paths": func(n *yaml.Node, f string) error { return p.paths(n, f, &pol.Config) },
		"actions": func(n *yaml.Node, f string) error {
			return p.mapEach(n, f, func(k *yaml.Node, v *yaml.Node, kf string) error {
				if _, ok := analysis.RuleByID(k.Value); !ok {
					return p.errAt(k, kf, "%q is not a built-in rule id", k.Value)
				}
				a, err := p.verdict(v, kf)
				pol.Config.Actions[k.Value] = a
				return err
			})
		},
		"deletions": func(n *yaml.Node, f string) error {
			a, err := p.verdict(n, f)
			pol.Config.Actions[analysis.RuleDelete] = a
			return err
		},
		"input_changes": func(n *yaml.Node, f string) error {
			a, err := p.verdict(n, f)
			pol.Config.Actions[analysis.RuleInputModified] = a
			return err
		},
		"rules":  func(n *yaml.Node, f string) error { return p.rules(n, f, pol) },
		"limits": func(n *yaml.Node, f string) error { return p.limits(n, f, &pol.Limits) },
		"cel_cost_limit": func(n *yaml.Node, f string) error {
			v, err := p.integer(n, f, 1, 100_000_000)
			pol.CostLimit = uint64(v)
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	if pol.ID == "" {
		base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".yaml"), ".yml")
		if !validIdentifier(base) {
			return nil, &ValidationError{File: file, Line: doc.Line, Column: doc.Column, Field: "id",
				Msg: fmt.Sprintf("missing, and the file name %q is not a valid id", base)}
		}
		pol.ID = base
	}
	if len(pol.Config.AllowedImports) == 0 {
		return nil, &ValidationError{File: file, Line: doc.Line, Column: doc.Column, Field: "allowed_imports",
			Msg: "missing: list the modules code may import"}
	}
	return pol, nil
}

// parser turns yaml nodes into a Policy, naming file, line and field in
// every error.
type parser struct{ file string }

func (p *parser) errAt(n *yaml.Node, field, format string, args ...any) error {
	return &ValidationError{File: p.file, Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// yamlError turns a yaml.v3 syntax error into a ValidationError with its line.
func (p *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ":"); ok {
			if l, err := strconv.Atoi(num); err == nil {
				line, msg = l, strings.TrimSpace(after)
			}
		}
	}
	return &ValidationError{File: p.file, Line: line, Column: 1, Msg: "YAML syntax: " + msg}
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// mapping checks n is a mapping with only known keys, each once, and calls
// the key's handler.
func (p *parser) mapping(n *yaml.Node, field string, handlers map[string]func(*yaml.Node, string) error) error {
	if n.Kind != yaml.MappingNode {
		name := field
		if name == "" {
			name = "(document)"
		}
		return p.errAt(n, name, "want a mapping, got a %s", kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kf := join(field, k.Value)
		h, ok := handlers[k.Value]
		if !ok {
			known := make([]string, 0, len(handlers))
			for name := range handlers {
				known = append(known, name)
			}
			slices.Sort(known)
			return p.errAt(k, kf, "unknown field (known fields: %s)", strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return p.errAt(k, kf, "given twice")
		}
		seen[k.Value] = true
		if err := h(v, kf); err != nil {
			return err
		}
	}
	return nil
}

// mapEach calls fn for each key of a mapping with arbitrary keys.
func (p *parser) mapEach(n *yaml.Node, field string, fn func(k, v *yaml.Node, kf string) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errAt(n, field, "want a mapping, got a %s", kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kf := join(field, k.Value)
		if seen[k.Value] {
			return p.errAt(k, kf, "given twice")
		}
		seen[k.Value] = true
		if err := fn(k, v, kf); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errAt(n, field, "want a single value, got a %s", kindName(n))
	}
	return n.Value, nil
}

func (p *parser) strList(n *yaml.Node, field string, item func(*yaml.Node, string) (string, error)) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errAt(n, field, "want a list, got a %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		s, err := item(c, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func validIdentifier(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (i > 0 && (r == '-' || r == '_'))
		if !ok {
			return false
		}
	}
	return true
}

// ValidID reports whether s is a well-formed policy or tenant id.
func ValidID(s string) bool { return validIdentifier(s) }

func (p *parser) identifier(n *yaml.Node, field string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if !validIdentifier(s) {
		return "", p.errAt(n, field, "%q is not a valid id (lower-case letters, digits, - and _, at most 63)", s)
	}
	return s, nil
}

func (p *parser) dottedName(n *yaml.Node, field string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || !isPyIdent(part) {
			return "", p.errAt(n, field, "%q is not a module name", s)
		}
	}
	return s, nil
}

func isPyIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || (i > 0 && r >= '0' && r <= '9')) {
			return false
		}
	}
	return s != ""
}

func (p *parser) pattern(n *yaml.Node, field string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", p.errAt(n, field, "empty pattern")
	}
	if _, err := filepath.Match(s, ""); err != nil {
		return "", p.errAt(n, field, "%q is not a valid glob pattern: %v", s, err)
	}
	return s, nil
}

func (p *parser) absPath(n *yaml.Node, field string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(s, "/") || filepath.Clean(s) != s || s == "/" {
		return "", p.errAt(n, field, "%q must be a clean absolute path other than /", s)
	}
	return s, nil
}

func (p *parser) paths(n *yaml.Node, field string, cfg *analysis.Config) error {
	return p.mapping(n, field, map[string]func(*yaml.Node, string) error{
		"inputs": func(n *yaml.Node, f string) (err error) {
			cfg.InputRoot, err = p.absPath(n, f)
			return err
		},
		"outputs": func(n *yaml.Node, f string) (err error) {
			cfg.WriteRoots, err = p.strList(n, f, p.absPath)
			return err
		},
		"reads": func(n *yaml.Node, f string) (err error) {
			cfg.ReadRoots, err = p.strList(n, f, p.absPath)
			return err
		},
	})
}

func (p *parser) verdict(n *yaml.Node, field string) (analysis.Verdict, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	v, ok := analysis.ParseVerdict(s)
	if !ok {
		return 0, p.errAt(n, field, "%q is not allow, review or deny", s)
	}
	return v, nil
}

func (p *parser) integer(n *yaml.Node, field string, lo, hi int64) (int64, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, p.errAt(n, field, "%q is not a whole number from %d to %d", s, lo, hi)
	}
	return v, nil
}

func (p *parser) duration(n *yaml.Node, field string, hi time.Duration) (time.Duration, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > hi {
		return 0, p.errAt(n, field, "%q is not a duration between 0 and %s (such as 30s or 2m)", s, hi)
	}
	return d, nil
}

// ParseSize reads 512MiB, 1GiB, 10MB or plain bytes.
func ParseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, false
	}
	return v * mult, true
}

func (p *parser) size(n *yaml.Node, field string, hi int64) (int64, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	v, ok := ParseSize(s)
	if !ok || v <= 0 || v > hi {
		return 0, p.errAt(n, field, "%q is not a size between 1 byte and %d bytes (such as 512MiB, 1GiB or 1048576)", s, hi)
	}
	return v, nil
}

func (p *parser) limits(n *yaml.Node, field string, l *Limits) error {
	i32 := func(dst *int32, hi int64) func(*yaml.Node, string) error {
		return func(n *yaml.Node, f string) error {
			v, err := p.integer(n, f, 1, hi)
			*dst = int32(v)
			return err
		}
	}
	sz := func(dst *int64, hi int64) func(*yaml.Node, string) error {
		return func(n *yaml.Node, f string) (err error) {
			*dst, err = p.size(n, f, hi)
			return err
		}
	}
	dur := func(dst *time.Duration) func(*yaml.Node, string) error {
		return func(n *yaml.Node, f string) (err error) {
			*dst, err = p.duration(n, f, 24*time.Hour)
			return err
		}
	}
	return p.mapping(n, field, map[string]func(*yaml.Node, string) error{
		"timeout":          dur(&l.Timeout),
		"cpu_time":         dur(&l.CPUTime),
		"memory":           sz(&l.MemoryBytes, 1<<40),
		"max_processes":    i32(&l.MaxProcesses, 100_000),
		"max_output_bytes": sz(&l.MaxOutputBytes, 1<<40),
		"max_output_files": i32(&l.MaxOutputFiles, 1_000_000),
		"max_stdout_bytes": sz(&l.MaxStdoutBytes, 1<<32),
		"max_stderr_bytes": sz(&l.MaxStderrBytes, 1<<32),
	})
}
