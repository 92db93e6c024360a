// Package database opens the store every stateful service uses: Postgres
// through pgx for clusters, SQLite (pure Go) as the zero-setup default, and
// applies each service's embedded migrations.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names a database engine.
type Dialect string

// Dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open database.
type DB struct {
	// Dialect says which engine this is.
	Dialect Dialect
	// SQL is a database/sql handle for either engine.
	SQL *sql.DB
	// Pool is the native pgx pool; nil for SQLite.
	Pool *pgxpool.Pool
	// URL is the address the database was opened with.
	URL string
}

// IsPostgresURL reports whether url names a Postgres server.
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// CheckURL reports whether Open accepts url: "postgres://...",
// "postgresql://..." or "sqlite:PATH". Anything else is refused rather than
// taken for a SQLite file named after the mistyped URL.
func CheckURL(url string) error {
	switch {
	case url == "":
		return errors.New("database url is empty")
	case IsPostgresURL(url), strings.HasPrefix(url, "sqlite:") && len(url) > len("sqlite:"):
		return nil
	}
	return fmt.Errorf("database url %q: want postgres://... or sqlite:PATH", url)
}

// Open opens url: "postgres://..." for Postgres, "sqlite:PATH" for SQLite
// (its directory is created).
func Open(ctx context.Context, url string) (*DB, error) {
	if err := CheckURL(url); err != nil {
		return nil, err
	}
	if IsPostgresURL(url) {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("parsing postgres url: %w", err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("connecting to postgres: %w", err)
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("connecting to postgres at %s@%s:%d/%s: %w",
				cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
		}
		return &DB{Dialect: Postgres, SQL: stdlib.OpenDBFromPool(pool), Pool: pool, URL: url}, nil
	}
	path := strings.TrimPrefix(url, "sqlite:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating sqlite directory: %w", err)
		}
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1) // each connection would be its own database
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	return &DB{Dialect: SQLite, SQL: db, URL: url}, nil
}

// Ping checks the database answers; it is the stores' health check.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("%s unreachable: %w", db.Dialect, err)
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	err := db.SQL.Close()
	if db.Pool != nil {
		db.Pool.Close()
	}
	return err
}
