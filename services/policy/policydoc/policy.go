// Package policydoc loads policy documents (YAML), compiles their CEL
// rules, evaluates code facts against them, and keeps a directory of
// policies current as files change.
package policydoc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/airlockhq/airlock/services/policy/analysis"
)

// Sentinel errors.
var (
	// ErrNotFound reports a policy that does not exist or that the tenant
	// may not use.
	ErrNotFound = errors.New("policy not found")
	// ErrInvalid wraps every validation error.
	ErrInvalid = errors.New("invalid policy")
)

// DefaultID names the policy every tenant falls back to.
const DefaultID = "default"

// Limits are the run limits the executor receives.
type Limits struct {
	Timeout        time.Duration
	CPUTime        time.Duration
	MemoryBytes    int64
	MaxProcesses   int32
	MaxOutputBytes int64
	MaxOutputFiles int32
	MaxStdoutBytes int64
	MaxStderrBytes int64
}

// DefaultLimits are used for limits a document leaves out.
func DefaultLimits() Limits {
	return Limits{
		Timeout: 60 * time.Second, CPUTime: 60 * time.Second, MemoryBytes: 1 << 30, MaxProcesses: 64,
		MaxOutputBytes: 32 << 20, MaxOutputFiles: 100, MaxStdoutBytes: 1 << 20, MaxStderrBytes: 1 << 20,
	}
}

// Policy is one loaded, validated policy document.
type Policy struct {
	// ID names the policy.
	ID string
	// Version is the SHA-256 of the document's bytes, in hex.
	Version string
	// Description says what the policy is for.
	Description string
	// Tenants lists the tenants whose default this policy is; empty means
	// every tenant may use it and it is nobody's default (unless it is
	// the "default" policy).
	Tenants []string
	// Source is the document as written.
	Source []byte
	// File is where the document was loaded from.
	File string
	// LoadedAt is when this version was loaded.
	LoadedAt time.Time
	// Config is what the built-in rules read.
	Config analysis.Config
	// Limits are the run limits.
	Limits Limits
	// Rules are the custom CEL rules.
	Rules []*CustomRule
	// CostLimit bounds the CEL cost of one check across all custom rules.
	CostLimit uint64
}

// Usable reports whether tenant may use the policy.
func (p *Policy) Usable(tenant string) bool {
	return len(p.Tenants) == 0 || slices.Contains(p.Tenants, tenant)
}

// Result is a verdict on code with the findings behind it.
type Result struct {
	Verdict  analysis.Verdict
	Findings []analysis.Finding
	// CodeSHA256 is the SHA-256 of the code judged, in hex.
	CodeSHA256 string
}

// Check analyses code and judges it against the policy.
func (p *Policy) Check(ctx context.Context, code []byte, opts analysis.Options) (*Result, error) {
	facts, err := analysis.Analyze(ctx, code, opts)
	if err != nil {
		return nil, err
	}
	return p.Judge(ctx, facts, code), nil
}

// Judge applies the policy's built-in and custom rules to facts extracted
// from code; Check is Analyze followed by Judge.
func (p *Policy) Judge(ctx context.Context, facts *analysis.Facts, code []byte) *Result {
	findings := analysis.Check(facts, &p.Config)
	findings = append(findings, p.evalCustom(ctx, facts)...)
	slices.SortStableFunc(findings, func(a, b analysis.Finding) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	sum := sha256.Sum256(code)
	return &Result{Verdict: analysis.Decide(findings), Findings: findings, CodeSHA256: hex.EncodeToString(sum[:])}
}

// ValidationError names the place in a document that is wrong.
type ValidationError struct {
	File   string
	Line   int
	Column int
	// Field is the dotted path of the field at fault ("limits.memory").
	Field string
	Msg   string
}

// Error renders FILE:LINE:COLUMN: FIELD: MESSAGE.
func (e *ValidationError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }
