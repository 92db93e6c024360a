package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/grpcerr"
	"github.com/airlockhq/airlock/pkg/pricing"
)

// Rules says which roles may call each RPC. The handlers narrow further:
// Reserve, Commit and Release need a service (calling for itself or
// forwarding a user) or an admin; a user reads only their own USER scope.
func Rules() auth.Rules {
	name := "/" + budgetv1.BudgetService_ServiceDesc.ServiceName + "/"
	all := []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleAdmin, auth.RoleService}
	return auth.Rules{
		name + "SetBudget":    {auth.RoleOperator, auth.RoleAdmin},
		name + "GetBudget":    all,
		name + "GetUsage":     all,
		name + "Reserve":      all,
		name + "Commit":       all,
		name + "Release":      all,
		name + "EstimateCost": all,
		name + "WatchEvents":  {auth.RoleOperator, auth.RoleAdmin},
	}
}

// Handler serves airlock.budget.v1.BudgetService over a Service.
type Handler struct {
	budgetv1.UnimplementedBudgetServiceServer
	svc    *Service
	prices *pricing.Table
	log    *slog.Logger
}

var _ budgetv1.BudgetServiceServer = (*Handler)(nil)

// NewHandler returns the gRPC handlers for svc, pricing estimates with prices.
func NewHandler(svc *Service, prices *pricing.Table, log *slog.Logger) *Handler {
	return &Handler{svc: svc, prices: prices, log: log}
}

// Register registers h on srv.
func (h *Handler) Register(srv *grpc.Server) { budgetv1.RegisterBudgetServiceServer(srv, h) }

func caller(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Tenant == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "no authenticated caller")
	}
	return p, nil
}

// actsForService reports whether p may move money: a service calling for
// itself, a service forwarding a user (Via set), or an admin.
func actsForService(p auth.Principal) bool {
	return p.Via != "" || p.Has(auth.RoleService) || p.Has(auth.RoleAdmin)
}

func requireMover(p auth.Principal, method string) error {
	if !actsForService(p) {
		return status.Errorf(codes.PermissionDenied, "%s is for Airlock services: it moves money", method)
	}
	return nil
}

// scopeFor turns a request scope into a domain scope; an empty USER subject
// means the caller.
func scopeFor(p auth.Principal, sc *budgetv1.Scope) Scope {
	out := Scope{Kind: ScopeKind(sc.GetKind()), Subject: sc.GetSubject()}
	if out.Kind == ScopeUser && out.Subject == "" {
		out.Subject = p.Subject
	}
	return out
}

// mayRead checks a caller may read scope: operators and services read any
// budget of their tenant, a user only their own USER budget.
func mayRead(p auth.Principal, scope Scope) error {
	if p.Has(auth.RoleOperator) || (p.Via == "" && p.Has(auth.RoleService)) {
		return nil
	}
	if scope.Kind == ScopeUser && scope.Subject == p.Subject {
		return nil
	}
	return status.Error(codes.PermissionDenied, "a user may read only their own USER budget")
}

// errStatus maps domain errors to gRPC statuses; anything unexpected is
// logged and answered Internal with a clean message.
func (h *Handler) errStatus(ctx context.Context, method string, err error) error {
	var inv *InvalidError
	var quota *QuotaError
	switch {
	case errors.As(err, &inv):
		return grpcerr.Field(inv.Field, "%s", inv.Reason)
	case errors.As(err, &quota):
		return quotaStatus(quota)
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, ErrIdempotencyConflict):
		return grpcerr.FailedPrecondition("IDEMPOTENCY", method, err.Error())
	case errors.Is(err, ErrNotHeld):
		return grpcerr.FailedPrecondition("RESERVATION_STATE", method, err.Error())
	case errors.Is(err, ErrClosed):
		return status.Error(codes.Unavailable, "budget service is shutting down; retry")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	h.log.ErrorContext(ctx, "budget request failed", "method", method, "error", err)
	return status.Error(codes.Internal, "internal error")
}

func quotaStatus(q *QuotaError) error {
	st := status.New(codes.ResourceExhausted, q.Error())
	withDetails, err := st.WithDetails(
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject: q.Scope.String(),
			Description: fmt.Sprintf("limit %d, spent %d, reserved %d micro-dollars; %d requested",
				q.Limit, q.Spent, q.Reserved, q.Requested),
		}}},
		&errdetails.ErrorInfo{Reason: "BUDGET_EXHAUSTED", Domain: "budget.airlock", Metadata: map[string]string{
			"scope":           q.Scope.String(),
			"limit_micros":    strconv.FormatInt(q.Limit, 10),
			"spent_micros":    strconv.FormatInt(q.Spent, 10),
			"reserved_micros": strconv.FormatInt(q.Reserved, 10),
			"requested":       strconv.FormatInt(q.Requested, 10),
		}},
	)
	if err == nil {
		st = withDetails
	}
	return st.Err()
}

// SetBudget implements BudgetServiceServer.
func (h *Handler) SetBudget(ctx context.Context, req *budgetv1.SetBudgetRequest) (*budgetv1.SetBudgetResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetScope() == nil {
		return nil, grpcerr.Field("scope", "is required")
	}
	b, err := h.svc.SetBudget(ctx, SetBudgetRequest{
		Tenant: p.Tenant, Scope: scopeFor(p, req.GetScope()), Period: Period(req.GetPeriod()),
		Limit: req.GetLimitMicros(), Thresholds: req.GetThresholdsPercent(), TimeZone: req.GetTimeZone(),
	})
	if err != nil {
		return nil, h.errStatus(ctx, "SetBudget", err)
	}
	return &budgetv1.SetBudgetResponse{Budget: budgetProto(b)}, nil
}

// GetBudget implements BudgetServiceServer.
func (h *Handler) GetBudget(ctx context.Context, req *budgetv1.GetBudgetRequest) (*budgetv1.GetBudgetResponse, error) {
	p, scope, err := h.readableScope(ctx, "GetBudget", req.GetScope())
	if err != nil {
		return nil, err
	}
	b, err := h.svc.GetBudget(ctx, p.Tenant, scope)
	if err != nil {
		return nil, h.errStatus(ctx, "GetBudget", err)
	}
	return &budgetv1.GetBudgetResponse{Budget: budgetProto(b)}, nil
}

// Reserve implements BudgetServiceServer.
func (h *Handler) Reserve(ctx context.Context, req *budgetv1.ReserveRequest) (*budgetv1.ReserveResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireMover(p, "Reserve"); err != nil {
		return nil, err
	}
	r := ReserveRequest{Tenant: p.Tenant, Amount: req.GetAmountMicros(), IdempotencyKey: req.GetIdempotencyKey(),
		Kind: CostKind(req.GetKind()), Model: req.GetModel(), RunID: req.GetRunId()}
	for i, sc := range req.GetScopes() {
		s := scopeFor(p, sc)
		if s.Kind == ScopeUser && p.Via != "" && s.Subject != p.Subject {
			return nil, grpcerr.Field(fmt.Sprintf("scopes[%d].subject", i),
				"a service acting for %s may charge only that user's budget", p.Subject)
		}
		r.Scopes = append(r.Scopes, s)
	}
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, grpcerr.Field("ttl", "%v", err)
		}
		r.TTL = req.GetTtl().AsDuration()
	}
	res, err := h.svc.Reserve(ctx, r)
	if err != nil {
		return nil, h.errStatus(ctx, "Reserve", err)
	}
	return &budgetv1.ReserveResponse{Reservation: reservationProto(res)}, nil
}

// Commit implements BudgetServiceServer.
func (h *Handler) Commit(ctx context.Context, req *budgetv1.CommitRequest) (*budgetv1.CommitResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireMover(p, "Commit"); err != nil {
		return nil, err
	}
	res, err := h.svc.Commit(ctx, p.Tenant, req.GetReservationId(), req.GetActualMicros())
	if err != nil {
		return nil, h.errStatus(ctx, "Commit", err)
	}
	return &budgetv1.CommitResponse{Reservation: reservationProto(res)}, nil
}

// Release implements BudgetServiceServer.
func (h *Handler) Release(ctx context.Context, req *budgetv1.ReleaseRequest) (*budgetv1.ReleaseResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireMover(p, "Release"); err != nil {
		return nil, err
	}
	res, err := h.svc.Release(ctx, p.Tenant, req.GetReservationId())
	if err != nil {
		return nil, h.errStatus(ctx, "Release", err)
	}
	return &budgetv1.ReleaseResponse{Reservation: reservationProto(res)}, nil
}

// GetUsage implements BudgetServiceServer.
func (h *Handler) GetUsage(ctx context.Context, req *budgetv1.GetUsageRequest) (*budgetv1.GetUsageResponse, error) {
	p, scope, err := h.readableScope(ctx, "GetUsage", req.GetScope())
	if err != nil {
		return nil, err
	}
	var at = h.svc.Now()
	if req.GetAt() != nil {
		if err := req.GetAt().CheckValid(); err != nil {
			return nil, grpcerr.Field("at", "%v", err)
		}
		at = req.GetAt().AsTime()
	}
	u, err := h.svc.GetUsage(ctx, p.Tenant, scope, at)
	if err != nil {
		return nil, h.errStatus(ctx, "GetUsage", err)
	}
	out := &budgetv1.GetUsageResponse{
		Scope: scopeProto(u.Scope), PeriodStart: timestamppb.New(u.PeriodStart), PeriodEnd: tsOrNil(u.PeriodEnd),
		LimitMicros: u.Limit, SpentMicros: u.Spent, ReservedMicros: u.Reserved,
	}
	for _, l := range u.Breakdown {
		out.Breakdown = append(out.Breakdown, &budgetv1.UsageLine{Kind: budgetv1.CostKind(l.Kind), Model: l.Model, AmountMicros: l.Amount})
	}
	return out, nil
}

// EstimateCost implements BudgetServiceServer.
func (h *Handler) EstimateCost(ctx context.Context, req *budgetv1.EstimateCostRequest) (*budgetv1.EstimateCostResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	switch e := req.GetEstimate().(type) {
	case *budgetv1.EstimateCostRequest_Llm:
		l := e.Llm
		for _, f := range []struct {
			name string
			v    int64
		}{{"llm.prompt_tokens", l.GetPromptTokens()}, {"llm.cached_prompt_tokens", l.GetCachedPromptTokens()},
			{"llm.completion_tokens", l.GetCompletionTokens()}} {
			if f.v < 0 {
				return nil, grpcerr.Field(f.name, "must not be negative, got %d", f.v)
			}
		}
		if l.GetCachedPromptTokens() > l.GetPromptTokens() {
			return nil, grpcerr.Field("llm.cached_prompt_tokens", "must not exceed prompt_tokens")
		}
		amount, err := h.prices.LLM(l.GetModel(), l.GetPromptTokens(), l.GetCachedPromptTokens(), l.GetCompletionTokens())
		if errors.Is(err, pricing.ErrUnknownModel) {
			return nil, grpcerr.Field("llm.model", "%q is not in the price table", l.GetModel())
		}
		if err != nil {
			return nil, grpcerr.Field("llm", "%v", err)
		}
		return &budgetv1.EstimateCostResponse{AmountMicros: amount}, nil
	case *budgetv1.EstimateCostRequest_Compute:
		c := e.Compute
		cpu, err := durationField("compute.cpu_time", c.GetCpuTime())
		if err != nil {
			return nil, err
		}
		wall, err := durationField("compute.wall_time", c.GetWallTime())
		if err != nil {
			return nil, err
		}
		if c.GetMemoryBytes() < 0 {
			return nil, grpcerr.Field("compute.memory_bytes", "must not be negative, got %d", c.GetMemoryBytes())
		}
		amount, err := h.prices.Compute(cpu, wall, c.GetMemoryBytes())
		if err != nil {
			return nil, grpcerr.Field("compute", "%v", err)
		}
		return &budgetv1.EstimateCostResponse{AmountMicros: amount}, nil
	default:
		return nil, grpcerr.Field("estimate", "set llm or compute")
	}
}

func durationField(name string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, grpcerr.Field(name, "%v", err)
	}
	if d.AsDuration() < 0 {
		return 0, grpcerr.Field(name, "must not be negative")
	}
	return d.AsDuration(), nil
}

// WatchEvents implements BudgetServiceServer. Response headers are sent once
// the subscription is in place, so a client that waits for them misses
// nothing after that point.
func (h *Handler) WatchEvents(req *budgetv1.WatchEventsRequest, stream grpc.ServerStreamingServer[budgetv1.WatchEventsResponse]) error {
	ctx := stream.Context()
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	var scope *Scope
	if req.GetScope() != nil {
		sc := scopeFor(p, req.GetScope())
		if err := validateScope("scope", sc); err != nil {
			return h.errStatus(ctx, "WatchEvents", err)
		}
		scope = &sc
	}
	sub := h.svc.Subscribe(p.Tenant, scope)
	defer sub.Close()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case e, ok := <-sub.C:
			if !ok {
				if sub.Lagged() {
					return status.Error(codes.ResourceExhausted, "the event stream fell too far behind; watch again")
				}
				return status.Error(codes.Unavailable, "budget service is shutting down; watch again")
			}
			if err := stream.Send(&budgetv1.WatchEventsResponse{Event: eventProto(e)}); err != nil {
				return err
			}
		}
	}
}

// readableScope resolves the scope a read names for the caller, and checks
// that it is well formed and that the caller may read it.
func (h *Handler) readableScope(ctx context.Context, method string, s *budgetv1.Scope) (auth.Principal, Scope, error) {
	p, err := caller(ctx)
	if err != nil {
		return p, Scope{}, err
	}
	if s == nil {
		return p, Scope{}, grpcerr.Field("scope", "is required")
	}
	scope := scopeFor(p, s)
	if err := validateScope("scope", scope); err != nil {
		return p, Scope{}, h.errStatus(ctx, method, err)
	}
	if err := mayRead(p, scope); err != nil {
		return p, Scope{}, err
	}
	return p, scope, nil
}
