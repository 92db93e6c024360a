package generator

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/grpcerr"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of the generator's errors.
const ErrorDomain = "generator.airlock"

// Handler serves airlock.generator.v1.GeneratorService.
type Handler struct {
	generatorv1.UnimplementedGeneratorServiceServer
	gen *Generator
	log *slog.Logger
}

// NewHandler returns the gRPC handler for g.
func NewHandler(g *Generator, log *slog.Logger) *Handler {
	return &Handler{gen: g, log: log}
}

// Generate implements GeneratorService.Generate.
func (h *Handler) Generate(ctx context.Context, req *generatorv1.GenerateRequest) (*generatorv1.GenerateResponse, error) {
	p, _ := auth.FromContext(ctx)
	resp, err := h.gen.Generate(ctx, req)
	if err != nil {
		h.log.WarnContext(ctx, "generate failed", "tenant", p.Tenant, "subject", p.Subject, "error", err)
		return nil, toStatus(err)
	}
	return resp, nil
}

// toStatus maps the generator's errors to status codes a client can act on.
func toStatus(err error) error {
	var fe *FieldError
	var ae *AnswerError
	switch {
	case errors.As(err, &fe):
		return grpcerr.Field(fe.Field, "%s", fe.Reason)
	case errors.Is(err, ErrNoAPIKey):
		return grpcerr.FailedPrecondition("MODEL_API_KEY", "XAI_API_KEY", ErrNoAPIKey.Error())
	case errors.Is(err, ErrCredentialsRejected):
		return grpcerr.FailedPrecondition("MODEL_CREDENTIALS", "XAI_API_KEY", err.Error())
	case errors.Is(err, ErrModelRefused):
		return grpcerr.FailedPrecondition("MODEL_REQUEST", "llm-model", err.Error())
	case errors.Is(err, ErrRateLimited):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.As(err, &ae):
		// The tokens were spent: the usage rides along so the caller can
		// settle what it reserved.
		st := status.New(codes.Unknown, err.Error())
		info := &errdetails.ErrorInfo{Reason: "MALFORMED_ANSWER", Domain: ErrorDomain, Metadata: map[string]string{
			"model":                ae.Model,
			"prompt_tokens":        strconv.FormatInt(ae.Usage.GetPromptTokens(), 10),
			"cached_prompt_tokens": strconv.FormatInt(ae.Usage.GetCachedPromptTokens(), 10),
			"completion_tokens":    strconv.FormatInt(ae.Usage.GetCompletionTokens(), 10),
			"cost_micros":          strconv.FormatInt(ae.Cost, 10),
		}}
		if d, derr := st.WithDetails(info); derr == nil {
			st = d
		}
		return st.Err()
	default:
		return status.Error(codes.Internal, "generating code failed")
	}
}

// Rules says who may call the generator: the orchestrator (as a service) and
// admins. Users reach it only through a run, which is budgeted.
func Rules() auth.Rules {
	return auth.Rules{
		"/" + generatorv1.GeneratorService_ServiceDesc.ServiceName + "/Generate": {auth.RoleService, auth.RoleAdmin},
	}
}
