// Package approval holds risky code for a person's decision, binds each
// decision to the code's SHA-256 and the policy version, and records every
// change in a per-tenant hash-chained audit trail.
package approval

import (
	"embed"
	"errors"
	"time"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/database"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// Migrations returns the approval store's schema migrations.
func Migrations() database.Migrations {
	return database.Migrations{Component: "approval", FS: mustSub(migrationFiles, "migrations")}
}

// Sentinel errors of the domain; only the gRPC handler maps them to codes.
var (
	// ErrNotFound means no such request in the caller's tenant (or not visible to the caller).
	ErrNotFound = errors.New("approval request not found")
	// ErrSelfDecision means the requester tried to decide their own request.
	ErrSelfDecision = errors.New("the requester cannot decide their own request")
	// ErrForbidden means the caller lacks the role the operation needs.
	ErrForbidden = errors.New("permission denied")
	// ErrExpired means the request expired before anyone decided it.
	ErrExpired = errors.New("approval request expired")
	// ErrInvalid wraps a validation failure; see *FieldError.
	ErrInvalid = errors.New("invalid argument")
)

// FieldError names the request field at fault.
type FieldError struct {
	// Field is the request field, as the proto names it.
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// State is where a request is; every state but PENDING is final.
type State string

// States.
const (
	StatePending  State = "PENDING"
	StateApproved State = "APPROVED"
	StateRejected State = "REJECTED"
	StateExpired  State = "EXPIRED"
)

// Final reports whether s can no longer change.
func (s State) Final() bool { return s != StatePending }

// Risk summarises a request's findings for the reviewer.
type Risk string

// Risk levels.
const (
	RiskLow    Risk = "LOW"
	RiskMedium Risk = "MEDIUM"
	RiskHigh   Risk = "HIGH"
)

// RiskOf derives the risk level from the most severe finding: HIGH or
// CRITICAL is HIGH, MEDIUM is MEDIUM, anything else (or no findings) is LOW.
func RiskOf(findings []*policyv1.Finding) Risk {
	risk := RiskLow
	for _, f := range findings {
		switch f.GetSeverity() {
		case policyv1.Severity_SEVERITY_HIGH, policyv1.Severity_SEVERITY_CRITICAL:
			return RiskHigh
		case policyv1.Severity_SEVERITY_MEDIUM:
			risk = RiskMedium
		}
	}
	return risk
}

// Input names a file the code will read.
type Input struct {
	Name      string `json:"name"`
	SizeBytes int64  `json:"size_bytes"`
}

// Approval is one request for review.
type Approval struct {
	ID            string
	Tenant        string
	RunID         string
	Requester     string
	Code          string
	CodeSHA256    string
	PolicyID      string
	PolicyVersion string
	Findings      []*policyv1.Finding
	Risk          Risk
	Inputs        []Input
	State         State
	DecidedBy     string
	Reason        string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	// DecidedAt is when it was approved, rejected or expired; zero while pending.
	DecidedAt time.Time
}

// EventKind names a change in the audit trail.
type EventKind string

// Event kinds.
const (
	EventCreated  EventKind = "created"
	EventApproved EventKind = "approved"
	EventRejected EventKind = "rejected"
	EventExpired  EventKind = "expired"
)

// SystemActor is the actor of changes no person made (expiry).
const SystemActor = "system"

// Event is one link of a tenant's audit trail. Hash is the SHA-256 of the
// event's canonical encoding, which includes PrevHash: changing, removing or
// reordering an event breaks every link after it.
type Event struct {
	Tenant        string
	Seq           int64
	ApprovalID    string
	Kind          EventKind
	Actor         string
	At            time.Time
	Reason        string
	RunID         string
	CodeSHA256    string
	PolicyVersion string
	PrevHash      string
	Hash          string
}

// eventFor starts the event recording a change to a.
func eventFor(a *Approval, kind EventKind, actor string, at time.Time, reason string) *Event {
	return &Event{
		Tenant: a.Tenant, ApprovalID: a.ID, Kind: kind, Actor: actor, At: at, Reason: reason,
		RunID: a.RunID, CodeSHA256: a.CodeSHA256, PolicyVersion: a.PolicyVersion,
	}
}
