package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/pkg/pricing"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/services/budget"
)

func TestParseUSD(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"25": 25_000_000, "12.5": 12_500_000, "$0.000001": 1, ".25": 250_000, "0": 0} {
		got, err := parseUSD(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "-1", "+1", "1.0000001", "abc", "1e3", "1.-5", "99999999999"} {
		_, err := parseUSD(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "$12.500000", formatUSD(12_500_000))
}

// budgetCLIServer serves the budget service alone on a loopback port and
// returns its address and a client calling as the orchestrator.
func budgetCLIServer(t *testing.T) (string, budgetv1.BudgetServiceClient) {
	t.Helper()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), budget.Migrations())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := budget.New(ctx, budget.NewStore(db), log, budget.Config{})
	require.NoError(t, err)
	keys := auth.StaticKeys{
		"tok-svc": {Tenant: "t1", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
		"tok-op":  {Tenant: "t1", Subject: "olga", Roles: []auth.Role{auth.RoleOperator}},
	}
	srv, err := server.New(ctx, "budget-cli-test", server.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second,
		HealthInterval: time.Hour, MaxMessageBytes: 4 << 20}, log, server.WithAuth(auth.NewInterceptor(keys, budget.Rules(), log)))
	require.NoError(t, err)
	budget.NewHandler(svc, pricing.Default(), log).Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: "tok-svc"}))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		svc.Close()
	})
	return lis.Addr().String(), budgetv1.NewBudgetServiceClient(conn)
}

func budgetCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := run(context.Background(), append([]string{"budget"}, args...), &out, io.Discard)
	return out.String(), err
}

// Not parallel: it sets the CLI's environment variables.
func TestBudgetCLI(t *testing.T) {
	addr, client := budgetCLIServer(t)
	t.Setenv("AIRLOCK_ADDR", addr)
	t.Setenv("AIRLOCK_TOKEN", "tok-op")

	out, err := budgetCLI(t, "set", "--limit", "12.50", "--period", "daily", "--time-zone", "Europe/Paris")
	require.NoError(t, err)
	require.Contains(t, out, "limit:      $12.500000")
	require.Contains(t, out, "daily in Europe/Paris")
	require.Contains(t, out, "thresholds: 50%, 80%, 100%")
	_, err = budgetCLI(t, "set", "--user", "alice", "--limit", "2", "--thresholds", "90")
	require.NoError(t, err)

	ctx := metadata.NewOutgoingContext(context.Background(), metadata.MD{})
	ctx = auth.OnBehalfOf(ctx, auth.Principal{Tenant: "t1", Subject: "alice", Roles: []auth.Role{auth.RoleUser}})
	res, err := client.Reserve(ctx, &budgetv1.ReserveRequest{
		Scopes:       []*budgetv1.Scope{{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT}, {Kind: budgetv1.ScopeKind_SCOPE_KIND_USER}},
		AmountMicros: 1_500_000, IdempotencyKey: "cli", Kind: budgetv1.CostKind_COST_KIND_LLM, Model: "grok-4"})
	require.NoError(t, err)
	_, err = client.Commit(ctx, &budgetv1.CommitRequest{ReservationId: res.GetReservation().GetId(), ActualMicros: 1_250_000})
	require.NoError(t, err)

	out, err = budgetCLI(t, "show", "--user", "alice")
	require.NoError(t, err)
	require.Contains(t, out, "spent:      $1.250000")
	require.Contains(t, out, "available:  $0.750000")
	out, err = budgetCLI(t, "usage")
	require.NoError(t, err)
	require.Contains(t, out, "spent:    $1.250000")
	require.Regexp(t, `llm\s+grok-4\s+\$1\.250000`, out)
	out, err = budgetCLI(t, "usage", "--user", "bob", "--json")
	require.NoError(t, err)
	require.Regexp(t, `"limitMicros":\s+"-1"`, out)

	_, err = budgetCLI(t, "set", "--limit", "-3")
	require.ErrorContains(t, err, "--limit")
	_, err = budgetCLI(t, "set", "--limit", "3", "--period", "yearly")
	require.ErrorContains(t, err, "--period")
	_, err = budgetCLI(t, "set", "--limit", "3", "--time-zone", "Nowhere/Land")
	require.ErrorContains(t, err, "time_zone")
	out, err = budgetCLI(t, "show")
	require.NoError(t, err)
	require.Contains(t, out, "limit:      $12.500000", "the refused changes left the budget alone")
}
