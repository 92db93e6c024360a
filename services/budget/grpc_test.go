package budget

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/pkg/pricing"
	"github.com/airlockhq/airlock/pkg/server"
)

// testKeys are the credentials the test server accepts.
var testKeys = auth.StaticKeys{
	"svc-acme":   {Tenant: "acme", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
	"op-acme":    {Tenant: "acme", Subject: "olga", Roles: []auth.Role{auth.RoleOperator}},
	"user-alice": {Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}},
	"svc-globex": {Tenant: "globex", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
	"op-globex":  {Tenant: "globex", Subject: "gina", Roles: []auth.Role{auth.RoleOperator}},
}

// startServer serves svc through pkg/server on a loopback port.
func startServer(t *testing.T, svc *Service) string {
	t.Helper()
	log := testLogger(t)
	srv, err := server.New(context.Background(), "budget-test", server.Config{
		Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, HealthInterval: time.Minute, MaxMessageBytes: 4 << 20,
	}, log, server.WithAuth(auth.NewInterceptor(testKeys, Rules(), log)))
	require.NoError(t, err)
	NewHandler(svc, pricing.Default(), log).Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return lis.Addr().String()
}

// dial returns a client presenting token; each call makes its own connection.
func dial(t *testing.T, addr, token string) budgetv1.BudgetServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return budgetv1.NewBudgetServiceClient(conn)
}

func pbTenant() *budgetv1.Scope { return &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT} }

func pbUser(s string) *budgetv1.Scope {
	return &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_USER, Subject: s}
}

func asUser(ctx context.Context, tenant, subject string) context.Context {
	return auth.OnBehalfOf(ctx, auth.Principal{Tenant: tenant, Subject: subject, Roles: []auth.Role{auth.RoleUser}})
}

// TestConcurrentReservationsNeverOverspend fires 1,000 concurrent
// reservations from 4 gRPC clients at one tenant budget and four user
// budgets, on each store, while a watcher checks held plus spent never
// passes a limit; after everything is settled the ledger sums exactly to
// the committed amounts.
func TestConcurrentReservationsNeverOverspend(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, migrations(), func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		svc, err := New(ctx, NewStore(db), testLogger(t), Config{})
		require.NoError(t, err)
		t.Cleanup(func() { svc.Close() })
		addr := startServer(t, svc)
		op := dial(t, addr, "op-acme")
		const tenantLimit, userLimit, amount = 200_000, 70_000, 1_000
		users := []string{"u0", "u1", "u2", "u3"}
		_, err = op.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: pbTenant(), Period: budgetv1.Period_PERIOD_MONTHLY, LimitMicros: tenantLimit})
		require.NoError(t, err)
		for _, u := range users {
			_, err = op.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: pbUser(u), Period: budgetv1.Period_PERIOD_DAILY, LimitMicros: userLimit})
			require.NoError(t, err)
		}
		clients := make([]budgetv1.BudgetServiceClient, 4)
		for i := range clients {
			clients[i] = dial(t, addr, "svc-acme")
		}

		// The watcher reads every budget over gRPC while the load runs.
		stop := make(chan struct{})
		var watchErr atomic.Value
		var watched sync.WaitGroup
		watched.Add(1)
		go func() {
			defer watched.Done()
			scopes := append([]*budgetv1.Scope{pbTenant()}, pbUser("u0"), pbUser("u1"), pbUser("u2"), pbUser("u3"))
			for {
				for _, sc := range scopes {
					resp, err := op.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: sc})
					if err != nil {
						watchErr.Store(err.Error())
						return
					}
					b := resp.GetBudget()
					if b.GetSpentMicros()+b.GetReservedMicros() > b.GetLimitMicros() {
						watchErr.Store(fmt.Sprintf("%v: spent %d + reserved %d > limit %d", sc, b.GetSpentMicros(), b.GetReservedMicros(), b.GetLimitMicros()))
						return
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()

		const n = 1000
		var (
			wg                 sync.WaitGroup
			committed          atomic.Int64
			perUser            [4]atomic.Int64
			ok, exhausted      atomic.Int64
			other              atomic.Value
			start              = make(chan struct{})
			quotaDetailMissing atomic.Bool
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				u := i % 4
				c := clients[i%len(clients)]
				cctx := asUser(ctx, "acme", users[u])
				resp, err := c.Reserve(cctx, &budgetv1.ReserveRequest{
					Scopes: []*budgetv1.Scope{pbTenant(), pbUser(users[u])}, AmountMicros: amount,
					Ttl: durationpb.New(time.Minute), IdempotencyKey: fmt.Sprintf("run-%d", i),
					Kind: budgetv1.CostKind_COST_KIND_LLM, Model: "grok-4",
				})
				if status.Code(err) == codes.ResourceExhausted {
					exhausted.Add(1)
					if !hasQuotaFailure(err) {
						quotaDetailMissing.Store(true)
					}
					return
				}
				if err != nil {
					other.Store(err.Error())
					return
				}
				ok.Add(1)
				id := resp.GetReservation().GetId()
				if i%3 == 0 {
					if _, err := c.Release(cctx, &budgetv1.ReleaseRequest{ReservationId: id}); err != nil {
						other.Store(err.Error())
					}
					return
				}
				actual := int64(i % (amount + 1))
				if _, err := c.Commit(cctx, &budgetv1.CommitRequest{ReservationId: id, ActualMicros: actual}); err != nil {
					other.Store(err.Error())
					return
				}
				committed.Add(actual)
				perUser[u].Add(actual)
			}()
		}
		close(start)
		wg.Wait()
		close(stop)
		watched.Wait()
		require.Nil(t, other.Load(), "unexpected error")
		require.Nil(t, watchErr.Load(), "watcher")
		require.False(t, quotaDetailMissing.Load(), "a ResourceExhausted without a QuotaFailure")
		require.Equal(t, int64(n), ok.Load()+exhausted.Load())
		require.Positive(t, exhausted.Load(), "the limits were meant to be reached")
		t.Logf("%d reserved, %d refused, %d committed", ok.Load(), exhausted.Load(), committed.Load())

		tb, err := op.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: pbTenant()})
		require.NoError(t, err)
		require.Equal(t, committed.Load(), tb.GetBudget().GetSpentMicros())
		require.Zero(t, tb.GetBudget().GetReservedMicros())
		for u, name := range users {
			ub, err := op.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: pbUser(name)})
			require.NoError(t, err)
			require.Equal(t, perUser[u].Load(), ub.GetBudget().GetSpentMicros(), name)
			require.Zero(t, ub.GetBudget().GetReservedMicros(), name)
		}
		spent, _, err := svc.LedgerTotals(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, committed.Load(), spent, "ledger sums to the committed amounts")
		usage, err := op.GetUsage(ctx, &budgetv1.GetUsageRequest{Scope: pbTenant()})
		require.NoError(t, err)
		require.Equal(t, committed.Load(), usage.GetSpentMicros())
	})
}

func hasQuotaFailure(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if qf, ok := d.(*errdetails.QuotaFailure); ok && len(qf.GetViolations()) == 1 && qf.GetViolations()[0].GetSubject() != "" {
			return true
		}
	}
	return false
}

// TestGRPCRolesAndTenants checks who may call what, and that tenants never
// see each other's money.
func TestGRPCRolesAndTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), migrations()...)
	svc := newService(t, db, newClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)))
	addr := startServer(t, svc)
	op, user, svcC := dial(t, addr, "op-acme"), dial(t, addr, "user-alice"), dial(t, addr, "svc-acme")
	opG, svcG := dial(t, addr, "op-globex"), dial(t, addr, "svc-globex")

	set := &budgetv1.SetBudgetRequest{Scope: pbTenant(), Period: budgetv1.Period_PERIOD_MONTHLY, LimitMicros: 1_000}
	_, err := user.SetBudget(ctx, set)
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = svcC.SetBudget(ctx, set)
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = op.SetBudget(ctx, set)
	require.NoError(t, err)
	_, err = op.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: pbUser("alice"), Period: budgetv1.Period_PERIOD_DAILY, LimitMicros: 500})
	require.NoError(t, err)

	reserve := &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{pbTenant(), pbUser("")}, AmountMicros: 100,
		IdempotencyKey: "k1", Kind: budgetv1.CostKind_COST_KIND_COMPUTE}
	_, err = user.Reserve(ctx, reserve)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a user cannot move money")
	// A forged forwarded principal from a user is ignored: still denied.
	_, err = user.Reserve(asUser(ctx, "acme", "alice"), reserve)
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	res, err := svcC.Reserve(asUser(ctx, "acme", "alice"), reserve)
	require.NoError(t, err)
	require.Equal(t, "alice", res.GetReservation().GetScopes()[1].GetSubject(), "an empty USER subject is the end user")
	// A service acting for alice cannot charge bob.
	_, err = svcC.Reserve(asUser(ctx, "acme", "alice"), &budgetv1.ReserveRequest{
		Scopes: []*budgetv1.Scope{pbUser("bob")}, AmountMicros: 1, IdempotencyKey: "k2", Kind: budgetv1.CostKind_COST_KIND_LLM})
	requireField(t, err, "scopes[0].subject")

	// Another tenant's service and operator: NotFound, exactly like a missing id.
	id := res.GetReservation().GetId()
	_, err = svcG.Commit(ctx, &budgetv1.CommitRequest{ReservationId: id, ActualMicros: 1})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = svcG.Release(ctx, &budgetv1.ReleaseRequest{ReservationId: id})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = svcC.Commit(ctx, &budgetv1.CommitRequest{ReservationId: "res_nope", ActualMicros: 1})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = opG.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: pbTenant()})
	require.Equal(t, codes.NotFound, status.Code(err))
	gu, err := opG.GetUsage(ctx, &budgetv1.GetUsageRequest{Scope: pbTenant()})
	require.NoError(t, err)
	require.Zero(t, gu.GetReservedMicros())

	// Reads: a user sees only their own USER budget.
	_, err = user.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: pbTenant()})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = user.GetUsage(ctx, &budgetv1.GetUsageRequest{Scope: pbUser("bob")})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	own, err := user.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: pbUser("")})
	require.NoError(t, err)
	require.Equal(t, int64(100), own.GetBudget().GetReservedMicros())
	_, err = op.GetUsage(ctx, &budgetv1.GetUsageRequest{Scope: pbUser("alice")})
	require.NoError(t, err)

	// Commit over gRPC, then an idempotent retry and a conflicting one.
	c := &budgetv1.CommitRequest{ReservationId: id, ActualMicros: 60}
	_, err = svcC.Commit(ctx, c)
	require.NoError(t, err)
	again, err := svcC.Commit(ctx, c)
	require.NoError(t, err)
	require.Equal(t, budgetv1.ReservationState_RESERVATION_STATE_COMMITTED, again.GetReservation().GetState())
	_, err = svcC.Commit(ctx, &budgetv1.CommitRequest{ReservationId: id, ActualMicros: 61})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))

	// Exhaustion carries a QuotaFailure naming the scope and its figures.
	_, err = svcC.Reserve(asUser(ctx, "acme", "alice"), &budgetv1.ReserveRequest{
		Scopes: []*budgetv1.Scope{pbTenant(), pbUser("alice")}, AmountMicros: 441, IdempotencyKey: "big", Kind: budgetv1.CostKind_COST_KIND_LLM})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	var qf *errdetails.QuotaFailure
	for _, d := range status.Convert(err).Details() {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			qf = q
		}
	}
	require.NotNil(t, qf)
	require.Equal(t, "user:alice", qf.GetViolations()[0].GetSubject())
	require.Contains(t, qf.GetViolations()[0].GetDescription(), "limit 500, spent 60, reserved 0")

	// Bad input names the field.
	_, err = svcC.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{{Kind: 9}}, AmountMicros: 1, IdempotencyKey: "x", Kind: 1})
	requireField(t, err, "scopes[0].kind")
	_, err = svcC.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{pbTenant()}, AmountMicros: -1, IdempotencyKey: "x", Kind: 1})
	requireField(t, err, "amount_micros")
	_, err = op.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: pbTenant(), Period: 0, LimitMicros: 1})
	requireField(t, err, "period")

	// EstimateCost for any caller.
	est, err := user.EstimateCost(ctx, &budgetv1.EstimateCostRequest{Estimate: &budgetv1.EstimateCostRequest_Llm{
		Llm: &budgetv1.LLMEstimate{Model: "grok-4", PromptTokens: 1_000_000, CompletionTokens: 1_000_000}}})
	require.NoError(t, err)
	require.Equal(t, int64(18_000_000), est.GetAmountMicros())
	est, err = user.EstimateCost(ctx, &budgetv1.EstimateCostRequest{Estimate: &budgetv1.EstimateCostRequest_Compute{
		Compute: &budgetv1.ComputeEstimate{CpuTime: durationpb.New(10 * time.Second), WallTime: durationpb.New(time.Second), MemoryBytes: 1 << 30}}})
	require.NoError(t, err)
	require.Equal(t, int64(10*20+3), est.GetAmountMicros())
	_, err = user.EstimateCost(ctx, &budgetv1.EstimateCostRequest{Estimate: &budgetv1.EstimateCostRequest_Llm{Llm: &budgetv1.LLMEstimate{Model: "gpt-x"}}})
	requireField(t, err, "llm.model")
	_, err = user.EstimateCost(ctx, &budgetv1.EstimateCostRequest{})
	requireField(t, err, "estimate")

	// WatchEvents is for operators.
	stream, err := user.WatchEvents(ctx, &budgetv1.WatchEventsRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.PermissionDenied, status.Code(err))
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			require.Equal(t, field, br.GetFieldViolations()[0].GetField())
			return
		}
	}
	t.Fatalf("no BadRequest detail in %v", err)
}

// TestWatchEventsAcrossReplicas runs two services on one database: on
// Postgres an event committed by one reaches a watcher of the other through
// LISTEN/NOTIFY; on SQLite (one process by design) within the service.
func TestWatchEventsAcrossReplicas(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, migrations(), func(t *testing.T, db *database.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		clk := newClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
		writer := newService(t, db, clk)
		watcher := writer
		if db.Dialect == database.Postgres {
			watcher = newService(t, db, clk)
		}
		opW := dial(t, startServer(t, watcher), "op-acme")
		addr := startServer(t, writer)
		stream, err := opW.WatchEvents(ctx, &budgetv1.WatchEventsRequest{Scope: pbTenant()})
		require.NoError(t, err)
		_, err = stream.Header() // the subscription is in place
		require.NoError(t, err)

		_, err = dial(t, addr, "op-acme").SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: pbTenant(), Period: budgetv1.Period_PERIOD_MONTHLY, LimitMicros: 1_000})
		require.NoError(t, err)
		svcC := dial(t, addr, "svc-acme")
		res, err := svcC.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{pbTenant()}, AmountMicros: 600,
			IdempotencyKey: "w", Kind: budgetv1.CostKind_COST_KIND_LLM})
		require.NoError(t, err)
		_, err = svcC.Commit(ctx, &budgetv1.CommitRequest{ReservationId: res.GetReservation().GetId(), ActualMicros: 600})
		require.NoError(t, err)
		// Another tenant's events never reach this watcher.
		_, err = dial(t, addr, "op-globex").SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: pbTenant(), Period: budgetv1.Period_PERIOD_MONTHLY, LimitMicros: 1})
		require.NoError(t, err)
		gres, err := dial(t, addr, "svc-globex").Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{pbTenant()},
			AmountMicros: 1, IdempotencyKey: "g", Kind: budgetv1.CostKind_COST_KIND_LLM})
		require.NoError(t, err)
		_, err = dial(t, addr, "svc-globex").Commit(ctx, &budgetv1.CommitRequest{ReservationId: gres.GetReservation().GetId(), ActualMicros: 1})
		require.NoError(t, err)
		_, err = svcC.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{pbTenant()}, AmountMicros: 401,
			IdempotencyKey: "w2", Kind: budgetv1.CostKind_COST_KIND_LLM})
		require.Equal(t, codes.ResourceExhausted, status.Code(err))

		got, err := stream.Recv()
		require.NoError(t, err)
		require.Equal(t, budgetv1.EventKind_EVENT_KIND_THRESHOLD, got.GetEvent().GetKind())
		require.Equal(t, int32(50), got.GetEvent().GetThresholdPercent())
		require.Equal(t, "acme", got.GetEvent().GetTenant())
		got, err = stream.Recv()
		require.NoError(t, err)
		require.Equal(t, budgetv1.EventKind_EVENT_KIND_HARD_STOP, got.GetEvent().GetKind())
		require.Equal(t, "acme", got.GetEvent().GetTenant())
	})
}

// TestEventListenerHealth checks the events health check follows the
// LISTEN connection on Postgres: up after start, down once the server drops
// the connection, up again after the listener reconnects; and an event
// committed while it was away is delivered after it catches up, once.
func TestEventListenerHealth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, dbtest.NewPostgresURL(t), migrations()...)
	svc := newService(t, db, newClock(time.Now()))
	setBudget(t, svc, "acme", tenantScope, PeriodMonthly, 100, "")
	sub := svc.Subscribe("acme", nil)
	defer sub.Close()
	require.NoError(t, svc.CheckEvents(ctx))
	_, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%MAX(seq)%budget_events%'`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return svc.CheckEvents(ctx) != nil }, 10*time.Second, 5*time.Millisecond)
	// Spend while the listener is away: a THRESHOLD event for 50%.
	r, err := svc.Reserve(ctx, reserveReq("acme", "gap", 60, tenantScope))
	require.NoError(t, err)
	_, err = svc.Commit(ctx, "acme", r.ID, 60)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return svc.CheckEvents(ctx) == nil }, 10*time.Second, 20*time.Millisecond)
	e := nextEvent(t, sub)
	require.Equal(t, EventThreshold, e.Kind)
	require.Equal(t, int32(50), e.Threshold)
	requireNoEvent(t, sub)
}

// TestEnumOverflowIsInvalid checks enum values past int16 are refused, not
// wrapped onto a valid value.
func TestEnumOverflowIsInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), migrations()...)
	addr := startServer(t, newService(t, db, newClock(time.Now())))
	op, svcC := dial(t, addr, "op-acme"), dial(t, addr, "svc-acme")
	_, err := op.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: &budgetv1.Scope{Kind: 65537}, Period: budgetv1.Period_PERIOD_DAILY, LimitMicros: 1})
	requireField(t, err, "scope.kind")
	_, err = op.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: pbTenant(), Period: 65537, LimitMicros: 1})
	requireField(t, err, "period")
	_, err = svcC.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{pbTenant()}, AmountMicros: 1,
		IdempotencyKey: "k", Kind: 65537})
	requireField(t, err, "kind")
	_, err = op.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: pbTenant()})
	require.Equal(t, codes.NotFound, status.Code(err), "nothing was stored")
}
