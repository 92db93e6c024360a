package budget

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlockhq/airlock/pkg/database"
)

// SQLiteStore keeps the budget's state in SQLite. Every write transaction
// begins IMMEDIATE, taking the database's single write lock, so writers are
// serialised and a check and its hold can never interleave with another's.
type SQLiteStore struct {
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

// NewSQLiteStore returns a store on db, which must be SQLite.
func NewSQLiteStore(db *database.DB) *SQLiteStore {
	return &SQLiteStore{db: db.SQL}
}

func q(s string) string { return database.Rebind(database.SQLite, s) }

func sqliteBusy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}

// InTx implements Store.
func (s *SQLiteStore) InTx(ctx context.Context, fn func(tx Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.inTx(ctx, fn)
		if !sqliteBusy(err) {
			return err
		}
	}
	return err
}

func (s *SQLiteStore) inTx(ctx context.Context, fn func(tx Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(sqliteTx{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

type sqliteTx struct{ tx *sql.Tx }

func placeholders(n, from int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "?%d", from+i)
	}
	return b.String()
}

// Load implements Tx. The write lock taken at BEGIN IMMEDIATE already
// serialises every writer, so the reads need no locks of their own.
func (t sqliteTx) Load(ctx context.Context, spec LoadSpec) (*Loaded, error) {
	res, err := t.lockReservations(ctx, spec.IDs)
	if err != nil {
		return nil, err
	}
	keys := append([]Key(nil), spec.Keys...)
	for _, r := range res {
		keys = append(keys, r.keys()...)
	}
	budgets, err := t.LockBudgets(ctx, dedupe(keys))
	if err != nil {
		return nil, err
	}
	byKey, err := t.reservationsByKey(ctx, spec.IdemKeys)
	if err != nil {
		return nil, err
	}
	return &Loaded{Budgets: budgets, Reservations: res, ByKey: byKey}, nil
}

func (t sqliteTx) lockReservations(ctx context.Context, ids []string) (map[string]Reservation, error) {
	out := map[string]Reservation{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT `+reservationCols+` FROM budget_reservations WHERE id IN (`+
		placeholders(len(ids), 1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading reservations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanReservation(rows)
		if err != nil {
			return nil, fmt.Errorf("reading reservation: %w", err)
		}
		out[r.ID] = r
	}
	return out, rows.Err()
}

func (t sqliteTx) reservationsByKey(ctx context.Context, keys []IdemKey) (map[IdemKey]Reservation, error) {
	out := map[IdemKey]Reservation{}
	for _, k := range keys {
		r, err := scanReservation(t.tx.QueryRowContext(ctx, q(`SELECT `+reservationCols+` FROM budget_reservations
			WHERE tenant = $1 AND idempotency_key = $2`), k.Tenant, k.Key))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading reservation by key: %w", err)
		}
		out[k] = r
	}
	return out, nil
}

func (t sqliteTx) LockBudgets(ctx context.Context, keys []Key) (map[Key]Budget, error) {
	out := map[Key]Budget{}
	for _, k := range sortedKeys(keys) {
		b, err := scanBudget(t.tx.QueryRowContext(ctx, q(`SELECT `+budgetCols+` FROM budget_budgets
			WHERE tenant = $1 AND scope_kind = $2 AND subject = $3`), k.Tenant, int16(k.Scope.Kind), k.Scope.Subject))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading budget: %w", err)
		}
		out[k] = b
	}
	return out, nil
}

func (t sqliteTx) SpentSince(ctx context.Context, tenant string, scope Scope, from time.Time) (int64, error) {
	var n int64
	err := t.tx.QueryRowContext(ctx, q(`SELECT COALESCE(SUM(amount_micros), 0) FROM budget_ledger
		WHERE tenant = $1 AND at >= $2 AND entry = 1 AND `+scopeFilter("$3")), tenant, micros(from), subjectArg(scope)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("summing the ledger: %w", err)
	}
	return n, nil
}

func (t sqliteTx) Write(ctx context.Context, w *Writes) error {
	exec := func(query string, args ...any) error {
		_, err := t.tx.ExecContext(ctx, q(query), args...)
		return err
	}
	for _, bu := range w.Budgets {
		if err := exec(`INSERT INTO budget_budgets (`+budgetCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
			ON CONFLICT (tenant, scope_kind, subject) DO UPDATE SET period = $4, limit_micros = $5, thresholds = $6,
			time_zone = $7, period_start = $8, spent_micros = $9, reserved_micros = $10, fired_percent = $11,
			hard_stopped = $12, updated_at = $13`,
			bu.Tenant, int16(bu.Scope.Kind), bu.Scope.Subject, int16(bu.Period), bu.Limit, formatThresholds(bu.Thresholds),
			bu.TimeZone, micros(bu.PeriodStart), bu.Spent, bu.Reserved, bu.FiredPercent, bu.HardStopped, micros(bu.UpdatedAt)); err != nil {
			return fmt.Errorf("writing budget: %w", err)
		}
	}
	for _, r := range w.NewReservations {
		if err := exec(`INSERT INTO budget_reservations (`+reservationCols+`)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)`,
			r.ID, r.Tenant, r.IdempotencyKey, r.RequestHash, r.ScopeTenant, r.ScopeUser, r.HeldTenant, r.HeldUser,
			r.Amount, r.Actual, int16(r.State), int16(r.Kind), r.Model, r.RunID,
			micros(r.CreatedAt), micros(r.ExpiresAt), micros(r.SettledAt)); err != nil {
			return fmt.Errorf("writing reservation: %w", err)
		}
	}
	for _, r := range w.Settled {
		if err := exec(`UPDATE budget_reservations SET state = $2, actual_micros = $3, settled_at = $4 WHERE id = $1`,
			r.ID, int16(r.State), r.Actual, micros(r.SettledAt)); err != nil {
			return fmt.Errorf("settling reservation: %w", err)
		}
	}
	for _, l := range w.Ledger {
		if err := exec(`INSERT INTO budget_ledger (tenant, reservation_id, entry, scope_tenant, scope_user, cost_kind, model,
			amount_micros, released_micros, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
			l.Tenant, l.ReservationID, int16(l.Entry), l.ScopeTenant, l.ScopeUser, int16(l.Kind), l.Model,
			l.Amount, l.Released, micros(l.At)); err != nil {
			return fmt.Errorf("appending to the ledger: %w", err)
		}
	}
	for _, e := range w.Events {
		if err := exec(`INSERT INTO budget_events (id, tenant, kind, scope_kind, subject, threshold, amount_micros,
			reservation_id, message, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
			e.ID, e.Tenant, int16(e.Kind), int16(e.Scope.Kind), e.Scope.Subject, e.Threshold, e.Amount,
			e.ReservationID, e.Message, micros(e.At)); err != nil {
			return fmt.Errorf("recording event: %w", err)
		}
	}
	return nil
}

// Budget implements Store.
func (s *SQLiteStore) Budget(ctx context.Context, key Key) (Budget, error) {
	b, err := scanBudget(s.db.QueryRowContext(ctx, q(`SELECT `+budgetCols+` FROM budget_budgets
		WHERE tenant = $1 AND scope_kind = $2 AND subject = $3`), key.Tenant, int16(key.Scope.Kind), key.Scope.Subject))
	if errors.Is(err, sql.ErrNoRows) {
		return Budget{}, ErrNotFound
	}
	if err != nil {
		return Budget{}, fmt.Errorf("reading budget: %w", err)
	}
	return b, nil
}

// Usage implements Store.
func (s *SQLiteStore) Usage(ctx context.Context, tenant string, scope Scope, from, to time.Time) ([]UsageLine, error) {
	end := int64(1<<63 - 1)
	if !to.IsZero() {
		end = micros(to)
	}
	rows, err := s.db.QueryContext(ctx, q(`SELECT cost_kind, model, SUM(amount_micros) FROM budget_ledger
		WHERE tenant = $1 AND entry = 1 AND at >= $2 AND at < $3 AND `+scopeFilter("$4")+`
		GROUP BY cost_kind, model ORDER BY cost_kind, model`), tenant, micros(from), end, subjectArg(scope))
	if err != nil {
		return nil, fmt.Errorf("summing usage: %w", err)
	}
	defer rows.Close()
	var out []UsageLine
	for rows.Next() {
		var l UsageLine
		if err := rows.Scan(&l.Kind, &l.Model, &l.Amount); err != nil {
			return nil, fmt.Errorf("reading usage: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// HeldAmount implements Store.
func (s *SQLiteStore) HeldAmount(ctx context.Context, tenant string, scope Scope) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, q(`SELECT COALESCE(SUM(amount_micros), 0) FROM budget_reservations
		WHERE tenant = $1 AND state = 1 AND `+scopeFilter("$2")), tenant, subjectArg(scope)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("summing held reservations: %w", err)
	}
	return n, nil
}

// Reservation implements Store.
func (s *SQLiteStore) Reservation(ctx context.Context, tenant, id string) (Reservation, error) {
	r, err := scanReservation(s.db.QueryRowContext(ctx, q(`SELECT `+reservationCols+` FROM budget_reservations
		WHERE tenant = $1 AND id = $2`), tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Reservation{}, ErrNotFound
	}
	if err != nil {
		return Reservation{}, fmt.Errorf("reading reservation: %w", err)
	}
	return r, nil
}

// Expired implements Store.
func (s *SQLiteStore) Expired(ctx context.Context, now time.Time, limit int) ([]Reservation, error) {
	rows, err := s.db.QueryContext(ctx, q(`SELECT `+reservationCols+` FROM budget_reservations
		WHERE state = 1 AND expires_at <= $1 ORDER BY expires_at LIMIT $2`), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("listing expired reservations: %w", err)
	}
	defer rows.Close()
	var out []Reservation
	for rows.Next() {
		r, err := scanReservation(rows)
		if err != nil {
			return nil, fmt.Errorf("reading reservation: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// LedgerTotals implements Store.
func (s *SQLiteStore) LedgerTotals(ctx context.Context, tenant string) (int64, int64, error) {
	var spent, released int64
	err := s.db.QueryRowContext(ctx, q(`SELECT COALESCE(SUM(amount_micros), 0), COALESCE(SUM(released_micros), 0)
		FROM budget_ledger WHERE tenant = $1`), tenant).Scan(&spent, &released)
	if err != nil {
		return 0, 0, fmt.Errorf("summing the ledger: %w", err)
	}
	return spent, released, nil
}

// Ping implements Store.
func (s *SQLiteStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
