package approval

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/database"
)

// Store keeps requests and their audit trail. Every method is scoped to one
// tenant except the sweeper's and the change feed's, which span them all.
// Each write appends its audit event in the same transaction, serialised per
// tenant, so the trail and the requests never disagree.
type Store interface {
	// Create stores a new request and its "created" event.
	Create(ctx context.Context, a Approval, ev *Event) error
	// Get returns one request, or ErrNotFound.
	Get(ctx context.Context, tenant, id string) (Approval, error)
	// Update locks one request and calls fn with it. When fn returns an
	// event, the changed request and the event are stored; when it returns
	// nil, nothing is written. An error from fn aborts the update and is
	// returned as is. It returns the request as stored afterwards.
	Update(ctx context.Context, tenant, id string, fn func(a *Approval) (*Event, error)) (Approval, error)
	// List returns up to p.Limit requests, newest first, after p.After.
	List(ctx context.Context, p ListParams) ([]Approval, error)
	// FindApproved returns the newest APPROVED request matching run, code
	// hash and policy version, or ErrNotFound.
	FindApproved(ctx context.Context, tenant, runID, codeSHA256, policyVersion string) (Approval, error)
	// LatestForRun returns the newest request for a run, or ErrNotFound.
	LatestForRun(ctx context.Context, tenant, runID, requester string) (Approval, error)
	// Due lists pending requests, of any tenant, whose expiry is at or before now.
	Due(ctx context.Context, now time.Time, limit int) ([]Key, error)
	// Events returns up to limit of tenant's events with seq > afterSeq, in order.
	Events(ctx context.Context, tenant string, afterSeq int64, limit int) ([]Event, error)
	// LastEvent returns the newest event of one request, or ErrNotFound.
	LastEvent(ctx context.Context, tenant, approvalID string) (Event, error)
	// ChainHead returns the seq and hash of tenant's last event, or ErrNotFound.
	ChainHead(ctx context.Context, tenant string) (int64, string, error)
	// Changes returns up to limit changes, of any tenant, after the change
	// position after, in the order they were stored.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the position of the newest change (0 for none).
	LastChange(ctx context.Context) (int64, error)
}

// Key names one request.
type Key struct {
	Tenant string
	ID     string
}

// Change says a request changed; Pos orders changes.
type Change struct {
	Pos int64
	Key
}

// Cursor is a position in the newest-first listing.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// ListParams filters a listing.
type ListParams struct {
	Tenant    string
	State     State // empty: any
	Requester string
	RunID     string
	After     *Cursor
	Limit     int
}

// NewStore returns the store for db's dialect.
func NewStore(db *database.DB) Store {
	if db.Dialect == database.Postgres {
		return NewPostgresStore(db)
	}
	return NewSQLiteStore(db)
}

// querier is what the shared SQL needs from a transaction or a pool; the
// Postgres store implements it over pgx, the SQLite store over database/sql.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) scanner
}

type scanner interface{ Scan(dest ...any) error }

type rows interface {
	scanner
	Next() bool
	Err() error
	Close()
}

// sqlCore is the SQL both stores share; the dialects differ only in how they
// run queries, lock rows and announce changes.
type sqlCore struct {
	dialect database.Dialect
	// pool runs queries outside a transaction.
	pool querier
	// inTx runs fn in a transaction.
	inTx func(ctx context.Context, fn func(q querier) error) error
	// forUpdate is appended to a SELECT that must lock its rows.
	forUpdate string
	// announce runs inside a write's transaction after its event is stored.
	announce func(ctx context.Context, q querier, ch Change) error
}

func (s *sqlCore) sql(q string) string { return database.Rebind(s.dialect, q) }

const requestColumns = `id, tenant, run_id, requester, code, code_sha256, policy_id, policy_version,
	findings, risk, inputs, state, decided_by, reason, created_at_us, expires_at_us, decided_at_us`

func (s *sqlCore) Create(ctx context.Context, a Approval, ev *Event) error {
	findings, err := encodeFindings(a.Findings)
	if err != nil {
		return err
	}
	inputs, err := json.Marshal(a.Inputs)
	if err != nil {
		return fmt.Errorf("encoding inputs: %w", err)
	}
	return s.inTx(ctx, func(q querier) error {
		if _, err := q.exec(ctx, s.sql(`INSERT INTO approval_requests (`+requestColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`),
			a.ID, a.Tenant, a.RunID, a.Requester, a.Code, a.CodeSHA256, a.PolicyID, a.PolicyVersion,
			findings, string(a.Risk), string(inputs), string(a.State), a.DecidedBy, a.Reason,
			micros(a.CreatedAt), micros(a.ExpiresAt), micros(a.DecidedAt)); err != nil {
			return fmt.Errorf("storing approval request: %w", err)
		}
		return s.append(ctx, q, ev)
	})
}

// append links ev to the tenant's chain and stores it. The chain head row is
// locked first, so appends of one tenant are serialised and seq has no gaps.
func (s *sqlCore) append(ctx context.Context, q querier, ev *Event) error {
	if _, err := q.exec(ctx, s.sql(`INSERT INTO approval_chain_heads (tenant, seq, hash) VALUES ($1, 0, $2)
		ON CONFLICT (tenant) DO NOTHING`), ev.Tenant, GenesisHash); err != nil {
		return fmt.Errorf("creating chain head: %w", err)
	}
	var headSeq int64
	var headHash string
	if err := q.queryRow(ctx, s.sql(`SELECT seq, hash FROM approval_chain_heads WHERE tenant = $1`+s.forUpdate),
		ev.Tenant).Scan(&headSeq, &headHash); err != nil {
		return fmt.Errorf("locking chain head: %w", err)
	}
	ev.link(headSeq, headHash)
	var pos int64
	if err := q.queryRow(ctx, s.sql(`INSERT INTO approval_events (tenant, seq, approval_id, kind, actor, at_us,
		reason, run_id, code_sha256, policy_version, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING gid`),
		ev.Tenant, ev.Seq, ev.ApprovalID, string(ev.Kind), ev.Actor, micros(ev.At), ev.Reason,
		ev.RunID, ev.CodeSHA256, ev.PolicyVersion, ev.PrevHash, ev.Hash).Scan(&pos); err != nil {
		return fmt.Errorf("appending audit event: %w", err)
	}
	if _, err := q.exec(ctx, s.sql(`UPDATE approval_chain_heads SET seq = $2, hash = $3 WHERE tenant = $1`),
		ev.Tenant, ev.Seq, ev.Hash); err != nil {
		return fmt.Errorf("advancing chain head: %w", err)
	}
	return s.announce(ctx, q, Change{Pos: pos, Key: Key{Tenant: ev.Tenant, ID: ev.ApprovalID}})
}

func (s *sqlCore) Get(ctx context.Context, tenant, id string) (Approval, error) {
	return scanApproval(s.pool.queryRow(ctx, s.sql(`SELECT `+requestColumns+
		` FROM approval_requests WHERE tenant = $1 AND id = $2`), tenant, id))
}

func (s *sqlCore) Update(ctx context.Context, tenant, id string, fn func(a *Approval) (*Event, error)) (Approval, error) {
	var out Approval
	err := s.inTx(ctx, func(q querier) error {
		a, err := scanApproval(q.queryRow(ctx, s.sql(`SELECT `+requestColumns+
			` FROM approval_requests WHERE tenant = $1 AND id = $2`+s.forUpdate), tenant, id))
		if err != nil {
			return err
		}
		ev, err := fn(&a)
		if err != nil {
			return err
		}
		out = a
		if ev == nil {
			return nil
		}
		if _, err := q.exec(ctx, s.sql(`UPDATE approval_requests SET state = $3, decided_by = $4, reason = $5,
			decided_at_us = $6 WHERE tenant = $1 AND id = $2`),
			tenant, id, string(a.State), a.DecidedBy, a.Reason, micros(a.DecidedAt)); err != nil {
			return fmt.Errorf("updating approval request: %w", err)
		}
		return s.append(ctx, q, ev)
	})
	return out, err
}

func (s *sqlCore) List(ctx context.Context, p ListParams) ([]Approval, error) {
	var where []string
	args := []any{p.Tenant}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if p.State != "" {
		add("state = ?", string(p.State))
	}
	if p.Requester != "" {
		add("requester = ?", p.Requester)
	}
	if p.RunID != "" {
		add("run_id = ?", p.RunID)
	}
	if p.After != nil {
		args = append(args, micros(p.After.CreatedAt), p.After.ID)
		c, i := len(args)-1, len(args)
		where = append(where, fmt.Sprintf("(created_at_us < $%d OR (created_at_us = $%d AND id < $%d))", c, c, i))
	}
	q := `SELECT ` + requestColumns + ` FROM approval_requests WHERE tenant = $1`
	for _, w := range where {
		q += " AND " + w
	}
	args = append(args, p.Limit)
	q += fmt.Sprintf(" ORDER BY created_at_us DESC, id DESC LIMIT $%d", len(args))
	return s.queryApprovals(ctx, s.sql(q), args...)
}

func (s *sqlCore) queryApprovals(ctx context.Context, q string, args ...any) ([]Approval, error) {
	rs, err := s.pool.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing approval requests: %w", err)
	}
	defer rs.Close()
	var out []Approval
	for rs.Next() {
		a, err := scanApproval(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("listing approval requests: %w", err)
	}
	return out, nil
}

func (s *sqlCore) FindApproved(ctx context.Context, tenant, runID, codeSHA256, policyVersion string) (Approval, error) {
	return scanApproval(s.pool.queryRow(ctx, s.sql(`SELECT `+requestColumns+` FROM approval_requests
		WHERE tenant = $1 AND run_id = $2 AND code_sha256 = $3 AND policy_version = $4 AND state = 'APPROVED'
		ORDER BY created_at_us DESC, id DESC LIMIT 1`), tenant, runID, codeSHA256, policyVersion))
}

func (s *sqlCore) LatestForRun(ctx context.Context, tenant, runID, requester string) (Approval, error) {
	return scanApproval(s.pool.queryRow(ctx, s.sql(`SELECT `+requestColumns+` FROM approval_requests
		WHERE tenant = $1 AND run_id = $2 AND ($3 = '' OR requester = $3)
		ORDER BY created_at_us DESC, id DESC LIMIT 1`), tenant, runID, requester))
}

func (s *sqlCore) Due(ctx context.Context, now time.Time, limit int) ([]Key, error) {
	rs, err := s.pool.query(ctx, s.sql(`SELECT tenant, id FROM approval_requests
		WHERE state = 'PENDING' AND expires_at_us <= $1 ORDER BY expires_at_us LIMIT $2`), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("listing due approval requests: %w", err)
	}
	defer rs.Close()
	var out []Key
	for rs.Next() {
		var k Key
		if err := rs.Scan(&k.Tenant, &k.ID); err != nil {
			return nil, fmt.Errorf("listing due approval requests: %w", err)
		}
		out = append(out, k)
	}
	return out, rs.Err()
}

const eventColumns = `tenant, seq, approval_id, kind, actor, at_us, reason, run_id,
	code_sha256, policy_version, prev_hash, hash`

func (s *sqlCore) Events(ctx context.Context, tenant string, afterSeq int64, limit int) ([]Event, error) {
	rs, err := s.pool.query(ctx, s.sql(`SELECT `+eventColumns+` FROM approval_events
		WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3`), tenant, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("reading audit trail: %w", err)
	}
	defer rs.Close()
	var out []Event
	for rs.Next() {
		e, err := scanEvent(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rs.Err()
}

func (s *sqlCore) LastEvent(ctx context.Context, tenant, approvalID string) (Event, error) {
	return scanEvent(s.pool.queryRow(ctx, s.sql(`SELECT `+eventColumns+` FROM approval_events
		WHERE tenant = $1 AND approval_id = $2 ORDER BY seq DESC LIMIT 1`), tenant, approvalID))
}

func scanEvent(r scanner) (Event, error) {
	var e Event
	var kind string
	var at int64
	err := r.Scan(&e.Tenant, &e.Seq, &e.ApprovalID, &kind, &e.Actor, &at, &e.Reason, &e.RunID,
		&e.CodeSHA256, &e.PolicyVersion, &e.PrevHash, &e.Hash)
	if isNoRows(err) {
		return Event{}, ErrNotFound
	}
	if err != nil {
		return Event{}, fmt.Errorf("reading audit trail: %w", err)
	}
	e.Kind, e.At = EventKind(kind), fromMicros(at)
	return e, nil
}

func (s *sqlCore) ChainHead(ctx context.Context, tenant string) (int64, string, error) {
	var seq int64
	var hash string
	err := s.pool.queryRow(ctx, s.sql(`SELECT seq, hash FROM approval_chain_heads WHERE tenant = $1`), tenant).Scan(&seq, &hash)
	if isNoRows(err) {
		return 0, "", ErrNotFound
	}
	if err != nil {
		return 0, "", fmt.Errorf("reading chain head: %w", err)
	}
	return seq, hash, nil
}

func (s *sqlCore) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	rs, err := s.pool.query(ctx, s.sql(`SELECT gid, tenant, approval_id FROM approval_events
		WHERE gid > $1 ORDER BY gid LIMIT $2`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	defer rs.Close()
	var out []Change
	for rs.Next() {
		var c Change
		if err := rs.Scan(&c.Pos, &c.Tenant, &c.ID); err != nil {
			return nil, fmt.Errorf("reading changes: %w", err)
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

func (s *sqlCore) LastChange(ctx context.Context) (int64, error) {
	var pos int64
	if err := s.pool.queryRow(ctx, s.sql(`SELECT COALESCE(MAX(gid), 0) FROM approval_events`)).Scan(&pos); err != nil {
		return 0, fmt.Errorf("reading last change: %w", err)
	}
	return pos, nil
}

func scanApproval(r scanner) (Approval, error) {
	var a Approval
	var findings, risk, inputs, state string
	var created, expires, decided int64
	err := r.Scan(&a.ID, &a.Tenant, &a.RunID, &a.Requester, &a.Code, &a.CodeSHA256, &a.PolicyID, &a.PolicyVersion,
		&findings, &risk, &inputs, &state, &a.DecidedBy, &a.Reason, &created, &expires, &decided)
	if isNoRows(err) {
		return Approval{}, ErrNotFound
	}
	if err != nil {
		return Approval{}, fmt.Errorf("reading approval request: %w", err)
	}
	a.Risk, a.State = Risk(risk), State(state)
	a.CreatedAt, a.ExpiresAt = fromMicros(created), fromMicros(expires)
	if decided != 0 {
		a.DecidedAt = fromMicros(decided)
	}
	if a.Findings, err = decodeFindings(findings); err != nil {
		return Approval{}, fmt.Errorf("reading findings of %s: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(inputs), &a.Inputs); err != nil {
		return Approval{}, fmt.Errorf("reading inputs of %s: %w", a.ID, err)
	}
	return a, nil
}

// encodeFindings stores findings as a JSON array of protobuf-JSON objects, so
// fields the policy service adds later survive the round trip.
func encodeFindings(fs []*policyv1.Finding) (string, error) {
	parts := make([]string, len(fs))
	for i, f := range fs {
		b, err := protojson.Marshal(f)
		if err != nil {
			return "", fmt.Errorf("encoding finding %d: %w", i, err)
		}
		parts[i] = string(b)
	}
	return "[" + strings.Join(parts, ",") + "]", nil
}

func decodeFindings(s string) ([]*policyv1.Finding, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, err
	}
	out := make([]*policyv1.Finding, len(raw))
	for i, r := range raw {
		out[i] = &policyv1.Finding{}
		if err := protojson.Unmarshal(r, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
