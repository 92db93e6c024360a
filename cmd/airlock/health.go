package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// newHealthCmd is `airlock health`: one grpc.health.v1 Check against a
// server, for container health checks (docker-compose, the image's
// HEALTHCHECK) where no grpc-health-probe is installed. It exits 0 only when
// the answer is SERVING.
func newHealthCmd() *cobra.Command {
	var (
		addr, service, serverName string
		timeout                   time.Duration
		tlsf                      tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a server's gRPC health; exit 0 only when it answers SERVING",
		Args:  cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&addr, "addr", "127.0.0.1:50051", "server address")
	fs.StringVar(&service, "service", "", "service to ask about, e.g. airlock.budget.v1.BudgetService; empty for the whole server")
	fs.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	fs.StringVar(&tlsf.ca, "tls-ca", "", "PEM CA bundle; when set, the server is called over TLS and verified with it")
	fs.StringVar(&tlsf.cert, "tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&tlsf.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&serverName, "tls-server-name", "", "name to verify the server's certificate against (default: the host of --addr)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if timeout <= 0 {
			return fmt.Errorf("invalid setting --timeout: must be positive, got %s", timeout)
		}
		if err := tlsf.validate(); err != nil {
			return err
		}
		creds, err := healthCreds(&tlsf, serverName)
		if err != nil {
			return err
		}
		status, err := checkHealth(cmd.Context(), addr, service, timeout, creds)
		if err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("airlock health: %s: %v", addr, err)}
		}
		if status != healthpb.HealthCheckResponse_SERVING {
			return &exitError{code: 1, msg: fmt.Sprintf("airlock health: %s%s is %s", addr, forService(service), status)}
		}
		fmt.Fprintln(cmd.OutOrStdout(), status.String())
		return nil
	}
	return cmd
}

func forService(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// checkHealth asks addr for the health of service once.
func checkHealth(ctx context.Context, addr, service string, timeout time.Duration, creds credentials.TransportCredentials) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return resp.GetStatus(), nil
}

// healthCreds returns TLS credentials when --tls-ca is set, else plaintext.
func healthCreds(t *tlsFlags, serverName string) (credentials.TransportCredentials, error) {
	if t.ca == "" {
		return insecure.NewCredentials(), nil
	}
	cfg, err := t.clientTLS()
	if err != nil {
		return nil, err
	}
	cfg.ServerName = serverName
	return credentials.NewTLS(cfg), nil
}
