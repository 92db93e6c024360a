package main

import (
	"context"

	"github.com/spf13/pflag"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/services/approval"
)

// approvalService holds risky code for a person's decision; see services/approval.
func approvalService() *serviceSpec {
	cfg := approval.DefaultConfig()
	return &serviceSpec{
		Name:       "approval",
		FullName:   approvalv1.ApprovalService_ServiceDesc.ServiceName,
		NeedsDB:    true,
		Migrations: []database.Migrations{approval.Migrations()},
		Rules:      approval.Rules(),
		Flags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&cfg.TTL, "approval-ttl", cfg.TTL, "how long an approval request waits for a decision before it expires")
			fs.DurationVar(&cfg.MaxTTL, "approval-max-ttl", cfg.MaxTTL, "the longest expiry a request may ask for")
			fs.DurationVar(&cfg.SweepInterval, "approval-sweep-interval", cfg.SweepInterval, "how often overdue requests are marked EXPIRED")
			fs.DurationVar(&cfg.PollInterval, "approval-poll-interval", cfg.PollInterval, "on SQLite, how often watchers look for changes made by other processes")
		},
		Start: func(ctx context.Context, env *serviceEnv) (func() error, error) {
			log := env.Log.With("service", "approval")
			svc, err := approval.NewService(approval.NewStore(env.DB), cfg, log)
			if err != nil {
				return nil, err
			}
			stop, err := svc.Start(ctx, env.DB)
			if err != nil {
				return nil, err
			}
			approvalv1.RegisterApprovalServiceServer(env.Server.GRPC(), approval.NewHandler(svc, log))
			env.Server.AddHealthCheck(approvalv1.ApprovalService_ServiceDesc.ServiceName, "change-feed", svc.FeedHealth)
			return func() error { stop(); return nil }, nil
		},
	}
}
