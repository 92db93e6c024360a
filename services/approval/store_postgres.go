package approval

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/pkg/database"
)

// NotifyChannel is the Postgres channel every write announces its change on,
// inside its transaction, so listeners hear of it exactly when it commits.
const NotifyChannel = "airlock_approval_changes"

// PostgresStore is the Store on Postgres, through pgx. Appends to a tenant's
// trail are serialised by SELECT ... FOR UPDATE on the tenant's chain-head row.
type PostgresStore struct {
	sqlCore
	pool *pgxpool.Pool
}

var _ Store = (*PostgresStore)(nil)

// NewPostgresStore returns a store on db, which must be Postgres.
func NewPostgresStore(db *database.DB) *PostgresStore {
	s := &PostgresStore{pool: db.Pool}
	s.sqlCore = sqlCore{
		dialect:   database.Postgres,
		pool:      pgxQuerier{db.Pool},
		forUpdate: " FOR UPDATE",
		announce: func(ctx context.Context, q querier, ch Change) error {
			payload, _ := json.Marshal(notification{Pos: ch.Pos, Tenant: ch.Tenant, ID: ch.ID})
			if _, err := q.exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, string(payload)); err != nil {
				return fmt.Errorf("announcing change: %w", err)
			}
			return nil
		},
	}
	s.inTx = func(ctx context.Context, fn func(q querier) error) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(pgxQuerier{tx}) })
	}
	return s
}

// notification is the payload of a NOTIFY on NotifyChannel.
type notification struct {
	Pos    int64  `json:"pos"`
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
}

type pgxQuerier struct {
	c interface {
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (p pgxQuerier) exec(ctx context.Context, q string, args ...any) (int64, error) {
	// Exec through Query keeps one small interface for pools and transactions.
	rs, err := p.c.Query(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	rs.Close()
	return rs.CommandTag().RowsAffected(), rs.Err()
}

func (p pgxQuerier) query(ctx context.Context, q string, args ...any) (rows, error) {
	rs, err := p.c.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgxRows{rs}, nil
}

func (p pgxQuerier) queryRow(ctx context.Context, q string, args ...any) scanner {
	return p.c.QueryRow(ctx, q, args...)
}

type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() { r.Rows.Close() }

// isNoRows translates both drivers' "no rows" in one place.
func isNoRows(err error) bool {
	return errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows)
}
