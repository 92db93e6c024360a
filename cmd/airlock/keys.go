package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keyservice"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/database"
)

// keyAuthenticator returns the authenticator for API keys stored in the
// database, or nil when the server has no database (then only the service
// token authenticates). In dev it also makes sure an admin key exists and is
// saved in --data-dir/admin.key.
func keyAuthenticator(ctx context.Context, env *serviceEnv, dev bool) (auth.Authenticator, error) {
	if env.DB == nil {
		return nil, nil
	}
	a := keystore.NewAuthenticator(keystore.New(env.DB), env.Log)
	if dev {
		if err := ensureDevAdminKey(ctx, a, env.DataDir, env.Log); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// registerKeyService serves the admin-only KeyService wherever API keys are
// authenticated against a database.
func registerKeyService(env *serviceEnv, authn auth.Authenticator) {
	a, ok := authn.(*keystore.Authenticator)
	if !ok {
		return
	}
	authv1.RegisterKeyServiceServer(env.Server.GRPC(), keyservice.New(a, env.Log))
}

// extraRules are role rules for RPCs that belong to no service spec (key management).
func extraRules() auth.Rules { return keyservice.Rules() }

// extraMigrations are schema migrations that belong to no service spec (API keys).
func extraMigrations() []database.Migrations { return []database.Migrations{keystore.Migrations} }

// Dev's admin principal.
const (
	devAdminTenant  = "default"
	devAdminSubject = "admin"
)

// ensureDevAdminKey reuses the admin key saved in dataDir when it still
// authenticates as an admin, and otherwise creates one and saves it (mode 0600).
func ensureDevAdminKey(ctx context.Context, a *keystore.Authenticator, dataDir string, log *slog.Logger) error {
	path := filepath.Join(dataDir, devAdminKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		token := strings.TrimSpace(string(b))
		p, err := a.Authenticate(ctx, token)
		switch {
		case err == nil && p.Has(auth.RoleAdmin):
			log.Info("using the admin key saved earlier", "path", path, "key_id", p.KeyID)
			return nil
		case err != nil && !errors.Is(err, auth.ErrUnauthenticated):
			return fmt.Errorf("checking the admin key in %s: %w", path, err)
		}
		log.Warn("the saved admin key no longer works (revoked, or a new database); creating another", "path", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading the admin key: %w", err)
	}
	k, token, err := a.Store().Create(ctx, keystore.NewKey{
		Tenant: devAdminTenant, Subject: devAdminSubject, Roles: []auth.Role{auth.RoleAdmin}, CreatedBy: "airlock dev",
	})
	if err != nil {
		return fmt.Errorf("creating the dev admin key: %w", err)
	}
	if err := writeSecretFile(path, token+"\n"); err != nil {
		return fmt.Errorf("saving the dev admin key: %w", err)
	}
	log.Info("created an admin key; the CLI finds it here (AIRLOCK_TOKEN overrides)", "path", path, "key_id", k.ID,
		"tenant", k.Tenant, "subject", k.Subject)
	return nil
}

// writeSecretFile writes data to path readable by its owner only, atomically.
func writeSecretFile(path, data string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".admin-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) //nolint:errcheck // gone after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
