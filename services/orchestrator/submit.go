package orchestrator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/airlockhq/airlock/pkg/auth"
)

// Limits on what a run may carry.
const (
	maxPromptBytes = 16 << 10
	maxCodeBytes   = 256 << 10
	maxInputs      = 32
	maxKeyBytes    = 128
	maxNameBytes   = 255
)

// SubmitParams is a request to start a run.
type SubmitParams struct {
	Prompt         string
	Code           string
	InputFileIDs   []string
	PolicyID       string
	MaxAttempts    int
	IdempotencyKey string
	TraceID        string
}

// Submit validates and stores a run for p, starts it, and returns it at once.
func (e *Engine) Submit(ctx context.Context, p auth.Principal, sp SubmitParams) (*Run, error) {
	switch {
	case strings.TrimSpace(sp.Prompt) == "" && strings.TrimSpace(sp.Code) == "":
		return nil, invalid("source", "set prompt or code")
	case sp.Prompt != "" && sp.Code != "":
		return nil, invalid("source", "set prompt or code, not both")
	case len(sp.Prompt) > maxPromptBytes:
		return nil, invalid("prompt", fmt.Sprintf("%d bytes is more than the %d allowed", len(sp.Prompt), maxPromptBytes))
	case len(sp.Code) > maxCodeBytes:
		return nil, invalid("code", fmt.Sprintf("%d bytes is more than the %d allowed", len(sp.Code), maxCodeBytes))
	case !utf8.ValidString(sp.Prompt):
		return nil, invalid("prompt", "not valid UTF-8")
	case !utf8.ValidString(sp.Code):
		return nil, invalid("code", "not valid UTF-8")
	case sp.MaxAttempts < 0 || sp.MaxAttempts > e.cfg.MaxAttempts:
		return nil, invalid("max_attempts", fmt.Sprintf("must be between 0 (the default) and %d", e.cfg.MaxAttempts))
	case len(sp.IdempotencyKey) > maxKeyBytes:
		return nil, invalid("idempotency_key", fmt.Sprintf("longer than %d bytes", maxKeyBytes))
	case len(sp.InputFileIDs) > maxInputs:
		return nil, invalid("input_file_ids", fmt.Sprintf("%d files is more than the %d allowed", len(sp.InputFileIDs), maxInputs))
	}
	if err := checkToken(sp.PolicyID); err != nil {
		return nil, invalid("policy_id", err.Error())
	}
	if sp.MaxAttempts == 0 {
		sp.MaxAttempts = e.cfg.MaxAttempts
	}
	if sp.Code != "" {
		sp.MaxAttempts = 1 // supplied code is never rewritten
	}
	r := &Run{
		ID: newID("run"), Tenant: p.Tenant, Requester: p.Subject,
		Principal: auth.Principal{Tenant: p.Tenant, Subject: p.Subject, Roles: p.Roles},
		State:     stReceived, Prompt: sp.Prompt, SuppliedCode: sp.Code, PolicyID: sp.PolicyID,
		MaxAttempts: sp.MaxAttempts, IdempotencyKey: sp.IdempotencyKey, TraceID: sp.TraceID,
		Owner: e.id, LeaseUntil: time.Now().Add(e.cfg.LeaseTTL),
	}
	names := map[string]bool{}
	seen := map[string]bool{}
	var total int64
	for i, id := range sp.InputFileIDs {
		field := fmt.Sprintf("input_file_ids[%d]", i)
		if seen[id] {
			return nil, invalid(field, "file "+id+" is named twice")
		}
		seen[id] = true
		f, err := e.store.GetFile(ctx, p.Tenant, id)
		if errors.Is(err, ErrNotFound) || (err == nil && (!Visible(p, f.Tenant, f.Owner) || f.Kind != FileInput)) {
			return nil, invalid(field, "no uploaded file "+quoteID(id))
		}
		if err != nil {
			return nil, err
		}
		if names[f.Name] {
			return nil, invalid(field, "two inputs are named "+f.Name+"; each is mounted at /data/in/<name>")
		}
		names[f.Name] = true
		total += f.Size
		if total > e.cfg.MaxRunInputBytes {
			return nil, invalid("input_file_ids", fmt.Sprintf("the inputs together pass the %d-byte limit of a run", e.cfg.MaxRunInputBytes))
		}
		r.Inputs = append(r.Inputs, f.FileRef)
	}
	stored, created, err := e.store.CreateRun(ctx, r)
	if err != nil {
		return nil, err
	}
	if created {
		e.log.InfoContext(ctx, "run received", "run_id", r.ID, "tenant", r.Tenant, "requester", r.Requester,
			"inputs", len(r.Inputs), "supplied_code", r.SuppliedCode != "")
		e.launch(stored.ID, stored.Tenant, false)
	}
	return stored, nil
}

func quoteID(id string) string {
	if len(id) > 64 {
		id = id[:64] + "..."
	}
	return fmt.Sprintf("%q", id)
}

// checkToken accepts empty or a short name of letters, digits, '-', '_' and '.'.
func checkToken(s string) error {
	if len(s) > 128 {
		return fmt.Errorf("longer than 128 bytes")
	}
	for _, c := range s {
		if !(c < utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c) || c == '-' || c == '_' || c == '.')) {
			return fmt.Errorf("%q holds %q; use letters, digits, '-', '_' and '.'", s, c)
		}
	}
	return nil
}

// CheckFileName rejects names that could not be mounted at /data/in/<name>.
func CheckFileName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("required in the first message")
	case len(name) > maxNameBytes:
		return fmt.Errorf("longer than %d bytes", maxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("not valid UTF-8")
	case name == "." || name == ".." || strings.HasPrefix(name, "."):
		return fmt.Errorf("%q may not start with '.'", name)
	case strings.ContainsAny(name, "/\\"):
		return fmt.Errorf("%q holds a path separator; send a bare file name", name)
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			return fmt.Errorf("%q holds a control character", name)
		}
	}
	return nil
}

// Upload stores an input file for p from rd, which must yield at most
// MaxFileBytes; a larger file fails with ErrTooLarge and leaves nothing behind.
func (e *Engine) Upload(ctx context.Context, p auth.Principal, name string, rd io.Reader) (FileRef, error) {
	if err := CheckFileName(name); err != nil {
		return FileRef{}, invalid("name", err.Error())
	}
	f := &File{FileRef: FileRef{ID: newID("file"), Name: name}, Tenant: p.Tenant, Owner: p.Subject, Kind: FileInput}
	lr := &limitReader{r: rd, left: e.cfg.MaxFileBytes}
	ref, err := storeContent(ctx, e.store, e.cfg.ChunkBytes, f, lr)
	if err != nil {
		return FileRef{}, err
	}
	if lr.over {
		_ = e.store.DeleteFile(context.WithoutCancel(ctx), f.ID)
		return FileRef{}, fmt.Errorf("%w: %s passes the %d-byte limit of one file", ErrTooLarge, name, e.cfg.MaxFileBytes)
	}
	return ref, nil
}

// limitReader reads up to left bytes and notes whether more came.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(b)) > l.left {
		b = b[:l.left]
	}
	n, err := l.r.Read(b)
	l.left -= int64(n)
	return n, err
}

// Download streams a file p may see to fn, chunk by chunk.
func (e *Engine) Download(ctx context.Context, p auth.Principal, id string, first func(*File) error, fn func([]byte) error) error {
	f, err := e.store.GetFile(ctx, p.Tenant, id)
	if err != nil {
		return err
	}
	if !Visible(p, f.Tenant, f.Owner) {
		return ErrNotFound
	}
	if err := first(f); err != nil {
		return err
	}
	h := sha256.New()
	if err := e.store.ReadChunks(ctx, f.ID, func(b []byte) error { h.Write(b); return fn(b) }); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("file %s is corrupt: stored hash %s, content hash %s", f.ID, f.SHA256, got)
	}
	return nil
}
