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
	// ID is "apr_" and 32 random hex digits.
	ID string
	// Tenant owns the request; it is the requester's tenant.
	Tenant string
	// RunID names the run whose code is reviewed.
	RunID string
	// Requester is the subject who submitted the run; never the decider.
	Requester string
	// Code is the code under review, byte for byte.
	Code string
	// CodeSHA256 is the hex SHA-256 of Code, computed by this service.
	CodeSHA256 string
	// PolicyID names the policy that asked for review.
	PolicyID string
	// PolicyVersion is that policy's content hash; approval binds to it.
	PolicyVersion string
	// Findings are the policy's reasons for review.
	Findings []*policyv1.Finding
	// Risk is derived from Findings (RiskOf).
	Risk Risk
	// Inputs are the files the code will read.
	Inputs []Input
	// State is where the request is.
	State State
	// DecidedBy is the deciding subject, or SystemActor for expiry.
	DecidedBy string
	// Reason is the decision's reason (required to reject).
	Reason string
	// CreatedAt is when the request was opened.
	CreatedAt time.Time
	// ExpiresAt is when an undecided request expires.
	ExpiresAt time.Time
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
	// Tenant owns the chain the event belongs to.
	Tenant string
	// Seq is the event's place in the tenant's chain, from 1, without gaps.
	Seq int64
	// ApprovalID names the request that changed.
	ApprovalID string
	// Kind is what happened.
	Kind EventKind
	// Actor is who did it: the requester, the decider, or SystemActor.
	Actor string
	// At is when, to the microsecond.
	At time.Time
	// Reason is the decision's reason, if any.
	Reason string
	// RunID, CodeSHA256 and PolicyVersion bind the event to the reviewed code.
	RunID         string
	CodeSHA256    string
	PolicyVersion string
	// PrevHash is the previous event's Hash, or GenesisHash for the first.
	PrevHash string
	// Hash is ComputeHash() of this event.
	Hash string
}

// eventFor starts the event recording a change to a.
func eventFor(a *Approval, kind EventKind, actor string, at time.Time, reason string) *Event {
	return &Event{
		Tenant: a.Tenant, ApprovalID: a.ID, Kind: kind, Actor: actor, At: at, Reason: reason,
		RunID: a.RunID, CodeSHA256: a.CodeSHA256, PolicyVersion: a.PolicyVersion,
	}
}
