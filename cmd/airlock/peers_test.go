package main

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/airlockhq/airlock/pkg/telemetry"
)

// countingHealth answers health checks and counts them per server.
type countingHealth struct {
	*health.Server
	mu    *sync.Mutex
	calls map[string]int
	name  string
}

func (c countingHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	c.mu.Lock()
	c.calls[c.name]++
	c.mu.Unlock()
	return c.Server.Check(ctx, req)
}

// A peer's name may resolve to several pods (a headless Service): calls
// made through the options serve uses for peers go to all of them, not all
// down the first connection as with gRPC's default pick_first.
func TestPeerCallsSpreadOverEveryAddress(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	var addrs []resolver.Address
	for _, name := range []string{"pod-a", "pod-b"} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, countingHealth{Server: health.NewServer(), mu: &mu, calls: calls, name: name})
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		addrs = append(addrs, resolver.Address{Addr: lis.Addr().String()})
	}
	r := manual.NewBuilderWithScheme("airlocktest")
	r.InitialState(resolver.State{Addresses: addrs})
	tel, err := telemetry.New(context.Background(), "test", "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	opts := append(peerDialOptions(insecure.NewCredentials(), "token", tel, 4<<20), grpc.WithResolvers(r))
	conn, err := grpc.NewClient("airlocktest:///executor", opts...)
	require.NoError(t, err)
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	for range 20 {
		_, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 20, calls["pod-a"]+calls["pod-b"])
	require.Positive(t, calls["pod-a"], "calls per pod: %v", calls)
	require.Positive(t, calls["pod-b"], "calls per pod: %v", calls)
}
