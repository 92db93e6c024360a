package budget

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
)

func tsOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func scopeProto(s Scope) *budgetv1.Scope {
	return &budgetv1.Scope{Kind: budgetv1.ScopeKind(s.Kind), Subject: s.Subject}
}

func budgetProto(b Budget) *budgetv1.Budget {
	return &budgetv1.Budget{
		Scope: scopeProto(b.Scope), Period: budgetv1.Period(b.Period), LimitMicros: b.Limit,
		ThresholdsPercent: b.Thresholds, TimeZone: b.TimeZone, SpentMicros: b.Spent, ReservedMicros: b.Reserved,
		PeriodStart: timestamppb.New(b.PeriodStart), PeriodEnd: tsOrNil(b.PeriodEnd()), Tenant: b.Tenant,
	}
}

func reservationProto(r Reservation) *budgetv1.Reservation {
	out := &budgetv1.Reservation{
		Id: r.ID, AmountMicros: r.Amount, ActualMicros: r.Actual, State: budgetv1.ReservationState(r.State),
		Kind: budgetv1.CostKind(r.Kind), Model: r.Model, RunId: r.RunID,
		CreatedAt: tsOrNil(r.CreatedAt), ExpiresAt: tsOrNil(r.ExpiresAt),
	}
	for _, s := range r.Scopes() {
		out.Scopes = append(out.Scopes, scopeProto(s))
	}
	return out
}

func eventProto(e Event) *budgetv1.BudgetEvent {
	return &budgetv1.BudgetEvent{
		Id: e.ID, Kind: budgetv1.EventKind(e.Kind), Scope: scopeProto(e.Scope), ThresholdPercent: e.Threshold,
		AmountMicros: e.Amount, ReservationId: e.ReservationID, Message: e.Message, OccurredAt: tsOrNil(e.At),
		Tenant: e.Tenant,
	}
}
