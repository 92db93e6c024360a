package database_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

func testMigrations() database.Migrations {
	return database.Migrations{Component: "widgets", FS: fstest.MapFS{
		"postgres/0001_create.sql": {Data: []byte(`CREATE TABLE widgets (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)`)},
		"postgres/0002_color.sql":  {Data: []byte(`ALTER TABLE widgets ADD COLUMN color TEXT NOT NULL DEFAULT 'red'`)},
		"sqlite/0001_create.sql":   {Data: []byte(`CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)},
		"sqlite/0002_color.sql":    {Data: []byte(`ALTER TABLE widgets ADD COLUMN color TEXT NOT NULL DEFAULT 'red'`)},
	}}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	for _, d := range []database.Dialect{database.Postgres, database.SQLite} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			url := dbtest.NewSQLiteURL(t)
			if d == database.Postgres {
				url = dbtest.NewPostgresURL(t)
			}
			ctx := context.Background()
			// Four runners at once, as four pods starting together would.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := database.Open(ctx, url)
					if err != nil {
						errs[i] = err
						return
					}
					defer db.Close()
					errs[i] = database.Migrate(ctx, db, testMigrations())
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			db := dbtest.Open(t, url, testMigrations()) // and once more
			require.Equal(t, d, db.Dialect)
			var n int
			require.NoError(t, db.SQL.QueryRowContext(ctx,
				`SELECT count(*) FROM airlock_schema_migrations WHERE component = 'widgets'`).Scan(&n))
			require.Equal(t, 2, n, "each migration recorded once")
			_, err := db.SQL.ExecContext(ctx, database.Rebind(d, `INSERT INTO widgets (name) VALUES ($1)`), "a")
			require.NoError(t, err)
			var color string
			require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT color FROM widgets`).Scan(&color))
			require.Equal(t, "red", color)
		})
	}
}

func TestMigrateRejectsBadNamesAndLeavesNothingHalfDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t))
	bad := database.Migrations{Component: "bad", FS: fstest.MapFS{"sqlite/create.sql": {Data: []byte(`SELECT 1`)}}}
	require.ErrorContains(t, database.Migrate(ctx, db, bad), "create.sql")

	broken := database.Migrations{Component: "broken", FS: fstest.MapFS{
		"sqlite/0001_ok.sql":     {Data: []byte(`CREATE TABLE ok_table (id INTEGER)`)},
		"sqlite/0002_broken.sql": {Data: []byte(`CREATE TABLE half (id INTEGER); NOT SQL`)},
	}}
	err := database.Migrate(ctx, db, broken)
	require.ErrorContains(t, err, "0002_broken.sql")
	var n int
	require.NoError(t, db.SQL.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE name = 'half'`).Scan(&n))
	require.Zero(t, n, "a failed migration is rolled back whole")
	require.NoError(t, db.SQL.QueryRowContext(ctx,
		`SELECT count(*) FROM airlock_schema_migrations WHERE component = 'broken'`).Scan(&n))
	require.Equal(t, 1, n, "the good migration before it stays applied")
}

func TestRebind(t *testing.T) {
	t.Parallel()
	require.Equal(t, "SELECT ?1, ?2, '$x' FROM t WHERE a = ?10",
		database.Rebind(database.SQLite, "SELECT $1, $2, '$x' FROM t WHERE a = $10"))
	require.Equal(t, "SELECT $1", database.Rebind(database.Postgres, "SELECT $1"))
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := database.Open(ctx, "")
	require.Error(t, err)
	for _, bad := range []string{"mysql://x", "file:/tmp/x.db", "/tmp/x.db", "sqlite:"} {
		_, err = database.Open(ctx, bad)
		require.ErrorContains(t, err, "want postgres://... or sqlite:PATH", bad)
	}
	_, err = database.Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.ErrorContains(t, err, "connecting to postgres")
}
