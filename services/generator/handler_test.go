package generator_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/services/generator"
)

var keys = auth.StaticKeys{
	"tok-service":  {Tenant: "_system", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
	"tok-admin":    {Tenant: "t1", Subject: "root", Roles: []auth.Role{auth.RoleAdmin}},
	"tok-user":     {Tenant: "t1", Subject: "alice", Roles: []auth.Role{auth.RoleUser}},
	"tok-operator": {Tenant: "t1", Subject: "bob", Roles: []auth.Role{auth.RoleOperator}},
}

func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// startServer serves the generator through pkg/server on a loopback port,
// as `airlock serve generator` does, and returns a client and its conn.
func startServer(t *testing.T, g *generator.Generator) (generatorv1.GeneratorServiceClient, *grpc.ClientConn) {
	t.Helper()
	log := testLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, "generator-test", server.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second,
		HealthInterval: time.Hour, MaxMessageBytes: 4 << 20}, log,
		server.WithAuth(auth.NewInterceptor(keys, generator.Rules(), log)))
	require.NoError(t, err)
	generatorv1.RegisterGeneratorServiceServer(srv.GRPC(), generator.NewHandler(g, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		cancel()
		require.NoError(t, <-done)
	})
	return generatorv1.NewGeneratorServiceClient(conn), conn
}

func TestHandlerGenerate(t *testing.T) {
	t.Parallel()
	g, fm := setup(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		completion(w, goodAnswer, 1000, 200, 500)
	})
	client, conn := startServer(t, g)

	for _, tok := range []string{"tok-service", "tok-admin"} {
		resp, err := client.Generate(as(tok), simpleRequest())
		require.NoError(t, err, tok)
		require.Equal(t, "import pandas as pd\nprint('ok')\n", resp.GetCode())
		require.EqualValues(t, 914, resp.GetCostMicros())
		require.EqualValues(t, 200, resp.GetUsage().GetCachedPromptTokens())
	}
	require.Len(t, fm.Calls(), 2)

	for _, tok := range []string{"tok-user", "tok-operator"} {
		_, err := client.Generate(as(tok), simpleRequest())
		require.Equal(t, codes.PermissionDenied, status.Code(err), tok)
	}
	_, err := client.Generate(context.Background(), simpleRequest())
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.Len(t, fm.Calls(), 2, "refused callers never reach the model")

	// Bad input names the field in a BadRequest detail.
	bad := simpleRequest()
	bad.Datasets[0].Name = "../../etc/shadow"
	_, err = client.Generate(as("tok-service"), bad)
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.Len(t, st.Details(), 1)
	br := st.Details()[0].(*errdetails.BadRequest)
	require.Equal(t, "datasets[0].name", br.GetFieldViolations()[0].GetField())

	health, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, health.GetStatus())
}

func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		answer func(n int, w http.ResponseWriter, r *http.Request)
		tune   func(*generator.Config)
		code   codes.Code
		msg    string
	}{
		"no key": {
			answer: func(int, http.ResponseWriter, *http.Request) {},
			tune:   func(c *generator.Config) { c.APIKey = "" },
			code:   codes.FailedPrecondition, msg: "no model API key: set XAI_API_KEY",
		},
		"rejected key": {
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) { apiError(w, http.StatusUnauthorized, "bad key") },
			code:   codes.FailedPrecondition, msg: "model credentials rejected",
		},
		"storm": {
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) { apiError(w, http.StatusBadGateway, "down") },
			tune:   func(c *generator.Config) { c.MaxRetries = 1 },
			code:   codes.Unavailable, msg: "unavailable",
		},
		"rate limited": {
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) { apiError(w, http.StatusTooManyRequests, "slow") },
			tune:   func(c *generator.Config) { c.MaxRetries = 0 },
			code:   codes.ResourceExhausted, msg: "rate limit",
		},
		"slow": {
			answer: func(_ int, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			tune:   func(c *generator.Config) { c.Timeout = 100 * time.Millisecond },
			code:   codes.DeadlineExceeded, msg: "did not answer in time",
		},
		"malformed": {
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) { completion(w, "no JSON here, sorry", 40, 0, 5) },
			code:   codes.Unknown, msg: "no JSON here",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var tune []func(*generator.Config)
			if c.tune != nil {
				tune = append(tune, c.tune)
			}
			g, _ := setup(t, c.answer, tune...)
			client, _ := startServer(t, g)
			_, err := client.Generate(as("tok-service"), simpleRequest())
			st := status.Convert(err)
			require.Equal(t, c.code, st.Code(), st.Message())
			require.Contains(t, st.Message(), c.msg)
			require.NotContains(t, st.Message(), testKey)
			if name == "malformed" {
				info := st.Details()[0].(*errdetails.ErrorInfo)
				require.Equal(t, "MALFORMED_ANSWER", info.GetReason())
				require.Equal(t, "40", info.GetMetadata()["prompt_tokens"])
				require.NotEqual(t, "0", info.GetMetadata()["cost_micros"])
			}
		})
	}
}

func TestHandlerCallerCancels(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	finished := make(chan struct{})
	g, _ := setup(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // the model call is abandoned when the caller goes away
		close(finished)
	})
	client, _ := startServer(t, g)
	ctx, cancel := context.WithCancel(as("tok-service"))
	go func() {
		<-arrived
		cancel()
	}()
	_, err := client.Generate(ctx, simpleRequest())
	require.Equal(t, codes.Canceled, status.Code(err))
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("the model call outlived the cancelled gRPC call")
	}
}
