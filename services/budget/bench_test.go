package budget

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

// BenchmarkReserveCommit measures one Reserve plus its Commit on one hot
// budget from parallel callers, per store. bench/budget prints the same
// with latency percentiles and across 1,000 budgets.
func BenchmarkReserveCommit(b *testing.B) {
	for _, store := range []string{"postgres", "sqlite"} {
		b.Run(store, func(b *testing.B) {
			url := dbtest.NewSQLiteURL(b)
			if store == "postgres" {
				url = dbtest.NewPostgresURL(b)
			}
			db := dbtest.Open(b, url, migrations()...)
			ctx := context.Background()
			svc, err := New(ctx, NewStore(db), testLogger(b), Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close()
			if _, err := svc.SetBudget(ctx, SetBudgetRequest{Tenant: "hot", Scope: tenantScope, Period: PeriodMonthly, Limit: MaxAmount}); err != nil {
				b.Fatal(err)
			}
			var seq atomic.Int64
			b.SetParallelism(32) // callers per CPU: requests must overlap to share transactions
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := svc.Reserve(ctx, ReserveRequest{Tenant: "hot", Scopes: []Scope{tenantScope}, Amount: 1_000,
						IdempotencyKey: fmt.Sprint("k", seq.Add(1)), Kind: CostLLM, TTL: time.Minute})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := svc.Commit(ctx, "hot", r.ID, 500); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
		})
	}
}
