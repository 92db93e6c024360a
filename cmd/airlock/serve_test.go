package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// devServer runs `airlock dev` in-process (the same run() main calls) on a
// free loopback port and returns its address once it serves.
func devServer(t *testing.T, extraArgs ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	args := append([]string{"dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json"}, extraArgs...)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, io.Discard, pw)
		pw.Close()
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving gRPC" && !sent {
				addrc <- line.Addr
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev server stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("dev server did not stop within 30s of cancellation")
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case err := <-done:
		t.Fatalf("dev server exited before serving: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev server did not start within 60s")
	}
	return ""
}

func TestDevServesEveryServiceHealthy(t *testing.T) {
	t.Parallel()
	addr := devServer(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Reflection, with no proto files on this side, lists every service.
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var listed []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		listed = append(listed, s.GetName())
	}
	require.NoError(t, stream.CloseSend())
	want := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"}
	for _, s := range allServices() {
		want = append(want, s.FullName)
	}
	for _, w := range want {
		require.Contains(t, listed, w)
	}

	hc := healthpb.NewHealthClient(conn)
	for _, svc := range append([]string{""}, want[2:]...) {
		require.Eventually(t, func() bool {
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
		}, 20*time.Second, 50*time.Millisecond, "service %q not SERVING", svc)
	}
}

func TestBadSettingFailsStartupNamingIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", "--addr", "nonsense", "--data-dir", t.TempDir()}, "--addr"},
		{[]string{"dev", "--shutdown-timeout", "0s", "--data-dir", t.TempDir()}, "--shutdown-timeout"},
		{[]string{"dev", "--log-level", "loud", "--data-dir", t.TempDir()}, "--log-level"},
		{[]string{"dev", "--database-url", "mysql://x", "--data-dir", t.TempDir()}, "--database-url"},
		{[]string{"dev", "--tls-cert", "/nonexistent.pem", "--data-dir", t.TempDir()}, "--tls-key"},
		{[]string{"serve", "nosuch"}, `unknown service "nosuch"`},
		{[]string{"serve", "policy", "--max-message-bytes", "-5"}, "--max-message-bytes"},
		{[]string{"serve", "policy", "--auth-max-failures", "-1"}, "--auth-max-failures"},
		{[]string{"serve", "policy", "--max-connection-age", "-1s"}, "--max-connection-age"},
		{[]string{"serve", "policy", "--auth-failure-window", "0s"}, "--auth-failure-window"},
	} {
		err := run(ctx, tc.args, io.Discard, io.Discard)
		require.Error(t, err, "args %v", tc.args)
		require.Contains(t, err.Error(), tc.want, "args %v", tc.args)
	}
}

// Not parallel: it sets environment variables.
func TestBadEnvironmentSettingNamesVariable(t *testing.T) {
	t.Setenv("AIRLOCK_SHUTDOWN_TIMEOUT", "soon")
	err := run(context.Background(), []string{"dev", "--data-dir", t.TempDir()}, io.Discard, io.Discard)
	require.Error(t, err)
	require.Contains(t, err.Error(), "AIRLOCK_SHUTDOWN_TIMEOUT")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"version"}, &out, io.Discard))
	require.True(t, strings.HasPrefix(out.String(), "airlock "), out.String())
}
