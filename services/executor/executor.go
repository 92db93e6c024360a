// Package executor serves airlock.executor.v1: Python run in a bubblewrap sandbox with hard limits.
package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/grpcerr"
	"github.com/airlockhq/airlock/services/executor/sandbox"
)

// Request bounds beyond the limits.
const (
	MaxCodeBytes      = 1 << 20
	MaxAllowedImports = 256
	MaxRunIDBytes     = 128
)

// DefaultAllowedImports is the runtime guard's allow-list when a request
// names none: the data libraries and pure standard-library helpers.
var DefaultAllowedImports = []string{
	"pandas", "numpy", "openpyxl", "math", "statistics", "decimal", "fractions", "datetime",
	"json", "csv", "re", "collections", "itertools", "functools", "operator", "string",
	"textwrap", "typing", "dataclasses", "enum", "random", "io", "pathlib", "os", "time",
	"hashlib", "base64", "copy", "heapq", "bisect", "uuid",
}

// Rules are the roles allowed to call each RPC: the orchestrator (service)
// and admins. A user runs code only through the orchestrator, which checks
// policy and budget first.
func Rules() auth.Rules {
	roles := []auth.Role{auth.RoleService, auth.RoleAdmin}
	name := executorv1.ExecutorService_ServiceDesc.ServiceName
	return auth.Rules{
		"/" + name + "/Execute":       roles,
		"/" + name + "/ExecuteStream": roles,
	}
}

// Server implements executorv1.ExecutorServiceServer on a sandbox.Runner.
type Server struct {
	executorv1.UnimplementedExecutorServiceServer
	runner         *sandbox.Runner
	defaults, max  sandbox.Limits
	defaultImports []string
	log            *slog.Logger
}

// NewServer serves runs on runner. defaults and max are the limits a
// request's zero fields take and may not exceed; allowed is the import
// allow-list for requests that name none (nil: DefaultAllowedImports).
func NewServer(runner *sandbox.Runner, defaults, max sandbox.Limits, allowed []string, log *slog.Logger) *Server {
	if allowed == nil {
		allowed = DefaultAllowedImports
	}
	return &Server{runner: runner, defaults: defaults, max: max, defaultImports: allowed, log: log}
}

// Execute runs code and returns the whole result.
func (s *Server) Execute(ctx context.Context, req *executorv1.ExecuteRequest) (*executorv1.ExecuteResponse, error) {
	spec, err := s.spec(req, "")
	if err != nil {
		return nil, err
	}
	res, err := s.run(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &executorv1.ExecuteResponse{Result: ResultProto(res)}, nil
}

// ExecuteStream runs code, streaming stdout and stderr as they come, then
// sends the result.
func (s *Server) ExecuteStream(req *executorv1.ExecuteStreamRequest, stream executorv1.ExecutorService_ExecuteStreamServer) error {
	spec, err := s.spec(req.GetRequest(), "request.")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var sendErr error
	spec.OnOutput = func(st sandbox.Stream, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr != nil {
			return
		}
		sendErr = stream.Send(&executorv1.ExecuteStreamResponse{Event: &executorv1.ExecuteStreamResponse_Chunk{
			Chunk: &executorv1.OutputChunk{Stream: executorv1.Stream(st), Data: data},
		}})
	}
	res, err := s.run(stream.Context(), spec)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&executorv1.ExecuteStreamResponse{Event: &executorv1.ExecuteStreamResponse_Result{Result: ResultProto(res)}})
}

func (s *Server) run(ctx context.Context, spec sandbox.Spec) (*sandbox.Result, error) {
	p, _ := auth.FromContext(ctx)
	res, err := s.runner.Run(ctx, spec)
	switch {
	case err == nil:
		s.log.InfoContext(ctx, "executed", "run_id", spec.RunID, "tenant", p.Tenant, "subject", p.Subject,
			"reason", res.Reason.String(), "exit_code", res.ExitCode, "warm", res.Warm, "wall", res.WallTime, "cpu", res.CPUTime)
		return res, nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, status.FromContextError(err).Err()
	case errors.Is(err, sandbox.ErrUnavailable), errors.Is(err, sandbox.ErrClosed):
		s.log.ErrorContext(ctx, "sandbox unavailable", "run_id", spec.RunID, "error", err)
		return nil, status.Error(codes.Unavailable, "the sandbox runtime is unavailable")
	default:
		s.log.ErrorContext(ctx, "execution failed", "run_id", spec.RunID, "error", err)
		return nil, status.Error(codes.Internal, "execution failed")
	}
}

var moduleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// spec validates a request into a sandbox.Spec; prefix names the request's
// place in the message ("request." for ExecuteStream) in field violations.
func (s *Server) spec(req *executorv1.ExecuteRequest, prefix string) (sandbox.Spec, error) {
	var v []grpcerr.FieldViolation
	bad := func(field, format string, args ...any) {
		v = append(v, grpcerr.FieldViolation{Field: prefix + field, Description: fmt.Sprintf(format, args...)})
	}
	if req == nil {
		return sandbox.Spec{}, grpcerr.Field(strings.TrimSuffix(prefix, "."), "is required")
	}
	switch {
	case strings.TrimSpace(req.GetCode()) == "":
		bad("code", "is empty")
	case len(req.GetCode()) > MaxCodeBytes:
		bad("code", "is %d bytes; at most %d", len(req.GetCode()), MaxCodeBytes)
	case strings.ContainsRune(req.GetCode(), 0):
		bad("code", "contains a NUL byte")
	}
	inputs := make([]sandbox.Input, len(req.GetInputs()))
	for i, in := range req.GetInputs() {
		inputs[i] = sandbox.Input{Name: in.GetName(), Content: in.GetContent()}
	}
	if err := sandbox.ValidateInputs(inputs); err != nil {
		var ie *sandbox.InputError
		if errors.As(err, &ie) && ie.Index < len(inputs) {
			bad(fmt.Sprintf("inputs[%d].name", ie.Index), "%s", ie.Reason)
		} else {
			bad("inputs", "%v", err)
		}
	}
	imports := req.GetAllowedImports()
	if len(imports) > MaxAllowedImports {
		bad("allowed_imports", "has %d entries; at most %d", len(imports), MaxAllowedImports)
	}
	for i, m := range imports {
		if !moduleName.MatchString(m) {
			bad(fmt.Sprintf("allowed_imports[%d]", i), "%q is not a top-level module name", m)
		}
	}
	if len(imports) == 0 {
		imports = s.defaultImports
	}
	if len(req.GetRunId()) > MaxRunIDBytes || !utf8.ValidString(req.GetRunId()) {
		bad("run_id", "must be valid UTF-8 of at most %d bytes", MaxRunIDBytes)
	}
	lim, err := sandbox.Resolve(limitsFromProto(req.GetLimits()), s.defaults, s.max)
	if err != nil {
		var le *sandbox.LimitError
		if errors.As(err, &le) {
			bad("limits."+le.Field, "%s", le.Reason)
		} else {
			bad("limits", "%v", err)
		}
	}
	if len(v) > 0 {
		return sandbox.Spec{}, grpcerr.InvalidArgument(v...)
	}
	return sandbox.Spec{Code: req.GetCode(), Inputs: inputs, Limits: lim, AllowedImports: imports, RunID: req.GetRunId()}, nil
}

func limitsFromProto(l *executorv1.Limits) sandbox.Limits {
	if l == nil {
		return sandbox.Limits{}
	}
	return sandbox.Limits{
		Timeout:        l.GetTimeout().AsDuration(),
		CPUTime:        l.GetCpuTime().AsDuration(),
		MemoryBytes:    l.GetMemoryBytes(),
		MaxProcesses:   int(l.GetMaxProcesses()),
		MaxOutputBytes: l.GetMaxOutputBytes(),
		MaxOutputFiles: int(l.GetMaxOutputFiles()),
		MaxStdoutBytes: l.GetMaxStdoutBytes(),
		MaxStderrBytes: l.GetMaxStderrBytes(),
		MaxOpenFiles:   int(l.GetMaxOpenFiles()),
	}
}

// ResultProto converts a sandbox result to its wire form.
func ResultProto(r *sandbox.Result) *executorv1.ExecutionResult {
	out := &executorv1.ExecutionResult{
		TerminationReason: executorv1.TerminationReason(r.Reason),
		ExitCode:          int32(r.ExitCode),
		Stdout:            r.Stdout,
		Stderr:            r.Stderr,
		StdoutTruncated:   r.StdoutTruncated,
		StderrTruncated:   r.StderrTruncated,
		Usage: &executorv1.ResourceUsage{
			WallTime:    durationpb.New(r.WallTime),
			CpuTime:     durationpb.New(r.CPUTime),
			MaxRssBytes: r.MaxRSSBytes,
		},
		Warm:    r.Warm,
		Message: r.Message,
	}
	for _, f := range r.Files {
		out.OutputFiles = append(out.OutputFiles, &executorv1.OutputFile{
			Name: f.Name, Content: f.Content, SizeBytes: int64(len(f.Content)), Sha256: f.SHA256,
		})
	}
	return out
}
