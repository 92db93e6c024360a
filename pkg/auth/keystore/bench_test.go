package keystore

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

// BenchmarkAuthenticate measures one API key check: from the cache (the
// common case, every call within CacheTTL of the last read) and from the
// database (a cold key, or every call with the cache turned off).
func BenchmarkAuthenticate(b *testing.B) {
	for _, tc := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", dbtest.NewSQLiteURL},
		{"postgres", dbtest.NewPostgresURL},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := dbtest.Open(b, tc.url(b), Migrations)
			f := setupBench(b, db)
			_, token, err := f.store.Create(context.Background(), NewKey{Tenant: "bench", Subject: "b", Roles: []auth.Role{auth.RoleUser}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.Run("cached", func(b *testing.B) {
				for b.Loop() {
					if _, err := f.authn.Authenticate(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("database", func(b *testing.B) {
				f.authn.CacheTTL = 0
				defer func() { f.authn.CacheTTL = DefaultCacheTTL }()
				for b.Loop() {
					if _, err := f.authn.Authenticate(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func setupBench(b *testing.B, db *database.DB) *fixture {
	b.Helper()
	s := New(db)
	return &fixture{db: db, store: s, authn: NewAuthenticator(s, slog.New(slog.DiscardHandler)), clock: &clock{t: time.Now()}}
}
