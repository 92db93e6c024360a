package main

import (
	"context"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
)

// keyAuthenticator returns the authenticator for API keys stored in the
// database, or nil while API keys are not built yet.
func keyAuthenticator(_ context.Context, _ *serviceEnv, _ bool) (auth.Authenticator, error) {
	return nil, nil
}

// extraRules are role rules for RPCs that belong to no service spec (key management).
func extraRules() auth.Rules { return auth.Rules{} }

// extraMigrations are schema migrations that belong to no service spec (API keys).
func extraMigrations() []database.Migrations { return nil }
