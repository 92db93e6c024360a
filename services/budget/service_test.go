package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgx's pool and OpenTelemetry keep background goroutines that end
		// after the test binary's last check; they are not ours.
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func migrations() []database.Migrations { return []database.Migrations{Migrations()} }

// newService starts a Service on db with clk and closes it when t ends.
func newService(t *testing.T, db *database.DB, clk *clock) *Service {
	t.Helper()
	svc, err := New(context.Background(), NewStore(db), testLogger(t), Config{Now: clk.Now, TimeZone: time.UTC})
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	return svc
}

var (
	tenantScope = Scope{Kind: ScopeTenant}
	alice       = Scope{Kind: ScopeUser, Subject: "alice"}
)

func reserveReq(tenant, key string, amount int64, scopes ...Scope) ReserveRequest {
	return ReserveRequest{Tenant: tenant, Scopes: scopes, Amount: amount, IdempotencyKey: key,
		Kind: CostLLM, Model: "grok-4", TTL: time.Minute}
}

func setBudget(t *testing.T, svc *Service, tenant string, scope Scope, period Period, limit int64, zone string) Budget {
	t.Helper()
	b, err := svc.SetBudget(context.Background(), SetBudgetRequest{Tenant: tenant, Scope: scope, Period: period, Limit: limit, TimeZone: zone})
	require.NoError(t, err)
	return b
}

// TestConformance runs the same behaviour checks against both stores, each
// check on fresh databases of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	for name, fn := range map[string]func(t *testing.T, db *database.DB, clk *clock){
		"ReserveCommitRelease":    testReserveCommitRelease,
		"Exhausted":               testExhausted,
		"IdempotentRetries":       testIdempotentRetries,
		"UserAndTenantScopes":     testUserAndTenantScopes,
		"PeriodRollOver":          testPeriodRollOver,
		"Expiry":                  testExpiry,
		"ThresholdsFireOnce":      testThresholdsFireOnce,
		"BadInputLeavesState":     testBadInputLeavesState,
		"LedgerIsAppendOnly":      testLedgerIsAppendOnly,
		"ForeignTenantNotFound":   testForeignTenantNotFound,
		"OverageAndLateCommit":    testOverageAndLateCommit,
		"SetBudgetRecountsPeriod": testSetBudgetRecountsPeriod,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, migrations(), func(t *testing.T, db *database.DB) {
				fn(t, db, newClock(start))
			})
		})
	}
}

func tenantFor(t *testing.T) string { return strings.ReplaceAll(t.Name(), "/", "_") }

func testReserveCommitRelease(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 10_000, "")
	r1, err := svc.Reserve(ctx, reserveReq(tenant, "k1", 4_000, tenantScope))
	require.NoError(t, err)
	require.Equal(t, StateHeld, r1.State)
	require.Equal(t, clk.Now().Add(time.Minute), r1.ExpiresAt)
	r2, err := svc.Reserve(ctx, reserveReq(tenant, "k2", 5_000, tenantScope))
	require.NoError(t, err)
	b, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(9_000), b.Reserved)

	c, err := svc.Commit(ctx, tenant, r1.ID, 2_500)
	require.NoError(t, err)
	require.Equal(t, StateCommitted, c.State)
	require.Equal(t, int64(2_500), c.Actual)
	rel, err := svc.Release(ctx, tenant, r2.ID)
	require.NoError(t, err)
	require.Equal(t, StateReleased, rel.State)

	b, err = svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(2_500), b.Spent)
	require.Equal(t, int64(0), b.Reserved)
	spent, released, err := svc.LedgerTotals(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, int64(2_500), spent)
	require.Equal(t, int64(1_500+5_000), released)

	u, err := svc.GetUsage(ctx, tenant, tenantScope, time.Time{})
	require.NoError(t, err)
	require.Equal(t, int64(2_500), u.Spent)
	require.Equal(t, []UsageLine{{Kind: CostLLM, Model: "grok-4", Amount: 2_500}}, u.Breakdown)

	// Releasing a committed reservation is refused and changes nothing.
	_, err = svc.Release(ctx, tenant, r1.ID)
	require.ErrorIs(t, err, ErrNotHeld)
	_, err = svc.Commit(ctx, tenant, r2.ID, 1)
	require.ErrorIs(t, err, ErrNotHeld)
	_, err = svc.Commit(ctx, tenant, "res_missing", 1)
	require.ErrorIs(t, err, ErrNotFound)
}

func testExhausted(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 1_000, "")
	sub := svc.Subscribe(tenant, nil)
	defer sub.Close()
	_, err := svc.Reserve(ctx, reserveReq(tenant, "a", 700, tenantScope))
	require.NoError(t, err)
	_, err = svc.Reserve(ctx, reserveReq(tenant, "b", 301, tenantScope))
	var qe *QuotaError
	require.ErrorAs(t, err, &qe)
	require.ErrorIs(t, err, ErrInsufficientFunds)
	require.Equal(t, QuotaError{Scope: tenantScope, Limit: 1_000, Spent: 0, Reserved: 700, Requested: 301}, *qe)
	e := nextEvent(t, sub)
	require.Equal(t, EventHardStop, e.Kind)
	// A second refusal in the same period raises no second event.
	_, err = svc.Reserve(ctx, reserveReq(tenant, "c", 999, tenantScope))
	require.ErrorIs(t, err, ErrInsufficientFunds)
	_, err = svc.Reserve(ctx, reserveReq(tenant, "d", 300, tenantScope))
	require.NoError(t, err, "exactly the room left fits")
	requireNoEvent(t, sub)
	b, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(1_000), b.Reserved)
}

func testIdempotentRetries(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 10_000, "")
	req := reserveReq(tenant, "same", 3_000, tenantScope)
	r1, err := svc.Reserve(ctx, req)
	require.NoError(t, err)
	// A retry returns the first reservation and holds nothing more, also
	// when retries race each other.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := svc.Reserve(ctx, req)
			if err == nil {
				ids[i] = r.ID
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, r1.ID, id)
	}
	b, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(3_000), b.Reserved)

	other := req
	other.Amount = 3_001
	_, err = svc.Reserve(ctx, other)
	require.ErrorIs(t, err, ErrIdempotencyConflict)

	c1, err := svc.Commit(ctx, tenant, r1.ID, 1_000)
	require.NoError(t, err)
	c2, err := svc.Commit(ctx, tenant, r1.ID, 1_000)
	require.NoError(t, err)
	require.Equal(t, c1, c2)
	_, err = svc.Commit(ctx, tenant, r1.ID, 1_001)
	require.ErrorIs(t, err, ErrIdempotencyConflict)
	again, err := svc.Reserve(ctx, req)
	require.NoError(t, err)
	require.Equal(t, StateCommitted, again.State, "a late retry sees the settled reservation")

	r2, err := svc.Reserve(ctx, reserveReq(tenant, "rel", 500, tenantScope))
	require.NoError(t, err)
	_, err = svc.Release(ctx, tenant, r2.ID)
	require.NoError(t, err)
	_, err = svc.Release(ctx, tenant, r2.ID)
	require.NoError(t, err)

	b, err = svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(1_000), b.Spent, "charged once")
	require.Equal(t, int64(0), b.Reserved)
	spent, released, err := svc.LedgerTotals(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, int64(1_000), spent)
	require.Equal(t, int64(2_000+500), released)
}

func testUserAndTenantScopes(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 10_000, "")
	// bob has no budget: unlimited on his own, still bound by the tenant's.
	bob := Scope{Kind: ScopeUser, Subject: "bob"}
	_, err := svc.Reserve(ctx, reserveReq(tenant, "bob1", 6_000, tenantScope, bob))
	require.NoError(t, err)
	setBudget(t, svc, tenant, alice, PeriodMonthly, 2_000, "")
	_, err = svc.Reserve(ctx, reserveReq(tenant, "al1", 2_500, tenantScope, alice))
	var qe *QuotaError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, alice, qe.Scope)
	r, err := svc.Reserve(ctx, reserveReq(tenant, "al2", 2_000, alice, tenantScope))
	require.NoError(t, err)
	require.True(t, r.HeldTenant && r.HeldUser)
	_, err = svc.Reserve(ctx, reserveReq(tenant, "bob2", 2_001, bob, tenantScope))
	require.ErrorAs(t, err, &qe)
	require.Equal(t, tenantScope, qe.Scope)
	_, err = svc.Commit(ctx, tenant, r.ID, 1_500)
	require.NoError(t, err)
	ab, err := svc.GetBudget(ctx, tenant, alice)
	require.NoError(t, err)
	require.Equal(t, int64(1_500), ab.Spent)
	require.Equal(t, int64(0), ab.Reserved)
	tb, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(1_500), tb.Spent)
	require.Equal(t, int64(6_000), tb.Reserved)
	_, err = svc.GetBudget(ctx, tenant, bob)
	require.ErrorIs(t, err, ErrNotFound)
	bu, err := svc.GetUsage(ctx, tenant, bob, time.Time{})
	require.NoError(t, err)
	require.Equal(t, int64(-1), bu.Limit)
	require.Equal(t, int64(6_000), bu.Reserved)
}

func testPeriodRollOver(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	paris := mustZone(t, "Europe/Paris")
	// 23:30 on 31 January in Paris is 22:30 UTC: still January there.
	clk.Set(time.Date(2026, 1, 31, 23, 30, 0, 0, paris))
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 1_000, "Europe/Paris")
	r, err := svc.Reserve(ctx, reserveReq(tenant, "jan", 900, tenantScope))
	require.NoError(t, err)
	_, err = svc.Commit(ctx, tenant, r.ID, 900)
	require.NoError(t, err)
	held, err := svc.Reserve(ctx, reserveReq(tenant, "held", 100, tenantScope))
	require.NoError(t, err)
	_, err = svc.Reserve(ctx, reserveReq(tenant, "full", 1, tenantScope))
	require.ErrorIs(t, err, ErrInsufficientFunds)

	// 00:10 on 1 February in Paris (still 31 January in UTC): a new month.
	clk.Set(time.Date(2026, 2, 1, 0, 10, 0, 0, paris))
	b, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(0), b.Spent)
	require.Equal(t, int64(100), b.Reserved, "held money survives the roll-over")
	require.True(t, b.PeriodStart.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, paris)))
	require.True(t, b.PeriodEnd().Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, paris)))
	r2, err := svc.Reserve(ctx, reserveReq(tenant, "feb", 900, tenantScope))
	require.NoError(t, err)
	_, err = svc.Commit(ctx, tenant, r2.ID, 400)
	require.NoError(t, err)
	_, err = svc.Commit(ctx, tenant, held.ID, 100)
	require.NoError(t, err)

	jan, err := svc.GetUsage(ctx, tenant, tenantScope, time.Date(2026, 1, 20, 0, 0, 0, 0, paris))
	require.NoError(t, err)
	require.Equal(t, int64(900), jan.Spent)
	feb, err := svc.GetUsage(ctx, tenant, tenantScope, time.Time{})
	require.NoError(t, err)
	require.Equal(t, int64(500), feb.Spent)
	b, err = svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(500), b.Spent)

	// Daily, weekly and lifetime budgets on the same clock.
	clk.Set(time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC)) // a Saturday
	for _, p := range []Period{PeriodDaily, PeriodWeekly, PeriodLifetime} {
		user := Scope{Kind: ScopeUser, Subject: fmt.Sprintf("u%d", p)}
		setBudget(t, svc, tenant, user, p, 100, "UTC")
		r, err := svc.Reserve(ctx, reserveReq(tenant, user.Subject, 100, user))
		require.NoError(t, err)
		_, err = svc.Commit(ctx, tenant, r.ID, 100)
		require.NoError(t, err)
	}
	clk.Set(time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)) // Sunday: new day and month, same week
	want := map[Period]int64{PeriodDaily: 0, PeriodWeekly: 100, PeriodLifetime: 100}
	for p, spent := range want {
		b, err := svc.GetBudget(ctx, tenant, Scope{Kind: ScopeUser, Subject: fmt.Sprintf("u%d", p)})
		require.NoError(t, err)
		require.Equal(t, spent, b.Spent, "period %d", p)
	}
	clk.Set(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) // Monday: a new week
	b, err = svc.GetBudget(ctx, tenant, Scope{Kind: ScopeUser, Subject: fmt.Sprintf("u%d", PeriodWeekly)})
	require.NoError(t, err)
	require.Equal(t, int64(0), b.Spent)
}

func testExpiry(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 1_000, "")
	sub := svc.Subscribe(tenant, nil)
	defer sub.Close()
	short, err := svc.Reserve(ctx, reserveReq(tenant, "short", 600, tenantScope))
	require.NoError(t, err)
	long := reserveReq(tenant, "long", 300, tenantScope)
	long.TTL = time.Hour
	lr, err := svc.Reserve(ctx, long)
	require.NoError(t, err)

	n, err := svc.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing has expired yet")
	clk.Advance(2 * time.Minute)
	n, err = svc.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = svc.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a second sweep finds nothing")

	r, err := svc.Reservation(ctx, tenant, short.ID)
	require.NoError(t, err)
	require.Equal(t, StateExpired, r.State)
	b, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(300), b.Reserved)
	e := nextEvent(t, sub)
	require.Equal(t, EventExpiry, e.Kind)
	require.Equal(t, short.ID, e.ReservationID)
	require.Equal(t, int64(600), e.Amount)
	_, released, err := svc.LedgerTotals(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, int64(600), released)
	// The freed room is usable; releasing the expired one is a no-op.
	_, err = svc.Reserve(ctx, reserveReq(tenant, "after", 700, tenantScope))
	require.NoError(t, err)
	rel, err := svc.Release(ctx, tenant, short.ID)
	require.NoError(t, err)
	require.Equal(t, StateExpired, rel.State)
	_, err = svc.Release(ctx, tenant, lr.ID)
	require.NoError(t, err)
}

func nextEvent(t *testing.T, sub *Subscription) Event {
	t.Helper()
	select {
	case e, ok := <-sub.C:
		require.True(t, ok, "subscription closed")
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return Event{}
	}
}

func requireNoEvent(t *testing.T, sub *Subscription) {
	t.Helper()
	select {
	case e := <-sub.C:
		t.Fatalf("unexpected event %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}

func testThresholdsFireOnce(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodDaily, 1_000, "")
	sub := svc.Subscribe(tenant, &tenantScope)
	defer sub.Close()
	spend := func(key string, amount int64) {
		t.Helper()
		r, err := svc.Reserve(ctx, reserveReq(tenant, key, amount, tenantScope))
		require.NoError(t, err)
		_, err = svc.Commit(ctx, tenant, r.ID, amount)
		require.NoError(t, err)
	}
	spend("a", 400)
	requireNoEvent(t, sub)
	spend("b", 100) // 50%
	e := nextEvent(t, sub)
	require.Equal(t, EventThreshold, e.Kind)
	require.Equal(t, int32(50), e.Threshold)
	spend("c", 350) // 85%
	require.Equal(t, int32(80), nextEvent(t, sub).Threshold)
	spend("d", 10)
	requireNoEvent(t, sub)
	spend("e", 140) // 100%
	require.Equal(t, int32(100), nextEvent(t, sub).Threshold)
	requireNoEvent(t, sub)

	clk.Advance(24 * time.Hour) // a new day fires them again
	spend("f", 1_000)
	for _, want := range []int32{50, 80, 100} {
		require.Equal(t, want, nextEvent(t, sub).Threshold)
	}
	requireNoEvent(t, sub)
}

func testBadInputLeavesState(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	before := setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 1_000, "")
	good := reserveReq(tenant, "k", 100, tenantScope)
	cases := []struct {
		field string
		mut   func(r *ReserveRequest)
	}{
		{"amount_micros", func(r *ReserveRequest) { r.Amount = -5 }},
		{"amount_micros", func(r *ReserveRequest) { r.Amount = 0 }},
		{"amount_micros", func(r *ReserveRequest) { r.Amount = MaxAmount + 1 }},
		{"scopes[0].kind", func(r *ReserveRequest) { r.Scopes = []Scope{{Kind: 7}} }},
		{"scopes[0].kind", func(r *ReserveRequest) { r.Scopes = []Scope{{Kind: 0}} }},
		{"scopes[1]", func(r *ReserveRequest) { r.Scopes = []Scope{tenantScope, tenantScope} }},
		{"scopes[0].subject", func(r *ReserveRequest) { r.Scopes = []Scope{{Kind: ScopeUser}} }},
		{"scopes[0].subject", func(r *ReserveRequest) { r.Scopes = []Scope{{Kind: ScopeTenant, Subject: "x"}} }},
		{"scopes", func(r *ReserveRequest) { r.Scopes = nil }},
		{"ttl", func(r *ReserveRequest) { r.TTL = -time.Second }},
		{"ttl", func(r *ReserveRequest) { r.TTL = 1000 * time.Hour }},
		{"idempotency_key", func(r *ReserveRequest) { r.IdempotencyKey = "" }},
		{"kind", func(r *ReserveRequest) { r.Kind = 9 }},
		{"idempotency_key", func(r *ReserveRequest) { r.IdempotencyKey = "a\x00b" }},
		{"idempotency_key", func(r *ReserveRequest) { r.IdempotencyKey = strings.Repeat("k", 257) }},
		{"scopes[0].subject", func(r *ReserveRequest) { r.Scopes = []Scope{{Kind: ScopeUser, Subject: "bob\x00"}} }},
		{"model", func(r *ReserveRequest) { r.Model = "\xff" }},
		{"run_id", func(r *ReserveRequest) { r.RunID = "run\n1" }},
	}
	for _, tc := range cases {
		req := good
		tc.mut(&req)
		_, err := svc.Reserve(ctx, req)
		var inv *InvalidError
		require.ErrorAs(t, err, &inv)
		require.Equal(t, tc.field, inv.Field)
	}
	setCases := []struct {
		field string
		req   SetBudgetRequest
	}{
		{"period", SetBudgetRequest{Scope: tenantScope, Period: 0, Limit: 5}},
		{"period", SetBudgetRequest{Scope: tenantScope, Period: 9, Limit: 5}},
		{"limit_micros", SetBudgetRequest{Scope: tenantScope, Period: PeriodDaily, Limit: -1}},
		{"scope.kind", SetBudgetRequest{Scope: Scope{Kind: 3}, Period: PeriodDaily, Limit: 5}},
		{"thresholds_percent[0]", SetBudgetRequest{Scope: tenantScope, Period: PeriodDaily, Limit: 5, Thresholds: []int32{0}}},
		{"thresholds_percent[1]", SetBudgetRequest{Scope: tenantScope, Period: PeriodDaily, Limit: 5, Thresholds: []int32{50, 101}}},
		{"thresholds_percent", SetBudgetRequest{Scope: tenantScope, Period: PeriodDaily, Limit: 5, Thresholds: []int32{50, 50}}},
		{"time_zone", SetBudgetRequest{Scope: tenantScope, Period: PeriodDaily, Limit: 5, TimeZone: "Mars/Olympus"}},
		{"time_zone", SetBudgetRequest{Scope: tenantScope, Period: PeriodDaily, Limit: 5, TimeZone: "Local"}},
	}
	for _, tc := range setCases {
		tc.req.Tenant = tenant
		_, err := svc.SetBudget(ctx, tc.req)
		var inv *InvalidError
		require.ErrorAs(t, err, &inv, tc.field)
		require.Equal(t, tc.field, inv.Field)
	}
	_, err := svc.Commit(ctx, tenant, "res_x", -1)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "actual_micros", inv.Field)
	_, err = svc.Release(ctx, tenant, "res\x00")
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "reservation_id", inv.Field)
	_, err = svc.Commit(ctx, tenant, "res_x", -1)
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "actual_micros", inv.Field)

	after, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, before.Limit, after.Limit)
	require.Equal(t, before.Period, after.Period)
	require.Equal(t, before.Thresholds, after.Thresholds)
	require.Equal(t, int64(0), after.Reserved)
	held, err := svc.store.HeldAmount(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Zero(t, held)
	spent, released, err := svc.LedgerTotals(ctx, tenant)
	require.NoError(t, err)
	require.Zero(t, spent+released)
}

func testLedgerIsAppendOnly(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	r, err := svc.Reserve(ctx, reserveReq(tenant, "k", 100, tenantScope))
	require.NoError(t, err)
	_, err = svc.Commit(ctx, tenant, r.ID, 100)
	require.NoError(t, err)
	_, err = db.SQL.ExecContext(ctx, database.Rebind(db.Dialect, `UPDATE budget_ledger SET amount_micros = 0 WHERE tenant = $1`), tenant)
	require.ErrorContains(t, err, "append-only")
	_, err = db.SQL.ExecContext(ctx, database.Rebind(db.Dialect, `DELETE FROM budget_ledger WHERE tenant = $1`), tenant)
	require.ErrorContains(t, err, "append-only")
	spent, _, err := svc.LedgerTotals(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, int64(100), spent)
}

func testForeignTenantNotFound(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	r, err := svc.Reserve(ctx, reserveReq(tenant, "k", 100, tenantScope))
	require.NoError(t, err)
	other := tenant + "-other"
	_, err = svc.Commit(ctx, other, r.ID, 100)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = svc.Release(ctx, other, r.ID)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = svc.Reservation(ctx, other, r.ID)
	require.ErrorIs(t, err, ErrNotFound)
	// The same idempotency key in another tenant is another reservation.
	r2, err := svc.Reserve(ctx, reserveReq(other, "k", 100, tenantScope))
	require.NoError(t, err)
	require.NotEqual(t, r.ID, r2.ID)
	got, err := svc.Reservation(ctx, tenant, r.ID)
	require.NoError(t, err)
	require.Equal(t, StateHeld, got.State)
}

func testOverageAndLateCommit(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 1_000_000, "")
	sub := svc.Subscribe(tenant, nil)
	defer sub.Close()
	r, err := svc.Reserve(ctx, reserveReq(tenant, "over", 100, tenantScope))
	require.NoError(t, err)
	_, err = svc.Commit(ctx, tenant, r.ID, 150)
	require.NoError(t, err)
	e := nextEvent(t, sub)
	require.Equal(t, EventOverage, e.Kind)
	require.Equal(t, int64(50), e.Amount)

	late, err := svc.Reserve(ctx, reserveReq(tenant, "late", 100, tenantScope))
	require.NoError(t, err)
	clk.Advance(time.Hour)
	_, err = svc.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, EventExpiry, nextEvent(t, sub).Kind)
	c, err := svc.Commit(ctx, tenant, late.ID, 80)
	require.NoError(t, err)
	require.Equal(t, StateCommitted, c.State)
	e = nextEvent(t, sub)
	require.Equal(t, EventOverage, e.Kind)
	require.Contains(t, e.Message, "after it expired")
	b, err := svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(230), b.Spent)
	require.Equal(t, int64(0), b.Reserved)
	spent, _, err := svc.LedgerTotals(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, int64(230), spent)
}

func testSetBudgetRecountsPeriod(t *testing.T, db *database.DB, clk *clock) {
	ctx, svc, tenant := context.Background(), newService(t, db, clk), tenantFor(t)
	setBudget(t, svc, tenant, tenantScope, PeriodMonthly, 10_000, "")
	r, err := svc.Reserve(ctx, reserveReq(tenant, "old", 300, tenantScope))
	require.NoError(t, err)
	_, err = svc.Commit(ctx, tenant, r.ID, 300)
	require.NoError(t, err)
	clk.Advance(48 * time.Hour)
	r, err = svc.Reserve(ctx, reserveReq(tenant, "new", 200, tenantScope))
	require.NoError(t, err)
	_, err = svc.Commit(ctx, tenant, r.ID, 200)
	require.NoError(t, err)
	held, err := svc.Reserve(ctx, reserveReq(tenant, "held", 50, tenantScope))
	require.NoError(t, err)
	b := setBudget(t, svc, tenant, tenantScope, PeriodDaily, 1_000, "")
	require.Equal(t, int64(200), b.Spent, "only today's commits count in a daily period")
	require.Equal(t, int64(50), b.Reserved, "held money stays held")
	_, err = svc.Release(ctx, tenant, held.ID)
	require.NoError(t, err)
	b, err = svc.GetBudget(ctx, tenant, tenantScope)
	require.NoError(t, err)
	require.Equal(t, int64(0), b.Reserved)
}

// TestCloseAnswersWaiters checks a closed service refuses new work.
func TestCloseAnswersWaiters(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), migrations()...)
	svc := newService(t, db, newClock(time.Now()))
	require.NoError(t, svc.Close())
	_, err := svc.Reserve(context.Background(), reserveReq("t", "k", 1, tenantScope))
	require.True(t, errors.Is(err, ErrClosed), "got %v", err)
}

// TestBackgroundSweeper checks the sweeper runs by itself: a caller that
// never settles leaks nothing.
func TestBackgroundSweeper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), migrations()...)
	svc, err := New(ctx, NewStore(db), testLogger(t), Config{SweepInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	_, err = svc.SetBudget(ctx, SetBudgetRequest{Tenant: "t", Scope: tenantScope, Period: PeriodMonthly, Limit: 100})
	require.NoError(t, err)
	req := reserveReq("t", "crashed", 100, tenantScope)
	req.TTL = 50 * time.Millisecond
	r, err := svc.Reserve(ctx, req)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := svc.Reservation(ctx, "t", r.ID)
		return err == nil && got.State == StateExpired
	}, 10*time.Second, 10*time.Millisecond)
	b, err := svc.GetBudget(ctx, "t", tenantScope)
	require.NoError(t, err)
	require.Zero(t, b.Reserved)
}

// TestTwoReplicasNeverOverspend runs two services on one database, as two
// replicas would, and fires reservations at one budget through both.
func TestTwoReplicasNeverOverspend(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, migrations(), func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		clk := newClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		replicas := []*Service{newService(t, db, clk), newService(t, db, clk)}
		const limit, amount, n = 50_000, 1_000, 400
		setBudget(t, replicas[0], "acme", tenantScope, PeriodMonthly, limit, "")
		var wg sync.WaitGroup
		var held, committed atomic.Int64
		var failed atomic.Value
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				svc := replicas[i%2]
				r, err := svc.Reserve(ctx, reserveReq("acme", fmt.Sprint("k", i), amount, tenantScope))
				if errors.Is(err, ErrInsufficientFunds) {
					return
				}
				if err != nil {
					failed.Store(err.Error())
					return
				}
				held.Add(1)
				// Settle through the other replica half of the time.
				if _, err := replicas[(i/2)%2].Commit(ctx, "acme", r.ID, amount); err != nil {
					failed.Store(err.Error())
					return
				}
				committed.Add(amount)
			}()
		}
		wg.Wait()
		require.Nil(t, failed.Load())
		b, err := replicas[1].GetBudget(ctx, "acme", tenantScope)
		require.NoError(t, err)
		require.Equal(t, int64(limit), committed.Load(), "exactly the limit was spent: %d reservations", held.Load())
		require.Equal(t, committed.Load(), b.Spent)
		require.Zero(t, b.Reserved)
		spent, _, err := replicas[0].LedgerTotals(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, committed.Load(), spent)
	})
}

func TestDefaultWorkersFollowTheStore(t *testing.T) {
	t.Parallel()
	for store, want := range map[string]int{"postgres": 2, "sqlite": 1} {
		url := dbtest.NewSQLiteURL(t)
		if store == "postgres" {
			url = dbtest.NewPostgresURL(t)
		}
		db := dbtest.Open(t, url, migrations()...)
		svc, err := New(context.Background(), NewStore(db), testLogger(t), Config{})
		require.NoError(t, err)
		require.Equal(t, want, svc.cfg.Workers, store)
		svc.Close()
		svc, err = New(context.Background(), NewStore(db), testLogger(t), Config{Workers: 3})
		require.NoError(t, err)
		require.Equal(t, 3, svc.cfg.Workers, store)
		svc.Close()
	}
}
