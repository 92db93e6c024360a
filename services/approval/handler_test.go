package approval_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/services/approval"
)

func requireCode(t *testing.T, err error, want codes.Code) *status.Status {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	require.Equal(t, want, st.Code(), st.Message())
	return st
}

// requireField checks err is InvalidArgument with a BadRequest naming field.
func requireField(t *testing.T, err error, field string) {
	t.Helper()
	st := requireCode(t, err, codes.InvalidArgument)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			require.NotEmpty(t, br.GetFieldViolations())
			require.Equal(t, field, br.GetFieldViolations()[0].GetField(), st.Message())
			return
		}
	}
	t.Fatalf("no BadRequest detail in %v", st)
}

func TestCreateTakesIdentityFromTheForwardedPrincipal(t *testing.T) {
	t.Parallel()
	ts := setup(t, "sqlite")
	a := ts.create(t, alice, "run-1")
	require.Equal(t, "t1", a.GetTenant())
	require.Equal(t, "alice", a.GetRequester())
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_PENDING, a.GetState())
	sum := sha256.Sum256([]byte(sampleCode))
	require.Equal(t, hex.EncodeToString(sum[:]), a.GetCodeSha256(), "the hash is computed by the server")
	require.Equal(t, approvalv1.RiskLevel_RISK_LEVEL_MEDIUM, a.GetRisk())
	require.Equal(t, time.Hour, a.GetExpiresAt().AsTime().Sub(a.GetCreatedAt().AsTime()))
	require.Len(t, a.GetInputs(), 1)

	// A plain user cannot open a request directly, nor can a bare service.
	_, err := ts.client.CreateApproval(as(alice), createReq("run-2"))
	requireCode(t, err, codes.PermissionDenied)
	_, err = ts.client.CreateApproval(as(orchestrator), createReq("run-2"))
	requireCode(t, err, codes.PermissionDenied)
	// An admin may, and is the requester.
	resp, err := ts.client.CreateApproval(as(root), createReq("run-3"))
	require.NoError(t, err)
	require.Equal(t, "root", resp.GetApproval().GetRequester())

	// Risk follows the most severe finding.
	req := createReq("run-4")
	req.Findings = append(req.Findings, &policyv1.Finding{RuleId: "net", Severity: policyv1.Severity_SEVERITY_CRITICAL})
	resp, err = ts.client.CreateApproval(onBehalfOf(alice), req)
	require.NoError(t, err)
	require.Equal(t, approvalv1.RiskLevel_RISK_LEVEL_HIGH, resp.GetApproval().GetRisk())
	req.Findings, req.Ttl = nil, nil
	resp, err = ts.client.CreateApproval(onBehalfOf(alice), req)
	require.NoError(t, err)
	require.Equal(t, approvalv1.RiskLevel_RISK_LEVEL_LOW, resp.GetApproval().GetRisk())
	require.Equal(t, 24*time.Hour, resp.GetApproval().GetExpiresAt().AsTime().Sub(resp.GetApproval().GetCreatedAt().AsTime()),
		"no ttl means the configured default")
}

func TestCreateRefusesBadInputAndStoresNothing(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres") // Postgres refuses NUL in text: the service must catch it first
	for _, tc := range []struct {
		field string
		edit  func(r *approvalv1.CreateApprovalRequest)
	}{
		{"run_id", func(r *approvalv1.CreateApprovalRequest) { r.RunId = "" }},
		{"run_id", func(r *approvalv1.CreateApprovalRequest) { r.RunId = "../etc/passwd" }},
		{"code", func(r *approvalv1.CreateApprovalRequest) { r.Code = "" }},
		{"code", func(r *approvalv1.CreateApprovalRequest) { r.Code = "print(1)\x00" }},
		{"policy_version", func(r *approvalv1.CreateApprovalRequest) { r.PolicyVersion = "v1\x00" }},
		{"inputs[0].name", func(r *approvalv1.CreateApprovalRequest) { r.Inputs[0].Name = "a\nb.csv" }},
		{"code", func(r *approvalv1.CreateApprovalRequest) { r.Code = strings.Repeat("x", 1<<20+1) }},
		{"policy_id", func(r *approvalv1.CreateApprovalRequest) { r.PolicyId = "" }},
		{"policy_version", func(r *approvalv1.CreateApprovalRequest) { r.PolicyVersion = "" }},
		{"ttl", func(r *approvalv1.CreateApprovalRequest) { r.Ttl = durationpb.New(-time.Second) }},
		{"ttl", func(r *approvalv1.CreateApprovalRequest) { r.Ttl = durationpb.New(365 * 24 * time.Hour) }},
		{"findings[1].severity", func(r *approvalv1.CreateApprovalRequest) { r.Findings[1].Severity = 99 }},
		{"findings[0].message", func(r *approvalv1.CreateApprovalRequest) { r.Findings[0].Message = strings.Repeat("m", 9000) }},
		{"inputs[0].name", func(r *approvalv1.CreateApprovalRequest) { r.Inputs[0].Name = "" }},
		{"inputs[0].size_bytes", func(r *approvalv1.CreateApprovalRequest) { r.Inputs[0].SizeBytes = -1 }},
	} {
		req := createReq("run-bad")
		tc.edit(req)
		_, err := ts.client.CreateApproval(onBehalfOf(alice), req)
		requireField(t, err, tc.field)
	}
	list, err := ts.client.ListApprovals(as(bob), &approvalv1.ListApprovalsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetApprovals(), "refused requests store nothing")
	_, err = ts.client.ListApprovals(as(bob), &approvalv1.ListApprovalsRequest{Requester: "a\x00"})
	requireField(t, err, "requester")
	a := ts.create(t, alice, "run-ok")
	_, err = ts.client.Reject(as(bob), &approvalv1.RejectRequest{ApprovalId: a.GetId(), Reason: "   "})
	requireField(t, err, "reason")
	_, err = ts.client.Reject(as(bob), &approvalv1.RejectRequest{ApprovalId: a.GetId(), Reason: "no\x00"})
	requireField(t, err, "reason")
	_, err = ts.client.CheckApproval(as(bob), &approvalv1.CheckApprovalRequest{RunId: "run-ok", CodeSha256: a.GetCodeSha256(), PolicyVersion: "\x00"})
	requireField(t, err, "policy_version")
	rep, err := ts.client.VerifyTrail(as(bob), &approvalv1.VerifyTrailRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.GetEventsChecked(), "only the valid request left a trace")
}

func TestSelfApprovalIsRefused(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	a := ts.create(t, dave, "run-self") // dave is an operator too
	_, err := ts.client.Approve(as(dave), &approvalv1.ApproveRequest{ApprovalId: a.GetId()})
	requireCode(t, err, codes.PermissionDenied)
	_, err = ts.client.Reject(as(dave), &approvalv1.RejectRequest{ApprovalId: a.GetId(), Reason: "mine"})
	requireCode(t, err, codes.PermissionDenied)
	got, err := ts.client.GetApproval(as(bob), &approvalv1.GetApprovalRequest{ApprovalId: a.GetId()})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_PENDING, got.GetApproval().GetState())
	// Even an admin may not decide a request they made.
	resp, err := ts.client.CreateApproval(as(root), createReq("run-root"))
	require.NoError(t, err)
	_, err = ts.client.Approve(as(root), &approvalv1.ApproveRequest{ApprovalId: resp.GetApproval().GetId()})
	requireCode(t, err, codes.PermissionDenied)
}

func TestDecidingNeedsTheOperatorRole(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	a := ts.create(t, dave, "run-op")
	_, err := ts.client.Approve(as(alice), &approvalv1.ApproveRequest{ApprovalId: a.GetId()})
	requireCode(t, err, codes.PermissionDenied)
	_, err = ts.client.Reject(as(alice), &approvalv1.RejectRequest{ApprovalId: a.GetId(), Reason: "no"})
	requireCode(t, err, codes.PermissionDenied)
	_, err = ts.client.VerifyTrail(as(alice), &approvalv1.VerifyTrailRequest{})
	requireCode(t, err, codes.PermissionDenied)
	// A user forwarded by a service is still just a user.
	_, err = ts.client.Approve(onBehalfOf(alice), &approvalv1.ApproveRequest{ApprovalId: a.GetId()})
	requireCode(t, err, codes.PermissionDenied)
	// A plain user sees only their own requests.
	_, err = ts.client.GetApproval(as(alice), &approvalv1.GetApprovalRequest{ApprovalId: a.GetId()})
	requireCode(t, err, codes.NotFound)
	// An admin of the tenant may decide.
	resp, err := ts.client.Approve(as(root), &approvalv1.ApproveRequest{ApprovalId: a.GetId(), Reason: "ok"})
	require.NoError(t, err)
	require.Equal(t, "root", resp.GetApproval().GetDecidedBy())
}

func TestAnotherTenantsRequestIsNotFound(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	a := ts.create(t, alice, "run-t1")
	missing := "apr_0123456789abcdef0123456789abcdef"
	for _, id := range []string{a.GetId(), missing} {
		_, err := ts.client.GetApproval(as(eve), &approvalv1.GetApprovalRequest{ApprovalId: id})
		st := requireCode(t, err, codes.NotFound)
		require.Equal(t, "approval request not found", st.Message())
		_, err = ts.client.Approve(as(eve), &approvalv1.ApproveRequest{ApprovalId: id})
		requireCode(t, err, codes.NotFound)
		_, err = ts.client.Reject(as(eve), &approvalv1.RejectRequest{ApprovalId: id, Reason: "x"})
		requireCode(t, err, codes.NotFound)
		stream, err := ts.client.WatchApprovals(as(eve), &approvalv1.WatchApprovalsRequest{ApprovalId: id})
		require.NoError(t, err)
		_, err = stream.Recv()
		requireCode(t, err, codes.NotFound)
	}
	_, err := ts.client.CheckApproval(as(eve), &approvalv1.CheckApprovalRequest{RunId: "run-t1",
		CodeSha256: a.GetCodeSha256(), PolicyVersion: "pv-1"})
	requireCode(t, err, codes.NotFound)
	list, err := ts.client.ListApprovals(as(eve), &approvalv1.ListApprovalsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetApprovals())
	// The request is untouched.
	got, err := ts.client.GetApproval(as(bob), &approvalv1.GetApprovalRequest{ApprovalId: a.GetId()})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_PENDING, got.GetApproval().GetState())
}

func TestDoubleDecisionsKeepTheFirst(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	a := ts.create(t, alice, "run-dbl")
	first, err := ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: a.GetId(), Reason: "looks fine"})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, first.GetApproval().GetState())
	require.Equal(t, "bob", first.GetApproval().GetDecidedBy())

	again, err := ts.client.Approve(as(carol), &approvalv1.ApproveRequest{ApprovalId: a.GetId(), Reason: "me too"})
	require.NoError(t, err)
	require.Equal(t, "bob", again.GetApproval().GetDecidedBy())
	require.Equal(t, "looks fine", again.GetApproval().GetReason())
	flip, err := ts.client.Reject(as(carol), &approvalv1.RejectRequest{ApprovalId: a.GetId(), Reason: "changed my mind"})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, flip.GetApproval().GetState(), "never flips")
	require.Equal(t, first.GetApproval().GetDecidedAt().AsTime(), flip.GetApproval().GetDecidedAt().AsTime())

	b := ts.create(t, alice, "run-dbl2")
	_, err = ts.client.Reject(as(bob), &approvalv1.RejectRequest{ApprovalId: b.GetId()})
	requireField(t, err, "reason")
	rej, err := ts.client.Reject(as(bob), &approvalv1.RejectRequest{ApprovalId: b.GetId(), Reason: "reads too much"})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_REJECTED, rej.GetApproval().GetState())
	app, err := ts.client.Approve(as(carol), &approvalv1.ApproveRequest{ApprovalId: b.GetId()})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_REJECTED, app.GetApproval().GetState())

	// Two creations and two decisions: the repeats wrote nothing.
	rep, err := ts.client.VerifyTrail(as(bob), &approvalv1.VerifyTrailRequest{})
	require.NoError(t, err)
	require.True(t, rep.GetOk(), rep.GetMessage())
	require.EqualValues(t, 4, rep.GetEventsChecked())

	_, err = ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: "not-an-id"})
	requireField(t, err, "approval_id")
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	swept := ts.create(t, alice, "run-exp1")
	late := ts.create(t, alice, "run-exp2")
	ts.clock.Advance(59 * time.Minute)
	n, err := ts.svc.ExpireDue(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "nothing is due before its expiry")
	ts.clock.Advance(time.Minute)

	// Approving a request past its expiry, before the sweeper saw it, expires it.
	_, err = ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: late.GetId()})
	st := requireCode(t, err, codes.FailedPrecondition)
	require.Contains(t, st.Message(), "expired")
	n, err = ts.svc.ExpireDue(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	for _, id := range []string{swept.GetId(), late.GetId()} {
		got, err := ts.client.GetApproval(as(bob), &approvalv1.GetApprovalRequest{ApprovalId: id})
		require.NoError(t, err)
		require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED, got.GetApproval().GetState())
		require.Equal(t, "system", got.GetApproval().GetDecidedBy())
		_, err = ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: id})
		requireCode(t, err, codes.FailedPrecondition)
		_, err = ts.client.Reject(as(bob), &approvalv1.RejectRequest{ApprovalId: id, Reason: "late"})
		requireCode(t, err, codes.FailedPrecondition)
	}
	ok, err := ts.client.CheckApproval(as(bob), &approvalv1.CheckApprovalRequest{RunId: "run-exp1",
		CodeSha256: swept.GetCodeSha256(), PolicyVersion: "pv-1"})
	require.NoError(t, err)
	require.False(t, ok.GetApproved())
	rep, err := ts.client.VerifyTrail(as(bob), &approvalv1.VerifyTrailRequest{})
	require.NoError(t, err)
	require.True(t, rep.GetOk(), rep.GetMessage())
	require.EqualValues(t, 4, rep.GetEventsChecked(), "two created, two expired")
}

func TestSweeperExpiresInTheBackground(t *testing.T) {
	t.Parallel()
	ts := setup(t, "sqlite", func(c *approval.Config) { c.SweepInterval = 10 * time.Millisecond })
	a := ts.create(t, alice, "run-bg")
	ts.clock.Advance(2 * time.Hour)
	require.Eventually(t, func() bool {
		got, err := ts.client.GetApproval(as(bob), &approvalv1.GetApprovalRequest{ApprovalId: a.GetId()})
		return err == nil && got.GetApproval().GetState() == approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED
	}, 10*time.Second, 10*time.Millisecond)
}

func TestCheckApprovalBindsRunHashAndPolicyVersion(t *testing.T) {
	t.Parallel()
	ts := setup(t, "sqlite")
	a := ts.create(t, alice, "run-chk")
	check := func(p auth.Principal, run, sha, pv string) (*approvalv1.CheckApprovalResponse, error) {
		return ts.client.CheckApproval(onBehalfOf(p), &approvalv1.CheckApprovalRequest{RunId: run, CodeSha256: sha, PolicyVersion: pv})
	}
	resp, err := check(alice, "run-chk", a.GetCodeSha256(), "pv-1")
	require.NoError(t, err)
	require.False(t, resp.GetApproved(), "pending is not approved")
	require.Equal(t, a.GetId(), resp.GetApproval().GetId())
	_, err = ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: a.GetId()})
	require.NoError(t, err)
	resp, err = check(alice, "run-chk", a.GetCodeSha256(), "pv-1")
	require.NoError(t, err)
	require.True(t, resp.GetApproved())
	other := sha256.Sum256([]byte(sampleCode + "import os\n"))
	resp, err = check(alice, "run-chk", hex.EncodeToString(other[:]), "pv-1")
	require.NoError(t, err)
	require.False(t, resp.GetApproved(), "different code")
	resp, err = check(alice, "run-chk", a.GetCodeSha256(), "pv-2")
	require.NoError(t, err)
	require.False(t, resp.GetApproved(), "different policy version")
	ts.create(t, alice, "run-chk2")
	resp, err = check(alice, "run-chk2", a.GetCodeSha256(), "pv-1")
	require.NoError(t, err)
	require.False(t, resp.GetApproved(), "different run")
	// A request approved by editing its row, not through the API, is not approved.
	forged := ts.create(t, alice, "run-forged")
	_, err = ts.db.SQL.ExecContext(t.Context(), database.Rebind(ts.db.Dialect,
		`UPDATE approval_requests SET state = 'APPROVED', decided_by = 'bob' WHERE id = $1`), forged.GetId())
	require.NoError(t, err)
	resp, err = check(alice, "run-forged", forged.GetCodeSha256(), "pv-1")
	require.NoError(t, err)
	require.False(t, resp.GetApproved(), "the trail has no approval")
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_APPROVED, resp.GetApproval().GetState())
	rep, err := ts.client.VerifyTrail(as(bob), &approvalv1.VerifyTrailRequest{})
	require.NoError(t, err)
	require.False(t, rep.GetOk())
	require.Contains(t, rep.GetMessage(), forged.GetId())

	_, err = check(alice, "run-none", a.GetCodeSha256(), "pv-1")
	requireCode(t, err, codes.NotFound)
	_, err = check(alice, "run-chk", strings.ToUpper(a.GetCodeSha256()), "pv-1")
	requireField(t, err, "code_sha256")
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	var ids []string
	for i := range 7 {
		who := alice
		if i%2 == 1 {
			who = dave
		}
		ids = append(ids, ts.create(t, who, "run-l"+string(rune('a'+i%3))).GetId())
		ts.clock.Advance(time.Second)
	}
	_, err := ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: ids[0]})
	require.NoError(t, err)

	var got []string
	req := &approvalv1.ListApprovalsRequest{PageSize: 3}
	pages := 0
	for {
		resp, err := ts.client.ListApprovals(as(bob), req)
		require.NoError(t, err)
		pages++
		for _, a := range resp.GetApprovals() {
			got = append(got, a.GetId())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	require.Equal(t, 3, pages)
	require.Equal(t, []string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, got, "newest first")

	count := func(p auth.Principal, r *approvalv1.ListApprovalsRequest) int {
		resp, err := ts.client.ListApprovals(as(p), r)
		require.NoError(t, err)
		return len(resp.GetApprovals())
	}
	require.Equal(t, 1, count(bob, &approvalv1.ListApprovalsRequest{State: approvalv1.ApprovalState_APPROVAL_STATE_APPROVED}))
	require.Equal(t, 6, count(bob, &approvalv1.ListApprovalsRequest{State: approvalv1.ApprovalState_APPROVAL_STATE_PENDING}))
	require.Equal(t, 3, count(bob, &approvalv1.ListApprovalsRequest{Requester: "dave"}))
	require.Equal(t, 3, count(bob, &approvalv1.ListApprovalsRequest{RunId: "run-la"}))
	require.Equal(t, 4, count(alice, &approvalv1.ListApprovalsRequest{}), "a plain user sees only their own")
	require.Equal(t, 0, count(alice, &approvalv1.ListApprovalsRequest{Requester: "dave"}))

	_, err = ts.client.ListApprovals(as(bob), &approvalv1.ListApprovalsRequest{PageToken: "garbage"})
	requireField(t, err, "page_token")
	first, err := ts.client.ListApprovals(as(bob), &approvalv1.ListApprovalsRequest{PageSize: 1})
	require.NoError(t, err)
	_, err = ts.client.ListApprovals(as(bob), &approvalv1.ListApprovalsRequest{PageSize: 1, Requester: "dave", PageToken: first.GetNextPageToken()})
	requireField(t, err, "page_token")
	_, err = ts.client.ListApprovals(as(bob), &approvalv1.ListApprovalsRequest{State: 42})
	requireField(t, err, "state")
	_, err = ts.client.ListApprovals(as(bob), &approvalv1.ListApprovalsRequest{PageSize: -1})
	requireField(t, err, "page_size")
}

func TestTamperedTrailIsDetectedAtTheRightEvent(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	frank := auth.Principal{Tenant: "t2", Subject: "frank", Roles: []auth.Role{auth.RoleUser}}
	for i := range 3 {
		a := ts.create(t, alice, fmt.Sprintf("run-%d", i))
		f := ts.create(t, frank, fmt.Sprintf("run-%d", i))
		if i == 1 {
			_, err := ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: a.GetId(), Reason: "ok"})
			require.NoError(t, err)
			_, err = ts.client.Reject(as(eve), &approvalv1.RejectRequest{ApprovalId: f.GetId(), Reason: "no"})
			require.NoError(t, err)
		}
	}
	verify := func(p auth.Principal) *approvalv1.VerifyTrailResponse {
		rep, err := ts.client.VerifyTrail(as(p), &approvalv1.VerifyTrailRequest{})
		require.NoError(t, err)
		return rep
	}
	for _, p := range []auth.Principal{bob, eve} {
		rep := verify(p)
		require.True(t, rep.GetOk(), rep.GetMessage())
		require.EqualValues(t, 4, rep.GetEventsChecked())
	}
	// t1's event 3 is bob's approval: someone rewrites who approved it.
	_, err := ts.db.SQL.ExecContext(t.Context(), `UPDATE approval_events SET actor = 'mallory' WHERE tenant = 't1' AND seq = 3`)
	require.NoError(t, err)
	rep := verify(bob)
	require.False(t, rep.GetOk())
	require.EqualValues(t, 3, rep.GetFirstBrokenSequence(), rep.GetMessage())
	require.Contains(t, rep.GetMessage(), "altered")
	// t2's event 2 is removed; t2's break is its own, t1's report is unchanged.
	_, err = ts.db.SQL.ExecContext(t.Context(), `DELETE FROM approval_events WHERE tenant = 't2' AND seq = 2`)
	require.NoError(t, err)
	rep = verify(eve)
	require.False(t, rep.GetOk())
	require.EqualValues(t, 2, rep.GetFirstBrokenSequence(), rep.GetMessage())
	require.Contains(t, rep.GetMessage(), "missing")
	require.EqualValues(t, 3, verify(bob).GetFirstBrokenSequence())
}

func TestConcurrentDecisionsAgreeOnOne(t *testing.T) {
	t.Parallel()
	ts := setup(t, "postgres")
	a := ts.create(t, alice, "run-race")
	type answer struct {
		state     approvalv1.ApprovalState
		decidedBy string
		err       error
	}
	answers := make(chan answer, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			var got *approvalv1.Approval
			var err error
			if i%2 == 0 {
				var r *approvalv1.ApproveResponse
				r, err = ts.client.Approve(as(bob), &approvalv1.ApproveRequest{ApprovalId: a.GetId()})
				got = r.GetApproval()
			} else {
				var r *approvalv1.RejectResponse
				r, err = ts.client.Reject(as(carol), &approvalv1.RejectRequest{ApprovalId: a.GetId(), Reason: "no"})
				got = r.GetApproval()
			}
			answers <- answer{got.GetState(), got.GetDecidedBy(), err}
		})
	}
	wg.Wait()
	close(answers)
	var first *answer
	for ans := range answers {
		require.NoError(t, ans.err)
		if first == nil {
			first = &ans
		}
		require.Equal(t, first.state, ans.state, "every caller sees the one decision")
		require.Equal(t, first.decidedBy, ans.decidedBy)
	}
	rep, err := ts.client.VerifyTrail(as(bob), &approvalv1.VerifyTrailRequest{})
	require.NoError(t, err)
	require.True(t, rep.GetOk(), rep.GetMessage())
	require.EqualValues(t, 2, rep.GetEventsChecked(), "one creation, one decision")
}
