package orchestrator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
)

// SQLStore is the Store on Postgres (through pgx) or SQLite. Both dialects
// share the queries, written with $n placeholders and rebound for SQLite.
type SQLStore struct {
	db *database.DB
	// q runs queries: the database, or the transaction of InTx.
	q  querier
	tx *sql.Tx
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var _ Store = (*SQLStore)(nil)

// NewSQLStore returns a store on db, which must have Migrations applied.
func NewSQLStore(db *database.DB) *SQLStore { return &SQLStore{db: db, q: db.SQL} }

func (s *SQLStore) rb(query string) string { return database.Rebind(s.db.Dialect, query) }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

type principalJSON struct {
	Tenant  string   `json:"tenant"`
	Subject string   `json:"subject"`
	Roles   []string `json:"roles"`
}

func encodePrincipal(p auth.Principal) string {
	pj := principalJSON{Tenant: p.Tenant, Subject: p.Subject}
	for _, r := range p.Roles {
		pj.Roles = append(pj.Roles, string(r))
	}
	b, _ := json.Marshal(pj)
	return string(b)
}

func decodePrincipal(s string) (auth.Principal, error) {
	var pj principalJSON
	if err := json.Unmarshal([]byte(s), &pj); err != nil {
		return auth.Principal{}, fmt.Errorf("decoding stored principal: %w", err)
	}
	p := auth.Principal{Tenant: pj.Tenant, Subject: pj.Subject}
	for _, r := range pj.Roles {
		p.Roles = append(p.Roles, auth.Role(r))
	}
	return p, nil
}

func (s *SQLStore) inTx(ctx context.Context, fn func(tx querier) error) error {
	if s.tx != nil {
		return fn(s.tx) // already in InTx: part of that transaction
	}
	tx, err := s.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// InTx implements Store: fn's writes commit together, or not at all.
func (s *SQLStore) InTx(ctx context.Context, fn func(Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	return s.inTx(ctx, func(q querier) error {
		return fn(&SQLStore{db: s.db, q: q, tx: q.(*sql.Tx)})
	})
}

// CreateRun implements Store.
func (s *SQLStore) CreateRun(ctx context.Context, r *Run) (*Run, bool, error) {
	if r.IdempotencyKey != "" {
		var id string
		err := s.q.QueryRowContext(ctx, s.rb(`SELECT id FROM orchestrator_runs
			WHERE tenant = $1 AND requester = $2 AND idempotency_key = $3`),
			r.Tenant, r.Requester, r.IdempotencyKey).Scan(&id)
		if err == nil {
			existing, err := s.GetRun(ctx, r.Tenant, id)
			return existing, false, err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("looking up idempotency key: %w", err)
		}
	}
	now := time.Now().UTC()
	r.CreatedAt, r.UpdatedAt = now, now
	err := s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_runs
			(id, tenant, requester, principal, state, prompt, supplied_code, policy_id, max_attempts,
			 idempotency_key, trace_id, created_at, updated_at, owner, lease_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`),
			r.ID, r.Tenant, r.Requester, encodePrincipal(r.Principal), int32(r.State), r.Prompt, r.SuppliedCode,
			r.PolicyID, r.MaxAttempts, r.IdempotencyKey, r.TraceID, nanos(now), nanos(now), r.Owner, nanos(r.LeaseUntil)); err != nil {
			return err
		}
		for i, in := range r.Inputs {
			if _, err := tx.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_run_inputs
				(run_id, position, file_id, name, size_bytes, sha256) VALUES ($1, $2, $3, $4, $5, $6)`),
				r.ID, i, in.ID, in.Name, in.Size, in.SHA256); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_transitions
			(run_id, seq, from_state, to_state, message, at) VALUES ($1, 1, 0, $2, $3, $4)`),
			r.ID, int32(r.State), "run received", nanos(now))
		return err
	})
	if err != nil {
		if r.IdempotencyKey != "" && isUniqueViolation(err) {
			var id string
			if err := s.q.QueryRowContext(ctx, s.rb(`SELECT id FROM orchestrator_runs
				WHERE tenant = $1 AND requester = $2 AND idempotency_key = $3`),
				r.Tenant, r.Requester, r.IdempotencyKey).Scan(&id); err == nil {
				existing, err := s.GetRun(ctx, r.Tenant, id)
				return existing, false, err
			}
		}
		return nil, false, fmt.Errorf("storing run: %w", err)
	}
	return r, true, nil
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "23505") || strings.Contains(msg, "UNIQUE constraint failed") ||
		strings.Contains(msg, "duplicate key")
}

const runColumns = `id, tenant, requester, principal, state, prompt, supplied_code, policy_id, max_attempts,
	idempotency_key, approval_id, failure_reason, trace_id, llm_micros, compute_micros, cancel_requested,
	created_at, updated_at, finished_at, owner, lease_until, cancel_reason`

type scanner interface{ Scan(dest ...any) error }

func scanRun(sc scanner) (*Run, error) {
	var r Run
	var principal string
	var state int32
	var created, updated, finished, lease int64
	if err := sc.Scan(&r.ID, &r.Tenant, &r.Requester, &principal, &state, &r.Prompt, &r.SuppliedCode,
		&r.PolicyID, &r.MaxAttempts, &r.IdempotencyKey, &r.ApprovalID, &r.FailureReason, &r.TraceID,
		&r.LLMMicros, &r.ComputeMicros, &r.CancelRequested, &created, &updated, &finished, &r.Owner, &lease, &r.CancelReason); err != nil {
		return nil, err
	}
	p, err := decodePrincipal(principal)
	if err != nil {
		return nil, err
	}
	r.Principal = p
	r.State = State(state)
	r.CreatedAt, r.UpdatedAt, r.FinishedAt = fromNanos(created), fromNanos(updated), fromNanos(finished)
	r.LeaseUntil = fromNanos(lease)
	return &r, nil
}

// GetRun implements Store.
func (s *SQLStore) GetRun(ctx context.Context, tenant, id string) (*Run, error) {
	r, err := scanRun(s.q.QueryRowContext(ctx, s.rb(`SELECT `+runColumns+`
		FROM orchestrator_runs WHERE id = $1 AND tenant = $2`), id, tenant))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading run: %w", err)
	}
	if err := s.loadDetails(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *SQLStore) loadDetails(ctx context.Context, r *Run) error {
	rows, err := s.q.QueryContext(ctx, s.rb(`SELECT file_id, name, size_bytes, sha256
		FROM orchestrator_run_inputs WHERE run_id = $1 ORDER BY position`), r.ID)
	if err != nil {
		return fmt.Errorf("reading run inputs: %w", err)
	}
	r.Inputs = nil
	for rows.Next() {
		var f FileRef
		if err := rows.Scan(&f.ID, &f.Name, &f.Size, &f.SHA256); err != nil {
			rows.Close()
			return err
		}
		r.Inputs = append(r.Inputs, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = s.q.QueryContext(ctx, s.rb(`SELECT number, status, code, code_sha256, explanation,
		check_result, generation_micros, execution, execution_micros, created_at
		FROM orchestrator_attempts WHERE run_id = $1 ORDER BY number`), r.ID)
	if err != nil {
		return fmt.Errorf("reading attempts: %w", err)
	}
	r.Attempts = nil
	for rows.Next() {
		var a Attempt
		var check, exec []byte
		var created int64
		if err := rows.Scan(&a.Number, &a.Status, &a.Code, &a.CodeSHA256, &a.Explanation, &check,
			&a.GenerationMicros, &exec, &a.ExecutionMicros, &created); err != nil {
			rows.Close()
			return err
		}
		a.CreatedAt = fromNanos(created)
		if len(check) > 0 {
			a.Check = &policyv1.CheckResponse{}
			if err := proto.Unmarshal(check, a.Check); err != nil {
				rows.Close()
				return fmt.Errorf("decoding attempt %d's check: %w", a.Number, err)
			}
		}
		if len(exec) > 0 {
			a.Execution = &executorv1.ExecutionResult{}
			if err := proto.Unmarshal(exec, a.Execution); err != nil {
				rows.Close()
				return fmt.Errorf("decoding attempt %d's execution: %w", a.Number, err)
			}
		}
		r.Attempts = append(r.Attempts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = s.q.QueryContext(ctx, s.rb(`SELECT id, name, size_bytes, sha256 FROM orchestrator_files
		WHERE run_id = $1 AND kind = $2 AND complete = $3 ORDER BY name`), r.ID, FileOutput, true)
	if err != nil {
		return fmt.Errorf("reading outputs: %w", err)
	}
	defer rows.Close()
	r.Outputs = nil
	for rows.Next() {
		var f FileRef
		if err := rows.Scan(&f.ID, &f.Name, &f.Size, &f.SHA256); err != nil {
			return err
		}
		r.Outputs = append(r.Outputs, f)
	}
	return rows.Err()
}

// ListRuns implements Store.
func (s *SQLStore) ListRuns(ctx context.Context, p ListParams) ([]*Run, error) {
	where := []string{"tenant = $1"}
	args := []any{p.Tenant}
	if p.Requester != "" {
		args = append(args, p.Requester)
		where = append(where, fmt.Sprintf("requester = $%d", len(args)))
	}
	if p.State != 0 {
		args = append(args, int32(p.State))
		where = append(where, fmt.Sprintf("state = $%d", len(args)))
	}
	if p.AfterID != "" {
		args = append(args, nanos(p.AfterCreated), p.AfterID)
		n := len(args)
		where = append(where, fmt.Sprintf("(created_at < $%d OR (created_at = $%d AND id < $%d))", n-1, n-1, n))
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	args = append(args, limit)
	query := `SELECT ` + runColumns + ` FROM orchestrator_runs WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT $%d", len(args))
	return s.queryRuns(ctx, query, args...)
}

func (s *SQLStore) queryRuns(ctx context.Context, query string, args ...any) ([]*Run, error) {
	rows, err := s.q.QueryContext(ctx, s.rb(query), args...)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	var runs []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing runs: %w", err)
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	for _, r := range runs {
		if err := s.loadDetails(ctx, r); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// ActiveRuns implements Store.
func (s *SQLStore) ActiveRuns(ctx context.Context) ([]*Run, error) {
	var states []string
	for st := range State(13) {
		if st != 0 && !Terminal(st) {
			states = append(states, fmt.Sprint(int32(st)))
		}
	}
	// Only the runs themselves: the engine scans these every few seconds.
	rows, err := s.q.QueryContext(ctx, `SELECT `+runColumns+` FROM orchestrator_runs WHERE state IN (`+
		strings.Join(states, ",")+`) ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("listing active runs: %w", err)
	}
	defer rows.Close()
	var runs []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("listing active runs: %w", err)
		}
		runs = append(runs, r)
	}
	return runs, rows.Err()
}

// Transition implements Store.
func (s *SQLStore) Transition(ctx context.Context, id string, from, to State, message string, upd RunUpdate) error {
	now := time.Now().UTC()
	return s.inTx(ctx, func(tx querier) error {
		set := "state = $1, updated_at = $2"
		args := []any{int32(to), nanos(now)}
		if upd.FailureReason != "" {
			args = append(args, upd.FailureReason)
			set += fmt.Sprintf(", failure_reason = $%d", len(args))
		}
		if upd.ApprovalID != nil {
			args = append(args, *upd.ApprovalID)
			set += fmt.Sprintf(", approval_id = $%d", len(args))
		}
		if Terminal(to) {
			args = append(args, nanos(now))
			set += fmt.Sprintf(", finished_at = $%d", len(args))
		}
		args = append(args, id, int32(from))
		res, err := tx.ExecContext(ctx, s.rb(`UPDATE orchestrator_runs SET `+set+
			fmt.Sprintf(` WHERE id = $%d AND state = $%d`, len(args)-1, len(args))), args...)
		if err != nil {
			return fmt.Errorf("storing transition: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrConflict
		}
		_, err = tx.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_transitions (run_id, seq, from_state, to_state, message, at)
			SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM orchestrator_transitions WHERE run_id = $1`),
			id, int32(from), int32(to), message, nanos(now))
		if err != nil {
			return fmt.Errorf("storing transition: %w", err)
		}
		return nil
	})
}

// Transitions implements Store.
func (s *SQLStore) Transitions(ctx context.Context, id string, after int) ([]Transition, error) {
	rows, err := s.q.QueryContext(ctx, s.rb(`SELECT seq, from_state, to_state, message, at
		FROM orchestrator_transitions WHERE run_id = $1 AND seq > $2 ORDER BY seq`), id, after)
	if err != nil {
		return nil, fmt.Errorf("reading transitions: %w", err)
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var t Transition
		var from, to int32
		var at int64
		if err := rows.Scan(&t.Seq, &from, &to, &t.Message, &at); err != nil {
			return nil, err
		}
		t.From, t.To, t.At = State(from), State(to), fromNanos(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *SQLStore) execOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.q.ExecContext(ctx, s.rb(query), args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ClaimRun implements Store.
func (s *SQLStore) ClaimRun(ctx context.Context, id, owner string, until, now time.Time) (bool, error) {
	res, err := s.q.ExecContext(ctx, s.rb(`UPDATE orchestrator_runs SET owner = $1, lease_until = $2
		WHERE id = $3 AND (owner = $1 OR owner = '' OR lease_until < $4)`), owner, nanos(until), id, nanos(now))
	if err != nil {
		return false, fmt.Errorf("claiming run: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RenewLease implements Store.
func (s *SQLStore) RenewLease(ctx context.Context, id, owner string, until time.Time) error {
	res, err := s.q.ExecContext(ctx, s.rb(`UPDATE orchestrator_runs SET lease_until = $1 WHERE id = $2 AND owner = $3`),
		nanos(until), id, owner)
	if err != nil {
		return fmt.Errorf("renewing lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrConflict
	}
	return nil
}

// CancelRequested implements Store.
func (s *SQLStore) CancelRequested(ctx context.Context, id string) (bool, string, error) {
	var b bool
	var reason string
	err := s.q.QueryRowContext(ctx, s.rb(`SELECT cancel_requested, cancel_reason FROM orchestrator_runs WHERE id = $1`), id).Scan(&b, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return false, "", ErrNotFound
	}
	if err != nil {
		return false, "", fmt.Errorf("reading cancellation: %w", err)
	}
	return b, reason, nil
}

// ReleaseLease implements Store.
func (s *SQLStore) ReleaseLease(ctx context.Context, id, owner string) error {
	_, err := s.q.ExecContext(ctx, s.rb(`UPDATE orchestrator_runs SET lease_until = 0 WHERE id = $1 AND owner = $2`), id, owner)
	if err != nil {
		return fmt.Errorf("releasing lease: %w", err)
	}
	return nil
}

// SetApprovalID implements Store.
func (s *SQLStore) SetApprovalID(ctx context.Context, id, approvalID string) error {
	return s.execOne(ctx, "storing approval id", `UPDATE orchestrator_runs SET approval_id = $1, updated_at = $2 WHERE id = $3`,
		approvalID, nanos(time.Now()), id)
}

// RequestCancel implements Store.
func (s *SQLStore) RequestCancel(ctx context.Context, tenant, id, reason string) error {
	// SET reads the row as it was, so only the first request's reason sticks.
	return s.execOne(ctx, "requesting cancellation", `UPDATE orchestrator_runs SET cancel_requested = $1,
		cancel_reason = CASE WHEN cancel_requested THEN cancel_reason ELSE $2 END, updated_at = $3
		WHERE id = $4 AND tenant = $5`, true, reason, nanos(time.Now()), id, tenant)
}

// PutAttempt implements Store.
func (s *SQLStore) PutAttempt(ctx context.Context, runID string, a *Attempt) error {
	var check, exec []byte
	var err error
	if a.Check != nil {
		if check, err = proto.Marshal(a.Check); err != nil {
			return err
		}
	}
	if a.Execution != nil {
		if exec, err = proto.Marshal(a.Execution); err != nil {
			return err
		}
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now().UTC()
	}
	_, err = s.q.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_attempts
		(run_id, number, status, code, code_sha256, explanation, check_result, generation_micros, execution, execution_micros, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (run_id, number) DO UPDATE SET status = excluded.status, code = excluded.code,
		code_sha256 = excluded.code_sha256, explanation = excluded.explanation, check_result = excluded.check_result,
		generation_micros = excluded.generation_micros, execution = excluded.execution,
		execution_micros = excluded.execution_micros`),
		runID, a.Number, a.Status, a.Code, a.CodeSHA256, a.Explanation, check, a.GenerationMicros, exec,
		a.ExecutionMicros, nanos(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("storing attempt %d: %w", a.Number, err)
	}
	return nil
}

// AddCost implements Store.
func (s *SQLStore) AddCost(ctx context.Context, runID string, llm, compute int64) error {
	return s.execOne(ctx, "storing cost", `UPDATE orchestrator_runs SET llm_micros = llm_micros + $1,
		compute_micros = compute_micros + $2, updated_at = $3 WHERE id = $4`, llm, compute, nanos(time.Now()), runID)
}

// AddReservation implements Store.
func (s *SQLStore) AddReservation(ctx context.Context, r Reservation) error {
	_, err := s.q.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_reservations (id, run_id, kind, amount_micros, created_at)
		VALUES ($1, $2, $3, $4, $5)`), r.ID, r.RunID, r.Kind, r.Amount, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("storing reservation: %w", err)
	}
	return nil
}

// SettleReservation implements Store.
func (s *SQLStore) SettleReservation(ctx context.Context, id string, actual int64) error {
	return s.execOne(ctx, "recording settlement", `UPDATE orchestrator_reservations SET settle_micros = $1 WHERE id = $2`, actual, id)
}

// DeleteReservation implements Store.
func (s *SQLStore) DeleteReservation(ctx context.Context, id string) error {
	_, err := s.q.ExecContext(ctx, s.rb(`DELETE FROM orchestrator_reservations WHERE id = $1`), id)
	if err != nil {
		return fmt.Errorf("forgetting reservation: %w", err)
	}
	return nil
}

// Reservations implements Store.
func (s *SQLStore) Reservations(ctx context.Context, runID string) ([]Reservation, error) {
	rows, err := s.q.QueryContext(ctx, s.rb(`SELECT id, run_id, kind, amount_micros, settle_micros FROM orchestrator_reservations
		WHERE run_id = $1 ORDER BY created_at`), runID)
	if err != nil {
		return nil, fmt.Errorf("reading reservations: %w", err)
	}
	defer rows.Close()
	var out []Reservation
	for rows.Next() {
		var r Reservation
		settle := int64(-1)
		if err := rows.Scan(&r.ID, &r.RunID, &r.Kind, &r.Amount, &settle); err != nil {
			return nil, err
		}
		r.Settling, r.Actual = settle >= 0, max(settle, 0)
		out = append(out, r)
	}
	return out, rows.Err()
}
