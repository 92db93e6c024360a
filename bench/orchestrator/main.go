// Command orchestrator measures the orchestrator's own overhead per run — end
// to end through gRPC minus model and sandbox time — with the services it
// calls replaced by stubs that answer at once over loopback gRPC, on SQLite
// and on Postgres: latency p50/p99 of one client, and runs per second with 8
// concurrent clients, all over supplied code (no model call).
//
//	go run ./bench/orchestrator [-runs 200] [-clients 8] [-postgres URL] [-real bin/airlock]
//
// With -real it also runs supplied code through `airlock dev` — the real
// services and sandbox — and reports end to end minus the sandbox's wall time.
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
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/pricing"
	"github.com/airlockhq/airlock/services/orchestrator"
)

const code = "import pandas as pd\nprint(pd.read_csv('/data/in/sales.csv').groupby('region').sum())\n"

func main() {
	runs := flag.Int("runs", 200, "runs measured one at a time for the latency figures")
	clients := flag.Int("clients", 8, "concurrent clients for the throughput figure")
	perClient := flag.Int("per-client", 40, "runs each concurrent client submits")
	pgURL := flag.String("postgres", envOr("AIRLOCK_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"Postgres server to create a scratch database on; empty skips Postgres")
	realBin := flag.String("real", "auto", "also measure through `BIN dev` (the real services and sandbox); auto means bin/airlock when built, empty skips")
	realRuns := flag.Int("real-runs", 30, "runs measured one at a time through -real")
	realPerClient := flag.Int("real-per-client", 5, "runs each concurrent client submits through -real")
	flag.Parse()
	ctx := context.Background()
	fmt.Printf("orchestrator overhead per run (supplied code; stub services answer at once; %d runs; %d clients x %d runs)\n",
		*runs, *clients, *perClient)
	dir, err := os.MkdirTemp("", "airlock-bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	if err := bench(ctx, "sqlite", "sqlite:"+dir+"/bench.db", *runs, *clients, *perClient); err != nil {
		fail(err)
	}
	if *pgURL != "" {
		u, drop, err := scratchPostgres(ctx, *pgURL)
		if err != nil {
			fail(fmt.Errorf("postgres (-postgres, or empty to skip): %w", err))
		}
		defer drop()
		if err := bench(ctx, "postgres", u, *runs, *clients, *perClient); err != nil {
			fail(err)
		}
	}
	if *realBin == "auto" {
		*realBin = ""
		if _, err := os.Stat("bin/airlock"); err == nil {
			*realBin = "bin/airlock"
		}
	}
	if *realBin != "" {
		if err := benchReal(ctx, *realBin, *realRuns, *clients, *realPerClient); err != nil {
			fail(err)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/orchestrator:", err)
	os.Exit(1)
}

func scratchPostgres(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
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
	return u.String(), func() {
		c, err := pgx.Connect(ctx, admin)
		if err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}, nil
}

func bench(ctx context.Context, label, dbURL string, runs, clients, perClient int) error {
	db, err := database.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := database.Migrate(ctx, db, orchestrator.Migrations()); err != nil {
		return err
	}
	addr, stop, err := serve(ctx, db)
	if err != nil {
		return err
	}
	defer stop()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: "user"}))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := orchestratorv1.NewOrchestratorServiceClient(conn)
	fileID, err := upload(ctx, c)
	if err != nil {
		return err
	}
	one := func() (time.Duration, error) {
		_, d, err := oneRun(ctx, c, fileID)
		return d, err
	}
	return measure(label, "", 10, runs, clients, perClient, one, one)
}

// measure warms up with warm calls of latency, times runs more (one client),
// then has clients goroutines each call load perClient times at once, and
// prints p50/p99 of the latencies and the runs per second under load.
func measure(label, note string, warm, runs, clients, perClient int, latency, load func() (time.Duration, error)) error {
	for range warm { // warm up connections, caches and prepared plans
		if _, err := latency(); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, runs)
	for range runs {
		d, err := latency()
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for range perClient {
				if _, err := load(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("%-8s overhead p50 %7.2f ms  p99 %7.2f ms  (1 client)   throughput %6.1f runs/s (%d clients)%s\n",
		label, ms(p(0.50)), ms(p(0.99)), float64(clients*perClient)/elapsed.Seconds(), clients, note)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// oneRun submits supplied code, follows it to its end through WatchRun, and
// returns its id and how long that took.
func oneRun(ctx context.Context, c orchestratorv1.OrchestratorServiceClient, fileID string) (string, time.Duration, error) {
	start := time.Now()
	id, err := runToEnd(ctx, c, fileID)
	return id, time.Since(start), err
}

// runToEnd submits supplied code, follows it through WatchRun until it
// succeeds, and returns its id.
func runToEnd(ctx context.Context, c orchestratorv1.OrchestratorServiceClient, fileID string) (string, error) {
	resp, err := c.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{
		Source: &orchestratorv1.SubmitRunRequest_Code{Code: code}, InputFileIds: []string{fileID}})
	if err != nil {
		return "", err
	}
	id := resp.GetRun().GetId()
	stream, err := c.WatchRun(ctx, &orchestratorv1.WatchRunRequest{RunId: id})
	if err != nil {
		return "", err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("run %s: watch ended before the run", id)
		}
		if err != nil {
			return "", err
		}
		if t := msg.GetTransition(); t != nil && orchestrator.Terminal(t.GetTo()) {
			if t.GetTo() != orchestratorv1.RunState_RUN_STATE_SUCCEEDED {
				return "", fmt.Errorf("run %s ended %s: %s", id, t.GetTo(), t.GetMessage())
			}
			return id, nil
		}
	}
}

func upload(ctx context.Context, c orchestratorv1.OrchestratorServiceClient) (string, error) {
	stream, err := c.UploadFile(ctx)
	if err != nil {
		return "", err
	}
	if err := stream.Send(&orchestratorv1.UploadFileRequest{Name: "sales.csv", Chunk: []byte("region,amount\nnorth,10\nsouth,5\n")}); err != nil {
		return "", err
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return "", err
	}
	return resp.GetFile().GetFileId(), nil
}

// serve starts the orchestrator and the stubs on one loopback gRPC server
// with the real auth interceptor, as `airlock dev` does.
func serve(ctx context.Context, db *database.DB) (string, func(), error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := auth.StaticKeys{
		"user": {Tenant: "bench", Subject: "bencher", Roles: []auth.Role{auth.RoleUser}},
		"svc":  {Tenant: "_system", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
	}
	rules := auth.Rules{}
	for _, sd := range []grpc.ServiceDesc{orchestratorv1.OrchestratorService_ServiceDesc, policyv1.PolicyService_ServiceDesc,
		budgetv1.BudgetService_ServiceDesc, executorv1.ExecutorService_ServiceDesc} {
		for _, m := range sd.Methods {
			rules["/"+sd.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleUser, auth.RoleService}
		}
		for _, m := range sd.Streams {
			rules["/"+sd.ServiceName+"/"+m.StreamName] = []auth.Role{auth.RoleUser, auth.RoleService}
		}
	}
	ai := auth.NewInterceptor(keys, rules, log)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(ai.Unary()), grpc.ChainStreamInterceptor(ai.Stream()))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	svc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: "svc"}))
	if err != nil {
		return "", nil, err
	}
	engine := orchestrator.NewEngine(orchestrator.NewSQLStore(db), orchestrator.Clients{
		Policy: policyv1.NewPolicyServiceClient(svc), Budget: budgetv1.NewBudgetServiceClient(svc),
		Generator: generatorv1.NewGeneratorServiceClient(svc), Executor: executorv1.NewExecutorServiceClient(svc),
		Approval: approvalv1.NewApprovalServiceClient(svc),
	}, pricing.Default(), orchestrator.DefaultConfig(), nil, log)
	policyv1.RegisterPolicyServiceServer(srv, stubPolicy{})
	budgetv1.RegisterBudgetServiceServer(srv, &stubBudget{})
	executorv1.RegisterExecutorServiceServer(srv, stubExecutor{})
	orchestratorv1.RegisterOrchestratorServiceServer(srv, orchestrator.NewServer(engine, log))
	go func() { _ = srv.Serve(lis) }()
	ectx, cancel := context.WithCancel(ctx)
	engine.Start(ectx, nil)
	return lis.Addr().String(), func() {
		cancel()
		engine.Wait()
		srv.Stop()
		svc.Close()
	}, nil
}
