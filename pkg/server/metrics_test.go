package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestMetricsEndpointExportsRPCMetrics(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MetricsAddr = freeAddr(t)
	svc := &slowPolicy{started: make(chan struct{}), release: make(chan struct{})}
	close(svc.release)
	f := setup(t, cfg, svc)
	_, err := policyv1.NewPolicyServiceClient(f.conn).Check(context.Background(), &policyv1.CheckRequest{})
	require.NoError(t, err)
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + cfg.MetricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK && strings.Contains(body, "rpc_server_call_duration")
	}, 5*time.Second, 20*time.Millisecond, "metrics body:\n%s", body)
	require.Contains(t, body, `rpc_method="airlock.policy.v1.PolicyService/Check"`)
	require.Contains(t, body, "go_goroutines")
}
