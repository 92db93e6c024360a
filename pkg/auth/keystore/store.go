package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
)

// Store keeps API keys in the auth_api_keys table of a Postgres or SQLite database.
type Store struct {
	db  *database.DB
	now func() time.Time
}

// New returns a store over db, which must have Migrations applied.
func New(db *database.DB) *Store {
	return &Store{db: db, now: time.Now}
}

// Create stores a new key and returns it with its token. The token is not
// stored anywhere and cannot be recovered: only the SHA-256 of its secret is kept.
func (s *Store) Create(ctx context.Context, n NewKey) (Key, string, error) {
	n, err := n.Validate()
	if err != nil {
		return Key{}, "", err
	}
	id, token, hash := newToken()
	k := Key{ID: id, Tenant: n.Tenant, Subject: n.Subject, Roles: n.Roles, CreatedBy: n.CreatedBy,
		CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	_, err = s.db.SQL.ExecContext(ctx, s.q(`INSERT INTO auth_api_keys
		(id, tenant, subject, roles, secret_sha256, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
		k.ID, k.Tenant, k.Subject, joinRoles(k.Roles), hash, k.CreatedBy, s.timeArg(k.CreatedAt))
	if err != nil {
		return Key{}, "", fmt.Errorf("storing api key: %w", err)
	}
	return k, token, nil
}

const keyColumns = `id, tenant, subject, roles, created_by, created_at, revoked_at, last_used_at`

// lookup returns the key with id and the stored hash of its secret.
func (s *Store) lookup(ctx context.Context, id string) (Key, []byte, error) {
	row := s.db.SQL.QueryRowContext(ctx, s.q(`SELECT `+keyColumns+`, secret_sha256 FROM auth_api_keys WHERE id = $1`), id)
	var hash []byte
	k, err := s.scan(row, &hash)
	if err != nil {
		return Key{}, nil, err
	}
	return k, hash, nil
}

// Get returns the key with id. A non-empty tenant restricts the lookup to
// that tenant: another tenant's key is ErrNotFound, exactly like a missing one.
func (s *Store) Get(ctx context.Context, tenant, id string) (Key, error) {
	k, _, err := s.lookup(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if tenant != "" && k.Tenant != tenant {
		return Key{}, ErrNotFound
	}
	return k, nil
}

// ListParams selects keys to list.
type ListParams struct {
	// Tenant restricts the list to one tenant; empty lists every tenant's keys
	// (only direct database access does that).
	Tenant string
	// IncludeRevoked also lists revoked keys.
	IncludeRevoked bool
}

// List returns keys, newest first.
func (s *Store) List(ctx context.Context, p ListParams) ([]Key, error) {
	q := `SELECT ` + keyColumns + ` FROM auth_api_keys WHERE ($1 = '' OR tenant = $1)`
	if !p.IncludeRevoked {
		q += ` AND revoked_at IS NULL`
	}
	q += ` ORDER BY created_at DESC, id`
	rows, err := s.db.SQL.QueryContext(ctx, s.q(q), p.Tenant)
	if err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		k, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	return keys, nil
}

// Revoke revokes the key with id; revoking a revoked key keeps its first
// revocation time. A non-empty tenant restricts it to that tenant's keys.
func (s *Store) Revoke(ctx context.Context, tenant, id string) (Key, error) {
	if !IsKeyID(id) {
		return Key{}, ErrNotFound
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	res, err := s.db.SQL.ExecContext(ctx, s.q(`UPDATE auth_api_keys SET revoked_at = COALESCE(revoked_at, $1)
		WHERE id = $2 AND ($3 = '' OR tenant = $3)`), s.timeArg(now), id, tenant)
	if err != nil {
		return Key{}, fmt.Errorf("revoking api key: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return Key{}, ErrNotFound
	}
	return s.Get(ctx, tenant, id)
}

// Touch records that key id was used at t, unless it was already recorded
// as used at or after t minus interval: a key used constantly costs one
// write per interval, not one per call.
func (s *Store) Touch(ctx context.Context, id string, t time.Time, interval time.Duration) error {
	t = t.UTC().Truncate(time.Microsecond)
	_, err := s.db.SQL.ExecContext(ctx, s.q(`UPDATE auth_api_keys SET last_used_at = $1
		WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)`),
		s.timeArg(t), id, s.timeArg(t.Add(-interval)))
	if err != nil {
		return fmt.Errorf("recording api key use: %w", err)
	}
	return nil
}

func (s *Store) q(query string) string { return database.Rebind(s.db.Dialect, query) }

// timeArg renders t for the dialect: timestamptz on Postgres, Unix
// microseconds on SQLite (which has no time type).
func (s *Store) timeArg(t time.Time) any {
	if s.db.Dialect == database.SQLite {
		return t.UnixMicro()
	}
	return t
}

type scanner interface{ Scan(dest ...any) error }

func (s *Store) scan(row scanner, extra ...any) (Key, error) {
	var k Key
	var roles string
	var created, revoked, used dbTime
	dest := append([]any{&k.ID, &k.Tenant, &k.Subject, &roles, &k.CreatedBy, &created, &revoked, &used}, extra...)
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, ErrNotFound
		}
		return Key{}, fmt.Errorf("reading api key: %w", err)
	}
	for r := range strings.SplitSeq(roles, ",") {
		if role, ok := auth.ParseRole(r); ok {
			k.Roles = append(k.Roles, role)
		}
	}
	k.CreatedAt, k.RevokedAt, k.LastUsedAt = created.t, revoked.t, used.t
	return k, nil
}

// dbTime scans a timestamptz, Unix microseconds or NULL (the zero time).
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		d.t = time.Time{}
	case time.Time:
		d.t = v.UTC()
	case int64:
		d.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("unexpected time value %T", v)
	}
	return nil
}

func joinRoles(roles []auth.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}
