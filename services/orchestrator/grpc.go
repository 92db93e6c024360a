package orchestrator

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/grpcerr"
)

// Server is the OrchestratorService gRPC handler.
type Server struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	engine *Engine
	log    *slog.Logger
}

var _ orchestratorv1.OrchestratorServiceServer = (*Server)(nil)

// NewServer returns the handler for engine.
func NewServer(engine *Engine, log *slog.Logger) *Server { return &Server{engine: engine, log: log} }

func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Tenant == "" || p.Subject == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "no authenticated caller")
	}
	return p, nil
}

// toStatus maps domain errors to gRPC status errors; anything unexpected is
// logged and answered Internal with a clean message.
func (s *Server) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !errors.Is(err, ErrNotFound) {
		return err
	}
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		return grpcerr.Field(fe.Field, "%s", fe.Reason)
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, ErrTooLarge):
		st := status.New(codes.InvalidArgument, err.Error())
		if d, derr := st.WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject: "file size", Description: err.Error()}}}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, ErrFinished):
		return grpcerr.FailedPrecondition("RUN_STATE", "run", "the run has already ended")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	s.log.ErrorContext(ctx, "orchestrator request failed", "error", err)
	return status.Error(codes.Internal, "internal error; see the server log")
}

// UploadFile implements OrchestratorServiceServer.
func (s *Server) UploadFile(stream orchestratorv1.OrchestratorService_UploadFileServer) error {
	ctx := stream.Context()
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return grpcerr.Field("name", "required in the first message")
	}
	if err != nil {
		return err
	}
	rd := &uploadReader{stream: stream, buf: first.GetChunk()}
	ref, err := s.engine.Upload(ctx, p, first.GetName(), rd)
	if rd.err != nil {
		return rd.err
	}
	if err != nil {
		return s.toStatus(ctx, err)
	}
	return stream.SendAndClose(&orchestratorv1.UploadFileResponse{File: fileRef(ref)})
}

// uploadReader reads the upload stream's chunks; a name after the first message is refused.
type uploadReader struct {
	stream orchestratorv1.OrchestratorService_UploadFileServer
	buf    []byte
	err    error
}

func (u *uploadReader) Read(b []byte) (int, error) {
	for len(u.buf) == 0 {
		msg, err := u.stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		if err != nil {
			u.err = err
			return 0, err
		}
		if msg.GetName() != "" {
			u.err = grpcerr.Field("name", "set in the first message only")
			return 0, u.err
		}
		u.buf = msg.GetChunk()
	}
	n := copy(b, u.buf)
	u.buf = u.buf[n:]
	return n, nil
}

// DownloadFile implements OrchestratorServiceServer.
func (s *Server) DownloadFile(req *orchestratorv1.DownloadFileRequest, stream orchestratorv1.OrchestratorService_DownloadFileServer) error {
	ctx := stream.Context()
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if req.GetFileId() == "" {
		return grpcerr.Field("file_id", "required")
	}
	sent := false
	err = s.engine.Download(ctx, p, req.GetFileId(), func(f *File) error {
		if f.Size == 0 {
			sent = true
			return stream.Send(&orchestratorv1.DownloadFileResponse{File: fileRef(f.FileRef)})
		}
		return nil
	}, func(b []byte) error {
		msg := &orchestratorv1.DownloadFileResponse{Chunk: b}
		if !sent {
			f, err := s.engine.store.GetFile(ctx, p.Tenant, req.GetFileId())
			if err != nil {
				return err
			}
			msg.File = fileRef(f.FileRef)
			sent = true
		}
		return stream.Send(msg)
	})
	return s.toStatus(ctx, err)
}

// SubmitRun implements OrchestratorServiceServer.
func (s *Server) SubmitRun(ctx context.Context, req *orchestratorv1.SubmitRunRequest) (*orchestratorv1.SubmitRunResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	traceID := ""
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		traceID = sc.TraceID().String()
	}
	r, err := s.engine.Submit(ctx, p, SubmitParams{
		Prompt: req.GetPrompt(), Code: req.GetCode(), InputFileIDs: req.GetInputFileIds(), PolicyID: req.GetPolicyId(),
		MaxAttempts: int(req.GetMaxAttempts()), IdempotencyKey: req.GetIdempotencyKey(), TraceID: traceID,
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orchestratorv1.SubmitRunResponse{Run: RunProto(r)}, nil
}

// GetRun implements OrchestratorServiceServer.
func (s *Server) GetRun(ctx context.Context, req *orchestratorv1.GetRunRequest) (*orchestratorv1.GetRunResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetRunId() == "" {
		return nil, grpcerr.Field("run_id", "required")
	}
	r, err := s.engine.Get(ctx, p, req.GetRunId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orchestratorv1.GetRunResponse{Run: RunProto(r)}, nil
}

const maxPageSize = 200

// ListRuns implements OrchestratorServiceServer.
func (s *Server) ListRuns(ctx context.Context, req *orchestratorv1.ListRunsRequest) (*orchestratorv1.ListRunsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, grpcerr.Field("page_size", "must not be negative")
	case size == 0:
		size = 50
	case size > maxPageSize:
		size = maxPageSize
	}
	if _, ok := orchestratorv1.RunState_name[int32(req.GetState())]; !ok {
		return nil, grpcerr.Field("state", "unknown state %d", req.GetState())
	}
	lp := ListParams{Requester: req.GetRequester(), State: req.GetState(), Limit: size + 1}
	if tok := req.GetPageToken(); tok != "" {
		at, id, err := decodePageToken(tok)
		if err != nil {
			return nil, grpcerr.Field("page_token", "not a token from a previous response")
		}
		lp.AfterCreated, lp.AfterID = at, id
	}
	runs, err := s.engine.List(ctx, p, lp)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &orchestratorv1.ListRunsResponse{}
	if len(runs) > size {
		runs = runs[:size]
		last := runs[size-1]
		resp.NextPageToken = encodePageToken(last.CreatedAt, last.ID)
	}
	for _, r := range runs {
		resp.Runs = append(resp.Runs, RunProto(r))
	}
	return resp, nil
}

func encodePageToken(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixNano(), 10) + ":" + id))
}

func decodePageToken(tok string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", err
	}
	ns, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", fmt.Errorf("malformed page token")
	}
	return time.Unix(0, n).UTC(), id, nil
}

// CancelRun implements OrchestratorServiceServer.
func (s *Server) CancelRun(ctx context.Context, req *orchestratorv1.CancelRunRequest) (*orchestratorv1.CancelRunResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetRunId() == "" {
		return nil, grpcerr.Field("run_id", "required")
	}
	if len(req.GetReason()) > 1000 {
		return nil, grpcerr.Field("reason", "longer than 1000 bytes")
	}
	r, err := s.engine.Cancel(ctx, p, req.GetRunId(), req.GetReason())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orchestratorv1.CancelRunResponse{Run: RunProto(r)}, nil
}

// WatchRun implements OrchestratorServiceServer: it sends the run's stored
// transitions, then new transitions and execution output as they happen, and
// ends when the run ends.
func (s *Server) WatchRun(req *orchestratorv1.WatchRunRequest, stream orchestratorv1.OrchestratorService_WatchRunServer) error {
	ctx := stream.Context()
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if req.GetRunId() == "" {
		return grpcerr.Field("run_id", "required")
	}
	r, err := s.engine.Get(ctx, p, req.GetRunId())
	if err != nil {
		return s.toStatus(ctx, err)
	}
	events, unsubscribe := s.engine.Subscribe(r.ID)
	defer unsubscribe()
	seq := 0
	// catchUp sends stored transitions not yet sent; it reports whether the run has ended.
	catchUp := func() (bool, error) {
		trs, err := s.engine.store.Transitions(ctx, r.ID, seq)
		if err != nil || len(trs) == 0 {
			return false, err
		}
		cur, err := s.engine.store.GetRun(ctx, p.Tenant, r.ID)
		if err != nil {
			return false, err
		}
		rp := RunProto(cur)
		done := false
		for _, t := range trs {
			seq = t.Seq
			if err := stream.Send(&orchestratorv1.WatchRunResponse{Run: rp, Event: &orchestratorv1.WatchRunResponse_Transition{
				Transition: transitionProto(t)}}); err != nil {
				return false, err
			}
			// The stream ends after the final transition itself was sent, never
			// because the run (read later) has moved on past what was sent.
			done = Terminal(t.To)
		}
		return done, nil
	}
	if done, err := catchUp(); err != nil || done {
		return s.toStatus(ctx, err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if ev.Output != nil {
				if err := stream.Send(&orchestratorv1.WatchRunResponse{Event: &orchestratorv1.WatchRunResponse_Output{Output: ev.Output}}); err != nil {
					return err
				}
				continue
			}
			if ev.Changed {
				cur, err := s.engine.store.GetRun(ctx, p.Tenant, r.ID)
				if err != nil {
					return s.toStatus(ctx, err)
				}
				if err := stream.Send(&orchestratorv1.WatchRunResponse{Run: RunProto(cur)}); err != nil {
					return err
				}
				continue
			}
		case <-tick.C:
		}
		if done, err := catchUp(); err != nil || done {
			return s.toStatus(ctx, err)
		}
	}
}

func transitionProto(t Transition) *orchestratorv1.Transition {
	return &orchestratorv1.Transition{From: t.From, To: t.To, Message: t.Message, At: timestamppb.New(t.At)}
}

func fileRef(f FileRef) *orchestratorv1.FileRef {
	return &orchestratorv1.FileRef{FileId: f.ID, Name: f.Name, SizeBytes: f.Size, Sha256: f.SHA256}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// RunProto renders a run for the API.
func RunProto(r *Run) *orchestratorv1.Run {
	out := &orchestratorv1.Run{
		Id: r.ID, Tenant: r.Tenant, Requester: r.Requester, State: r.State, Prompt: r.Prompt,
		SuppliedCode: r.SuppliedCode, ApprovalId: r.ApprovalID, FailureReason: r.FailureReason, TraceId: r.TraceID,
		PolicyId: r.PolicyID, CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt), FinishedAt: ts(r.FinishedAt),
		Cost: &orchestratorv1.Cost{LlmMicros: r.LLMMicros, ComputeMicros: r.ComputeMicros, TotalMicros: r.LLMMicros + r.ComputeMicros},
	}
	for _, f := range r.Inputs {
		out.Inputs = append(out.Inputs, fileRef(f))
	}
	for _, f := range r.Outputs {
		out.Outputs = append(out.Outputs, fileRef(f))
	}
	for _, a := range r.Attempts {
		ap := &orchestratorv1.Attempt{
			Number: int32(a.Number), Code: a.Code, CodeSha256: a.CodeSHA256, GenerationCostMicros: a.GenerationMicros,
			ExecutionCostMicros: a.ExecutionMicros, CreatedAt: ts(a.CreatedAt), Execution: a.Execution,
		}
		if a.Check != nil {
			ap.Verdict = a.Check.GetVerdict()
			ap.Findings = a.Check.GetFindings()
			ap.PolicyId = a.Check.GetPolicyId()
			ap.PolicyVersion = a.Check.GetPolicyVersion()
		}
		if ap.Execution == nil && a.Status == AttemptExecuting {
			ap.Execution = &executorv1.ExecutionResult{Message: "executing"}
		}
		out.Attempts = append(out.Attempts, ap)
	}
	return out
}
