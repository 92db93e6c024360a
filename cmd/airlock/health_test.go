package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthServer serves grpc.health.v1 on a loopback port with statuses the
// test controls.
func healthServer(t *testing.T) (string, *health.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	h := health.NewServer()
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String(), h
}

func runHealth(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"health"}, args...), &out, &out)
	return out.String(), err
}

func TestHealthCommand(t *testing.T) {
	t.Parallel()
	addr, h := healthServer(t)
	h.SetServingStatus("airlock.budget.v1.BudgetService", healthpb.HealthCheckResponse_NOT_SERVING)

	out, err := runHealth("--addr", addr)
	require.NoError(t, err)
	require.Equal(t, "SERVING\n", out)

	_, err = runHealth("--addr", addr, "--service", "airlock.budget.v1.BudgetService")
	var ee *exitError
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Equal(t, 1, ee.code)
	require.Contains(t, ee.msg, "(airlock.budget.v1.BudgetService) is NOT_SERVING")

	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	_, err = runHealth("--addr", addr)
	require.True(t, errors.As(err, &ee))
	require.Contains(t, ee.msg, "is NOT_SERVING")

	_, err = runHealth("--addr", addr, "--service", "no.such.Service")
	require.True(t, errors.As(err, &ee))
	require.Contains(t, ee.msg, "NotFound")
}

func TestHealthCommandUnreachableAndBadSettings(t *testing.T) {
	t.Parallel()
	addr := opsFreeAddr(t) // nobody listens there
	_, err := runHealth("--addr", addr, "--timeout", "500ms")
	var ee *exitError
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Equal(t, 1, ee.code)
	require.Contains(t, ee.msg, addr)

	_, err = runHealth("--timeout", "0s")
	require.ErrorContains(t, err, "--timeout")
	_, err = runHealth("--tls-ca", "/nonexistent/ca.pem")
	require.ErrorContains(t, err, "--tls-ca")
	_, err = runHealth("--tls-cert", "/nonexistent/cert.pem")
	require.ErrorContains(t, err, "--tls-key")
}
