package policy

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type fixture struct {
	dir   string
	store *policydoc.Store
	addr  string
}

var keys = auth.StaticKeys{
	"acme-user":     {Tenant: "acme", Subject: "alice", Roles: []auth.Role{auth.RoleUser}},
	"acme-operator": {Tenant: "acme", Subject: "olga", Roles: []auth.Role{auth.RoleOperator}},
	"acme-admin":    {Tenant: "acme", Subject: "root", Roles: []auth.Role{auth.RoleAdmin}},
	"globex-user":   {Tenant: "globex", Subject: "bob", Roles: []auth.Role{auth.RoleUser}},
	"service":       {Tenant: "_system", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
}

// setup serves the policy service on a loopback port behind the real
// server bootstrap and auth interceptor.
func setup(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "policies", "default.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "default.yaml"), src, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte(
		"id: acme\ntenants: [acme]\nallowed_imports: [pandas, csv]\nlimits:\n  timeout: 2m\n  memory: 2GiB\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shared.yaml"), []byte("id: shared\nallowed_imports: [csv]\n"), 0o600))
	log := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	store, err := policydoc.Open(dir, log)
	require.NoError(t, err)

	srv, err := server.New(context.Background(), "policy-test", server.Config{
		Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, HealthInterval: time.Second, MaxMessageBytes: 4 << 20,
	}, log, server.WithAuth(auth.NewInterceptor(keys, Rules(), log)))
	require.NoError(t, err)
	policyv1.RegisterPolicyServiceServer(srv.GRPC(), New(store, Config{MaxCodeBytes: 1 << 20}, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &fixture{dir: dir, store: store, addr: lis.Addr().String()}
}

func (f *fixture) client(t *testing.T, key string) policyv1.PolicyServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerToken{Token: key}))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return policyv1.NewPolicyServiceClient(conn)
}

func fieldViolation(t *testing.T, err error) string {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	t.Fatalf("no BadRequest detail in %v", err)
	return ""
}

func TestCheckVerdicts(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	c := f.client(t, "globex-user")

	allow, err := c.Check(ctx, &policyv1.CheckRequest{Code: "import pandas as pd\npd.read_csv('/data/in/a.csv').to_csv('/data/out/a.csv')\n"})
	require.NoError(t, err)
	require.Equal(t, policyv1.Verdict_VERDICT_ALLOW, allow.GetVerdict())
	require.Empty(t, allow.GetFindings())
	require.Equal(t, "default", allow.GetPolicyId())
	def, err := f.store.Get("globex", "default")
	require.NoError(t, err)
	require.Equal(t, def.Version, allow.GetPolicyVersion())
	require.Len(t, allow.GetCodeSha256(), 64)
	require.Contains(t, allow.GetAllowedImports(), "openpyxl")
	require.Equal(t, time.Minute, allow.GetLimits().GetTimeout().AsDuration())
	require.Equal(t, int64(1<<30), allow.GetLimits().GetMemoryBytes())

	deny, err := c.Check(ctx, &policyv1.CheckRequest{Code: "import os\n\nos.system('id')\n"})
	require.NoError(t, err)
	require.Equal(t, policyv1.Verdict_VERDICT_DENY, deny.GetVerdict())
	fd := deny.GetFindings()[0]
	require.Equal(t, "call.system", fd.GetRuleId())
	require.Equal(t, policyv1.Severity_SEVERITY_CRITICAL, fd.GetSeverity())
	require.Equal(t, policyv1.Verdict_VERDICT_DENY, fd.GetAction())
	require.Equal(t, int32(3), fd.GetLine())
	require.Equal(t, int32(1), fd.GetColumn())
	require.Equal(t, "os.system", fd.GetSnippet())
	require.NotEmpty(t, fd.GetMessage())
	require.NotEmpty(t, fd.GetFixHint())

	review, err := c.Check(ctx, &policyv1.CheckRequest{Code: "while True:\n    pass\n"})
	require.NoError(t, err)
	require.Equal(t, policyv1.Verdict_VERDICT_REVIEW, review.GetVerdict())

	syntax, err := c.Check(ctx, &policyv1.CheckRequest{Code: "x = 1\ndef (:\n"})
	require.NoError(t, err)
	require.Equal(t, policyv1.Verdict_VERDICT_DENY, syntax.GetVerdict())
	require.Equal(t, "syntax.error", syntax.GetFindings()[0].GetRuleId())
	require.Equal(t, int32(2), syntax.GetFindings()[0].GetLine())
}

func TestCheckTenantPolicy(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	code := &policyv1.CheckRequest{Code: "import os\n"}

	acme, err := f.client(t, "acme-user").Check(ctx, code)
	require.NoError(t, err)
	require.Equal(t, "acme", acme.GetPolicyId(), "acme's policy names acme")
	require.Equal(t, policyv1.Verdict_VERDICT_DENY, acme.GetVerdict(), "acme does not allow os")
	require.Equal(t, 2*time.Minute, acme.GetLimits().GetTimeout().AsDuration())
	require.Equal(t, []string{"pandas", "csv"}, acme.GetAllowedImports())

	shared, err := f.client(t, "acme-user").Check(ctx, &policyv1.CheckRequest{Code: "import csv\n", PolicyId: "shared"})
	require.NoError(t, err)
	require.Equal(t, "shared", shared.GetPolicyId())

	// A foreign policy answers exactly like a missing one.
	_, errForeign := f.client(t, "globex-user").Check(ctx, &policyv1.CheckRequest{Code: "x = 1", PolicyId: "acme"})
	_, errMissing := f.client(t, "globex-user").Check(ctx, &policyv1.CheckRequest{Code: "x = 1", PolicyId: "nosuch"})
	require.Equal(t, codes.NotFound, status.Code(errForeign))
	require.Equal(t, codes.NotFound, status.Code(errMissing))
	require.Equal(t, strings.Replace(status.Convert(errForeign).Message(), "acme", "X", 1),
		strings.Replace(status.Convert(errMissing).Message(), "nosuch", "X", 1))
}

func TestCheckBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t, "acme-user")
	ctx := context.Background()
	_, err := c.Check(ctx, &policyv1.CheckRequest{})
	require.Equal(t, "code", fieldViolation(t, err))
	_, err = c.Check(ctx, &policyv1.CheckRequest{Code: strings.Repeat("x", 1<<20+1)})
	require.Equal(t, "code", fieldViolation(t, err))
	require.Contains(t, status.Convert(err).Message(), "limit")
	_, err = c.Check(ctx, &policyv1.CheckRequest{Code: "x = 1", PolicyId: "../etc"})
	require.Equal(t, "policy_id", fieldViolation(t, err))
}

func TestCheckCapsFindings(t *testing.T) {
	t.Parallel()
	f := setup(t)
	code := strings.Repeat("eval('1')\n", MaxFindings+50)
	resp, err := f.client(t, "acme-user").Check(context.Background(), &policyv1.CheckRequest{Code: code})
	require.NoError(t, err)
	require.Equal(t, policyv1.Verdict_VERDICT_DENY, resp.GetVerdict())
	require.Len(t, resp.GetFindings(), MaxFindings)
}

func TestRoles(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for _, key := range []string{"acme-user", "acme-operator", "acme-admin", "service"} {
		_, err := f.client(t, key).ListPolicies(ctx, &policyv1.ListPoliciesRequest{})
		require.NoError(t, err, key)
	}
	_, err := f.client(t, "wrong-key").Check(ctx, &policyv1.CheckRequest{Code: "x = 1"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestGetPolicy(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	resp, err := f.client(t, "acme-operator").GetPolicy(ctx, &policyv1.GetPolicyRequest{PolicyId: "acme"})
	require.NoError(t, err)
	p := resp.GetPolicy()
	require.Equal(t, "acme", p.GetId())
	require.Len(t, p.GetVersion(), 64)
	require.Contains(t, p.GetSource(), "tenants: [acme]")
	require.Equal(t, int64(2<<30), p.GetLimits().GetMemoryBytes())
	require.NotNil(t, p.GetLoadedAt())

	_, errForeign := f.client(t, "globex-user").GetPolicy(ctx, &policyv1.GetPolicyRequest{PolicyId: "acme"})
	require.Equal(t, codes.NotFound, status.Code(errForeign))
	_, errMissing := f.client(t, "globex-user").GetPolicy(ctx, &policyv1.GetPolicyRequest{PolicyId: "nosuch"})
	require.Equal(t, codes.NotFound, status.Code(errMissing))
	_, err = f.client(t, "globex-user").GetPolicy(ctx, &policyv1.GetPolicyRequest{})
	require.Equal(t, "policy_id", fieldViolation(t, err))
}

func TestListPoliciesPages(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	list := func(key string, size int32) []string {
		var ids []string
		token := ""
		for range 10 {
			resp, err := f.client(t, key).ListPolicies(ctx, &policyv1.ListPoliciesRequest{PageSize: size, PageToken: token})
			require.NoError(t, err)
			require.LessOrEqual(t, len(resp.GetPolicies()), int(size))
			for _, p := range resp.GetPolicies() {
				ids = append(ids, p.GetId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				return ids
			}
		}
		t.Fatal("paging never ended")
		return nil
	}
	require.Equal(t, []string{"acme", "default", "shared"}, list("acme-user", 1))
	require.Equal(t, []string{"default", "shared"}, list("globex-user", 1), "globex never sees acme's policy")
	require.Equal(t, []string{"default", "shared"}, list("globex-user", 100))

	c := f.client(t, "globex-user")
	_, err := c.ListPolicies(ctx, &policyv1.ListPoliciesRequest{PageToken: "%%%"})
	require.Equal(t, "page_token", fieldViolation(t, err))
	_, err = c.ListPolicies(ctx, &policyv1.ListPoliciesRequest{PageSize: -1})
	require.Equal(t, "page_size", fieldViolation(t, err))
}

// TestCheckFollowsReload checks a changed policy file changes the verdict
// and version without restarting the server.
func TestCheckFollowsReload(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	c := f.client(t, "acme-user")
	before, err := c.Check(ctx, &policyv1.CheckRequest{Code: "import json\n"})
	require.NoError(t, err)
	require.Equal(t, policyv1.Verdict_VERDICT_DENY, before.GetVerdict())

	file := filepath.Join(f.dir, "acme.yaml")
	require.NoError(t, os.WriteFile(file+".new", []byte("id: acme\ntenants: [acme]\nallowed_imports: [pandas, csv, json]\n"), 0o600))
	require.NoError(t, os.Rename(file+".new", file))
	require.NoError(t, f.store.Reload())

	after, err := c.Check(ctx, &policyv1.CheckRequest{Code: "import json\n"})
	require.NoError(t, err)
	require.Equal(t, policyv1.Verdict_VERDICT_ALLOW, after.GetVerdict())
	require.NotEqual(t, before.GetPolicyVersion(), after.GetPolicyVersion())
}
