// Package budget holds money before each paid step and settles it after: budgets per tenant and user, reservations that never overspend, an append-only ledger and budget events.
package budget

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Only the gRPC handlers turn them into status codes.
var (
	// ErrNotFound means no such budget or reservation in the caller's tenant.
	ErrNotFound = errors.New("not found")
	// ErrInsufficientFunds means a scope has no room for a reservation; the
	// error is a *QuotaError naming the scope.
	ErrInsufficientFunds = errors.New("budget exhausted")
	// ErrIdempotencyConflict means a key was reused with different parameters.
	ErrIdempotencyConflict = errors.New("idempotency key reused with different parameters")
	// ErrNotHeld means a reservation is no longer held and cannot be changed that way.
	ErrNotHeld = errors.New("reservation is not held")
	// ErrClosed means the service is shutting down.
	ErrClosed = errors.New("budget service is closed")
)

// InvalidError is bad input; Field names the request field at fault.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// QuotaError says which scope refused a reservation and its figures.
type QuotaError struct {
	Scope     Scope
	Limit     int64
	Spent     int64
	Reserved  int64
	Requested int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%s budget exhausted: limit %d, spent %d, reserved %d, requested %d micro-dollars",
		e.Scope, e.Limit, e.Spent, e.Reserved, e.Requested)
}

// Unwrap makes errors.Is(err, ErrInsufficientFunds) true.
func (e *QuotaError) Unwrap() error { return ErrInsufficientFunds }

// ScopeKind says whose money a scope is; values match the proto enum.
type ScopeKind int32

// Scope kinds.
const (
	ScopeTenant ScopeKind = 1
	ScopeUser   ScopeKind = 2
)

// Scope names a budget within a tenant.
type Scope struct {
	Kind ScopeKind
	// Subject names the user of a USER scope; empty for TENANT.
	Subject string
}

// String renders the scope as "tenant" or "user:NAME".
func (s Scope) String() string {
	if s.Kind == ScopeUser {
		return "user:" + s.Subject
	}
	return "tenant"
}

// Period is how often a budget starts again; values match the proto enum.
type Period int32

// Periods.
const (
	PeriodDaily    Period = 1
	PeriodWeekly   Period = 2
	PeriodMonthly  Period = 3
	PeriodLifetime Period = 4
)

// CostKind says what money is for; values match the proto enum.
type CostKind int32

// Cost kinds.
const (
	CostUnspecified CostKind = 0
	CostLLM         CostKind = 1
	CostCompute     CostKind = 2
)

// State is where a reservation is in its life; values match the proto enum.
type State int16

// Reservation states.
const (
	StateHeld      State = 1
	StateCommitted State = 2
	StateReleased  State = 3
	StateExpired   State = 4
)

// EventKind names a budget event; values match the proto enum.
type EventKind int16

// Event kinds.
const (
	EventThreshold EventKind = 1
	EventHardStop  EventKind = 2
	EventOverage   EventKind = 3
	EventExpiry    EventKind = 4
)

// DefaultThresholds are the soft thresholds of a budget set without any.
var DefaultThresholds = []int32{50, 80, 100}

// Key names one budget row.
type Key struct {
	Tenant string
	Scope  Scope
}

func (k Key) less(o Key) bool {
	if k.Tenant != o.Tenant {
		return k.Tenant < o.Tenant
	}
	if k.Scope.Kind != o.Scope.Kind {
		return k.Scope.Kind < o.Scope.Kind
	}
	return k.Scope.Subject < o.Scope.Subject
}

// Budget is a scope's limit and its current period's counters.
type Budget struct {
	Key
	Period     Period
	Limit      int64
	Thresholds []int32
	TimeZone   string
	// PeriodStart is the start of the period Spent belongs to.
	PeriodStart time.Time
	Spent       int64
	Reserved    int64
	// FiredPercent is the highest threshold already announced this period.
	FiredPercent int32
	// HardStopped is true once a refusal was announced this period.
	HardStopped bool
	UpdatedAt   time.Time
}

// Reservation is money held for one paid step.
type Reservation struct {
	ID             string
	Tenant         string
	IdempotencyKey string
	// RequestHash fingerprints the parameters, to catch a reused key.
	RequestHash string
	// ScopeTenant is true when the tenant budget is one of the scopes.
	ScopeTenant bool
	// ScopeUser names the user budget among the scopes; empty for none.
	ScopeUser string
	// HeldTenant and HeldUser say which budget rows hold the amount: a scope
	// with no budget set at reserve time holds nothing.
	HeldTenant bool
	HeldUser   bool
	Amount     int64
	Actual     int64
	State      State
	Kind       CostKind
	Model      string
	RunID      string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	SettledAt  time.Time
}

// Scopes lists the reservation's scopes, tenant first.
func (r *Reservation) Scopes() []Scope {
	var out []Scope
	if r.ScopeTenant {
		out = append(out, Scope{Kind: ScopeTenant})
	}
	if r.ScopeUser != "" {
		out = append(out, Scope{Kind: ScopeUser, Subject: r.ScopeUser})
	}
	return out
}

func (r *Reservation) keys() []Key {
	var out []Key
	for _, s := range r.Scopes() {
		out = append(out, Key{Tenant: r.Tenant, Scope: s})
	}
	return out
}

// LedgerKind names a ledger entry.
type LedgerKind int16

// Ledger entry kinds.
const (
	LedgerCommit  LedgerKind = 1
	LedgerRelease LedgerKind = 2
	LedgerExpiry  LedgerKind = 3
)

// LedgerEntry is one settlement, appended and never changed.
type LedgerEntry struct {
	Tenant        string
	ReservationID string
	Entry         LedgerKind
	ScopeTenant   bool
	ScopeUser     string
	Kind          CostKind
	Model         string
	// Amount is what was spent (commits); Released is what was freed.
	Amount   int64
	Released int64
	At       time.Time
}

// Event is something that happened to a budget.
type Event struct {
	ID            string
	Tenant        string
	Kind          EventKind
	Scope         Scope
	Threshold     int32
	Amount        int64
	ReservationID string
	Message       string
	At            time.Time
}

// UsageLine is spend of one kind and model.
type UsageLine struct {
	Kind   CostKind
	Model  string
	Amount int64
}

// Usage is a scope's spend in one period.
type Usage struct {
	Scope       Scope
	PeriodStart time.Time
	// PeriodEnd is zero for LIFETIME.
	PeriodEnd time.Time
	// Limit is -1 when the scope has no budget.
	Limit     int64
	Spent     int64
	Reserved  int64
	Breakdown []UsageLine
}
