package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/database"
)

func newMigrateCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply every service's embedded schema migrations; safe to run twice and from two places at once",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().StringVar(&url, "database-url", "sqlite:.airlock/airlock.db", "postgres://... or sqlite:PATH (env DATABASE_URL)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := config.ApplyEnv(cmd.Flags(), envAliases); err != nil {
			return err
		}
		// A mistyped URL must fail the migration Job, not "succeed" on a
		// SQLite file named after it.
		if err := database.CheckURL(url); err != nil {
			return config.Invalid("database-url", "%v", err)
		}
		db, err := database.Open(cmd.Context(), url)
		if err != nil {
			return fmt.Errorf("opening database (--database-url): %w", err)
		}
		defer db.Close()
		if err := database.Migrate(cmd.Context(), db, migrationsOf(allServices())...); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "migrations applied to %s\n", db.Dialect)
		return nil
	}
	return cmd
}
