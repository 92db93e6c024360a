package approval_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/services/approval"
)

func benchService(b *testing.B, dialect string) *approval.Service {
	b.Helper()
	url := dbtest.NewSQLiteURL(b)
	if dialect == "postgres" {
		url = dbtest.NewPostgresURL(b)
	}
	db := dbtest.Open(b, url, migrations...)
	svc, err := approval.NewService(approval.NewStore(db), approval.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkCreateAndApprove measures one request's life: create (with its
// chained event) then approve (with its chained event).
func BenchmarkCreateAndApprove(b *testing.B) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		b.Run(dialect, func(b *testing.B) {
			svc := benchService(b, dialect)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				a, err := svc.Create(ctx, withVia(alice), approval.CreateParams{RunID: fmt.Sprintf("run-%d", i),
					Code: sampleCode, PolicyID: "default", PolicyVersion: "pv-1"})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := svc.Approve(ctx, bob, a.ID, "ok"); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkVerifyTrail measures walking a 2,000-event trail.
func BenchmarkVerifyTrail(b *testing.B) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		b.Run(dialect, func(b *testing.B) {
			svc := benchService(b, dialect)
			ctx := context.Background()
			for i := range 1000 {
				a, err := svc.Create(ctx, withVia(alice), approval.CreateParams{RunID: fmt.Sprintf("run-%d", i),
					Code: sampleCode, PolicyID: "default", PolicyVersion: "pv-1"})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := svc.Reject(ctx, bob, a.ID, "no"); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				rep, err := svc.VerifyTrail(ctx, bob)
				if err != nil || !rep.OK || rep.EventsChecked != 2000 {
					b.Fatalf("%+v %v", rep, err)
				}
			}
		})
	}
}

// BenchmarkCheckApproval measures the orchestrator's pre-execution check
// (request lookup plus its trail event) among 500 approved requests.
func BenchmarkCheckApproval(b *testing.B) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		b.Run(dialect, func(b *testing.B) {
			svc := benchService(b, dialect)
			ctx := context.Background()
			var last approval.Approval
			for i := range 500 {
				a, err := svc.Create(ctx, withVia(alice), approval.CreateParams{RunID: fmt.Sprintf("run-%d", i),
					Code: fmt.Sprintf("print(%d)\n", i), PolicyID: "default", PolicyVersion: "pv-1"})
				if err != nil {
					b.Fatal(err)
				}
				if last, err = svc.Approve(ctx, bob, a.ID, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				ok, _, err := svc.Check(ctx, withVia(alice), last.RunID, last.CodeSHA256, "pv-1")
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
