// Command budget is the budget service's load program: reservations per
// second (one Reserve plus its Commit) on one hot budget and across 1,000
// budgets, on Postgres and on SQLite, with p50 and p99 latency of the pair,
// and a check that nothing was overspent and the ledger sums exactly to the
// committed amounts. Calls go through the budget domain (batcher and
// store) and through real gRPC clients over loopback (-mode).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/pricing"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/services/budget"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/budget:", err)
		os.Exit(1)
	}
}

type options struct {
	duration    time.Duration
	concurrency int
	stores      string
	pgURL       string
	useGRPC     bool
	clients     int
	workers     int
}

func run() error {
	var o options
	defURL := os.Getenv("AIRLOCK_BENCH_DATABASE_URL")
	if defURL == "" {
		defURL = os.Getenv("AIRLOCK_TEST_DATABASE_URL")
	}
	if defURL == "" {
		defURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long each scenario runs")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent callers")
	flag.StringVar(&o.stores, "stores", "postgres,sqlite", "stores to measure")
	flag.StringVar(&o.pgURL, "database-url", defURL, "Postgres server to create a scratch database on (env AIRLOCK_BENCH_DATABASE_URL)")
	modes := flag.String("mode", "both", "in-process (the domain: batcher and store), grpc (real gRPC clients over loopback) or both")
	flag.IntVar(&o.clients, "clients", 4, "gRPC client connections in grpc mode")
	flag.IntVar(&o.workers, "workers", 0, "budget transactions in flight (0: 2 on Postgres, 1 on SQLite, as the server)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var list []bool
	switch *modes {
	case "in-process":
		list = []bool{false}
	case "grpc":
		list = []bool{true}
	case "both":
		list = []bool{false, true}
	default:
		return fmt.Errorf("-mode %q: want in-process, grpc or both", *modes)
	}
	for _, g := range list {
		o.useGRPC = g
		mode := "in-process (domain: batcher + store)"
		if g {
			mode = fmt.Sprintf("gRPC over loopback, %d client connections", o.clients)
		}
		fmt.Printf("budget: reserve+commit pairs, %d concurrent callers, %s each, %s\n", o.concurrency, o.duration, mode)
		for _, store := range strings.Split(o.stores, ",") {
			if err := benchStore(strings.TrimSpace(store), o); err != nil {
				return fmt.Errorf("%s: %w", store, err)
			}
		}
	}
	return nil
}

func benchStore(store string, o options) error {
	ctx := context.Background()
	var dbURL string
	switch store {
	case "postgres":
		u, drop, err := scratchPostgres(ctx, o.pgURL)
		if err != nil {
			return err
		}
		defer drop()
		dbURL = u
	case "sqlite":
		dir, err := os.MkdirTemp("", "airlock-bench-budget")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbURL = "sqlite:" + filepath.Join(dir, "bench.db")
	default:
		return fmt.Errorf("unknown store %q", store)
	}
	db, err := database.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := database.Migrate(ctx, db, budget.Migrations()); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := budget.New(ctx, budget.NewStore(db), log, budget.Config{Workers: o.workers})
	if err != nil {
		return err
	}
	defer svc.Close()
	api, stop, err := newCaller(svc, o)
	if err != nil {
		return err
	}
	defer stop()

	for _, sc := range []struct {
		name    string
		budgets int
	}{{"one hot budget", 1}, {"1,000 budgets", 1000}} {
		tenants := make([]string, sc.budgets)
		const limit = int64(1) << 48
		for i := range tenants {
			tenants[i] = fmt.Sprintf("bench-%d-%d", sc.budgets, i)
			if _, err := svc.SetBudget(ctx, budget.SetBudgetRequest{Tenant: tenants[i], Scope: budget.Scope{Kind: budget.ScopeTenant},
				Period: budget.PeriodMonthly, Limit: limit}); err != nil {
				return err
			}
		}
		res, err := load(ctx, api, tenants, o)
		if err != nil {
			return err
		}
		if err := verify(ctx, svc, tenants, res.committed, limit); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		fmt.Printf("%-8s %-15s %8.0f reservations/s  p50 %7s  p99 %7s  (%d pairs; overspend 0; ledger = committed)\n",
			store, sc.name, res.rate, res.p50.Round(10*time.Microsecond), res.p99.Round(10*time.Microsecond), res.n)
	}
	return nil
}

// caller reserves and commits for a tenant.
type caller func(ctx context.Context, worker int, tenant, key string, amount, actual int64) error

func newCaller(svc *budget.Service, o options) (caller, func(), error) {
	if !o.useGRPC {
		return func(ctx context.Context, _ int, tenant, key string, amount, actual int64) error {
			r, err := svc.Reserve(ctx, budget.ReserveRequest{Tenant: tenant, Scopes: []budget.Scope{{Kind: budget.ScopeTenant}},
				Amount: amount, IdempotencyKey: key, Kind: budget.CostLLM, Model: "grok-4", TTL: time.Minute})
			if err != nil {
				return err
			}
			_, err = svc.Commit(ctx, tenant, r.ID, actual)
			return err
		}, func() {}, nil
	}
	// Each tenant's service credential; the server authenticates per call.
	keys := auth.StaticKeys{}
	token := func(tenant string) string { return "tok-" + tenant }
	for _, n := range []int{1, 1000} {
		for i := 0; i < n; i++ {
			t := fmt.Sprintf("bench-%d-%d", n, i)
			keys[token(t)] = auth.Principal{Tenant: t, Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}}
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, "bench-budget", server.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second,
		HealthInterval: time.Hour, MaxMessageBytes: 4 << 20}, log, server.WithAuth(auth.NewInterceptor(mapAuth(keys), budget.Rules(), log)))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	budget.NewHandler(svc, pricing.Default(), log).Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	var clients []budgetv1.BudgetServiceClient
	var conns []*grpc.ClientConn
	for i := 0; i < o.clients; i++ {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			cancel()
			return nil, nil, err
		}
		conns = append(conns, conn)
		clients = append(clients, budgetv1.NewBudgetServiceClient(conn))
	}
	stop := func() {
		for _, c := range conns {
			c.Close()
		}
		cancel()
		<-done
	}
	return func(ctx context.Context, worker int, tenant, key string, amount, actual int64) error {
		c := clients[worker%len(clients)]
		creds := grpc.PerRPCCredentials(auth.BearerToken{Token: token(tenant)})
		r, err := c.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT}},
			AmountMicros: amount, IdempotencyKey: key, Kind: budgetv1.CostKind_COST_KIND_LLM, Model: "grok-4"}, creds)
		if err != nil {
			return err
		}
		_, err = c.Commit(ctx, &budgetv1.CommitRequest{ReservationId: r.GetReservation().GetId(), ActualMicros: actual}, creds)
		return err
	}, stop, nil
}

// mapAuth looks tokens up in a map: StaticKeys compares against every key
// in constant time, which is too slow for 1,001 keys under load.
type mapAuth auth.StaticKeys

func (m mapAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	p, ok := m[token]
	if !ok {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return p, nil
}

type result struct {
	n         int
	rate      float64
	p50, p99  time.Duration
	committed map[string]int64
}

func load(ctx context.Context, api caller, tenants []string, o options) (result, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		firstErr atomic.Value
		seq      atomic.Int64
	)
	committed := map[string]int64{}
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			spent := map[string]int64{}
			for time.Now().Before(deadline) {
				i := seq.Add(1)
				tenant := tenants[int(i)%len(tenants)]
				amount := 1_000 + i%1000
				actual := amount / 2
				t0 := time.Now()
				if err := api(ctx, w, tenant, fmt.Sprintf("k-%d", i), amount, actual); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				local = append(local, time.Since(t0))
				spent[tenant] += actual
			}
			mu.Lock()
			lats = append(lats, local...)
			for k, v := range spent {
				committed[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, ok := firstErr.Load().(error); ok {
		return result{}, err
	}
	if len(lats) == 0 {
		return result{}, errors.New("no request completed")
	}
	slices.Sort(lats)
	return result{n: len(lats), rate: float64(len(lats)) / elapsed.Seconds(), p50: lats[len(lats)/2],
		p99: lats[len(lats)*99/100], committed: committed}, nil
}

// verify checks no budget holds money, none spent past its limit, and each
// tenant's ledger sums exactly to what the callers committed.
func verify(ctx context.Context, svc *budget.Service, tenants []string, committed map[string]int64, limit int64) error {
	for _, t := range tenants {
		b, err := svc.GetBudget(ctx, t, budget.Scope{Kind: budget.ScopeTenant})
		if err != nil {
			return err
		}
		spent, _, err := svc.LedgerTotals(ctx, t)
		if err != nil {
			return err
		}
		switch {
		case b.Reserved != 0:
			return fmt.Errorf("%s still holds %d", t, b.Reserved)
		case b.Spent > limit:
			return fmt.Errorf("%s overspent: %d > %d", t, b.Spent, limit)
		case b.Spent != committed[t] || spent != committed[t]:
			return fmt.Errorf("%s: budget says %d, ledger %d, callers committed %d", t, b.Spent, spent, committed[t])
		}
	}
	return nil
}

// scratchPostgres creates an empty database and returns its URL and a
// function that drops it.
func scratchPostgres(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to %s (AIRLOCK_BENCH_DATABASE_URL): %w", admin, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "airlock_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}
