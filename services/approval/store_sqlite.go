package approval

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/airlockhq/airlock/pkg/database"
)

// SQLiteStore is the Store on SQLite. Its transactions begin IMMEDIATE (see
// database.Open), so the database's single write lock serialises appends.
type SQLiteStore struct {
	sqlCore
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

// NewSQLiteStore returns a store on db, which must be SQLite.
func NewSQLiteStore(db *database.DB) *SQLiteStore {
	s := &SQLiteStore{db: db.SQL}
	s.sqlCore = sqlCore{
		dialect:  database.SQLite,
		pool:     sqlQuerier{db.SQL},
		announce: func(context.Context, querier, Change) error { return nil }, // watchers poll Changes
	}
	s.inTx = func(ctx context.Context, fn func(q querier) error) error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("beginning transaction: %w", err)
		}
		if err := fn(sqlQuerier{tx}); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("committing: %w", err)
		}
		return nil
	}
	return s
}

type sqlQuerier struct {
	c interface {
		ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	}
}

func (s sqlQuerier) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.c.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s sqlQuerier) query(ctx context.Context, q string, args ...any) (rows, error) {
	rs, err := s.c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (s sqlQuerier) queryRow(ctx context.Context, q string, args ...any) scanner {
	return s.c.QueryRowContext(ctx, q, args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
