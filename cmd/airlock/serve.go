package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/pricing"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/pkg/telemetry"
	"github.com/airlockhq/airlock/pkg/version"
)

// serviceSpec describes one service to the serve and dev commands. Each
// service's spec lives in service_<name>.go.
type serviceSpec struct {
	// Name is the short name used by `airlock serve NAME`.
	Name string
	// FullName is the gRPC service name, as health and reflection show it.
	FullName string
	// NeedsDB is true when the service keeps state in the database.
	NeedsDB bool
	// Migrations are the service's embedded schema migrations.
	Migrations []database.Migrations
	// Rules says which roles may call each RPC.
	Rules auth.Rules
	// Flags registers the service's own settings. Flag names are unique
	// across services because `airlock dev` registers them all together.
	Flags func(fs *pflag.FlagSet)
	// Start builds the service and registers it on env.Server; the returned
	// function releases what it holds.
	Start func(ctx context.Context, env *serviceEnv) (func() error, error)
}

// serviceEnv is what a service gets to start with.
type serviceEnv struct {
	Log    *slog.Logger
	Server *server.Server
	// DB is the shared database; nil unless a started service needs one.
	DB *database.DB
	// DataDir is where local state lives (./.airlock by default).
	DataDir string
	// Dial connects to another service by short name, as a service principal.
	Dial func(name string) (*grpc.ClientConn, error)
	// Prices is the price table from --prices, or pricing.Default().
	Prices *pricing.Table
}

// allServices lists every service in start order: dependencies first.
func allServices() []*serviceSpec {
	return []*serviceSpec{
		policyService(),
		budgetService(),
		executorService(),
		generatorService(),
		approvalService(),
		orchestratorService(),
	}
}

// findService returns the spec named name among specs.
func findService(specs []*serviceSpec, name string) (*serviceSpec, error) {
	var names []string
	for _, s := range specs {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("unknown service %q; want one of %s", name, strings.Join(names, ", "))
}

// commonFlags are the settings every server has.
type commonFlags struct {
	addr             string
	metricsAddr      string
	shutdownTimeout  time.Duration
	healthInterval   time.Duration
	maxMessageBytes  int
	maxConnectionAge time.Duration
	databaseURL      string
	dataDir          string
	logLevel         string
	logFormat        string
	serviceToken     string
	pricesFile       string
	authMaxFailures  int
	authFailWindow   time.Duration
	peers            map[string]*string
	tls              tlsFlags
}

func (c *commonFlags) register(fs *pflag.FlagSet, defaultAddr string, peers bool) {
	fs.StringVar(&c.addr, "addr", defaultAddr, "gRPC listen address")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "Prometheus /metrics listen address; empty disables it")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight calls may run after SIGTERM")
	fs.DurationVar(&c.healthInterval, "health-interval", 5*time.Second, "how often dependency health checks run")
	fs.IntVar(&c.maxMessageBytes, "max-message-bytes", 64<<20, "largest gRPC message accepted or sent")
	fs.DurationVar(&c.maxConnectionAge, "max-connection-age", 5*time.Minute, "clients are asked to reconnect after about this long, so they find replicas started since; 0 means never")
	fs.StringVar(&c.databaseURL, "database-url", "", "postgres://... or sqlite:PATH; default sqlite under --data-dir (env DATABASE_URL)")
	fs.StringVar(&c.dataDir, "data-dir", ".airlock", "directory for local state")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or text")
	fs.StringVar(&c.serviceToken, "service-token", "", "shared secret services present to each other")
	fs.StringVar(&c.pricesFile, "prices", "", "YAML price table (models and compute); empty means xAI's published Grok prices")
	fs.IntVar(&c.authMaxFailures, "auth-max-failures", auth.DefaultMaxFailures, "invalid credentials one address may present per --auth-failure-window before it is refused until the window ends; 0 turns the limit off")
	fs.DurationVar(&c.authFailWindow, "auth-failure-window", auth.DefaultFailureWindow, "the window of --auth-max-failures")
	c.tls.register(fs)
	if peers {
		c.peers = map[string]*string{}
		for _, s := range allServices() {
			c.peers[s.Name] = fs.String(s.Name+"-addr", "", "address of the "+s.Name+" service")
		}
	}
}

var envAliases = config.Aliases{"database-url": {"DATABASE_URL"}}

func (c *commonFlags) validate() error {
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return config.Invalid("log-level", "%q is not one of debug, info, warn, error", c.logLevel)
	}
	switch c.logFormat {
	case "json", "text":
	default:
		return config.Invalid("log-format", "%q is not json or text", c.logFormat)
	}
	if c.dataDir == "" {
		return config.Invalid("data-dir", "must not be empty")
	}
	if c.authMaxFailures < 0 {
		return config.Invalid("auth-max-failures", "must not be negative, got %d", c.authMaxFailures)
	}
	if c.authFailWindow <= 0 {
		return config.Invalid("auth-failure-window", "must be positive, got %s", c.authFailWindow)
	}
	if c.databaseURL != "" {
		if err := database.CheckURL(c.databaseURL); err != nil {
			return config.Invalid("database-url", "%v", err)
		}
	}
	return c.tls.validate()
}

func (c *commonFlags) serverConfig() server.Config {
	return server.Config{
		Addr:             c.addr,
		MetricsAddr:      c.metricsAddr,
		ShutdownTimeout:  c.shutdownTimeout,
		HealthInterval:   c.healthInterval,
		MaxMessageBytes:  c.maxMessageBytes,
		MaxConnectionAge: c.maxConnectionAge,
	}
}

func (c *commonFlags) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func (c *commonFlags) dbURL() string {
	if c.databaseURL != "" {
		return c.databaseURL
	}
	return "sqlite:" + filepath.Join(c.dataDir, "airlock.db")
}

func newServeCmd() *cobra.Command {
	var common commonFlags
	cmd := &cobra.Command{
		Use:   "serve SERVICE",
		Short: "Serve one service: orchestrator, generator, policy, budget, executor or approval",
		Args:  cobra.ExactArgs(1),
	}
	common.register(cmd.Flags(), "0.0.0.0:50051", true)
	// The specs whose flags are bound are the ones started: a spec's flags
	// fill variables its Start closes over.
	specs := allServices()
	for _, s := range specs {
		if s.Flags != nil {
			s.Flags(cmd.Flags())
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		spec, err := findService(specs, args[0])
		if err != nil {
			return err
		}
		if err := config.ApplyEnv(cmd.Flags(), envAliases); err != nil {
			return err
		}
		return serve(cmd.Context(), &common, []*serviceSpec{spec}, false, cmd.ErrOrStderr())
	}
	return cmd
}

func newDevCmd() *cobra.Command {
	var common commonFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Serve all six services in one process on one port, with SQLite under --data-dir",
		Args:  cobra.NoArgs,
	}
	common.register(cmd.Flags(), "127.0.0.1:50051", false)
	specs := allServices() // bound and started alike, as in serve
	for _, s := range specs {
		if s.Flags != nil {
			s.Flags(cmd.Flags())
		}
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := config.ApplyEnv(cmd.Flags(), envAliases); err != nil {
			return err
		}
		common.logFormat = firstChanged(cmd.Flags(), "log-format", common.logFormat, "text")
		return serve(cmd.Context(), &common, specs, true, cmd.ErrOrStderr())
	}
	return cmd
}

// firstChanged returns val if the flag was set, else def.
func firstChanged(fs *pflag.FlagSet, name, val, def string) string {
	if f := fs.Lookup(name); f != nil && f.Changed {
		return val
	}
	if _, ok := os.LookupEnv(config.EnvName(name)); ok {
		return val
	}
	return def
}

// serve starts specs on one server and blocks until ctx is done.
func serve(ctx context.Context, common *commonFlags, specs []*serviceSpec, dev bool, logOut io.Writer) error {
	if err := common.validate(); err != nil {
		return err
	}
	log := common.logger(logOut)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	log.Info("starting airlock", "version", version.String(), "services", names, "addr", common.addr,
		"metrics_addr", common.metricsAddr, "data_dir", common.dataDir, "dev", dev,
		"service_token", config.Secret(common.serviceToken))

	serviceToken := common.serviceToken
	if dev && serviceToken == "" {
		serviceToken = randomToken()
	}
	authn := auth.Chain{}
	if serviceToken != "" {
		authn = append(authn, auth.StaticKeys{serviceToken: {
			Tenant: "_system", Subject: "service", Roles: []auth.Role{auth.RoleService},
		}})
	}

	prices := pricing.Default()
	if common.pricesFile != "" {
		p, err := pricing.Load(common.pricesFile)
		if err != nil {
			return config.Invalid("prices", "%v", err)
		}
		prices = p
	}
	env := &serviceEnv{Log: log, DataDir: common.dataDir, Prices: prices}
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				log.Warn("closing", "error", err)
			}
		}
	}()
	needDB := slices.ContainsFunc(specs, func(s *serviceSpec) bool { return s.NeedsDB })
	// An explicit --database-url also opens the database for stateless
	// services, so they authenticate API keys against it (keys.go).
	if needDB || dev || common.databaseURL != "" {
		db, err := database.Open(ctx, common.dbURL())
		if err != nil {
			return fmt.Errorf("opening database (--database-url): %w", err)
		}
		closers = append(closers, db.Close)
		env.DB = db
		if dev {
			if err := database.Migrate(ctx, db, migrationsOf(specs)...); err != nil {
				return fmt.Errorf("migrating database: %w", err)
			}
		}
	}

	extraAuthn, err := keyAuthenticator(ctx, env, dev)
	if err != nil {
		return err
	}
	if extraAuthn != nil {
		authn = append(authn, extraAuthn)
	}
	rules := auth.Rules{}
	for _, s := range specs {
		rules.Merge(s.Rules)
	}
	rules.Merge(extraRules())
	srvCfg := common.serverConfig()
	tlsCfg, err := common.tls.serverTLS()
	if err != nil {
		return err
	}
	srvCfg.TLS = tlsCfg
	srv, err := server.New(ctx, telemetryName(specs), srvCfg, log,
		server.WithAuth(auth.NewInterceptor(authn, rules, log).LimitFailures(common.authMaxFailures, common.authFailWindow)), server.WithVersion(version.Version))
	if err != nil {
		return err
	}
	env.Server = srv
	registerKeyService(env, extraAuthn)
	if env.DB != nil {
		db := env.DB
		for _, s := range specs {
			if s.NeedsDB {
				srv.AddHealthCheck(s.FullName, "database", db.Ping)
			}
		}
	}

	conns := map[string]*grpc.ClientConn{}
	env.Dial = func(name string) (*grpc.ClientConn, error) {
		if c, ok := conns[name]; ok {
			return c, nil
		}
		target := common.addr
		if !dev {
			p, ok := common.peers[name]
			if !ok || *p == "" {
				return nil, config.Invalid(name+"-addr", "the %s service's address is required", name)
			}
			target = *p
		}
		creds, err := common.tls.clientCreds()
		if err != nil {
			return nil, err
		}
		if creds == nil {
			creds = insecure.NewCredentials()
		}
		c, err := grpc.NewClient(target, peerDialOptions(creds, serviceToken, srv.Telemetry(), common.maxMessageBytes)...)
		if err != nil {
			return nil, fmt.Errorf("dialing %s at %s: %w", name, target, err)
		}
		conns[name] = c
		closers = append(closers, c.Close)
		return c, nil
	}

	for _, s := range specs {
		closeFn, err := s.Start(ctx, env)
		if err != nil {
			return fmt.Errorf("starting %s: %w", s.Name, err)
		}
		if closeFn != nil {
			closers = append(closers, closeFn)
		}
	}
	return srv.Serve(ctx)
}

// peerRoundRobin spreads a peer's calls over every address its name resolves
// to (each pod behind a headless Service), instead of gRPC's default of
// sending them all down the first connection.
const peerRoundRobin = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// peerDialOptions are the options of a connection to a peer service.
func peerDialOptions(creds credentials.TransportCredentials, token string, tel *telemetry.Providers, maxMessageBytes int) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(tel.Tracer),
			otelgrpc.WithMeterProvider(tel.Meter),
			otelgrpc.WithPropagators(tel.Propagator))),
		grpc.WithDefaultServiceConfig(peerRoundRobin),
		// Peers start in any order (pods, or dev's own port just opening):
		// a call waits for its connection instead of failing fast while the
		// peer is not up yet; the caller's context still bounds it.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes),
			grpc.MaxCallSendMsgSize(maxMessageBytes), grpc.WaitForReady(true)),
	}
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// migrationsOf lists the schema migrations of specs plus those that belong to
// no spec (API keys): what dev applies at start and `airlock migrate` applies.
func migrationsOf(specs []*serviceSpec) []database.Migrations {
	var sets []database.Migrations
	for _, s := range specs {
		sets = append(sets, s.Migrations...)
	}
	return append(sets, extraMigrations()...)
}

// telemetryName is the service name traces and metrics carry: airlock-<name>
// for one service, so a cluster's six Deployments can be told apart; airlock
// for dev's all-in-one process.
func telemetryName(specs []*serviceSpec) string {
	if len(specs) == 1 {
		return "airlock-" + specs[0].Name
	}
	return "airlock"
}
