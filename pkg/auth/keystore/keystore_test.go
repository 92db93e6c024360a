package keystore

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

// clock is a settable time source shared by a test's stores.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	db    *database.DB
	store *Store
	authn *Authenticator
	clock *clock
}

func setup(t *testing.T, db *database.DB) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
	s := New(db)
	s.now = c.now
	return &fixture{db: db, store: s, authn: NewAuthenticator(s, slog.New(slog.NewTextHandler(io.Discard, nil))), clock: c}
}

func (f *fixture) create(t *testing.T, tenant, subject string, roles ...auth.Role) (Key, string) {
	t.Helper()
	k, token, err := f.store.Create(context.Background(), NewKey{Tenant: tenant, Subject: subject, Roles: roles, CreatedBy: "test"})
	require.NoError(t, err)
	return k, token
}

func (f *fixture) count(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.SQL.QueryRow(`SELECT count(*) FROM auth_api_keys`).Scan(&n))
	return n
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, []database.Migrations{Migrations}, func(t *testing.T, db *database.DB) {
		ctx := context.Background()

		t.Run("a created key authenticates as its principal", func(t *testing.T) {
			f := setup(t, db)
			k, token := f.create(t, "acme", "alice@acme.example", auth.RoleUser, auth.RoleOperator, auth.RoleUser)
			require.Regexp(t, `^alk_[0-9a-f]{16}_[0-9a-f]{64}$`, token)
			require.True(t, strings.HasPrefix(token, TokenPrefix+k.ID+"_"))
			require.Equal(t, []auth.Role{auth.RoleOperator, auth.RoleUser}, k.Roles, "roles deduplicated and sorted")
			p, err := f.authn.Authenticate(ctx, token)
			require.NoError(t, err)
			require.Equal(t, auth.Principal{Tenant: "acme", Subject: "alice@acme.example",
				Roles: []auth.Role{auth.RoleOperator, auth.RoleUser}, KeyID: k.ID}, p)
			got, err := f.store.Get(ctx, "acme", k.ID)
			require.NoError(t, err)
			require.Equal(t, k.CreatedAt, got.CreatedAt)
			require.Equal(t, "test", got.CreatedBy)
		})

		t.Run("the table holds only a hash of the secret", func(t *testing.T) {
			f := setup(t, db)
			k, token := f.create(t, "hashes", "bob", auth.RoleAdmin)
			secret := strings.TrimPrefix(token, TokenPrefix+k.ID+"_")
			rows, err := db.SQL.Query(database.Rebind(db.Dialect, `SELECT * FROM auth_api_keys WHERE id = $1`), k.ID)
			require.NoError(t, err)
			defer rows.Close()
			cols, err := rows.Columns()
			require.NoError(t, err)
			require.True(t, rows.Next())
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			var stored []byte
			for i, v := range vals {
				var s string
				switch v := v.(type) {
				case []byte:
					s = string(v)
				case string:
					s = v
				}
				require.NotContains(t, s, secret, "column %s holds the secret", cols[i])
				require.NotContains(t, s, token, "column %s holds the token", cols[i])
				if cols[i] == "secret_sha256" {
					stored = v.([]byte)
				}
			}
			want := sha256.Sum256([]byte(secret))
			require.Equal(t, want[:], stored)
		})

		t.Run("wrong, malformed and unknown tokens are refused", func(t *testing.T) {
			f := setup(t, db)
			k, token := f.create(t, "wrong", "carol", auth.RoleUser)
			flipped := token[:len(token)-1] + "0" // the same id, another secret
			if strings.HasSuffix(token, "0") {
				flipped = token[:len(token)-1] + "1"
			}
			unknown := TokenPrefix + "0000000000000000_" + strings.Repeat("a", 64)
			for _, bad := range []string{"", "alk_", token + "0", flipped, strings.ToUpper(token), unknown,
				TokenPrefix + k.ID, "Bearer " + token, "alk_" + k.ID + "_" + strings.Repeat("g", 64)} {
				_, err := f.authn.Authenticate(ctx, bad)
				require.ErrorIs(t, err, auth.ErrUnauthenticated, "token %q", bad)
			}
		})

		t.Run("a key revoked here stops working at once", func(t *testing.T) {
			f := setup(t, db)
			k, token := f.create(t, "revoke", "dave", auth.RoleUser)
			_, err := f.authn.Authenticate(ctx, token)
			require.NoError(t, err)
			got, err := f.authn.Revoke(ctx, "revoke", k.ID)
			require.NoError(t, err)
			require.True(t, got.Revoked())
			_, err = f.authn.Authenticate(ctx, token)
			require.ErrorIs(t, err, auth.ErrUnauthenticated)
			again, err := f.authn.Revoke(ctx, "revoke", k.ID)
			require.NoError(t, err, "revoking twice is not an error")
			require.Equal(t, got.RevokedAt, again.RevokedAt, "the first revocation time is kept")
		})

		t.Run("a key revoked elsewhere stops working within the cache TTL", func(t *testing.T) {
			f := setup(t, db)
			k, token := f.create(t, "elsewhere", "erin", auth.RoleUser)
			_, err := f.authn.Authenticate(ctx, token)
			require.NoError(t, err)
			other := New(db) // another server, or the CLI with --database-url
			_, err = other.Revoke(ctx, "", k.ID)
			require.NoError(t, err)
			f.clock.add(f.authn.CacheTTL / 2)
			_, err = f.authn.Authenticate(ctx, token)
			require.NoError(t, err, "still cached: this is the documented bound")
			f.clock.add(f.authn.CacheTTL)
			_, err = f.authn.Authenticate(ctx, token)
			require.ErrorIs(t, err, auth.ErrUnauthenticated)
		})

		t.Run("another tenant's key is not found", func(t *testing.T) {
			f := setup(t, db)
			k, token := f.create(t, "tenant-a", "frank", auth.RoleAdmin)
			_, err := f.store.Get(ctx, "tenant-b", k.ID)
			require.ErrorIs(t, err, ErrNotFound)
			_, err = f.authn.Revoke(ctx, "tenant-b", k.ID)
			require.ErrorIs(t, err, ErrNotFound)
			_, err = f.authn.Authenticate(ctx, token)
			require.NoError(t, err, "a foreign revoke changed nothing")
			_, err = f.store.Revoke(ctx, "tenant-a", "not-a-key-id")
			require.ErrorIs(t, err, ErrNotFound)
			keys, err := f.store.List(ctx, ListParams{Tenant: "tenant-b"})
			require.NoError(t, err)
			require.Empty(t, keys)
		})

		t.Run("list is per tenant, newest first, revoked on request", func(t *testing.T) {
			f := setup(t, db)
			k1, _ := f.create(t, "lister", "one", auth.RoleUser)
			f.clock.add(time.Second)
			k2, _ := f.create(t, "lister", "two", auth.RoleOperator)
			f.clock.add(time.Second)
			k3, _ := f.create(t, "lister", "three", auth.RoleAdmin)
			f.create(t, "lister-other", "x", auth.RoleAdmin)
			_, err := f.store.Revoke(ctx, "lister", k2.ID)
			require.NoError(t, err)
			keys, err := f.store.List(ctx, ListParams{Tenant: "lister"})
			require.NoError(t, err)
			require.Equal(t, []string{k3.ID, k1.ID}, ids(keys))
			keys, err = f.store.List(ctx, ListParams{Tenant: "lister", IncludeRevoked: true})
			require.NoError(t, err)
			require.Equal(t, []string{k3.ID, k2.ID, k1.ID}, ids(keys))
			require.True(t, keys[1].Revoked())
		})

		t.Run("last use is written at most once per interval", func(t *testing.T) {
			f := setup(t, db)
			k, token := f.create(t, "touch", "gina", auth.RoleUser)
			got, err := f.store.Get(ctx, "", k.ID)
			require.NoError(t, err)
			require.True(t, got.LastUsedAt.IsZero())
			start := f.clock.now()
			_, err = f.authn.Authenticate(ctx, token)
			require.NoError(t, err)
			got, err = f.store.Get(ctx, "", k.ID)
			require.NoError(t, err)
			require.Equal(t, start, got.LastUsedAt)
			f.clock.add(30 * time.Second) // past the cache TTL, within the touch interval
			_, err = f.authn.Authenticate(ctx, token)
			require.NoError(t, err)
			got, err = f.store.Get(ctx, "", k.ID)
			require.NoError(t, err)
			require.Equal(t, start, got.LastUsedAt, "no write within the interval")
			f.clock.add(31 * time.Second)
			_, err = f.authn.Authenticate(ctx, token)
			require.NoError(t, err)
			got, err = f.store.Get(ctx, "", k.ID)
			require.NoError(t, err)
			require.Equal(t, start.Add(61*time.Second), got.LastUsedAt)
		})

		t.Run("bad input names the field and stores nothing", func(t *testing.T) {
			f := setup(t, db)
			before := f.count(t)
			for _, tc := range []struct {
				n     NewKey
				field string
			}{
				{NewKey{Subject: "s", Roles: []auth.Role{auth.RoleUser}}, "tenant"},
				{NewKey{Tenant: "Upper", Subject: "s", Roles: []auth.Role{auth.RoleUser}}, "tenant"},
				{NewKey{Tenant: "_system", Subject: "s", Roles: []auth.Role{auth.RoleUser}}, "tenant"},
				{NewKey{Tenant: "t", Roles: []auth.Role{auth.RoleUser}}, "subject"},
				{NewKey{Tenant: "t", Subject: "a b", Roles: []auth.Role{auth.RoleUser}}, "subject"},
				{NewKey{Tenant: "t", Subject: "s"}, "roles"},
				{NewKey{Tenant: "t", Subject: "s", Roles: []auth.Role{auth.RoleService}}, "roles"},
				{NewKey{Tenant: "t", Subject: "s", Roles: []auth.Role{"root"}}, "roles"},
			} {
				_, _, err := f.store.Create(ctx, tc.n)
				var inv *InvalidError
				require.True(t, errors.As(err, &inv), "%+v: %v", tc.n, err)
				require.Equal(t, tc.field, inv.Field)
			}
			require.Equal(t, before, f.count(t))
		})
	})
}

func ids(keys []Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func TestParseRoles(t *testing.T) {
	t.Parallel()
	roles, err := ParseRoles("user", "operator, admin", "")
	require.NoError(t, err)
	require.Equal(t, []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleAdmin}, roles)
	_, err = ParseRoles("service")
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "roles", inv.Field)
}
