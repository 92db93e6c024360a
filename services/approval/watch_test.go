package approval_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/services/approval"
)

// watch opens a watch as p and waits until the server has it in place.
func watch(t *testing.T, ts *testServer, p auth.Principal, id string) grpc.ServerStreamingClient[approvalv1.WatchApprovalsResponse] {
	t.Helper()
	ctx, cancel := contextFor(t, p)
	stream, err := ts.client.WatchApprovals(ctx, &approvalv1.WatchApprovalsRequest{ApprovalId: id})
	require.NoError(t, err)
	_, err = stream.Header()
	require.NoError(t, err)
	t.Cleanup(cancel)
	return stream
}

func recv(t *testing.T, s grpc.ServerStreamingClient[approvalv1.WatchApprovalsResponse]) *approvalv1.Approval {
	t.Helper()
	resp, err := s.Recv()
	require.NoError(t, err)
	return resp.GetApproval()
}

func TestWatchSeesDecisionsMadeOnAnotherServer(t *testing.T) {
	t.Parallel()
	// Two servers, each with its own pool and listener, sharing one database.
	url := dbtest.NewPostgresURL(t)
	a := startServer(t, dbtest.Open(t, url, migrations...))
	b := startServer(t, dbtest.Open(t, url, migrations...))

	all := watch(t, b, bob, "")        // every request of t1
	mine := watch(t, b, alice, "")     // a plain user: only alice's
	foreign := watch(t, b, eve, "")    // tenant t2
	req := a.create(t, alice, "run-w") // made on server A
	one := watch(t, b, carol, req.GetId())

	got := recv(t, all)
	require.Equal(t, req.GetId(), got.GetId())
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_PENDING, got.GetState())
	got = recv(t, one)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_PENDING, got.GetState(), "a watch of one request starts with its state")

	_, err := a.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: req.GetId(), Reason: "ok"})
	require.NoError(t, err)

	got = recv(t, all)
	require.Equal(t, req.GetId(), got.GetId())
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, got.GetState())
	require.Equal(t, "bob", got.GetDecidedBy())
	got = recv(t, one)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, got.GetState())
	_, err = one.Recv()
	require.ErrorIs(t, err, io.EOF, "a watch of one request ends at its final state")

	// Alice saw her request; her stream skipped dave's, and eve's tenant saw nothing of t1.
	other := a.create(t, dave, "run-w2")
	got = recv(t, all)
	require.Equal(t, other.GetId(), got.GetId())
	require.Equal(t, req.GetId(), recv(t, mine).GetId())
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, recv(t, mine).GetState())
	frank := auth.Principal{Tenant: "t2", Subject: "frank", Roles: []auth.Role{auth.RoleUser}}
	hers := a.create(t, alice, "run-w3")
	t2 := b.create(t, frank, "run-t2")
	require.Equal(t, hers.GetId(), recv(t, mine).GetId(), "dave's request is not shown to alice")
	require.Equal(t, t2.GetId(), recv(t, foreign).GetId(), "t1's requests are not shown to t2")
}

func TestWatchOnSQLite(t *testing.T) {
	t.Parallel()
	ts := setup(t, "sqlite")
	all := watch(t, ts, bob, "")
	req := ts.create(t, alice, "run-s")
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_PENDING, recv(t, all).GetState())
	_, err := ts.client.Reject(as(bob), &approvalv1.RejectRequest{ApprovalId: req.GetId(), Reason: "no"})
	require.NoError(t, err)
	got := recv(t, all)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_REJECTED, got.GetState())
	require.Equal(t, "no", got.GetReason())

	// A decided request's watch sends its final state and ends.
	one := watch(t, ts, bob, req.GetId())
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_REJECTED, recv(t, one).GetState())
	_, err = one.Recv()
	require.ErrorIs(t, err, io.EOF)
}

func TestWatchSurvivesALostListenerConnection(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	require.NoError(t, ts.svc.FeedHealth(t.Context()))
	all := watch(t, ts, bob, "")
	// Cut the LISTEN connection from the server side, as a failover would.
	var n int
	require.NoError(t, ts.db.SQL.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&n))
	require.Equal(t, 1, n)
	req := ts.create(t, alice, "run-reconnect")
	got := recv(t, all) // heard live, or caught up from the trail after reconnecting
	require.Equal(t, req.GetId(), got.GetId())
	require.Eventually(t, func() bool { return ts.svc.FeedHealth(t.Context()) == nil }, 10*time.Second, 20*time.Millisecond)
	_, err := ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: req.GetId()})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, recv(t, all).GetState())
}

func TestSlowWatcherIsCutOffNotBlocking(t *testing.T) {
	t.Parallel()
	ts := setup(t, "sqlite")
	sub, err := ts.svc.Subscribe(t.Context(), bob, "")
	require.NoError(t, err)
	defer sub.Close()
	// Nobody reads sub.C: writers must not wait for it.
	for i := range 300 {
		_, err := ts.svc.Create(t.Context(), withVia(alice), approval.CreateParams{RunID: fmt.Sprintf("run-%d", i),
			Code: sampleCode, PolicyID: "default", PolicyVersion: "pv-1"})
		require.NoError(t, err)
	}
	select {
	case <-sub.Done():
		require.ErrorIs(t, sub.Err(), approval.ErrWatchLagged)
	case <-time.After(10 * time.Second):
		t.Fatal("a watcher 300 changes behind was not cut off")
	}
}

func TestWatchesEndWhenTheServiceStops(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), migrations...)
	svc, err := approval.NewService(approval.NewStore(db), approval.DefaultConfig(), slog.New(slog.NewTextHandler(tWriter{t}, nil)))
	require.NoError(t, err)
	stop, err := svc.Start(t.Context(), db)
	require.NoError(t, err)
	sub, err := svc.Subscribe(t.Context(), bob, "")
	require.NoError(t, err)
	stop()
	select {
	case <-sub.Done():
		require.ErrorIs(t, sub.Err(), approval.ErrShuttingDown)
	case <-time.After(10 * time.Second):
		t.Fatal("a watch outlived the service")
	}
	_, err = svc.Subscribe(t.Context(), bob, "")
	require.ErrorIs(t, err, approval.ErrShuttingDown)
}

func TestWatchOnSQLiteSeesAnotherServerSharingTheFile(t *testing.T) {
	t.Parallel()
	url := dbtest.NewSQLiteURL(t)
	a := startServer(t, dbtest.Open(t, url, migrations...))
	b := startServer(t, dbtest.Open(t, url, migrations...)) // its own connections, as another process would have
	all := watch(t, b, bob, "")
	req := a.create(t, alice, "run-file")
	require.Equal(t, req.GetId(), recv(t, all).GetId(), "found by polling the shared file")
	_, err := a.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: req.GetId()})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, recv(t, all).GetState())
}
