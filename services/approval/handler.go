package approval

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/grpcerr"
)

// Rules says which roles may call each RPC. CreateApproval is open to the
// service role (the orchestrator forwarding the end user) and to admins; the
// handler refuses a plain user who calls it directly.
func Rules() auth.Rules {
	name := "/" + approvalv1.ApprovalService_ServiceDesc.ServiceName + "/"
	readers := []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleAdmin}
	deciders := []auth.Role{auth.RoleOperator, auth.RoleAdmin}
	return auth.Rules{
		name + "CreateApproval": {auth.RoleUser, auth.RoleOperator, auth.RoleAdmin, auth.RoleService},
		name + "GetApproval":    readers,
		name + "ListApprovals":  readers,
		name + "WatchApprovals": readers,
		name + "CheckApproval":  readers,
		name + "Approve":        deciders,
		name + "Reject":         deciders,
		name + "VerifyTrail":    deciders,
	}
}

// Handler serves approvalv1.ApprovalService over a Service.
type Handler struct {
	approvalv1.UnimplementedApprovalServiceServer
	svc *Service
	log *slog.Logger
}

var _ approvalv1.ApprovalServiceServer = (*Handler)(nil)

// NewHandler returns the gRPC handler of svc.
func NewHandler(svc *Service, log *slog.Logger) *Handler { return &Handler{svc: svc, log: log} }

func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Tenant == "" || p.Subject == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "no authenticated caller")
	}
	return p, nil
}

// CreateApproval implements approvalv1.ApprovalServiceServer.
func (h *Handler) CreateApproval(ctx context.Context, req *approvalv1.CreateApprovalRequest) (*approvalv1.CreateApprovalResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	in := CreateParams{
		RunID: req.GetRunId(), Code: req.GetCode(), PolicyID: req.GetPolicyId(),
		PolicyVersion: req.GetPolicyVersion(), Findings: req.GetFindings(),
	}
	for _, f := range req.GetInputs() {
		in.Inputs = append(in.Inputs, Input{Name: f.GetName(), SizeBytes: f.GetSizeBytes()})
	}
	if req.Ttl != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, grpcerr.Field("ttl", "%v", err)
		}
		in.TTL, in.TTLSet = req.GetTtl().AsDuration(), true
	}
	a, err := h.svc.Create(ctx, p, in)
	if err != nil {
		return nil, h.status(ctx, err)
	}
	return &approvalv1.CreateApprovalResponse{Approval: ToProto(a)}, nil
}

// GetApproval implements approvalv1.ApprovalServiceServer.
func (h *Handler) GetApproval(ctx context.Context, req *approvalv1.GetApprovalRequest) (*approvalv1.GetApprovalResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	a, err := h.svc.Get(ctx, p, req.GetApprovalId())
	if err != nil {
		return nil, h.status(ctx, err)
	}
	return &approvalv1.GetApprovalResponse{Approval: ToProto(a)}, nil
}

// ListApprovals implements approvalv1.ApprovalServiceServer.
func (h *Handler) ListApprovals(ctx context.Context, req *approvalv1.ListApprovalsRequest) (*approvalv1.ListApprovalsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	in := ListRequest{Requester: req.GetRequester(), RunID: req.GetRunId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	if req.GetState() != approvalv1.ApprovalState_APPROVAL_STATE_UNSPECIFIED {
		st, ok := stateFromProto[req.GetState()]
		if !ok {
			return nil, grpcerr.Field("state", "%d is not a known state", req.GetState())
		}
		in.State = st
	}
	list, next, err := h.svc.List(ctx, p, in)
	if err != nil {
		return nil, h.status(ctx, err)
	}
	resp := &approvalv1.ListApprovalsResponse{NextPageToken: next}
	for _, a := range list {
		resp.Approvals = append(resp.Approvals, ToProto(a))
	}
	return resp, nil
}

// Approve implements approvalv1.ApprovalServiceServer.
func (h *Handler) Approve(ctx context.Context, req *approvalv1.ApproveRequest) (*approvalv1.ApproveResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	a, err := h.svc.Approve(ctx, p, req.GetApprovalId(), req.GetReason())
	if err != nil {
		return nil, h.status(ctx, err)
	}
	return &approvalv1.ApproveResponse{Approval: ToProto(a)}, nil
}

// Reject implements approvalv1.ApprovalServiceServer.
func (h *Handler) Reject(ctx context.Context, req *approvalv1.RejectRequest) (*approvalv1.RejectResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	a, err := h.svc.Reject(ctx, p, req.GetApprovalId(), req.GetReason())
	if err != nil {
		return nil, h.status(ctx, err)
	}
	return &approvalv1.RejectResponse{Approval: ToProto(a)}, nil
}

// WatchApprovals implements approvalv1.ApprovalServiceServer. It sends
// response headers once the watch is in place; a watch of one request starts
// with its current state and ends after it reaches a final state.
func (h *Handler) WatchApprovals(req *approvalv1.WatchApprovalsRequest, stream approvalv1.ApprovalService_WatchApprovalsServer) error {
	ctx := stream.Context()
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	id := req.GetApprovalId()
	if id != "" && !ValidID(id) {
		return grpcerr.Field("approval_id", "must look like apr_ followed by 32 lowercase hex digits")
	}
	sub, err := h.svc.Subscribe(ctx, p, id)
	if err != nil {
		return h.status(ctx, err)
	}
	defer sub.Close()
	// Headers tell the client the watch is in place: changes from now on reach it.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-sub.Done():
			return h.status(ctx, sub.Err())
		case a := <-sub.C:
			if err := stream.Send(&approvalv1.WatchApprovalsResponse{Approval: ToProto(a)}); err != nil {
				return err
			}
			if id != "" && a.State.Final() {
				return nil
			}
		}
	}
}

// CheckApproval implements approvalv1.ApprovalServiceServer.
func (h *Handler) CheckApproval(ctx context.Context, req *approvalv1.CheckApprovalRequest) (*approvalv1.CheckApprovalResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ok, a, err := h.svc.Check(ctx, p, req.GetRunId(), req.GetCodeSha256(), req.GetPolicyVersion())
	if err != nil {
		return nil, h.status(ctx, err)
	}
	return &approvalv1.CheckApprovalResponse{Approved: ok, Approval: ToProto(a)}, nil
}

// VerifyTrail implements approvalv1.ApprovalServiceServer.
func (h *Handler) VerifyTrail(ctx context.Context, _ *approvalv1.VerifyTrailRequest) (*approvalv1.VerifyTrailResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := h.svc.VerifyTrail(ctx, p)
	if err != nil {
		return nil, h.status(ctx, err)
	}
	if !rep.OK {
		h.log.WarnContext(ctx, "audit trail broken", "tenant", p.Tenant, "first_broken_sequence", rep.FirstBrokenSeq, "detail", rep.Message)
	}
	return &approvalv1.VerifyTrailResponse{Ok: rep.OK, EventsChecked: rep.EventsChecked,
		FirstBrokenSequence: rep.FirstBrokenSeq, Message: rep.Message}, nil
}

// status maps a domain error to a gRPC status; unknown errors are logged and
// answered with a clean Internal.
func (h *Handler) status(ctx context.Context, err error) error {
	var fe *FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return grpcerr.Field(fe.Field, "%s", fe.Reason)
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, "approval request not found")
	case errors.Is(err, ErrSelfDecision), errors.Is(err, ErrForbidden):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrExpired):
		return grpcerr.FailedPrecondition("EXPIRED", "approval request", err.Error())
	case errors.Is(err, ErrWatchLagged):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, ErrShuttingDown):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	h.log.ErrorContext(ctx, "approval request failed", "error", err)
	return status.Error(codes.Internal, "internal error")
}

var stateToProto = map[State]approvalv1.ApprovalState{
	StatePending:  approvalv1.ApprovalState_APPROVAL_STATE_PENDING,
	StateApproved: approvalv1.ApprovalState_APPROVAL_STATE_APPROVED,
	StateRejected: approvalv1.ApprovalState_APPROVAL_STATE_REJECTED,
	StateExpired:  approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED,
}

var stateFromProto = map[approvalv1.ApprovalState]State{
	approvalv1.ApprovalState_APPROVAL_STATE_PENDING:  StatePending,
	approvalv1.ApprovalState_APPROVAL_STATE_APPROVED: StateApproved,
	approvalv1.ApprovalState_APPROVAL_STATE_REJECTED: StateRejected,
	approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED:  StateExpired,
}

var riskToProto = map[Risk]approvalv1.RiskLevel{
	RiskLow:    approvalv1.RiskLevel_RISK_LEVEL_LOW,
	RiskMedium: approvalv1.RiskLevel_RISK_LEVEL_MEDIUM,
	RiskHigh:   approvalv1.RiskLevel_RISK_LEVEL_HIGH,
}

// ToProto renders a for the wire; the zero Approval renders as nil.
func ToProto(a Approval) *approvalv1.Approval {
	if a.ID == "" {
		return nil
	}
	out := &approvalv1.Approval{
		Id: a.ID, RunId: a.RunID, Tenant: a.Tenant, Requester: a.Requester, Code: a.Code,
		CodeSha256: a.CodeSHA256, PolicyId: a.PolicyID, PolicyVersion: a.PolicyVersion,
		Findings: a.Findings, Risk: riskToProto[a.Risk], State: stateToProto[a.State],
		DecidedBy: a.DecidedBy, Reason: a.Reason,
		CreatedAt: timestamppb.New(a.CreatedAt), ExpiresAt: timestamppb.New(a.ExpiresAt),
	}
	if !a.DecidedAt.IsZero() {
		out.DecidedAt = timestamppb.New(a.DecidedAt)
	}
	for _, in := range a.Inputs {
		out.Inputs = append(out.Inputs, &approvalv1.InputSummary{Name: in.Name, SizeBytes: in.SizeBytes})
	}
	return out
}
