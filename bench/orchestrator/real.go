package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	"github.com/airlockhq/airlock/pkg/auth"
)

// benchReal runs supplied code through `airlock dev` — the real policy,
// budget, approval and executor (bubblewrap and Python) — and reports end to
// end time minus the sandbox's own wall time, and runs per second.
func benchReal(ctx context.Context, bin string, runs, clients, perClient int) error {
	dir, err := os.MkdirTemp("", "airlock-bench-real-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, bin, "dev", "--addr", addr, "--data-dir", filepath.Join(dir, "state"), "--log-level", "warn")
	cmd.Stderr, cmd.Stdout = nil, nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s dev: %w", bin, err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	var token string
	for deadline := time.Now().Add(60 * time.Second); ; {
		if b, err := os.ReadFile(filepath.Join(dir, "state", "admin.key")); err == nil && len(b) > 0 {
			token = strings.TrimSpace(string(b))
			if healthy(ctx, addr) {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s dev did not start", bin)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: token}))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := orchestratorv1.NewOrchestratorServiceClient(conn)
	fileID, err := upload(ctx, c)
	if err != nil {
		return err
	}
	// overhead is end to end minus the sandbox's own wall time.
	overhead := func() (time.Duration, error) {
		id, took, err := oneRun(ctx, c, fileID)
		if err != nil {
			return 0, err
		}
		resp, err := c.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: id})
		if err != nil {
			return 0, err
		}
		a := resp.GetRun().GetAttempts()
		return took - a[len(a)-1].GetExecution().GetUsage().GetWallTime().AsDuration(), nil
	}
	load := func() (time.Duration, error) {
		_, d, err := oneRun(ctx, c, fileID)
		return d, err
	}
	return measure("real", "  [airlock dev: real services and sandbox; overhead excludes sandbox wall time]",
		3, runs, clients, perClient, overhead, load)
}

func healthy(ctx context.Context, addr string) bool {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}
