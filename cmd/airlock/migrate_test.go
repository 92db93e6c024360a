package main

import (
	"bytes"
	"context"
	"io/fs"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

// appliedMigration is one row of airlock_schema_migrations.
type appliedMigration struct {
	Component string
	Version   int
	Name      string
	AppliedAt string
}

// expectedMigrations lists every migration file `airlock migrate` embeds for
// dialect, as "component/file".
func expectedMigrations(t *testing.T, d database.Dialect) []string {
	t.Helper()
	var sets []database.Migrations
	for _, s := range allServices() {
		sets = append(sets, s.Migrations...)
	}
	sets = append(sets, extraMigrations()...)
	var out []string
	for _, set := range sets {
		entries, err := fs.ReadDir(set.FS, string(d))
		require.NoError(t, err, "%s has no %s migrations", set.Component, d)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, set.Component+"/"+e.Name())
			}
		}
	}
	require.NotEmpty(t, out)
	return out
}

func readApplied(t *testing.T, url string) []appliedMigration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, url)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.SQL.QueryContext(ctx, `SELECT component, version, name, CAST(applied_at AS TEXT)
		FROM airlock_schema_migrations ORDER BY component, version`)
	require.NoError(t, err)
	defer rows.Close()
	var out []appliedMigration
	for rows.Next() {
		var m appliedMigration
		require.NoError(t, rows.Scan(&m.Component, &m.Version, &m.Name, &m.AppliedAt))
		out = append(out, m)
	}
	require.NoError(t, rows.Err())
	return out
}

// migrateProcesses runs n `airlock migrate` processes against url at once:
// they are all started before any is waited for. Half get the URL by flag,
// half by DATABASE_URL, as the Job and the init containers do.
func migrateProcesses(t *testing.T, bin, url string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type result struct {
		out []byte
		err error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, bin, "migrate")
			if i%2 == 0 {
				cmd.Args = append(cmd.Args, "--database-url", url)
				cmd.Env = opsEnv(nil)
			} else {
				cmd.Env = opsEnv(map[string]string{"DATABASE_URL": url})
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			<-start
			err := cmd.Run()
			results[i] = result{out.Bytes(), err}
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		require.NoError(t, r.err, "migrate process %d: %s", i, r.out)
		require.Contains(t, string(r.out), "migrations applied to", "process %d", i)
	}
}

// TestMigrateTwiceAndConcurrentlyOnPostgres is what a rollout does: several
// pods run `airlock migrate` against one fresh Postgres at the same moment,
// and later ones run it again. Every run succeeds, each migration is applied
// exactly once, and a later run changes nothing.
func TestMigrateTwiceAndConcurrentlyOnPostgres(t *testing.T) {
	t.Parallel()
	bin := opsBinary(t)
	url := dbtest.NewPostgresURL(t)
	want := expectedMigrations(t, database.Postgres)

	migrateProcesses(t, bin, url, 4)
	first := readApplied(t, url)
	var got []string
	for _, m := range first {
		got = append(got, m.Component+"/"+m.Name)
	}
	require.ElementsMatch(t, want, got, "every embedded migration applied exactly once")

	// The services' tables are there: every component's schema, not just the ledger of it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, url)
	require.NoError(t, err)
	defer db.Close()
	var tables int
	require.NoError(t, db.SQL.QueryRowContext(ctx,
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'airlock_schema_migrations'`).Scan(&tables))
	require.Greater(t, tables, 0)

	// Twice more, two at once: nothing is re-applied.
	migrateProcesses(t, bin, url, 2)
	require.Equal(t, first, readApplied(t, url), "a second run must change nothing")
}

// TestMigrateTwiceAndConcurrentlyOnSQLite: the same on one SQLite file, where
// the write lock serialises the runners.
func TestMigrateTwiceAndConcurrentlyOnSQLite(t *testing.T) {
	t.Parallel()
	bin := opsBinary(t)
	url := dbtest.NewSQLiteURL(t)
	migrateProcesses(t, bin, url, 2)
	first := readApplied(t, url)
	var got []string
	for _, m := range first {
		got = append(got, m.Component+"/"+m.Name)
	}
	require.ElementsMatch(t, expectedMigrations(t, database.SQLite), got)
	migrateProcesses(t, bin, url, 2)
	require.Equal(t, first, readApplied(t, url))
}

// TestMigrateBadURLNamesTheSetting: a wrong URL fails naming the flag.
func TestMigrateBadURLNamesTheSetting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"migrate", "--database-url", "mysql://x"}, &out, &out)
	require.ErrorContains(t, err, "--database-url")
}
