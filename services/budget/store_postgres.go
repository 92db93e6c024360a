package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/pkg/database"
)

// eventChannel is the LISTEN/NOTIFY channel events travel on between replicas.
const eventChannel = "airlock_budget_events"

// PostgresStore keeps the budget's state in Postgres through the native pgx
// pool. Budget rows are locked with SELECT ... FOR UPDATE in key order.
type PostgresStore struct {
	pool *pgxpool.Pool
}

var (
	_ Store       = (*PostgresStore)(nil)
	_ EventSource = (*PostgresStore)(nil)
)

// NewPostgresStore returns a store on db, which must be Postgres.
func NewPostgresStore(db *database.DB) *PostgresStore {
	return &PostgresStore{pool: db.Pool}
}

// retryable reports whether a transaction failed only because of another one.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01", "23505": // serialization, deadlock, a racing idempotency key
			return true
		}
	}
	return false
}

// InTx implements Store. The transaction is pipelined: BEGIN travels with
// the first read, and the writes travel with COMMIT, so a batch of requests
// costs two or three round trips to the server.
func (s *PostgresStore) InTx(ctx context.Context, fn func(tx Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.inTx(ctx, fn)
		if err == nil || !pgRetryable(err) {
			return err
		}
	}
	return err
}

func (s *PostgresStore) inTx(ctx context.Context, fn func(tx Tx) error) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection: %w", err)
	}
	t := &pgTx{conn: conn.Conn()}
	defer func() {
		if err != nil && t.begun {
			// Roll back whatever is open; a connection that cannot is dropped.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, rerr := t.conn.Exec(rctx, "ROLLBACK"); rerr != nil {
				t.conn.Close(rctx) //nolint:errcheck // already failing
			}
			cancel()
		}
		conn.Release()
	}()
	if err := fn(t); err != nil {
		return err
	}
	if !t.begun && t.pending == nil {
		return nil // nothing read, nothing written
	}
	b := t.next()
	b.Queue("COMMIT")
	if err := t.conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("writing budget changes: %w", err)
	}
	t.begun = false
	return nil
}

// pgTx is a pipelined transaction on one connection.
type pgTx struct {
	conn    *pgx.Conn
	begun   bool
	pending *pgx.Batch // writes to send with COMMIT
}

// next returns a batch that starts with BEGIN if the transaction has not
// begun, or the pending writes.
func (t *pgTx) next() *pgx.Batch {
	if t.pending != nil {
		b := t.pending
		t.pending = nil
		return b
	}
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
		t.begun = true
	}
	return b
}

// read sends b (whose last len(scans) statements are queries) and hands each
// query's rows to its scan function.
func (t *pgTx) read(ctx context.Context, b *pgx.Batch, scans ...func(pgx.Rows) error) error {
	br := t.conn.SendBatch(ctx, b)
	for i := 0; i < b.Len()-len(scans); i++ {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	for _, scan := range scans {
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				br.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

const reservationCols = `id, tenant, idempotency_key, request_hash, scope_tenant, scope_user, held_tenant, held_user,
	amount_micros, actual_micros, state, cost_kind, model, run_id, created_at, expires_at, settled_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanReservation(row rowScanner) (Reservation, error) {
	var r Reservation
	var created, expires, settled int64
	err := row.Scan(&r.ID, &r.Tenant, &r.IdempotencyKey, &r.RequestHash, &r.ScopeTenant, &r.ScopeUser,
		&r.HeldTenant, &r.HeldUser, &r.Amount, &r.Actual, &r.State, &r.Kind, &r.Model, &r.RunID,
		&created, &expires, &settled)
	r.CreatedAt, r.ExpiresAt, r.SettledAt = fromMicros(created), fromMicros(expires), fromMicros(settled)
	return r, err
}

const budgetCols = `tenant, scope_kind, subject, period, limit_micros, thresholds, time_zone, period_start,
	spent_micros, reserved_micros, fired_percent, hard_stopped, updated_at`

func scanBudget(row rowScanner) (Budget, error) {
	var b Budget
	var thresholds string
	var start, updated int64
	err := row.Scan(&b.Tenant, &b.Scope.Kind, &b.Scope.Subject, &b.Period, &b.Limit, &thresholds, &b.TimeZone,
		&start, &b.Spent, &b.Reserved, &b.FiredPercent, &b.HardStopped, &updated)
	if err != nil {
		return b, err
	}
	b.PeriodStart, b.UpdatedAt = fromMicros(start), fromMicros(updated)
	b.Thresholds, err = parseThresholds(thresholds)
	return b, err
}

func formatThresholds(t []int32) string {
	parts := make([]string, len(t))
	for i, v := range t {
		parts[i] = strconv.Itoa(int(v))
	}
	return strings.Join(parts, ",")
}

func parseThresholds(s string) ([]int32, error) {
	if s == "" {
		return nil, nil
	}
	var out []int32
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("stored thresholds %q: %w", s, err)
		}
		out = append(out, int32(v))
	}
	return out, nil
}

func keyArrays(keys []Key) ([]string, []int16, []string) {
	tenants, kinds, subjects := make([]string, len(keys)), make([]int16, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		tenants[i], kinds[i], subjects[i] = k.Tenant, int16(k.Scope.Kind), k.Scope.Subject
	}
	return tenants, kinds, subjects
}

// lockBudgetsSQL locks budgets named by keys ($1..$3) and by the scopes of
// reservations $4, in key order: rows are locked as the sorted result is
// produced, so two transactions never wait on each other in a cycle.
const lockBudgetsSQL = `SELECT ` + budgetCols + ` FROM budget_budgets b
	WHERE (tenant, scope_kind, subject) IN (
		SELECT * FROM unnest($1::text[], $2::smallint[], $3::text[])
		UNION SELECT tenant, 1::smallint, '' FROM budget_reservations WHERE id = ANY($4) AND scope_tenant
		UNION SELECT tenant, 2::smallint, scope_user FROM budget_reservations WHERE id = ANY($4) AND scope_user <> '')
	ORDER BY tenant, scope_kind, subject FOR UPDATE OF b`

// Load implements Tx in one round trip (with BEGIN, if this is the first).
func (t *pgTx) Load(ctx context.Context, spec LoadSpec) (*Loaded, error) {
	out := &Loaded{Budgets: map[Key]Budget{}, Reservations: map[string]Reservation{}, ByKey: map[IdemKey]Reservation{}}
	b := t.next()
	tenants, kinds, subjects := keyArrays(spec.Keys)
	ids := spec.IDs
	if ids == nil {
		ids = []string{}
	}
	b.Queue(lockBudgetsSQL, tenants, kinds, subjects, ids)
	// Read after the budgets are locked: each statement sees what the
	// transactions it waited for committed.
	b.Queue(`SELECT `+reservationCols+` FROM budget_reservations WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	it, ik := make([]string, len(spec.IdemKeys)), make([]string, len(spec.IdemKeys))
	for i, k := range spec.IdemKeys {
		it[i], ik[i] = k.Tenant, k.Key
	}
	b.Queue(`SELECT `+reservationCols+` FROM budget_reservations
		WHERE (tenant, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, it, ik)
	err := t.read(ctx, b,
		func(rows pgx.Rows) error {
			bu, err := scanBudget(rows)
			out.Budgets[bu.Key] = bu
			return err
		},
		func(rows pgx.Rows) error {
			r, err := scanReservation(rows)
			out.Reservations[r.ID] = r
			return err
		},
		func(rows pgx.Rows) error {
			r, err := scanReservation(rows)
			out.ByKey[IdemKey{Tenant: r.Tenant, Key: r.IdempotencyKey}] = r
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("loading budgets and reservations: %w", err)
	}
	return out, nil
}

func sortedKeys(keys []Key) []Key {
	out := append([]Key(nil), keys...)
	sort.Slice(out, func(i, j int) bool { return out[i].less(out[j]) })
	return out
}

// LockBudgets implements Tx.
func (t *pgTx) LockBudgets(ctx context.Context, keys []Key) (map[Key]Budget, error) {
	l, err := t.Load(ctx, LoadSpec{Keys: keys})
	if err != nil {
		return nil, err
	}
	return l.Budgets, nil
}

// scopeFilter is the SQL condition selecting ledger and reservation rows of
// a scope; arg is bound to subjectArg(scope).
func scopeFilter(arg string) string {
	return "((" + arg + " = '' AND scope_tenant) OR (" + arg + " <> '' AND scope_user = " + arg + "))"
}

// SpentSince implements Tx.
func (t *pgTx) SpentSince(ctx context.Context, tenant string, scope Scope, from time.Time) (int64, error) {
	var n int64
	b := t.next()
	b.Queue(`SELECT COALESCE(SUM(amount_micros), 0)::bigint FROM budget_ledger
		WHERE tenant = $1 AND at >= $2 AND entry = 1 AND `+scopeFilter("$3"), tenant, micros(from), subjectArg(scope))
	err := t.read(ctx, b, func(rows pgx.Rows) error { return rows.Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("summing the ledger: %w", err)
	}
	return n, nil
}

// subjectArg is the value bound to a scope filter's argument: the user, or
// empty for the TENANT scope.
func subjectArg(scope Scope) string {
	if scope.Kind == ScopeUser {
		return scope.Subject
	}
	return ""
}

// Write queues every change to travel with COMMIT in one round trip, one multi-row statement per
// table (rows travel as arrays and are unnested by the server), so a batch
// of hundreds of requests costs a handful of statements and one commit.
func (t *pgTx) Write(_ context.Context, w *Writes) error {
	if w.empty() {
		return nil
	}
	b := t.next()
	defer func() { t.pending = b }()
	if n := len(w.Budgets); n > 0 {
		var c struct {
			tenant, subject, thresholds, zone      []string
			kind, period                           []int16
			limit, start, spent, reserved, updated []int64
			fired                                  []int32
			stopped                                []bool
		}
		for _, bu := range w.Budgets {
			c.tenant = append(c.tenant, bu.Tenant)
			c.kind = append(c.kind, int16(bu.Scope.Kind))
			c.subject = append(c.subject, bu.Scope.Subject)
			c.period = append(c.period, int16(bu.Period))
			c.limit = append(c.limit, bu.Limit)
			c.thresholds = append(c.thresholds, formatThresholds(bu.Thresholds))
			c.zone = append(c.zone, bu.TimeZone)
			c.start = append(c.start, micros(bu.PeriodStart))
			c.spent = append(c.spent, bu.Spent)
			c.reserved = append(c.reserved, bu.Reserved)
			c.fired = append(c.fired, bu.FiredPercent)
			c.stopped = append(c.stopped, bu.HardStopped)
			c.updated = append(c.updated, micros(bu.UpdatedAt))
		}
		b.Queue(`INSERT INTO budget_budgets (`+budgetCols+`)
			SELECT * FROM unnest($1::text[], $2::smallint[], $3::text[], $4::smallint[], $5::bigint[], $6::text[],
				$7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::int[], $12::bool[], $13::bigint[])
			ON CONFLICT (tenant, scope_kind, subject) DO UPDATE SET period = EXCLUDED.period,
			limit_micros = EXCLUDED.limit_micros, thresholds = EXCLUDED.thresholds, time_zone = EXCLUDED.time_zone,
			period_start = EXCLUDED.period_start, spent_micros = EXCLUDED.spent_micros,
			reserved_micros = EXCLUDED.reserved_micros, fired_percent = EXCLUDED.fired_percent,
			hard_stopped = EXCLUDED.hard_stopped, updated_at = EXCLUDED.updated_at`,
			c.tenant, c.kind, c.subject, c.period, c.limit, c.thresholds, c.zone, c.start, c.spent, c.reserved,
			c.fired, c.stopped, c.updated)
	}
	if len(w.NewReservations) > 0 {
		var c struct {
			id, tenant, key, hash, user, model, run   []string
			scopeTenant, heldTenant, heldUser         []bool
			amount, actual, created, expires, settled []int64
			state, kind                               []int16
		}
		for _, r := range w.NewReservations {
			c.id = append(c.id, r.ID)
			c.tenant = append(c.tenant, r.Tenant)
			c.key = append(c.key, r.IdempotencyKey)
			c.hash = append(c.hash, r.RequestHash)
			c.scopeTenant = append(c.scopeTenant, r.ScopeTenant)
			c.user = append(c.user, r.ScopeUser)
			c.heldTenant = append(c.heldTenant, r.HeldTenant)
			c.heldUser = append(c.heldUser, r.HeldUser)
			c.amount = append(c.amount, r.Amount)
			c.actual = append(c.actual, r.Actual)
			c.state = append(c.state, int16(r.State))
			c.kind = append(c.kind, int16(r.Kind))
			c.model = append(c.model, r.Model)
			c.run = append(c.run, r.RunID)
			c.created = append(c.created, micros(r.CreatedAt))
			c.expires = append(c.expires, micros(r.ExpiresAt))
			c.settled = append(c.settled, micros(r.SettledAt))
		}
		b.Queue(`INSERT INTO budget_reservations (`+reservationCols+`)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::bool[],
				$8::bool[], $9::bigint[], $10::bigint[], $11::smallint[], $12::smallint[], $13::text[], $14::text[],
				$15::bigint[], $16::bigint[], $17::bigint[])`,
			c.id, c.tenant, c.key, c.hash, c.scopeTenant, c.user, c.heldTenant, c.heldUser, c.amount, c.actual,
			c.state, c.kind, c.model, c.run, c.created, c.expires, c.settled)
	}
	if len(w.Settled) > 0 {
		var ids []string
		var states []int16
		var actual, settled []int64
		for _, r := range w.Settled {
			ids = append(ids, r.ID)
			states = append(states, int16(r.State))
			actual = append(actual, r.Actual)
			settled = append(settled, micros(r.SettledAt))
		}
		b.Queue(`UPDATE budget_reservations AS r SET state = u.state, actual_micros = u.actual, settled_at = u.settled
			FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::bigint[]) AS u(id, state, actual, settled)
			WHERE r.id = u.id`, ids, states, actual, settled)
	}
	if len(w.Ledger) > 0 {
		var c struct {
			tenant, res, user, model []string
			entry, kind              []int16
			scopeTenant              []bool
			amount, released, at     []int64
		}
		for _, l := range w.Ledger {
			c.tenant = append(c.tenant, l.Tenant)
			c.res = append(c.res, l.ReservationID)
			c.entry = append(c.entry, int16(l.Entry))
			c.scopeTenant = append(c.scopeTenant, l.ScopeTenant)
			c.user = append(c.user, l.ScopeUser)
			c.kind = append(c.kind, int16(l.Kind))
			c.model = append(c.model, l.Model)
			c.amount = append(c.amount, l.Amount)
			c.released = append(c.released, l.Released)
			c.at = append(c.at, micros(l.At))
		}
		b.Queue(`INSERT INTO budget_ledger (tenant, reservation_id, entry, scope_tenant, scope_user, cost_kind, model,
			amount_micros, released_micros, at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bool[], $5::text[], $6::smallint[],
				$7::text[], $8::bigint[], $9::bigint[], $10::bigint[])`,
			c.tenant, c.res, c.entry, c.scopeTenant, c.user, c.kind, c.model, c.amount, c.released, c.at)
	}
	for _, e := range w.Events {
		// Stored, and announced to every listening replica when the
		// transaction commits, with its sequence number for catch-up.
		b.Queue(`WITH e AS (INSERT INTO budget_events (id, tenant, kind, scope_kind, subject, threshold, amount_micros,
				reservation_id, message, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING *)
			SELECT pg_notify($11, json_build_object('seq', seq, 'id', id, 'tenant', tenant, 'kind', kind,
				'scope_kind', scope_kind, 'subject', subject, 'threshold', threshold, 'amount', amount_micros,
				'reservation_id', reservation_id, 'message', message, 'at', at)::text) FROM e`,
			e.ID, e.Tenant, int16(e.Kind), int16(e.Scope.Kind), e.Scope.Subject, e.Threshold, e.Amount,
			e.ReservationID, e.Message, micros(e.At), eventChannel)
	}
	return nil
}

// Budget implements Store.
func (s *PostgresStore) Budget(ctx context.Context, key Key) (Budget, error) {
	b, err := scanBudget(s.pool.QueryRow(ctx, `SELECT `+budgetCols+` FROM budget_budgets
		WHERE tenant = $1 AND scope_kind = $2 AND subject = $3`, key.Tenant, int16(key.Scope.Kind), key.Scope.Subject))
	if errors.Is(err, pgx.ErrNoRows) {
		return Budget{}, ErrNotFound
	}
	if err != nil {
		return Budget{}, fmt.Errorf("reading budget: %w", err)
	}
	return b, nil
}

// Usage implements Store.
func (s *PostgresStore) Usage(ctx context.Context, tenant string, scope Scope, from, to time.Time) ([]UsageLine, error) {
	end := int64(1<<63 - 1)
	if !to.IsZero() {
		end = micros(to)
	}
	rows, err := s.pool.Query(ctx, `SELECT cost_kind, model, SUM(amount_micros)::bigint FROM budget_ledger
		WHERE tenant = $1 AND entry = 1 AND at >= $2 AND at < $3 AND `+scopeFilter("$4")+`
		GROUP BY cost_kind, model ORDER BY cost_kind, model`, tenant, micros(from), end, subjectArg(scope))
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
func (s *PostgresStore) HeldAmount(ctx context.Context, tenant string, scope Scope) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(SUM(amount_micros), 0)::bigint FROM budget_reservations
		WHERE tenant = $1 AND state = 1 AND `+scopeFilter("$2"), tenant, subjectArg(scope)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("summing held reservations: %w", err)
	}
	return n, nil
}

// Reservation implements Store.
func (s *PostgresStore) Reservation(ctx context.Context, tenant, id string) (Reservation, error) {
	r, err := scanReservation(s.pool.QueryRow(ctx, `SELECT `+reservationCols+` FROM budget_reservations
		WHERE tenant = $1 AND id = $2`, tenant, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Reservation{}, ErrNotFound
	}
	if err != nil {
		return Reservation{}, fmt.Errorf("reading reservation: %w", err)
	}
	return r, nil
}

// Expired implements Store.
func (s *PostgresStore) Expired(ctx context.Context, now time.Time, limit int) ([]Reservation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reservationCols+` FROM budget_reservations
		WHERE state = 1 AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, micros(now), limit)
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
func (s *PostgresStore) LedgerTotals(ctx context.Context, tenant string) (int64, int64, error) {
	var spent, released int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(SUM(amount_micros), 0)::bigint, COALESCE(SUM(released_micros), 0)::bigint
		FROM budget_ledger WHERE tenant = $1`, tenant).Scan(&spent, &released)
	if err != nil {
		return 0, 0, fmt.Errorf("summing the ledger: %w", err)
	}
	return spent, released, nil
}

// Ping implements Store.
func (s *PostgresStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Listen implements EventSource with LISTEN on a connection of its own,
// reconnecting a second after each failure until ctx ends. After a
// reconnection it catches up from the events table: events stored while it
// was away are delivered (those that committed out of sequence order during
// the gap can still be missed; the stream is best effort across failures).
func (s *PostgresStore) Listen(ctx context.Context, state func(error), fn func(Event)) error {
	l := &listener{store: s, seen: newSeenSet(4096), deliver: fn}
	for {
		err := l.listenOnce(ctx, state)
		if ctx.Err() != nil {
			return nil
		}
		state(fmt.Errorf("listening for budget events: %w", err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// listener is one Listen call's state across reconnections.
type listener struct {
	store   *PostgresStore
	seen    *seenSet
	deliver func(Event)
	lastSeq int64 // highest sequence number delivered or skipped
	started bool
}

func (l *listener) listenOnce(ctx context.Context, state func(error)) error {
	conn, err := l.store.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+eventChannel); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening first.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := conn.Exec(cctx, "UNLISTEN *"); err != nil {
			conn.Conn().Close(cctx) //nolint:errcheck // dropping a broken connection
		}
	}()
	if !l.started {
		// A new listener starts from now: history is in the table, not the stream.
		if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM budget_events`).Scan(&l.lastSeq); err != nil {
			return err
		}
		l.started = true
	} else if err := l.catchUp(ctx, conn.Conn()); err != nil {
		return err
	}
	state(nil)
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var we wireEventJSON
		if err := json.Unmarshal([]byte(n.Payload), &we); err != nil {
			continue // not an event: ignore rather than stop the stream
		}
		l.offer(we)
	}
}

// catchUp delivers events stored after the last one seen. LISTEN is already
// on, so an event may arrive both ways; the seen set drops the second.
func (l *listener) catchUp(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT seq, id, tenant, kind, scope_kind, subject, threshold, amount_micros,
		reservation_id, message, at FROM budget_events WHERE seq > $1 ORDER BY seq LIMIT 100000`, l.lastSeq)
	if err != nil {
		return err
	}
	var missed []wireEventJSON
	for rows.Next() {
		var we wireEventJSON
		if err := rows.Scan(&we.Seq, &we.ID, &we.Tenant, &we.Kind, &we.ScopeKind, &we.Subject, &we.Threshold,
			&we.Amount, &we.ReservationID, &we.Message, &we.At); err != nil {
			rows.Close()
			return err
		}
		missed = append(missed, we)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, we := range missed {
		l.offer(we)
	}
	return nil
}

func (l *listener) offer(we wireEventJSON) {
	if we.Seq > l.lastSeq {
		l.lastSeq = we.Seq
	}
	if l.seen.add(we.ID) {
		l.deliver(we.event())
	}
}

// seenSet remembers the last n event ids.
type seenSet struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newSeenSet(n int) *seenSet {
	return &seenSet{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it was new.
func (s *seenSet) add(id string) bool {
	if _, ok := s.ids[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.ids[id] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
	return true
}

// wireEventJSON is an event as NOTIFY carries it.
type wireEventJSON struct {
	Seq           int64  `json:"seq"`
	ID            string `json:"id"`
	Tenant        string `json:"tenant"`
	Kind          int16  `json:"kind"`
	ScopeKind     int16  `json:"scope_kind"`
	Subject       string `json:"subject"`
	Threshold     int32  `json:"threshold"`
	Amount        int64  `json:"amount"`
	ReservationID string `json:"reservation_id"`
	Message       string `json:"message"`
	At            int64  `json:"at"`
}

func (w wireEventJSON) event() Event {
	return Event{ID: w.ID, Tenant: w.Tenant, Kind: EventKind(w.Kind), Scope: Scope{Kind: ScopeKind(w.ScopeKind), Subject: w.Subject},
		Threshold: w.Threshold, Amount: w.Amount, ReservationID: w.ReservationID, Message: w.Message, At: fromMicros(w.At)}
}
