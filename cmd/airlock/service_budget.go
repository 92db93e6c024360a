package main

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/services/budget"
)

// budgetSettings are the budget service's flags, one set per spec (serve and
// dev start the very specs whose flags they bound), so command trees built
// concurrently (tests) never share them.
type budgetSettings struct {
	timeZone      string
	sweepInterval time.Duration
	defaultTTL    time.Duration
	maxTTL        time.Duration
	batchSize     int
	workers       int
}

// budgetService holds money before each paid step and settles it after; see services/budget.
func budgetService() *serviceSpec {
	s := &budgetSettings{timeZone: "UTC", sweepInterval: budget.DefaultSweepInterval, defaultTTL: budget.DefaultTTL,
		maxTTL: budget.DefaultMaxTTL, batchSize: budget.DefaultBatchSize}
	return &serviceSpec{
		Name:       "budget",
		FullName:   budgetv1.BudgetService_ServiceDesc.ServiceName,
		NeedsDB:    true,
		Migrations: []database.Migrations{budget.Migrations()},
		Rules:      budget.Rules(),
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&s.timeZone, "budget-time-zone", s.timeZone, "IANA zone of budgets set without one, and of usage reports for scopes with no budget")
			fs.DurationVar(&s.sweepInterval, "budget-sweep-interval", s.sweepInterval, "how often reservations past their ttl are released")
			fs.DurationVar(&s.defaultTTL, "budget-default-ttl", s.defaultTTL, "a reservation's ttl when the request gives none")
			fs.DurationVar(&s.maxTTL, "budget-max-ttl", s.maxTTL, "the longest ttl a reservation may ask for")
			fs.IntVar(&s.batchSize, "budget-batch-size", s.batchSize, "how many concurrent reserve/commit/release requests may share one transaction")
			fs.IntVar(&s.workers, "budget-workers", s.workers, "transactions in flight at once; 0 means 2 on Postgres, 1 on SQLite")
		},
		Start: func(ctx context.Context, env *serviceEnv) (func() error, error) {
			cfg, err := budgetConfig(*s)
			if err != nil {
				return nil, err
			}
			log := env.Log.With("service", "budget")
			svc, err := budget.New(ctx, budget.NewStore(env.DB), log, cfg)
			if err != nil {
				return nil, err
			}
			budget.NewHandler(svc, env.Prices, log).Register(env.Server.GRPC())
			// On Postgres, watchers see other replicas' events only while LISTEN is up.
			env.Server.AddHealthCheck(budgetv1.BudgetService_ServiceDesc.ServiceName, "events", svc.CheckEvents)
			return svc.Close, nil
		},
	}
}

func budgetConfig(s budgetSettings) (budget.Config, error) {
	loc, err := time.LoadLocation(s.timeZone)
	if err != nil || s.timeZone == "" || s.timeZone == "Local" {
		return budget.Config{}, config.Invalid("budget-time-zone", "%q is not an IANA time zone such as Europe/Paris", s.timeZone)
	}
	for name, v := range map[string]time.Duration{"budget-sweep-interval": s.sweepInterval,
		"budget-default-ttl": s.defaultTTL, "budget-max-ttl": s.maxTTL} {
		if v <= 0 {
			return budget.Config{}, config.Invalid(name, "must be positive, got %s", v)
		}
	}
	if s.maxTTL < s.defaultTTL {
		return budget.Config{}, config.Invalid("budget-max-ttl", "%s is shorter than --budget-default-ttl %s", s.maxTTL, s.defaultTTL)
	}
	if s.batchSize < 1 || s.batchSize > 10_000 {
		return budget.Config{}, config.Invalid("budget-batch-size", "must be between 1 and 10000, got %d", s.batchSize)
	}
	if s.workers < 0 || s.workers > 64 {
		return budget.Config{}, config.Invalid("budget-workers", "must be between 0 and 64, got %d", s.workers)
	}
	return budget.Config{TimeZone: loc, SweepInterval: s.sweepInterval, DefaultTTL: s.defaultTTL,
		MaxTTL: s.maxTTL, BatchSize: s.batchSize, Workers: s.workers}, nil
}
