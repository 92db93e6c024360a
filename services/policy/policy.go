// Package policy serves airlock.policy.v1: it judges Python code against
// the caller's tenant policy and lists the policies a tenant may use.
package policy

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strconv"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/grpcerr"
	"github.com/airlockhq/airlock/services/policy/analysis"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

// Page sizes for ListPolicies.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// MaxFindings caps the findings a response carries; the verdict is always
// decided on all of them.
const MaxFindings = 500

// Config configures the service.
type Config struct {
	// MaxCodeBytes caps the code a Check accepts (default 1 MiB).
	MaxCodeBytes int
	// Analysis bounds each analysis.
	Analysis analysis.Options
}

// Service implements policyv1.PolicyServiceServer.
type Service struct {
	policyv1.UnimplementedPolicyServiceServer
	store *policydoc.Store
	log   *slog.Logger
	cfg   Config
}

// New returns a Service over store.
func New(store *policydoc.Store, cfg Config, log *slog.Logger) *Service {
	if cfg.MaxCodeBytes <= 0 {
		cfg.MaxCodeBytes = 1 << 20
	}
	cfg.Analysis.MaxBytes = cfg.MaxCodeBytes
	return &Service{store: store, log: log, cfg: cfg}
}

var _ policyv1.PolicyServiceServer = (*Service)(nil)

// Rules says who may call each RPC: every role. A tenant only ever sees
// the policies it may use.
func Rules() auth.Rules {
	rules := auth.Rules{}
	for _, m := range policyv1.PolicyService_ServiceDesc.Methods {
		rules["/"+policyv1.PolicyService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{
			auth.RoleUser, auth.RoleOperator, auth.RoleService, auth.RoleAdmin}
	}
	return rules
}

func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Tenant == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "no authenticated caller")
	}
	return p, nil
}

// Check analyses code against the tenant's policy.
func (s *Service) Check(ctx context.Context, req *policyv1.CheckRequest) (*policyv1.CheckResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	var bad []grpcerr.FieldViolation
	switch {
	case req.GetCode() == "":
		bad = append(bad, grpcerr.FieldViolation{Field: "code", Description: "must not be empty"})
	case len(req.GetCode()) > s.cfg.MaxCodeBytes:
		bad = append(bad, grpcerr.FieldViolation{Field: "code",
			Description: "is " + strconv.Itoa(len(req.GetCode())) + " bytes; the limit is " + strconv.Itoa(s.cfg.MaxCodeBytes)})
	case !utf8.ValidString(req.GetCode()):
		bad = append(bad, grpcerr.FieldViolation{Field: "code", Description: "is not valid UTF-8"})
	}
	if id := req.GetPolicyId(); id != "" && !policydoc.ValidID(id) {
		bad = append(bad, grpcerr.FieldViolation{Field: "policy_id", Description: "is not a valid policy id"})
	}
	if len(bad) > 0 {
		return nil, grpcerr.InvalidArgument(bad...)
	}
	pol, err := s.policyFor(p.Tenant, req.GetPolicyId())
	if err != nil {
		return nil, err
	}
	res, err := pol.Check(ctx, []byte(req.GetCode()), s.cfg.Analysis)
	if err != nil {
		if errors.Is(err, analysis.ErrTooLarge) {
			return nil, grpcerr.Field("code", "is larger than the analyser accepts")
		}
		s.log.ErrorContext(ctx, "policy check failed", "error", err)
		return nil, status.Error(codes.Internal, "policy check failed")
	}
	resp := CheckResponsePB(pol, res, MaxFindings)
	s.log.DebugContext(ctx, "policy check", "tenant", p.Tenant, "policy_id", pol.ID, "verdict", res.Verdict.String(),
		"findings", len(res.Findings))
	return resp, nil
}

func (s *Service) policyFor(tenant, id string) (*policydoc.Policy, error) {
	var pol *policydoc.Policy
	var err error
	if id == "" {
		pol, err = s.store.Default(tenant)
	} else {
		pol, err = s.store.Get(tenant, id)
	}
	if errors.Is(err, policydoc.ErrNotFound) {
		if id == "" {
			return nil, status.Error(codes.NotFound, "no policy applies to this tenant")
		}
		return nil, status.Errorf(codes.NotFound, "policy %q not found", id)
	}
	return pol, err
}

// GetPolicy returns one policy the tenant may use.
func (s *Service) GetPolicy(ctx context.Context, req *policyv1.GetPolicyRequest) (*policyv1.GetPolicyResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetPolicyId() == "" {
		return nil, grpcerr.Field("policy_id", "must not be empty")
	}
	if !policydoc.ValidID(req.GetPolicyId()) {
		return nil, grpcerr.Field("policy_id", "is not a valid policy id")
	}
	pol, err := s.policyFor(p.Tenant, req.GetPolicyId())
	if err != nil {
		return nil, err
	}
	return &policyv1.GetPolicyResponse{Policy: PolicyPB(pol)}, nil
}

// ListPolicies lists the policies the tenant may use, by id.
func (s *Service) ListPolicies(ctx context.Context, req *policyv1.ListPoliciesRequest) (*policyv1.ListPoliciesResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, grpcerr.Field("page_size", "must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	after := ""
	if tok := req.GetPageToken(); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || !policydoc.ValidID(string(b)) {
			return nil, grpcerr.Field("page_token", "is not a token from a previous response")
		}
		after = string(b)
	}
	pols, more := s.store.List(p.Tenant, after, size)
	resp := &policyv1.ListPoliciesResponse{}
	for _, pol := range pols {
		resp.Policies = append(resp.Policies, PolicyPB(pol))
	}
	if more && len(pols) > 0 {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(pols[len(pols)-1].ID))
	}
	return resp, nil
}

func verdictPB(v analysis.Verdict) policyv1.Verdict {
	switch v {
	case analysis.Allow:
		return policyv1.Verdict_VERDICT_ALLOW
	case analysis.Review:
		return policyv1.Verdict_VERDICT_REVIEW
	case analysis.Deny:
		return policyv1.Verdict_VERDICT_DENY
	}
	return policyv1.Verdict_VERDICT_UNSPECIFIED
}

// CheckResponsePB converts the result of checking code against pol to its
// protobuf form, with at most maxFindings of its findings.
func CheckResponsePB(pol *policydoc.Policy, res *policydoc.Result, maxFindings int) *policyv1.CheckResponse {
	resp := &policyv1.CheckResponse{
		Verdict:        verdictPB(res.Verdict),
		PolicyId:       pol.ID,
		PolicyVersion:  pol.Version,
		CodeSha256:     res.CodeSHA256,
		AllowedImports: append([]string(nil), pol.Config.AllowedImports...),
		Limits:         LimitsPB(pol.Limits),
	}
	for _, f := range res.Findings[:min(len(res.Findings), maxFindings)] {
		resp.Findings = append(resp.Findings, FindingPB(f))
	}
	return resp
}

// FindingPB converts a finding to its protobuf form.
func FindingPB(f analysis.Finding) *policyv1.Finding {
	return &policyv1.Finding{
		RuleId: f.RuleID, Severity: policyv1.Severity(f.Severity), Action: verdictPB(f.Action),
		Line: int32(f.Line), Column: int32(f.Column), EndLine: int32(f.EndLine), EndColumn: int32(f.EndColumn),
		Snippet: f.Snippet, Message: f.Message, FixHint: f.FixHint,
	}
}

// LimitsPB converts run limits to their protobuf form.
func LimitsPB(l policydoc.Limits) *policyv1.RunLimits {
	return &policyv1.RunLimits{
		Timeout: durationpb.New(l.Timeout), CpuTime: durationpb.New(l.CPUTime), MemoryBytes: l.MemoryBytes,
		MaxProcesses: l.MaxProcesses, MaxOutputBytes: l.MaxOutputBytes, MaxOutputFiles: l.MaxOutputFiles,
		MaxStdoutBytes: l.MaxStdoutBytes, MaxStderrBytes: l.MaxStderrBytes,
	}
}

// PolicyPB converts a policy to its protobuf form.
func PolicyPB(p *policydoc.Policy) *policyv1.Policy {
	return &policyv1.Policy{
		Id: p.ID, Version: p.Version, Description: p.Description,
		AllowedImports: append([]string(nil), p.Config.AllowedImports...),
		DeniedCalls:    append([]string(nil), p.Config.DeniedCalls...),
		Limits:         LimitsPB(p.Limits), Source: string(p.Source), LoadedAt: timestamppb.New(p.LoadedAt),
	}
}
