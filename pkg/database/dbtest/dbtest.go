// Package dbtest gives each test its own empty database: a fresh Postgres
// database on the server named by AIRLOCK_TEST_DATABASE_URL, or a fresh SQLite
// file in the test's temporary directory.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/pkg/database"
)

// DefaultPostgresURL is used when AIRLOCK_TEST_DATABASE_URL is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL returns the admin URL tests create databases through.
func PostgresURL() string {
	if u := os.Getenv("AIRLOCK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// NewPostgresURL creates an empty database and returns its URL; the database
// is dropped when the test ends. A test that asks for Postgres fails, never
// skips, when the server cannot be reached.
func NewPostgresURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := PostgresURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to test Postgres at AIRLOCK_TEST_DATABASE_URL (%s): %v", admin, err)
	}
	defer conn.Close(ctx)
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	name := "airlock_test_" + hex.EncodeToString(buf[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("dropping test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parsing AIRLOCK_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewSQLiteURL returns the URL of a fresh SQLite file in t's temp dir.
func NewSQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

// Open opens url and closes it when the test ends.
func Open(t testing.TB, url string, migrations ...database.Migrations) *database.DB {
	t.Helper()
	ctx := context.Background()
	db, err := database.Open(ctx, url)
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := database.Migrate(ctx, db, migrations...); err != nil {
		t.Fatalf("migrating test database: %v", err)
	}
	return db
}

// Each runs fn once per dialect, as subtests named "postgres" and "sqlite",
// each with its own migrated database: the shape of a store conformance suite.
func Each(t *testing.T, migrations []database.Migrations, fn func(t *testing.T, db *database.DB)) {
	t.Helper()
	for _, d := range []database.Dialect{database.Postgres, database.SQLite} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			var u string
			if d == database.Postgres {
				u = NewPostgresURL(t)
			} else {
				u = NewSQLiteURL(t)
			}
			fn(t, Open(t, u, migrations...))
		})
	}
}
