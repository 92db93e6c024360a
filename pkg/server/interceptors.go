package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/airlockhq/airlock/pkg/auth"
)

func recoveryUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicked(ctx, log, info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

func recoveryStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicked(ss.Context(), log, info.FullMethod, r)
			}
		}()
		return handler(srv, ss)
	}
}

func panicked(ctx context.Context, log *slog.Logger, method string, r any) error {
	log.ErrorContext(ctx, "panic in handler", "method", method, "panic", r, "stack", string(debug.Stack()),
		"trace_id", traceID(ctx))
	return status.Error(codes.Internal, "internal error")
}

func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

func loggingUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		// The principal is set by a later interceptor; capture it on the way out.
		var p auth.Principal
		resp, err := handler(withPrincipalSink(ctx, &p), req)
		logCall(ctx, log, info.FullMethod, start, err, p)
		return resp, err
	}
}

func loggingStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		var p auth.Principal
		err := handler(srv, &sinkStream{ServerStream: ss, ctx: withPrincipalSink(ss.Context(), &p)})
		logCall(ss.Context(), log, info.FullMethod, start, err, p)
		return err
	}
}

func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error, p auth.Principal) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.OK, codes.Canceled, codes.NotFound, codes.InvalidArgument, codes.AlreadyExists,
		codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted:
	default:
		level = slog.LevelWarn
		if code == codes.Internal || code == codes.Unknown || code == codes.DataLoss {
			level = slog.LevelError
		}
	}
	attrs := []any{
		"method", method,
		"code", code.String(),
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
		"trace_id", traceID(ctx),
	}
	if p.Subject != "" {
		attrs = append(attrs, "tenant", p.Tenant, "subject", p.Subject)
	}
	if err != nil {
		attrs = append(attrs, "error", status.Convert(err).Message())
	}
	log.Log(ctx, level, "rpc", attrs...)
}

// principalSink lets the logging interceptor, which runs before auth, learn
// who the caller turned out to be.
type principalSinkKey struct{}

func withPrincipalSink(ctx context.Context, p *auth.Principal) context.Context {
	return context.WithValue(ctx, principalSinkKey{}, p)
}

// reportPrincipal records the authenticated principal for the call's log line.
// The auth interceptor's successor calls it; see principalReporter.
func reportPrincipal(ctx context.Context) {
	if sink, ok := ctx.Value(principalSinkKey{}).(*auth.Principal); ok {
		if p, ok := auth.FromContext(ctx); ok {
			*sink = p
		}
	}
}

type sinkStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *sinkStream) Context() context.Context { return s.ctx }

func principalReporterUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		reportPrincipal(ctx)
		return handler(ctx, req)
	}
}

func principalReporterStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		reportPrincipal(ss.Context())
		return handler(srv, ss)
	}
}
