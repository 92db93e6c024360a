package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/pkg/server"
	"github.com/airlockhq/airlock/services/approval"
)

// approvalCLIServer serves the approval service alone on a loopback port
// with fixed keys, and returns its address, a client calling as the
// orchestrator on alice's behalf, and its database.
func approvalCLIServer(t *testing.T) (string, approvalv1.ApprovalServiceClient, *database.DB) {
	t.Helper()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), approval.Migrations())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := approval.NewService(approval.NewStore(db), approval.DefaultConfig(), log)
	require.NoError(t, err)
	keys := auth.StaticKeys{
		"tok-svc": {Tenant: "_system", Subject: "orchestrator", Roles: []auth.Role{auth.RoleService}},
		"tok-bob": {Tenant: "t1", Subject: "bob", Roles: []auth.Role{auth.RoleOperator}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := svc.Start(ctx, db)
	require.NoError(t, err)
	srv, err := server.New(ctx, "approval-cli-test", server.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second,
		HealthInterval: time.Hour, MaxMessageBytes: 4 << 20}, log, server.WithAuth(auth.NewInterceptor(keys, approval.Rules(), log)))
	require.NoError(t, err)
	approvalv1.RegisterApprovalServiceServer(srv.GRPC(), approval.NewHandler(svc, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		stop()
	})
	return lis.Addr().String(), approvalv1.NewApprovalServiceClient(conn), db
}

func approvalsCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := run(context.Background(), append([]string{"approvals"}, args...), &out, io.Discard)
	return out.String(), err
}

// Not parallel: it sets the CLI's environment variables.
func TestApprovalsCLI(t *testing.T) {
	addr, client, db := approvalCLIServer(t)
	t.Setenv("AIRLOCK_ADDR", addr)
	t.Setenv("AIRLOCK_TOKEN", "tok-bob")
	ctx := auth.OnBehalfOf(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok-svc"),
		auth.Principal{Tenant: "t1", Subject: "alice", Roles: []auth.Role{auth.RoleUser}})
	var ids []string
	for _, run := range []string{"run-1", "run-2"} {
		resp, err := client.CreateApproval(ctx, &approvalv1.CreateApprovalRequest{RunId: run, Code: "import os\nprint(os.getcwd())\n",
			PolicyId: "default", PolicyVersion: "pv-1", Inputs: []*approvalv1.InputSummary{{Name: "sales.csv", SizeBytes: 10}},
			Findings: []*policyv1.Finding{{RuleId: "import.os", Severity: policyv1.Severity_SEVERITY_HIGH, Line: 1, Column: 1, Message: "imports os"}}})
		require.NoError(t, err)
		ids = append(ids, resp.GetApproval().GetId())
	}

	out, err := approvalsCLI(t, "list")
	require.NoError(t, err)
	require.Contains(t, out, "ID")
	require.Contains(t, out, ids[0])
	require.Contains(t, out, ids[1])
	require.Equal(t, 2, strings.Count(out, "PENDING"))
	require.Less(t, strings.Index(out, ids[1]), strings.Index(out, ids[0]), "newest first")

	out, err = approvalsCLI(t, "show", ids[0])
	require.NoError(t, err)
	require.Contains(t, out, "   1  import os")
	require.Contains(t, out, "sales.csv (10 bytes)")
	require.Contains(t, out, "import.os")
	require.Contains(t, out, "HIGH")

	_, err = approvalsCLI(t, "reject", ids[0])
	require.ErrorContains(t, err, "--reason")
	out, err = approvalsCLI(t, "approve", ids[0], "--reason", "reviewed")
	require.NoError(t, err)
	require.Contains(t, out, ids[0]+" APPROVED by bob")
	_, err = approvalsCLI(t, "reject", ids[0], "--reason", "too late")
	var ee *exitError
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Contains(t, ee.msg, "already APPROVED")
	out, err = approvalsCLI(t, "reject", ids[1], "--reason", "reads the working directory")
	require.NoError(t, err)
	require.Contains(t, out, "REJECTED by bob")

	out, err = approvalsCLI(t, "list", "--state", "approved", "--json")
	require.NoError(t, err)
	var list approvalv1.ListApprovalsResponse
	require.NoError(t, protojson.Unmarshal([]byte(out), &list))
	require.Len(t, list.GetApprovals(), 1)
	require.Equal(t, ids[0], list.GetApprovals()[0].GetId())
	_, err = approvalsCLI(t, "list", "--state", "maybe")
	require.ErrorContains(t, err, "--state")

	out, err = approvalsCLI(t, "verify")
	require.NoError(t, err)
	require.Contains(t, out, "trail intact: 4 events")
	_, err = db.SQL.Exec(`DELETE FROM approval_events WHERE seq = 2`)
	require.NoError(t, err)
	_, err = approvalsCLI(t, "verify")
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Equal(t, 1, ee.code)
	require.Contains(t, ee.msg, "BROKEN at event 2")
}
