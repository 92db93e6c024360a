package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/tabular"
	"github.com/airlockhq/airlock/pkg/tabular/tabularpb"
	"github.com/airlockhq/airlock/services/orchestrator"
)

// orchestratorService drives runs through the pipeline, calling the other
// five services on the submitter's behalf.
func orchestratorService() *serviceSpec {
	rules := auth.Rules{}
	all := []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService}
	for _, m := range orchestratorv1.OrchestratorService_ServiceDesc.Methods {
		rules["/"+orchestratorv1.OrchestratorService_ServiceDesc.ServiceName+"/"+m.MethodName] = all
	}
	for _, m := range orchestratorv1.OrchestratorService_ServiceDesc.Streams {
		rules["/"+orchestratorv1.OrchestratorService_ServiceDesc.ServiceName+"/"+m.StreamName] = all
	}
	cfg := new(orchestrator.Config)
	*cfg = orchestrator.DefaultConfig()
	sampleRows := tabular.DefaultSampleRows
	return &serviceSpec{
		Name:       "orchestrator",
		FullName:   orchestratorv1.OrchestratorService_ServiceDesc.ServiceName,
		NeedsDB:    true,
		Migrations: []database.Migrations{orchestrator.Migrations()},
		Rules:      rules,
		Flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&cfg.MaxAttempts, "orchestrator-max-attempts", cfg.MaxAttempts, "attempts a generated run gets before it ends DENIED or FAILED (also the most a request may ask)")
			fs.StringVar(&cfg.Model, "orchestrator-model", cfg.Model, "model asked for code and priced for reservations; it must be in the price table")
			fs.Int32Var(&cfg.MaxOutputTokens, "orchestrator-max-output-tokens", cfg.MaxOutputTokens, "cap on each answer's tokens; reservations price it in full")
			fs.DurationVar(&cfg.GenerateTimeout, "orchestrator-generate-timeout", cfg.GenerateTimeout, "time one generation may take")
			fs.DurationVar(&cfg.ApprovalPoll, "orchestrator-approval-poll", cfg.ApprovalPoll, "how often a run waiting for approval re-reads it (a watch stream also wakes it)")
			fs.DurationVar(&cfg.ApprovalTTL, "orchestrator-approval-ttl", cfg.ApprovalTTL, "expiry of approval requests; 0 leaves the approval service's default")
			fs.Int64Var(&cfg.MaxFileBytes, "orchestrator-max-file-bytes", cfg.MaxFileBytes, "largest uploaded file")
			fs.Int64Var(&cfg.MaxRunInputBytes, "orchestrator-max-run-input-bytes", cfg.MaxRunInputBytes, "largest total of a run's inputs (they travel to the sandbox in one message)")
			fs.DurationVar(&cfg.DefaultTimeout, "orchestrator-default-timeout", cfg.DefaultTimeout, "wall-time priced for an execution whose policy sets no timeout")
			fs.Int64Var(&cfg.MaxOutputBytes, "orchestrator-max-output-bytes", cfg.MaxOutputBytes, "most output files one execution may return (a policy allowing more is lowered to this); keep it within the executor's maximum")
			fs.DurationVar(&cfg.LeaseTTL, "orchestrator-lease-ttl", cfg.LeaseTTL, "how long a run stays with the replica driving it without renewal; after a crash another replica (or this one restarted) takes it over then")
			fs.IntVar(&sampleRows, "orchestrator-sample-rows", sampleRows, "rows of each input shown to the model; 0 sends no rows")
			fs.Int64Var(&cfg.DefaultMemoryBytes, "orchestrator-default-memory-bytes", cfg.DefaultMemoryBytes, "memory priced for an execution whose policy sets no limit")
		},
		Start: func(ctx context.Context, env *serviceEnv) (func() error, error) {
			if err := validateOrchestratorConfig(*cfg, env); err != nil {
				return nil, err
			}
			if sampleRows < 0 {
				return nil, config.Invalid("orchestrator-sample-rows", "must not be negative")
			}
			clients, conns, err := orchestratorClients(env)
			if err != nil {
				return nil, err
			}
			engine := orchestrator.NewEngine(orchestrator.NewSQLStore(env.DB), clients, env.Prices, *cfg,
				datasetProfiler(sampleRows), env.Log.With("service", "orchestrator"))
			orchestratorv1.RegisterOrchestratorServiceServer(env.Server.GRPC(), orchestrator.NewServer(engine, env.Log))
			// Runs resume once the services they call answer (in dev they share this server,
			// which starts listening only after every service has started).
			log := env.Log.With("service", "orchestrator")
			engine.Start(ctx, func(ctx context.Context) error { return waitForPeers(ctx, conns, log) })
			return func() error { engine.Wait(); return nil }, nil
		},
	}
}

func validateOrchestratorConfig(cfg orchestrator.Config, env *serviceEnv) error {
	switch {
	case cfg.MaxAttempts < 1 || cfg.MaxAttempts > 10:
		return config.Invalid("orchestrator-max-attempts", "%d is not between 1 and 10", cfg.MaxAttempts)
	case cfg.MaxOutputTokens < 1:
		return config.Invalid("orchestrator-max-output-tokens", "must be positive")
	case cfg.GenerateTimeout <= 0:
		return config.Invalid("orchestrator-generate-timeout", "must be positive")
	case cfg.ApprovalPoll < 10*time.Millisecond:
		return config.Invalid("orchestrator-approval-poll", "must be at least 10ms")
	case cfg.ApprovalTTL < 0:
		return config.Invalid("orchestrator-approval-ttl", "must not be negative")
	case cfg.MaxFileBytes < 1:
		return config.Invalid("orchestrator-max-file-bytes", "must be positive")
	case cfg.MaxRunInputBytes < cfg.MaxFileBytes:
		return config.Invalid("orchestrator-max-run-input-bytes", "must be at least --orchestrator-max-file-bytes")
	case cfg.MaxOutputBytes < 1:
		return config.Invalid("orchestrator-max-output-bytes", "must be positive")
	case cfg.LeaseTTL < 3*time.Second:
		return config.Invalid("orchestrator-lease-ttl", "must be at least 3s")
	case cfg.DefaultTimeout <= 0:
		return config.Invalid("orchestrator-default-timeout", "must be positive")
	case cfg.DefaultMemoryBytes < 1:
		return config.Invalid("orchestrator-default-memory-bytes", "must be positive")
	}
	if _, ok := env.Prices.Models[cfg.Model]; !ok {
		return config.Invalid("orchestrator-model", "%q is not in the price table (--prices)", cfg.Model)
	}
	return nil
}

func orchestratorClients(env *serviceEnv) (orchestrator.Clients, []*grpc.ClientConn, error) {
	var conns []*grpc.ClientConn
	dial := func(name string) (*grpc.ClientConn, error) {
		c, err := env.Dial(name)
		if err != nil {
			return nil, fmt.Errorf("orchestrator needs the %s service: %w", name, err)
		}
		conns = append(conns, c)
		return c, nil
	}
	var cl orchestrator.Clients
	for _, d := range []struct {
		name string
		set  func(*grpc.ClientConn)
	}{
		{"policy", func(c *grpc.ClientConn) { cl.Policy = policyv1.NewPolicyServiceClient(c) }},
		{"budget", func(c *grpc.ClientConn) { cl.Budget = budgetv1.NewBudgetServiceClient(c) }},
		{"generator", func(c *grpc.ClientConn) { cl.Generator = generatorv1.NewGeneratorServiceClient(c) }},
		{"executor", func(c *grpc.ClientConn) { cl.Executor = executorv1.NewExecutorServiceClient(c) }},
		{"approval", func(c *grpc.ClientConn) { cl.Approval = approvalv1.NewApprovalServiceClient(c) }},
	} {
		c, err := dial(d.name)
		if err != nil {
			return cl, nil, err
		}
		d.set(c)
	}
	return cl, conns, nil
}

// waitForPeers returns once every peer answers the health protocol (any status), or ctx ends.
func waitForPeers(ctx context.Context, conns []*grpc.ClientConn, log *slog.Logger) error {
	for _, c := range conns {
		for start := time.Now(); ; {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := healthpb.NewHealthClient(c).Check(cctx, &healthpb.HealthCheckRequest{})
			cancel()
			if err == nil {
				break
			}
			if time.Since(start) > 10*time.Second {
				log.WarnContext(ctx, "runs wait until a service the orchestrator calls answers", "peer", c.Target(), "error", err)
				start = time.Now()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// datasetProfiler describes a CSV or XLSX input for the model (columns, types,
// row count, up to sampleRows sample rows); other files are named with their size only.
func datasetProfiler(sampleRows int) orchestrator.Profiler {
	return func(ctx context.Context, name string, content []byte) (*generatorv1.DatasetProfile, error) {
		ds, err := tabular.Profile(ctx, name, bytes.NewReader(content), int64(len(content)),
			tabular.Options{SampleRows: sampleRows})
		if errors.Is(err, tabular.ErrUnsupportedFormat) {
			return &generatorv1.DatasetProfile{Name: name, SizeBytes: int64(len(content))}, nil
		}
		if err != nil {
			return nil, err
		}
		return tabularpb.ToProto(ds), nil
	}
}
