package keystore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/database"
)

// A key is created once, handed to its owner, and from then on only its
// hash is compared.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keystore-example")
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "keys.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := database.Migrate(ctx, db, keystore.Migrations); err != nil {
		panic(err)
	}
	store := keystore.New(db)
	authn := keystore.NewAuthenticator(store, slog.New(slog.DiscardHandler))

	_, token, err := store.Create(ctx, keystore.NewKey{Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}})
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(token, keystore.TokenPrefix))

	p, err := authn.Authenticate(ctx, token)
	fmt.Println(p.Tenant, p.Subject, p.Roles, err)

	_, err = authn.Revoke(ctx, "acme", p.KeyID)
	fmt.Println(err)
	_, err = authn.Authenticate(ctx, token)
	fmt.Println(err)
	// Output:
	// true
	// acme alice [user] <nil>
	// <nil>
	// invalid credentials
}
