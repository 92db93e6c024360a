package orchestrator

import (
	"context"
	"time"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// State is where a run is in the pipeline; it is the contract's enum.
type State = orchestratorv1.RunState

// Terminal reports whether s ends a run.
func Terminal(s State) bool {
	switch s {
	case orchestratorv1.RunState_RUN_STATE_SUCCEEDED, orchestratorv1.RunState_RUN_STATE_FAILED,
		orchestratorv1.RunState_RUN_STATE_DENIED, orchestratorv1.RunState_RUN_STATE_REJECTED,
		orchestratorv1.RunState_RUN_STATE_BUDGET_EXCEEDED, orchestratorv1.RunState_RUN_STATE_CANCELLED,
		orchestratorv1.RunState_RUN_STATE_EXPIRED:
		return true
	}
	return false
}

// Run is one run's record as stored.
type Run struct {
	ID        string
	Tenant    string
	Requester string
	// Principal is the submitter, forwarded on every call made for the run.
	Principal       auth.Principal
	State           State
	Prompt          string
	SuppliedCode    string
	PolicyID        string
	MaxAttempts     int
	IdempotencyKey  string
	ApprovalID      string
	FailureReason   string
	TraceID         string
	LLMMicros       int64
	ComputeMicros   int64
	CancelRequested bool
	// CancelReason says who asked for the cancellation and why.
	CancelReason string
	// Owner is the engine driving the run, until LeaseUntil unless renewed.
	Owner      string
	LeaseUntil time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
	Inputs     []FileRef
	Attempts   []Attempt
	Outputs    []FileRef
}

// LastAttempt returns the newest attempt, or nil.
func (r *Run) LastAttempt() *Attempt {
	if len(r.Attempts) == 0 {
		return nil
	}
	return &r.Attempts[len(r.Attempts)-1]
}

// Attempt statuses, in order. An attempt is stored as AttemptExecuting before
// the sandbox is asked to run it, so a crash can never hide an execution.
const (
	AttemptGenerating = "generating"
	AttemptChecking   = "checking"
	AttemptChecked    = "checked"
	AttemptExecuting  = "executing"
	AttemptExecuted   = "executed"
)

// Attempt is one try at acceptable code.
type Attempt struct {
	Number      int
	Status      string
	Code        string
	CodeSHA256  string
	Explanation string
	// Check is the policy's answer, with the limits and allow-list to run under.
	Check            *policyv1.CheckResponse
	GenerationMicros int64
	Execution        *executorv1.ExecutionResult
	ExecutionMicros  int64
	CreatedAt        time.Time
}

// FileRef names a stored file.
type FileRef struct {
	ID     string
	Name   string
	Size   int64
	SHA256 string
}

// File kinds.
const (
	FileInput  = "input"
	FileOutput = "output"
)

// File is a stored file's metadata.
type File struct {
	FileRef
	Tenant    string
	Owner     string
	RunID     string
	Kind      string
	CreatedAt time.Time
}

// Transition is one stored change of a run's state.
type Transition struct {
	Seq     int
	From    State
	To      State
	Message string
	At      time.Time
}

// Reservation is money the run holds in the budget service and has not settled.
type Reservation struct {
	ID     string
	RunID  string
	Kind   string
	Amount int64
	// Settling is set once the step has finished and its result is stored:
	// the reservation is then committed for Actual, never released.
	Settling bool
	Actual   int64
}

// RunUpdate holds the fields a transition changes besides the state.
type RunUpdate struct {
	ApprovalID    *string
	FailureReason string
}

// ListParams filters and pages runs, newest first.
type ListParams struct {
	Tenant    string
	Requester string
	State     State
	Limit     int
	// After continues below this (created_at, id).
	AfterCreated time.Time
	AfterID      string
}

// Store keeps runs and files. Every method is scoped: a run or file of another
// tenant answers ErrNotFound exactly as a missing one.
type Store interface {
	// InTx runs fn with a Store whose writes commit together when fn returns
	// nil, and are rolled back otherwise. Fewer commits make a run cheaper on
	// Postgres, where each one waits for the disk.
	InTx(ctx context.Context, fn func(Store) error) error
	// CreateRun stores a new run in state RECEIVED with its first transition. When
	// the requester already has a run with the same idempotency key, it returns
	// that run and created=false.
	CreateRun(ctx context.Context, r *Run) (stored *Run, created bool, err error)
	// GetRun returns a run of tenant with its inputs, attempts and outputs.
	GetRun(ctx context.Context, tenant, id string) (*Run, error)
	// ListRuns returns a page of runs.
	ListRuns(ctx context.Context, p ListParams) ([]*Run, error)
	// ActiveRuns returns every run not yet ended, of every tenant, without
	// their inputs, attempts and outputs.
	ActiveRuns(ctx context.Context) ([]*Run, error)
	// Transition moves a run from one state to another and records it. It
	// fails with ErrConflict when the run is no longer in from.
	Transition(ctx context.Context, id string, from, to State, message string, upd RunUpdate) error
	// Transitions returns a run's transitions with seq greater than after.
	Transitions(ctx context.Context, id string, after int) ([]Transition, error)
	// ClaimRun makes owner the run's driver until until, when the run is
	// unowned, already owner's, or its lease ended before now. It reports
	// whether the claim held.
	ClaimRun(ctx context.Context, id, owner string, until, now time.Time) (bool, error)
	// RenewLease extends owner's lease; ErrConflict when another owner took the run.
	RenewLease(ctx context.Context, id, owner string, until time.Time) error
	// CancelRequested reports whether someone asked to cancel the run, and
	// the reason they gave.
	CancelRequested(ctx context.Context, id string) (bool, string, error)
	// ReleaseLease ends owner's lease so another engine may take the run at once.
	ReleaseLease(ctx context.Context, id, owner string) error
	// SetApprovalID records the approval request a run waits on.
	SetApprovalID(ctx context.Context, id, approvalID string) error
	// RequestCancel marks a run of tenant for cancellation with reason; the
	// first request's reason is the one kept.
	RequestCancel(ctx context.Context, tenant, id, reason string) error
	// PutAttempt inserts or replaces an attempt.
	PutAttempt(ctx context.Context, runID string, a *Attempt) error
	// AddCost adds settled spend to a run's totals.
	AddCost(ctx context.Context, runID string, llm, compute int64) error
	// AddReservation records money held for a run before the paid step starts.
	AddReservation(ctx context.Context, r Reservation) error
	// SettleReservation records what reservation id is to be charged.
	SettleReservation(ctx context.Context, id string, actual int64) error
	// DeleteReservation forgets a reservation once it is settled.
	DeleteReservation(ctx context.Context, id string) error
	// Reservations lists a run's unsettled reservations.
	Reservations(ctx context.Context, runID string) ([]Reservation, error)

	// CreateFile starts a file; it is invisible until CompleteFile.
	CreateFile(ctx context.Context, f *File) error
	// AppendChunk stores the file's next chunk.
	AppendChunk(ctx context.Context, fileID string, seq int, data []byte) error
	// CompleteFile records a file's size and hash and makes it visible.
	CompleteFile(ctx context.Context, fileID string, size int64, sha string) error
	// DeleteFile removes a file and its chunks.
	DeleteFile(ctx context.Context, fileID string) error
	// GetFile returns a complete file of tenant.
	GetFile(ctx context.Context, tenant, id string) (*File, error)
	// ReadChunks calls fn with each chunk of a file, in order, one query per chunk.
	ReadChunks(ctx context.Context, fileID string, fn func([]byte) error) error
	// DeleteIncompleteFiles removes uploads abandoned before before.
	DeleteIncompleteFiles(ctx context.Context, before time.Time) (int, error)
}
