package database

import (
	"context"

	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migrations are one component's numbered SQL files, embedded by the
// component: FS holds "postgres/NNNN_name.sql" and "sqlite/NNNN_name.sql".
type Migrations struct {
	// Component names the owner, such as "budget"; versions are per component.
	Component string
	// FS holds the files.
	FS fs.FS
}

type migration struct {
	version int
	name    string
	sql     string
}

func (m Migrations) load(d Dialect) ([]migration, error) {
	dir := string(d)
	entries, err := fs.ReadDir(m.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s migrations of %s: %w", d, m.Component, err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s/%s of %s: name must start with a positive number and '_'", dir, e.Name(), m.Component)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s of %s share version %d", prev, e.Name(), m.Component, v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(m.FS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies every migration of each component that db has not applied
// yet, each in its own transaction. It is safe to run twice and from two
// processes at once: on Postgres an advisory lock serialises runners, on
// SQLite the write lock does.
func Migrate(ctx context.Context, db *DB, sets ...Migrations) error {
	for _, set := range sets {
		migs, err := set.load(db.Dialect)
		if err != nil {
			return err
		}
		for _, m := range migs {
			if err := db.apply(ctx, set.Component, m); err != nil {
				return err
			}
		}
	}
	return nil
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS airlock_schema_migrations (
	component TEXT NOT NULL,
	version INTEGER NOT NULL,
	name TEXT NOT NULL,
	applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (component, version)
)`

func (db *DB) apply(ctx context.Context, component string, m migration) error {
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating %s: %w", component, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if db.Dialect == Postgres {
		// One lock for all runners: CREATE TABLE IF NOT EXISTS itself races.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7394215)`); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, migrationsTable); err != nil {
		return fmt.Errorf("creating the migrations table: %w", err)
	}
	var n int
	q := `SELECT count(*) FROM airlock_schema_migrations WHERE component = $1 AND version = $2`
	if err := tx.QueryRowContext(ctx, q, component, m.version).Scan(&n); err != nil {
		return fmt.Errorf("reading applied migrations of %s: %w", component, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("applying migration %s of %s: %w", m.name, component, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO airlock_schema_migrations (component, version, name) VALUES ($1, $2, $3)`,
		component, m.version, m.name); err != nil {
		return fmt.Errorf("recording migration %s of %s: %w", m.name, component, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migration %s of %s: %w", m.name, component, err)
	}
	return nil
}

// Rebind turns $1-style placeholders into ?-style for SQLite. Stores write
// Postgres placeholders and call Rebind once per query.
func Rebind(d Dialect, q string) string {
	if d != SQLite {
		return q
	}
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '$' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
			b.WriteString("?")
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteString(q[i+1 : j])
			i = j - 1
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
