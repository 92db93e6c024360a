// Package server is the gRPC bootstrap every Airlock service uses: health that
// follows real dependencies, reflection, one interceptor chain, OpenTelemetry,
// a Prometheus endpoint and bounded graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/telemetry"
)

// Config configures a server.
type Config struct {
	// Addr is the gRPC listen address.
	Addr string
	// MetricsAddr is the HTTP listen address of /metrics; empty disables it.
	MetricsAddr string
	// ShutdownTimeout bounds graceful shutdown before in-flight calls are cut.
	ShutdownTimeout time.Duration
	// HealthInterval is how often dependency checks run.
	HealthInterval time.Duration
	// MaxMessageBytes caps received and sent messages.
	MaxMessageBytes int
	// TLS, when set, serves TLS (and mutual TLS if it asks for client certs).
	TLS *tls.Config
	// MaxConnectionAge, when positive, asks clients to reconnect after about
	// this long (calls in flight finish first), so clients that resolve a
	// name to every replica pick up replicas started since. Zero: never.
	MaxConnectionAge time.Duration
}

// Validate reports the first bad setting by its flag name.
func (c Config) Validate() error {
	if c.Addr == "" {
		return config.Invalid("addr", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return config.Invalid("addr", "%q is not host:port: %v", c.Addr, err)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return config.Invalid("metrics-addr", "%q is not host:port: %v", c.MetricsAddr, err)
		}
	}
	if c.ShutdownTimeout <= 0 {
		return config.Invalid("shutdown-timeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	if c.HealthInterval <= 0 {
		return config.Invalid("health-interval", "must be positive, got %s", c.HealthInterval)
	}
	if c.MaxMessageBytes <= 0 {
		return config.Invalid("max-message-bytes", "must be positive, got %d", c.MaxMessageBytes)
	}
	if c.MaxConnectionAge < 0 {
		return config.Invalid("max-connection-age", "must not be negative, got %s", c.MaxConnectionAge)
	}
	return nil
}

// HealthCheck reports whether a dependency works; nil means healthy.
type HealthCheck func(ctx context.Context) error

// Option changes how a server is built.
type Option func(*options)

type options struct {
	authn   *auth.Interceptor
	unary   []grpc.UnaryServerInterceptor
	stream  []grpc.StreamServerInterceptor
	version string
}

// WithAuth installs the authentication and authorisation interceptor.
func WithAuth(i *auth.Interceptor) Option { return func(o *options) { o.authn = i } }

// WithUnaryInterceptor appends an interceptor after auth.
func WithUnaryInterceptor(i grpc.UnaryServerInterceptor) Option {
	return func(o *options) { o.unary = append(o.unary, i) }
}

// WithStreamInterceptor appends an interceptor after auth.
func WithStreamInterceptor(i grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.stream = append(o.stream, i) }
}

// WithVersion sets the version reported in telemetry.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// Server is a gRPC server with its health, reflection, telemetry and metrics.
type Server struct {
	cfg       Config
	log       *slog.Logger
	grpc      *grpc.Server
	health    *health.Server
	telemetry *telemetry.Providers

	mu     sync.Mutex
	checks map[string][]namedCheck // service name -> checks
	status map[string]error        // check name -> last error
}

type namedCheck struct {
	name  string
	check HealthCheck
}

// New builds a server. Register services on GRPC() before calling Serve.
func New(ctx context.Context, name string, cfg Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{version: "dev"}
	for _, opt := range opts {
		opt(&o)
	}
	tp, err := telemetry.New(ctx, name, o.version)
	if err != nil {
		return nil, err
	}
	unary := []grpc.UnaryServerInterceptor{recoveryUnary(log), loggingUnary(log)}
	stream := []grpc.StreamServerInterceptor{recoveryStream(log), loggingStream(log)}
	if o.authn != nil {
		unary = append(unary, o.authn.Unary(), principalReporterUnary())
		stream = append(stream, o.authn.Stream(), principalReporterStream())
	}
	unary = append(unary, o.unary...)
	stream = append(stream, o.stream...)
	gopts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp.Tracer),
			otelgrpc.WithMeterProvider(tp.Meter),
			otelgrpc.WithPropagators(tp.Propagator),
		)),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if cfg.MaxConnectionAge > 0 {
		// The grace stays unlimited: a long sandbox run is never cut.
		gopts = append(gopts, grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: cfg.MaxConnectionAge}))
	}
	if cfg.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		grpc:      grpc.NewServer(gopts...),
		health:    health.NewServer(),
		telemetry: tp,
		checks:    map[string][]namedCheck{},
		status:    map[string]error{},
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// GRPC returns the underlying server for service registration.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Telemetry returns the server's telemetry providers, for clients it builds.
func (s *Server) Telemetry() *telemetry.Providers { return s.telemetry }

// AddHealthCheck ties a registered gRPC service's health (its full name, such
// as "airlock.executor.v1.ExecutorService") to a dependency check. A service
// with no checks is SERVING once Serve starts; the overall status ("") is
// SERVING only while every check passes.
func (s *Server) AddHealthCheck(service, name string, check HealthCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[service] = append(s.checks[service], namedCheck{name: name, check: check})
}

// CheckHealth runs every check once and updates the health statuses.
func (s *Server) CheckHealth(ctx context.Context) {
	s.mu.Lock()
	services := make(map[string][]namedCheck, len(s.checks))
	for k, v := range s.checks {
		services[k] = v
	}
	s.mu.Unlock()
	for name := range s.grpc.GetServiceInfo() {
		if _, ok := services[name]; !ok {
			services[name] = nil
		}
	}
	overall := healthpb.HealthCheckResponse_SERVING
	for svc, checks := range services {
		st := healthpb.HealthCheckResponse_SERVING
		for _, c := range checks {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.check(cctx)
			cancel()
			s.recordCheck(ctx, svc, c.name, err)
			if err != nil {
				st = healthpb.HealthCheckResponse_NOT_SERVING
			}
		}
		if st != healthpb.HealthCheckResponse_SERVING {
			overall = st
		}
		s.health.SetServingStatus(svc, st)
	}
	s.health.SetServingStatus("", overall)
}

func (s *Server) recordCheck(ctx context.Context, svc, name string, err error) {
	key := svc + "/" + name
	s.mu.Lock()
	prev, seen := s.status[key]
	s.status[key] = err
	s.mu.Unlock()
	switch {
	case err != nil && (!seen || prev == nil || prev.Error() != err.Error()):
		s.log.WarnContext(ctx, "health check failing", "service", svc, "check", name, "error", err)
	case err == nil && seen && prev != nil:
		s.log.InfoContext(ctx, "health check recovered", "service", svc, "check", name)
	}
}

// Serve listens on the configured address and serves until ctx is done, then
// shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on --addr %s: %w", s.cfg.Addr, err)
	}
	return s.ServeListener(ctx, lis)
}

// ServeListener serves on lis until ctx is done. In-flight calls get up to
// ShutdownTimeout to finish before they are cut.
func (s *Server) ServeListener(ctx context.Context, lis net.Listener) error {
	var metricsSrv *http.Server
	if s.cfg.MetricsAddr != "" {
		mlis, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			lis.Close()
			return fmt.Errorf("listening on --metrics-addr %s: %w", s.cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.telemetry.Registry, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server stopped", "error", err)
			}
		}()
		s.log.Info("serving metrics", "addr", mlis.Addr().String())
	}

	s.CheckHealth(ctx)
	healthCtx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHealth()
	go func() {
		t := time.NewTicker(s.cfg.HealthInterval)
		defer t.Stop()
		for {
			select {
			case <-healthCtx.Done():
				return
			case <-t.C:
				s.CheckHealth(healthCtx)
			}
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	s.log.Info("serving gRPC", "addr", lis.Addr().String())

	select {
	case err := <-errc:
		stopHealth()
		return errors.Join(fmt.Errorf("serving gRPC: %w", err), s.shutdownAux(metricsSrv))
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	stopHealth()
	s.health.Shutdown() // tell load balancers first
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("graceful shutdown timed out; cutting in-flight calls")
		s.grpc.Stop()
		<-done
	}
	<-errc
	return s.shutdownAux(metricsSrv)
}

func (s *Server) shutdownAux(metricsSrv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if metricsSrv != nil {
		errs = append(errs, metricsSrv.Shutdown(ctx))
	}
	errs = append(errs, s.telemetry.Shutdown(ctx))
	return errors.Join(errs...)
}
