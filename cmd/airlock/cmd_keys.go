package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	"github.com/airlockhq/airlock/pkg/auth/keyservice"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/database"
)

// newKeysCmd manages API keys. By default it calls the server's admin-only
// KeyService (AIRLOCK_ADDR, with the admin key from AIRLOCK_TOKEN or
// ./.airlock/admin.key), which confines an admin to its own tenant. With
// --database-url (or DATABASE_URL) it works on the database directly, across
// tenants: that is how a cluster's first admin key is made.
func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (admin)",
	}
	var dbURL string
	cmd.PersistentFlags().StringVar(&dbURL, "database-url", "",
		"work on this database directly (postgres://... or sqlite:PATH; env DATABASE_URL) instead of calling the server; for bootstrapping")
	cmd.AddCommand(newKeysCreateCmd(&dbURL), newKeysListCmd(&dbURL), newKeysRevokeCmd(&dbURL))
	return cmd
}

// keysBackend is where key commands act: the server's KeyService or the database.
type keysBackend interface {
	create(ctx context.Context, tenant, subject string, roles []string) (*authv1.ApiKey, string, error)
	list(ctx context.Context, tenant string, includeRevoked bool) ([]*authv1.ApiKey, error)
	revoke(ctx context.Context, id string) (*authv1.ApiKey, error)
}

func openKeysBackend(cmd *cobra.Command, dbURL *string) (keysBackend, error) {
	// Only --database-url comes from the environment (AIRLOCK_DATABASE_URL,
	// then DATABASE_URL, as for serve); --tenant, --role and the rest never do.
	env := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	env.AddFlag(cmd.Flag("database-url"))
	if err := config.ApplyEnv(env, envAliases); err != nil {
		return nil, err
	}
	if *dbURL == "" {
		conn, err := dialClient(cmd)
		if err != nil {
			return nil, err
		}
		return grpcKeys{authv1.NewKeyServiceClient(conn)}, nil
	}
	db, err := database.Open(cmd.Context(), *dbURL)
	if err != nil {
		return nil, fmt.Errorf("opening database (--database-url): %w", err)
	}
	closeOnReturn(cmd, func() { db.Close() })
	// Bootstrapping a fresh database must be one command: the auth
	// migrations are idempotent and safe to run concurrently.
	if err := database.Migrate(cmd.Context(), db, keystore.Migrations); err != nil {
		return nil, err
	}
	return dbKeys{keystore.New(db)}, nil
}

type grpcKeys struct{ c authv1.KeyServiceClient }

func (g grpcKeys) create(ctx context.Context, tenant, subject string, roles []string) (*authv1.ApiKey, string, error) {
	resp, err := g.c.CreateKey(ctx, &authv1.CreateKeyRequest{Tenant: tenant, Subject: subject, Roles: roles})
	if err != nil {
		return nil, "", err
	}
	return resp.GetKey(), resp.GetToken(), nil
}

func (g grpcKeys) list(ctx context.Context, tenant string, includeRevoked bool) ([]*authv1.ApiKey, error) {
	if tenant != "" {
		return nil, errors.New("--tenant filters only with --database-url; the server lists your own tenant's keys")
	}
	resp, err := g.c.ListKeys(ctx, &authv1.ListKeysRequest{IncludeRevoked: includeRevoked})
	if err != nil {
		return nil, err
	}
	return resp.GetKeys(), nil
}

func (g grpcKeys) revoke(ctx context.Context, id string) (*authv1.ApiKey, error) {
	resp, err := g.c.RevokeKey(ctx, &authv1.RevokeKeyRequest{Id: id})
	if err != nil {
		return nil, err
	}
	return resp.GetKey(), nil
}

type dbKeys struct{ s *keystore.Store }

func (d dbKeys) create(ctx context.Context, tenant, subject string, roles []string) (*authv1.ApiKey, string, error) {
	rs, err := keystore.ParseRoles(roles...)
	if err != nil {
		return nil, "", err
	}
	by := "airlock keys (database)"
	if u := os.Getenv("USER"); u != "" {
		by += " as " + u
	}
	k, token, err := d.s.Create(ctx, keystore.NewKey{Tenant: tenant, Subject: subject, Roles: rs, CreatedBy: by})
	if err != nil {
		return nil, "", err
	}
	return keyservice.ToProto(k), token, nil
}

func (d dbKeys) list(ctx context.Context, tenant string, includeRevoked bool) ([]*authv1.ApiKey, error) {
	keys, err := d.s.List(ctx, keystore.ListParams{Tenant: tenant, IncludeRevoked: includeRevoked})
	if err != nil {
		return nil, err
	}
	out := make([]*authv1.ApiKey, len(keys))
	for i, k := range keys {
		out[i] = keyservice.ToProto(k)
	}
	return out, nil
}

func (d dbKeys) revoke(ctx context.Context, id string) (*authv1.ApiKey, error) {
	k, err := d.s.Revoke(ctx, "", id)
	if err != nil {
		return nil, err
	}
	return keyservice.ToProto(k), nil
}

func newKeysCreateCmd(dbURL *string) *cobra.Command {
	var tenant, subject string
	var roles []string
	cmd := &cobra.Command{
		Use:   "create --tenant T --subject S --role user|operator|admin",
		Short: "Create an API key; its token is printed once, on stdout, and never stored",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subject == "" {
				return errors.New("--subject is required")
			}
			if len(roles) == 0 {
				return errors.New("--role is required: user, operator or admin (repeat or comma-separate for several)")
			}
			b, err := openKeysBackend(cmd, dbURL)
			if err != nil {
				return err
			}
			k, token, err := b.create(cmd.Context(), tenant, subject, roles)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created key %s for %s/%s (%s); the token below is shown only now:\n",
				k.GetId(), k.GetTenant(), k.GetSubject(), strings.Join(k.GetRoles(), ","))
			fmt.Fprintln(cmd.OutOrStdout(), token)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant of the key (over the server: empty or your own tenant)")
	cmd.Flags().StringVar(&subject, "subject", "", "who the key is for, such as alice@example.com or etl-job")
	cmd.Flags().StringSliceVar(&roles, "role", nil, "user, operator or admin; repeat for several")
	return cmd
}

func newKeysListCmd(dbURL *string) *cobra.Command {
	var tenant string
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := openKeysBackend(cmd, dbURL)
			if err != nil {
				return err
			}
			keys, err := b.list(cmd.Context(), tenant, all)
			if err != nil {
				return err
			}
			return printKeys(cmd.OutOrStdout(), keys)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's keys (with --database-url)")
	cmd.Flags().BoolVar(&all, "all", false, "include revoked keys")
	return cmd
}

func newKeysRevokeCmd(dbURL *string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key; servers stop accepting it within " + keystore.DefaultCacheTTL.String(),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openKeysBackend(cmd, dbURL)
			if err != nil {
				return err
			}
			k, err := b.revoke(cmd.Context(), args[0])
			if err != nil {
				if errors.Is(err, keystore.ErrNotFound) {
					return fmt.Errorf("no key %q", args[0])
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked key %s (%s/%s) at %s\n", k.GetId(), k.GetTenant(), k.GetSubject(),
				k.GetRevokeTime().AsTime().Format(time.RFC3339))
			return nil
		},
	}
}

func printKeys(w io.Writer, keys []*authv1.ApiKey) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tSUBJECT\tROLES\tCREATED\tLAST USED\tREVOKED")
	ts := func(t *timestamppb.Timestamp) string {
		if t == nil {
			return "-"
		}
		return t.AsTime().Format(time.RFC3339)
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.GetId(), k.GetTenant(), k.GetSubject(),
			strings.Join(k.GetRoles(), ","), ts(k.GetCreateTime()), ts(k.GetLastUsedTime()), ts(k.GetRevokeTime()))
	}
	return tw.Flush()
}
