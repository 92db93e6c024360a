package approval

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/textcheck"
)

// Limits on what a request may hold; beyond them a request is refused, never cut.
const (
	MaxCodeBytes     = 1 << 20
	MaxFindings      = 1000
	MaxFindingText   = 8 << 10
	MaxInputs        = 1000
	MaxReasonBytes   = 4 << 10
	MaxNameBytes     = 256
	DefaultPageSize  = 50
	MaxPageSize      = 500
	maxSweepPerRound = 500
)

var (
	idPattern    = regexp.MustCompile(`^apr_[0-9a-f]{32}$`)
	runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	shaPattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Config tunes a Service.
type Config struct {
	// TTL is how long a request waits for a decision unless it asks for less or more.
	TTL time.Duration
	// MaxTTL caps the expiry a request may ask for.
	MaxTTL time.Duration
	// SweepInterval is how often the sweeper expires overdue requests.
	SweepInterval time.Duration
	// PollInterval is how often, on SQLite, watchers look for changes made by other processes.
	PollInterval time.Duration
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// DefaultConfig is the configuration the flags default to.
func DefaultConfig() Config {
	return Config{TTL: 24 * time.Hour, MaxTTL: 30 * 24 * time.Hour, SweepInterval: 30 * time.Second, PollInterval: time.Second}
}

// Validate reports the first bad setting by its flag name.
func (c Config) Validate() error {
	switch {
	case c.TTL <= 0:
		return config.Invalid("approval-ttl", "must be positive, got %s", c.TTL)
	case c.MaxTTL < c.TTL:
		return config.Invalid("approval-max-ttl", "%s is shorter than --approval-ttl %s", c.MaxTTL, c.TTL)
	case c.SweepInterval <= 0:
		return config.Invalid("approval-sweep-interval", "must be positive, got %s", c.SweepInterval)
	case c.PollInterval <= 0:
		return config.Invalid("approval-poll-interval", "must be positive, got %s", c.PollInterval)
	}
	return nil
}

// Service is the approval domain: it validates, authorises, decides and
// records. Callers pass the authenticated principal; nothing about who is
// calling comes from a request body.
type Service struct {
	store Store
	cfg   Config
	log   *slog.Logger
	hub   *hub

	usesListener atomic.Bool
	listening    atomic.Bool
}

// NewService returns a Service over store.
func NewService(store Store, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: store, cfg: cfg, log: log, hub: newHub()}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// CreateParams is what the orchestrator sends to open a request.
type CreateParams struct {
	RunID         string
	Code          string
	PolicyID      string
	PolicyVersion string
	Findings      []*policyv1.Finding
	Inputs        []Input
	// TTL overrides the configured expiry when positive.
	TTL time.Duration
	// TTLSet is true when the caller sent a TTL at all (so zero is refused).
	TTLSet bool
}

// Create opens a request on behalf of the principal p, who becomes the
// requester. Only a service forwarding an end user (p.Via set) or an admin
// may open one.
func (s *Service) Create(ctx context.Context, p auth.Principal, in CreateParams) (Approval, error) {
	if p.Via == "" && !p.Has(auth.RoleAdmin) {
		return Approval{}, fmt.Errorf("%w: requests are opened by the orchestrator on a user's behalf, or by an admin", ErrForbidden)
	}
	if err := validateCreate(s.cfg, in); err != nil {
		return Approval{}, err
	}
	now := s.now()
	ttl := s.cfg.TTL
	if in.TTLSet {
		ttl = in.TTL
	}
	sum := sha256.Sum256([]byte(in.Code))
	a := Approval{
		ID: newID(), Tenant: p.Tenant, RunID: in.RunID, Requester: p.Subject,
		Code: in.Code, CodeSHA256: hex.EncodeToString(sum[:]),
		PolicyID: in.PolicyID, PolicyVersion: in.PolicyVersion,
		Findings: in.Findings, Risk: RiskOf(in.Findings), Inputs: in.Inputs,
		State: StatePending, CreatedAt: now, ExpiresAt: now.Add(ttl).Truncate(time.Microsecond),
	}
	if a.Inputs == nil {
		a.Inputs = []Input{}
	}
	if err := s.store.Create(ctx, a, eventFor(&a, EventCreated, p.Subject, now, "")); err != nil {
		return Approval{}, err
	}
	s.log.InfoContext(ctx, "approval requested", "approval_id", a.ID, "tenant", a.Tenant, "run_id", a.RunID,
		"requester", a.Requester, "risk", a.Risk, "code_sha256", a.CodeSHA256)
	s.hub.kick()
	return a, nil
}

func validateCreate(cfg Config, in CreateParams) error {
	switch {
	case !runIDPattern.MatchString(in.RunID):
		return invalid("run_id", "must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	case in.Code == "":
		return invalid("code", "must not be empty")
	case strings.ContainsRune(in.Code, 0):
		return invalid("code", "must not contain NUL bytes")
	case len(in.Code) > MaxCodeBytes:
		return invalid("code", fmt.Sprintf("is %d bytes; at most %d are accepted", len(in.Code), MaxCodeBytes))
	case !validName(in.PolicyID):
		return invalid("policy_id", fmt.Sprintf("must be 1-%d bytes without control characters", MaxNameBytes))
	case !validName(in.PolicyVersion):
		return invalid("policy_version", fmt.Sprintf("must be 1-%d bytes without control characters", MaxNameBytes))
	case len(in.Findings) > MaxFindings:
		return invalid("findings", fmt.Sprintf("has %d entries; at most %d are accepted", len(in.Findings), MaxFindings))
	case len(in.Inputs) > MaxInputs:
		return invalid("inputs", fmt.Sprintf("has %d entries; at most %d are accepted", len(in.Inputs), MaxInputs))
	case in.TTLSet && in.TTL <= 0:
		return invalid("ttl", "must be positive")
	case in.TTLSet && in.TTL > cfg.MaxTTL:
		return invalid("ttl", fmt.Sprintf("must be at most %s", cfg.MaxTTL))
	}
	for i, f := range in.Findings {
		field := fmt.Sprintf("findings[%d]", i)
		if f == nil {
			return invalid(field, "must not be null")
		}
		if _, ok := policyv1.Severity_name[int32(f.GetSeverity())]; !ok {
			return invalid(field+".severity", "is not a known severity")
		}
		for name, v := range map[string]string{"rule_id": f.GetRuleId(), "snippet": f.GetSnippet(),
			"message": f.GetMessage(), "fix_hint": f.GetFixHint()} {
			if len(v) > MaxFindingText {
				return invalid(field+"."+name, fmt.Sprintf("is longer than %d bytes", MaxFindingText))
			}
		}
	}
	for i, in := range in.Inputs {
		field := fmt.Sprintf("inputs[%d]", i)
		if !validName(in.Name) {
			return invalid(field+".name", fmt.Sprintf("must be 1-%d bytes without control characters", MaxNameBytes))
		}
		if in.SizeBytes < 0 {
			return invalid(field+".size_bytes", "must not be negative")
		}
	}
	return nil
}

// validName reports whether s is a short single-line UTF-8 name.
func validName(s string) bool {
	return s != "" && textcheck.Check(s, MaxNameBytes) == nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return "apr_" + hex.EncodeToString(b[:])
}

// ValidID reports whether id is a well-formed request id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// seesAll reports whether p may see every request of its tenant; a plain
// user sees only the requests they made.
func seesAll(p auth.Principal) bool { return p.HasAny(auth.RoleOperator, auth.RoleAdmin) }

func visible(p auth.Principal, a Approval) bool {
	return a.Tenant == p.Tenant && (seesAll(p) || a.Requester == p.Subject)
}

// Get returns one request of p's tenant. Another tenant's request, or
// another user's for a plain user, is ErrNotFound exactly like a missing one.
func (s *Service) Get(ctx context.Context, p auth.Principal, id string) (Approval, error) {
	if !ValidID(id) {
		return Approval{}, invalid("approval_id", "must look like apr_ followed by 32 lowercase hex digits")
	}
	a, err := s.store.Get(ctx, p.Tenant, id)
	if err != nil {
		return Approval{}, err
	}
	if !visible(p, a) {
		return Approval{}, ErrNotFound
	}
	return a, nil
}

// Approve approves a pending request. Deciding a decided request returns
// the first decision unchanged. An expired request, or one past its expiry
// that the sweeper has not reached yet (it is expired on the spot), returns
// the request in state EXPIRED together with ErrExpired.
func (s *Service) Approve(ctx context.Context, p auth.Principal, id, reason string) (Approval, error) {
	return s.decide(ctx, p, id, StateApproved, reason)
}

// Reject rejects a pending request; reason is required. Otherwise as Approve.
func (s *Service) Reject(ctx context.Context, p auth.Principal, id, reason string) (Approval, error) {
	return s.decide(ctx, p, id, StateRejected, reason)
}

func (s *Service) decide(ctx context.Context, p auth.Principal, id string, to State, reason string) (Approval, error) {
	if !ValidID(id) {
		return Approval{}, invalid("approval_id", "must look like apr_ followed by 32 lowercase hex digits")
	}
	if to == StateRejected && strings.TrimSpace(reason) == "" {
		return Approval{}, invalid("reason", "a rejection needs a reason")
	}
	if len(reason) > MaxReasonBytes {
		return Approval{}, invalid("reason", fmt.Sprintf("is longer than %d bytes", MaxReasonBytes))
	}
	if strings.ContainsRune(reason, 0) {
		return Approval{}, invalid("reason", "must not contain NUL bytes")
	}
	if !seesAll(p) {
		// Do not tell a plain user whether the id exists.
		if _, err := s.Get(ctx, p, id); err != nil {
			return Approval{}, err
		}
		return Approval{}, fmt.Errorf("%w: deciding needs the operator role", ErrForbidden)
	}
	a, err := s.store.Update(ctx, p.Tenant, id, func(a *Approval) (*Event, error) {
		if a.Requester == p.Subject {
			return nil, ErrSelfDecision
		}
		if a.State.Final() {
			return nil, nil // the first decision stands
		}
		now := s.now()
		if !now.Before(a.ExpiresAt) {
			return s.expire(a, now), nil
		}
		kind := EventApproved
		if to == StateRejected {
			kind = EventRejected
		}
		a.State, a.DecidedBy, a.Reason, a.DecidedAt = to, p.Subject, reason, now
		return eventFor(a, kind, p.Subject, now, reason), nil
	})
	if err != nil {
		return Approval{}, err
	}
	s.hub.kick()
	if a.State == StateExpired {
		return a, fmt.Errorf("%w: %s expired at %s without a decision", ErrExpired, a.ID, a.ExpiresAt.Format(time.RFC3339))
	}
	if a.DecidedBy == p.Subject && a.State == to {
		s.log.InfoContext(ctx, "approval decided", "approval_id", a.ID, "tenant", a.Tenant, "state", a.State,
			"decided_by", a.DecidedBy)
	}
	return a, nil
}

func (s *Service) expire(a *Approval, now time.Time) *Event {
	a.State, a.DecidedBy, a.Reason, a.DecidedAt = StateExpired, SystemActor, "not decided before "+a.ExpiresAt.Format(time.RFC3339), now
	return eventFor(a, EventExpired, SystemActor, now, a.Reason)
}

// ExpireDue marks every pending request past its expiry EXPIRED and returns
// how many it expired. The sweeper calls it; it is safe on many replicas at once.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	n := 0
	for {
		now := s.now()
		keys, err := s.store.Due(ctx, now, maxSweepPerRound)
		if err != nil {
			return n, err
		}
		for _, k := range keys {
			expired := false
			_, err := s.store.Update(ctx, k.Tenant, k.ID, func(a *Approval) (*Event, error) {
				if a.State.Final() || now.Before(a.ExpiresAt) {
					return nil, nil // another replica or a decision got there first
				}
				expired = true
				return s.expire(a, now), nil
			})
			if err != nil && !errors.Is(err, ErrNotFound) {
				return n, err
			}
			if err == nil && expired {
				n++
			}
		}
		if n > 0 {
			s.hub.kick()
		}
		if len(keys) < maxSweepPerRound {
			return n, nil
		}
	}
}

// ListRequest is a listing as a caller asks for it.
type ListRequest struct {
	State     State
	Requester string
	RunID     string
	PageSize  int
	PageToken string
}

// List returns a page of p's tenant's requests, newest first, and the token
// of the next page ("" on the last). A plain user sees only their own.
func (s *Service) List(ctx context.Context, p auth.Principal, in ListRequest) ([]Approval, string, error) {
	switch in.State {
	case "", StatePending, StateApproved, StateRejected, StateExpired:
	default:
		return nil, "", invalid("state", "is not a known state")
	}
	if in.Requester != "" && !validName(in.Requester) {
		return nil, "", invalid("requester", fmt.Sprintf("must be 1-%d bytes without control characters", MaxNameBytes))
	}
	if in.RunID != "" && !runIDPattern.MatchString(in.RunID) {
		return nil, "", invalid("run_id", "is not a well-formed run id")
	}
	if in.PageSize < 0 {
		return nil, "", invalid("page_size", "must not be negative")
	}
	size := in.PageSize
	if size == 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	params := ListParams{Tenant: p.Tenant, State: in.State, Requester: in.Requester, RunID: in.RunID, Limit: size + 1}
	if !seesAll(p) {
		if in.Requester != "" && in.Requester != p.Subject {
			return nil, "", nil // a plain user sees no one else's requests
		}
		params.Requester = p.Subject
	}
	if in.PageToken != "" {
		c, err := decodePageToken(in.PageToken, params)
		if err != nil {
			return nil, "", err
		}
		params.After = &c
	}
	out, err := s.store.List(ctx, params)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[len(out)-1]
		next = encodePageToken(Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, params)
	}
	return out, next, nil
}

// Check reports whether an APPROVED request of p's tenant matches run, code
// hash and policy version. When none does, it returns false and the newest
// request for the run; when the run has no visible request, ErrNotFound.
func (s *Service) Check(ctx context.Context, p auth.Principal, runID, codeSHA256, policyVersion string) (bool, Approval, error) {
	switch {
	case !runIDPattern.MatchString(runID):
		return false, Approval{}, invalid("run_id", "is not a well-formed run id")
	case !shaPattern.MatchString(codeSHA256):
		return false, Approval{}, invalid("code_sha256", "must be 64 lowercase hex digits")
	case !validName(policyVersion):
		return false, Approval{}, invalid("policy_version", fmt.Sprintf("must be 1-%d bytes without control characters", MaxNameBytes))
	}
	a, err := s.store.FindApproved(ctx, p.Tenant, runID, codeSHA256, policyVersion)
	if err == nil && visible(p, a) {
		// The row alone is not trusted: its trail must end in an intact
		// "approved" event for this very code and policy version.
		ev, err := s.store.LastEvent(ctx, p.Tenant, a.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, Approval{}, err
		}
		if err == nil && ev.Kind == EventApproved && ev.Hash == ev.ComputeHash() &&
			ev.CodeSHA256 == a.CodeSHA256 && ev.PolicyVersion == a.PolicyVersion && ev.Actor == a.DecidedBy {
			return true, a, nil
		}
		s.log.ErrorContext(ctx, "approval request disagrees with its audit trail; not treating it as approved",
			"approval_id", a.ID, "tenant", a.Tenant, "last_event", ev.Kind, "last_event_seq", ev.Seq)
		return false, a, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, Approval{}, err
	}
	requester := ""
	if !seesAll(p) {
		requester = p.Subject
	}
	a, err = s.store.LatestForRun(ctx, p.Tenant, runID, requester)
	if err != nil {
		return false, Approval{}, err
	}
	return false, a, nil
}

// VerifyTrail checks p's tenant's audit trail; it needs the operator role.
func (s *Service) VerifyTrail(ctx context.Context, p auth.Principal) (TrailReport, error) {
	if !seesAll(p) {
		return TrailReport{}, fmt.Errorf("%w: verifying the trail needs the operator role", ErrForbidden)
	}
	return VerifyTrail(ctx, s.store, p.Tenant)
}
