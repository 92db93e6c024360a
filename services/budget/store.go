package budget

import (
	"context"
	"embed"
	"io/fs"
	"time"

	"github.com/airlockhq/airlock/pkg/database"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// Migrations are the budget store's schema, for database.Migrate and `airlock migrate`.
func Migrations() database.Migrations {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded tree always has the directory
	}
	return database.Migrations{Component: "budget", FS: sub}
}

// Store keeps budgets, reservations, the ledger and events. Both
// implementations pass one conformance suite.
type Store interface {
	// InTx runs fn in one write transaction: serialised with every other
	// writer of the rows it locks. fn may run again when the database asks
	// for a retry, so it must have no effects outside tx.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Budget reads one budget without locking it.
	Budget(ctx context.Context, key Key) (Budget, error)
	// Usage sums the commits against scope within [from, to) by kind and
	// model; a zero to means no upper bound.
	Usage(ctx context.Context, tenant string, scope Scope, from, to time.Time) ([]UsageLine, error)
	// HeldAmount sums what held reservations of scope hold.
	HeldAmount(ctx context.Context, tenant string, scope Scope) (int64, error)
	// Reservation reads one reservation of tenant.
	Reservation(ctx context.Context, tenant, id string) (Reservation, error)
	// Expired lists up to limit held reservations whose ttl ended by now.
	Expired(ctx context.Context, now time.Time, limit int) ([]Reservation, error)
	// LedgerTotals sums a tenant's ledger: spent and released amounts.
	LedgerTotals(ctx context.Context, tenant string) (spent, released int64, err error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}

// Tx is one write transaction.
type Tx interface {
	// Load reads and locks what a batch of requests works on: first the
	// budgets named by spec.Keys and by the scopes of the reservations named
	// by spec.IDs, locked in key order; then those reservations, locked in
	// id order; then the reservations named by spec.IdemKeys, unlocked.
	// Every transaction locks budgets before reservations, so none waits on
	// another in a cycle. Missing rows are absent from the maps.
	Load(ctx context.Context, spec LoadSpec) (*Loaded, error)
	// LockBudgets reads the budgets named by keys, locking them in key order.
	// Keys with no budget are absent from the map.
	LockBudgets(ctx context.Context, keys []Key) (map[Key]Budget, error)
	// SpentSince sums commits against scope at or after from.
	SpentSince(ctx context.Context, tenant string, scope Scope, from time.Time) (int64, error)
	// Write stores everything in w.
	Write(ctx context.Context, w *Writes) error
}

// LoadSpec names what Load reads.
type LoadSpec struct {
	Keys     []Key
	IDs      []string
	IdemKeys []IdemKey
}

// Loaded is what Load read.
type Loaded struct {
	Budgets      map[Key]Budget
	Reservations map[string]Reservation
	ByKey        map[IdemKey]Reservation
}

// IdemKey names a reservation by its idempotency key.
type IdemKey struct {
	Tenant string
	Key    string
}

// Writes are a transaction's changes, applied together.
type Writes struct {
	// Budgets are inserted or replaced whole.
	Budgets []Budget
	// NewReservations are inserted.
	NewReservations []Reservation
	// Settled are reservations whose state, actual and settled time changed.
	Settled []Reservation
	// Ledger entries are appended.
	Ledger []LedgerEntry
	// Events are appended (and, on Postgres, announced to every replica).
	Events []Event
}

func (w *Writes) empty() bool {
	return len(w.Budgets)+len(w.NewReservations)+len(w.Settled)+len(w.Ledger)+len(w.Events) == 0
}

// EventSource is a store that announces committed events to every replica.
// Listen calls fn for each until ctx ends; it calls state(nil) whenever it
// starts listening and state(err) whenever it stopped and will try again.
type EventSource interface {
	Listen(ctx context.Context, state func(error), fn func(Event)) error
}

// NewStore returns the store for db's dialect.
func NewStore(db *database.DB) Store {
	if db.Dialect == database.Postgres {
		return NewPostgresStore(db)
	}
	return NewSQLiteStore(db)
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
