package orchestrator

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// Reservation kinds as stored.
const (
	kindLLM     = "llm"
	kindCompute = "compute"
)

// reserve holds amount for one paid step of r against the tenant's and the
// requester's budgets, and records the reservation before the step starts. A
// refusal ends the run BUDGET_EXCEEDED.
// also, when set, is stored in the same transaction as the reservation's record.
func (e *Engine) reserve(ctx context.Context, r *Run, kind string, amount int64, ttl time.Duration, model string, also func(Store) error) (Reservation, error) {
	if amount <= 0 {
		amount = 1 // the budget service wants a positive amount; a free step still proves the budget is open
	}
	ck := budgetv1.CostKind_COST_KIND_COMPUTE
	if kind == kindLLM {
		ck = budgetv1.CostKind_COST_KIND_LLM
	}
	resp, err := e.clients.Budget.Reserve(auth.OnBehalfOf(ctx, r.Principal), &budgetv1.ReserveRequest{
		Scopes: []*budgetv1.Scope{
			{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT},
			{Kind: budgetv1.ScopeKind_SCOPE_KIND_USER, Subject: r.Requester},
		},
		AmountMicros:   amount,
		Ttl:            durationpb.New(ttl),
		IdempotencyKey: newID("rsv"),
		Kind:           ck,
		Model:          model,
		RunId:          r.ID,
	})
	if err != nil {
		if status.Code(err) == codes.ResourceExhausted {
			return Reservation{}, end(stBudget, "budget refused %s of %s: %s", formatMicros(amount), kindWord(kind), status.Convert(err).Message())
		}
		return Reservation{}, fmt.Errorf("reserving %s for %s: %w", formatMicros(amount), kindWord(kind), err)
	}
	res := Reservation{ID: resp.GetReservation().GetId(), RunID: r.ID, Kind: kind, Amount: amount}
	err = e.store.InTx(context.WithoutCancel(ctx), func(st Store) error {
		if err := st.AddReservation(ctx, res); err != nil {
			return err
		}
		if also != nil {
			return also(st)
		}
		return nil
	})
	if err != nil {
		e.release(ctx, r, res, "the orchestrator could not record it")
		return Reservation{}, err
	}
	return res, nil
}

func kindWord(kind string) string {
	if kind == kindLLM {
		return "code generation"
	}
	return "execution"
}

// commit settles a reservation with the actual cost in the budget service,
// then stores the settlement, the cost, and also's writes (when set) in one
// transaction.
func (e *Engine) commit(ctx context.Context, r *Run, res Reservation, actual int64, also func(Store) error) error {
	ctx = context.WithoutCancel(ctx)
	if actual < 0 {
		actual = 0
	}
	_, err := e.clients.Budget.Commit(auth.OnBehalfOf(ctx, r.Principal), &budgetv1.CommitRequest{
		ReservationId: res.ID, ActualMicros: actual, IdempotencyKey: res.ID + "-commit",
	})
	if err != nil {
		return fmt.Errorf("settling %s: %w", kindWord(res.Kind), err)
	}
	llm, compute := actual, int64(0)
	if res.Kind == kindCompute {
		llm, compute = 0, actual
	}
	err = e.store.InTx(ctx, func(st Store) error {
		if err := st.DeleteReservation(ctx, res.ID); err != nil {
			return err
		}
		if err := st.AddCost(ctx, r.ID, llm, compute); err != nil {
			return err
		}
		if also != nil {
			return also(st)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.LLMMicros += llm
	r.ComputeMicros += compute
	return nil
}

// release frees a reservation whose step did not happen or failed.
func (e *Engine) release(ctx context.Context, r *Run, res Reservation, reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := e.clients.Budget.Release(auth.OnBehalfOf(ctx, r.Principal), &budgetv1.ReleaseRequest{
		ReservationId: res.ID, IdempotencyKey: res.ID + "-release", Reason: reason,
	})
	if err != nil && status.Code(err) != codes.NotFound && status.Code(err) != codes.FailedPrecondition {
		// The reservation expires by its ttl; keep the record so a restart retries.
		e.log.WarnContext(ctx, "releasing reservation", "run_id", r.ID, "reservation_id", res.ID, "error", err)
		return
	}
	if err := e.store.DeleteReservation(ctx, res.ID); err != nil {
		e.log.WarnContext(ctx, "forgetting released reservation", "run_id", r.ID, "error", err)
	}
}

// releaseAll frees every reservation r still holds.
func (e *Engine) releaseAll(ctx context.Context, r *Run) {
	e.releaseUnused(ctx, r, false)
}

// releaseUnused frees r's reservations, except, when keepSettling is set,
// those of a finished step that are to be committed.
func (e *Engine) releaseUnused(ctx context.Context, r *Run, keepSettling bool) {
	res, err := e.store.Reservations(context.WithoutCancel(ctx), r.ID)
	if err != nil {
		e.log.WarnContext(ctx, "listing reservations to release", "run_id", r.ID, "error", err)
		return
	}
	for _, x := range res {
		if keepSettling && x.Settling {
			continue
		}
		e.release(ctx, r, x, "run "+r.ID+" did not use it")
	}
}

// settling returns r's reservation of kind that is to be committed, if any.
func (e *Engine) settling(ctx context.Context, r *Run, kind string) (Reservation, bool, error) {
	res, err := e.store.Reservations(context.WithoutCancel(ctx), r.ID)
	if err != nil {
		return Reservation{}, false, err
	}
	for _, x := range res {
		if x.Settling && x.Kind == kind {
			return x, true, nil
		}
	}
	return Reservation{}, false, nil
}

// formatMicros renders micro-dollars as dollars, such as "$0.001234".
func formatMicros(m int64) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s$%d.%06d", sign, m/1_000_000, m%1_000_000)
}
