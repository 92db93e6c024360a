package executor

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/services/executor/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.RunHelper()
	goleak.VerifyTestMain(m)
}

var testKeys = auth.StaticKeys{
	"svc":   {Tenant: "_system", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
	"admin": {Tenant: "acme", Subject: "ada", Roles: []auth.Role{auth.RoleAdmin}},
	"op":    {Tenant: "acme", Subject: "olga", Roles: []auth.Role{auth.RoleOperator}},
	"user":  {Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}},
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// setup serves an executor with a warm pool of poolSize and the default
// spares on a loopback port.
func setup(t *testing.T, poolSize int) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logWriter{t}, nil))
	maxl := sandbox.DefaultMaxLimits()
	maxl.MemoryBytes = 1 << 30
	runner, err := sandbox.New(sandbox.Config{PoolSize: poolSize, Spares: sandbox.DefaultSpares, Max: maxl, Log: log})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, runner.Close()) })
	srv, err := server.New(context.Background(), "executor-test", server.Config{
		Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, HealthInterval: time.Minute, MaxMessageBytes: 16 << 20,
	}, log, server.WithAuth(auth.NewInterceptor(testKeys, Rules(), log)))
	require.NoError(t, err)
	executorv1.RegisterExecutorServiceServer(srv.GRPC(), NewServer(runner, sandbox.DefaultLimits(), maxl, nil, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	if poolSize > 0 {
		require.Eventually(t, func() bool { return runner.PoolReady() == poolSize }, time.Minute, 10*time.Millisecond)
	}
	return lis.Addr().String()
}

func dial(t *testing.T, addr, token string) executorv1.ExecutorServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return executorv1.NewExecutorServiceClient(conn)
}

func TestExecute(t *testing.T) {
	t.Parallel()
	addr := setup(t, 1)
	c := dial(t, addr, "svc")
	resp, err := c.Execute(context.Background(), &executorv1.ExecuteRequest{
		Code:   "import pandas as pd\ndf = pd.read_csv('/data/in/a.csv')\nprint(int(df.x.sum()))\ndf.to_csv('/data/out/b.csv', index=False)\n",
		Inputs: []*executorv1.InputFile{{Name: "a.csv", Content: []byte("x\n1\n2\n")}},
		RunId:  "run-1",
	})
	require.NoError(t, err)
	r := resp.GetResult()
	require.Equal(t, executorv1.TerminationReason_TERMINATION_REASON_EXITED, r.GetTerminationReason(), "%s %s", r.GetMessage(), r.GetStderr())
	require.Equal(t, "3\n", string(r.GetStdout()))
	require.True(t, r.GetWarm())
	require.Len(t, r.GetOutputFiles(), 1)
	f := r.GetOutputFiles()[0]
	require.Equal(t, "b.csv", f.GetName())
	require.Equal(t, "x\n1\n2\n", string(f.GetContent()))
	require.Equal(t, int64(6), f.GetSizeBytes())
	require.Len(t, f.GetSha256(), 64)
	require.Positive(t, r.GetUsage().GetWallTime().AsDuration())

	// The admin may call it too.
	resp, err = dial(t, addr, "admin").Execute(context.Background(), &executorv1.ExecuteRequest{
		Code:   "raise SystemExit(4)\n",
		Limits: &executorv1.Limits{Timeout: durationpb.New(10 * time.Second)},
	})
	require.NoError(t, err)
	require.Equal(t, int32(4), resp.GetResult().GetExitCode())
}

func TestExecuteStream(t *testing.T) {
	t.Parallel()
	addr := setup(t, 0)
	c := dial(t, addr, "svc")
	stream, err := c.ExecuteStream(context.Background(), &executorv1.ExecuteStreamRequest{Request: &executorv1.ExecuteRequest{
		Code: "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)\nraise ValueError('boom')\n",
	}})
	require.NoError(t, err)
	var stdout, stderr strings.Builder
	var result *executorv1.ExecutionResult
	chunks := 0
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Nil(t, result, "the result is the last message")
		if ch := msg.GetChunk(); ch != nil {
			chunks++
			if ch.GetStream() == executorv1.Stream_STREAM_STDOUT {
				stdout.Write(ch.GetData())
			} else {
				stderr.Write(ch.GetData())
			}
		} else {
			result = msg.GetResult()
		}
	}
	require.NotNil(t, result)
	require.GreaterOrEqual(t, chunks, 3, "stdout arrived as it was written")
	require.Equal(t, "0\n1\n2\n", stdout.String())
	require.Contains(t, stderr.String(), "ValueError: boom")
	require.Equal(t, stdout.String(), string(result.GetStdout()))
	require.Equal(t, int32(1), result.GetExitCode())
}

func TestRolesRefused(t *testing.T) {
	t.Parallel()
	addr := setup(t, 0)
	for _, token := range []string{"user", "op"} {
		_, err := dial(t, addr, token).Execute(context.Background(), &executorv1.ExecuteRequest{Code: "print(1)\n"})
		require.Equal(t, codes.PermissionDenied, status.Code(err), token)
	}
	_, err := dial(t, addr, "nobody").Execute(context.Background(), &executorv1.ExecuteRequest{Code: "print(1)\n"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	addr := setup(t, 0)
	c := dial(t, addr, "svc")
	in := func(names ...string) []*executorv1.InputFile {
		var out []*executorv1.InputFile
		for _, n := range names {
			out = append(out, &executorv1.InputFile{Name: n, Content: []byte("x")})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		req   *executorv1.ExecuteRequest
		field string
		desc  string
	}{
		{"empty code", &executorv1.ExecuteRequest{Code: "  \n"}, "code", "is empty"},
		{"code too big", &executorv1.ExecuteRequest{Code: strings.Repeat("#", MaxCodeBytes+1)}, "code", "at most"},
		{"slash", &executorv1.ExecuteRequest{Code: "1", Inputs: in("a.csv", "../etc/passwd")}, "inputs[1].name", "'/'"},
		{"dotdot", &executorv1.ExecuteRequest{Code: "1", Inputs: in("..")}, "inputs[0].name", "'.' or '..'"},
		{"nul", &executorv1.ExecuteRequest{Code: "1", Inputs: in("a\x00b")}, "inputs[0].name", "NUL"},
		{"empty name", &executorv1.ExecuteRequest{Code: "1", Inputs: in("")}, "inputs[0].name", "empty"},
		{"long name", &executorv1.ExecuteRequest{Code: "1", Inputs: in(strings.Repeat("a", 256))}, "inputs[0].name", "longer than 255"},
		{"duplicate", &executorv1.ExecuteRequest{Code: "1", Inputs: in("a.csv", "b.csv", "a.csv")}, "inputs[2].name", "duplicates inputs[0]"},
		{"memory above max", &executorv1.ExecuteRequest{Code: "1", Limits: &executorv1.Limits{MemoryBytes: 2 << 30}}, "limits.memory_bytes", "above the maximum"},
		{"timeout above max", &executorv1.ExecuteRequest{Code: "1", Limits: &executorv1.Limits{Timeout: durationpb.New(time.Hour)}}, "limits.timeout", "above the maximum"},
		{"negative cpu", &executorv1.ExecuteRequest{Code: "1", Limits: &executorv1.Limits{CpuTime: durationpb.New(-time.Second)}}, "limits.cpu_time", "negative"},
		{"bad import", &executorv1.ExecuteRequest{Code: "1", AllowedImports: []string{"pandas", "os.path"}}, "allowed_imports[1]", "top-level module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Execute(context.Background(), tc.req)
			requireViolation(t, err, tc.field, tc.desc)
		})
	}
	// ExecuteStream names the nested field.
	stream, err := c.ExecuteStream(context.Background(), &executorv1.ExecuteStreamRequest{Request: &executorv1.ExecuteRequest{Code: "1", Inputs: in("a/b")}})
	require.NoError(t, err)
	_, err = stream.Recv()
	requireViolation(t, err, "request.inputs[0].name", "'/'")
}

func requireViolation(t *testing.T, err error, field, desc string) {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					require.Contains(t, v.GetDescription(), desc)
					return
				}
			}
		}
	}
	t.Fatalf("no violation for %s in %v", field, err)
}

// The wire enums line up with the sandbox's.
func TestEnumsMatch(t *testing.T) {
	t.Parallel()
	for r := sandbox.Exited; r <= sandbox.Killed; r++ {
		require.Equal(t, "TERMINATION_REASON_"+r.String(), executorv1.TerminationReason(r).String())
	}
	require.Equal(t, executorv1.Stream_STREAM_STDOUT, executorv1.Stream(sandbox.Stdout))
	require.Equal(t, executorv1.Stream_STREAM_STDERR, executorv1.Stream(sandbox.Stderr))
}

// Without bwrap (or Python with pandas) the service reports NOT_SERVING and
// refuses runs with UNAVAILABLE.
func TestHealthNotServingWithoutRuntime(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(logWriter{t}, nil))
	for _, cfg := range []sandbox.Config{
		{Bwrap: "/nonexistent/bwrap", Log: log},
		{Python: "/bin/false", Log: log}, // present, but cannot import pandas
	} {
		runner, err := sandbox.New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = runner.Close() })
		require.ErrorIs(t, runner.Check(), sandbox.ErrUnavailable)
		srv, err := server.New(context.Background(), "executor-test", server.Config{
			Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, HealthInterval: time.Minute, MaxMessageBytes: 4 << 20,
		}, log, server.WithAuth(auth.NewInterceptor(testKeys, Rules(), log)))
		require.NoError(t, err)
		name := executorv1.ExecutorService_ServiceDesc.ServiceName
		executorv1.RegisterExecutorServiceServer(srv.GRPC(), NewServer(runner, sandbox.DefaultLimits(), sandbox.DefaultMaxLimits(), nil, log))
		srv.AddHealthCheck(name, "sandbox", func(context.Context) error { return runner.Check() })
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.ServeListener(ctx, lis) }()

		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.BearerToken{Token: "svc"}))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: name})
			return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
		}, 10*time.Second, 20*time.Millisecond)
		_, err = executorv1.NewExecutorServiceClient(conn).Execute(context.Background(), &executorv1.ExecuteRequest{Code: "print(1)\n"})
		require.Equal(t, codes.Unavailable, status.Code(err))
		conn.Close()
		cancel()
		require.NoError(t, <-done)
	}
}
