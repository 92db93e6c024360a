package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/airlockhq/airlock/gen/go/airlock/approval/v1"
	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	budgetv1 "github.com/airlockhq/airlock/gen/go/airlock/budget/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/policies"
)

// tenantClients are connections for two tenants of one dev server.
type tenantClients struct {
	a, b *grpc.ClientConn // tenant-a's alice and tenant-b's bob, each user, operator and admin
	// aUser is tenant-a's dan, a plain user: he sees only his own runs.
	aUser *grpc.ClientConn
}

// missingLike returns an id of the same shape as id that names nothing.
func missingLike(id string) string {
	last := id[len(id)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return id[:len(id)-1] + string(repl)
}

// requireLikeMissing calls get with a foreign id and with a missing id of the
// same shape and requires both to fail with NotFound, with the same message:
// a foreign object must be indistinguishable from one that does not exist.
func requireLikeMissing(t *testing.T, rpc string, foreignID string, get func(id string) error) {
	t.Helper()
	requireFailsLikeMissing(t, codes.NotFound, rpc, foreignID, get)
}

// requireFailsLikeMissing is requireLikeMissing for an RPC that answers a
// missing id with code want (InvalidArgument for an id inside a request).
func requireFailsLikeMissing(t *testing.T, want codes.Code, rpc string, foreignID string, get func(id string) error) {
	t.Helper()
	missingID := missingLike(foreignID)
	foreign, missing := get(foreignID), get(missingID)
	requireCode(t, want, missing, "%s with a missing id", rpc)
	requireCode(t, want, foreign, "%s with another tenant's id leaks it", rpc)
	require.Equal(t, status.Convert(missing).Message(),
		strings.ReplaceAll(status.Convert(foreign).Message(), foreignID, missingID),
		"%s: a foreign id must read exactly like a missing one", rpc)
}

// TestCrossTenantIsolation starts the real server with every service, on
// SQLite and on Postgres, and,
// for each list and get RPC that is implemented, creates objects as tenant A
// and checks that tenant B gets NotFound or an empty list, exactly as for a
// missing object. Each subtest also reads the object back as tenant A, so a
// check that could never fail is caught.
//
// Covered: KeyService ListKeys, RevokeKey; OrchestratorService GetRun,
// ListRuns (all and by requester; also a plain user of the same tenant
// against another user's run), WatchRun, CancelRun, DownloadFile,
// SubmitRun with a foreign input file or another tenant's idempotency key;
// ApprovalService GetApproval,
// ListApprovals (all, by run id, by requester), WatchApprovals (by id and
// tenant-wide), Approve, Reject, CheckApproval, VerifyTrail; BudgetService
// GetBudget, GetUsage, Commit, Release, WatchEvents (tenant-wide), Reserve
// with another tenant's idempotency key;
// PolicyService GetPolicy, ListPolicies, Check (with a tenant's own policy).
func TestCrossTenantIsolation(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			// Every RPC is also called with bad keys, far more than one
			// address may present before --auth-max-failures refuses it.
			args := []string{"--policy-dir", tenantPolicies(t), "--auth-max-failures", "0"}
			if dialect == "postgres" {
				args = append(args, "--database-url", dbtest.NewPostgresURL(t))
			}
			crossTenant(t, startDev(t, t.TempDir(), args...))
		})
	}
}

// crossTenant runs every service's isolation checks against d.
func crossTenant(t *testing.T, d *devInstance) {
	st := d.store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	all := []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleAdmin}
	newKey := func(tenant, subject string, roles ...auth.Role) string {
		_, token, err := st.Create(ctx, keystore.NewKey{Tenant: tenant, Subject: subject, Roles: roles})
		require.NoError(t, err)
		return token
	}
	c := tenantClients{
		a:     dial(t, d.addr, newKey("tenant-a", "alice", all...), nil),
		b:     dial(t, d.addr, newKey("tenant-b", "bob", all...), nil),
		aUser: dial(t, d.addr, newKey("tenant-a", "dan", auth.RoleUser), nil),
	}
	t.Run("every RPC needs a valid key", func(t *testing.T) { everyRPCNeedsAKey(ctx, t, d, st) })
	t.Run("keys", func(t *testing.T) { crossTenantKeys(ctx, t, c) })
	t.Run("orchestrator", func(t *testing.T) { crossTenantOrchestrator(ctx, t, c) })
	t.Run("approval", func(t *testing.T) { crossTenantApproval(ctx, t, c) })
	t.Run("budget", func(t *testing.T) { crossTenantBudget(ctx, t, c) })
	t.Run("policy", func(t *testing.T) { crossTenantPolicy(ctx, t, c) })
}

func crossTenantKeys(ctx context.Context, t *testing.T, c tenantClients) {
	ka, kb := authv1.NewKeyServiceClient(c.a), authv1.NewKeyServiceClient(c.b)
	created, err := ka.CreateKey(ctx, &authv1.CreateKeyRequest{Subject: "carol", Roles: []string{"user"}})
	require.NoError(t, err)
	id := created.GetKey().GetId()
	mine, err := ka.ListKeys(ctx, &authv1.ListKeysRequest{IncludeRevoked: true})
	require.NoError(t, err)
	require.Contains(t, keyIDs(mine.GetKeys()), id, "tenant A lists its own key")
	theirs, err := kb.ListKeys(ctx, &authv1.ListKeysRequest{IncludeRevoked: true})
	require.NoError(t, err)
	require.NotContains(t, keyIDs(theirs.GetKeys()), id)
	for _, k := range theirs.GetKeys() {
		require.Equal(t, "tenant-b", k.GetTenant())
	}
	requireLikeMissing(t, "RevokeKey", id, func(id string) error {
		_, err := kb.RevokeKey(ctx, &authv1.RevokeKeyRequest{Id: id})
		return err
	})
	_, err = ka.RevokeKey(ctx, &authv1.RevokeKeyRequest{Id: id})
	require.NoError(t, err, "tenant A revokes its own key")
}

func keyIDs(keys []*authv1.ApiKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.GetId()
	}
	return ids
}

func crossTenantOrchestrator(ctx context.Context, t *testing.T, c tenantClients) {
	oa, ob := orchestratorv1.NewOrchestratorServiceClient(c.a), orchestratorv1.NewOrchestratorServiceClient(c.b)

	up, err := oa.UploadFile(ctx)
	require.NoError(t, err)
	require.NoError(t, up.Send(&orchestratorv1.UploadFileRequest{Name: "sales.csv", Chunk: []byte("region,revenue\nnorth,10\n")}))
	uploaded, err := up.CloseAndRecv()
	require.NoError(t, err)
	fileID := uploaded.GetFile().GetFileId()
	require.NotEmpty(t, fileID)
	download := func(client orchestratorv1.OrchestratorServiceClient, id string) error {
		s, err := client.DownloadFile(ctx, &orchestratorv1.DownloadFileRequest{FileId: id})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	require.NoError(t, download(oa, fileID), "tenant A downloads its own file")
	requireLikeMissing(t, "DownloadFile", fileID, func(id string) error { return download(ob, id) })

	submitted, err := oa.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{
		Source:       &orchestratorv1.SubmitRunRequest_Code{Code: "print(open('/data/in/sales.csv').read())"},
		InputFileIds: []string{fileID}, IdempotencyKey: "shared-key"})
	require.NoError(t, err)
	runID := submitted.GetRun().GetId()
	require.NotEmpty(t, runID)
	// The same idempotency key from another tenant is another run, not tenant A's.
	again, err := ob.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{
		Source: &orchestratorv1.SubmitRunRequest_Code{Code: "print(2)"}, IdempotencyKey: "shared-key"})
	require.NoError(t, err)
	require.NotEqual(t, runID, again.GetRun().GetId())
	require.Equal(t, "tenant-b", again.GetRun().GetTenant())

	// Another tenant cannot run code on tenant A's file.
	submitB := func(id string) error {
		_, err := ob.SubmitRun(ctx, &orchestratorv1.SubmitRunRequest{
			Source: &orchestratorv1.SubmitRunRequest_Code{Code: "print(1)"}, InputFileIds: []string{id}})
		return err
	}
	requireFailsLikeMissing(t, codes.InvalidArgument, "SubmitRun with a foreign input file", fileID, submitB)

	got, err := oa.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: runID})
	require.NoError(t, err, "tenant A reads its own run")
	require.Equal(t, "tenant-a", got.GetRun().GetTenant())
	requireLikeMissing(t, "GetRun", runID, func(id string) error {
		_, err := ob.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: id})
		return err
	})
	watch := func(client orchestratorv1.OrchestratorServiceClient, id string) error {
		s, err := client.WatchRun(ctx, &orchestratorv1.WatchRunRequest{RunId: id})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	require.NoError(t, watch(oa, runID), "tenant A watches its own run")
	requireLikeMissing(t, "WatchRun", runID, func(id string) error { return watch(ob, id) })
	requireLikeMissing(t, "CancelRun", runID, func(id string) error {
		_, err := ob.CancelRun(ctx, &orchestratorv1.CancelRunRequest{RunId: id, Reason: "mischief"})
		return err
	})

	listA, err := oa.ListRuns(ctx, &orchestratorv1.ListRunsRequest{})
	require.NoError(t, err)
	require.Contains(t, runIDs(listA.GetRuns()), runID, "tenant A lists its own run")
	for _, req := range []*orchestratorv1.ListRunsRequest{{}, {Requester: "alice"}, {Requester: got.GetRun().GetRequester()}} {
		listB, err := ob.ListRuns(ctx, req)
		require.NoError(t, err)
		require.NotContains(t, runIDs(listB.GetRuns()), runID, "ListRuns(%v) as tenant B", req)
		for _, r := range listB.GetRuns() {
			require.Equal(t, "tenant-b", r.GetTenant())
		}
	}
	// Tenant B claiming to be alice in the forwarded-principal header is
	// still tenant B: only a service's forwarded principal counts.
	forged := auth.OnBehalfOf(ctx, auth.Principal{Tenant: "tenant-a", Subject: "alice", Roles: []auth.Role{auth.RoleOperator}})
	_, err = ob.GetRun(forged, &orchestratorv1.GetRunRequest{RunId: runID})
	requireCode(t, codes.NotFound, err, "a forged forwarded principal from a user is ignored")
	forgedList, err := ob.ListRuns(forged, &orchestratorv1.ListRunsRequest{})
	require.NoError(t, err)
	require.NotContains(t, runIDs(forgedList.GetRuns()), runID)

	// Within tenant A, a plain user sees only their own runs.
	od := orchestratorv1.NewOrchestratorServiceClient(c.aUser)
	requireLikeMissing(t, "GetRun by a plain user of the same tenant", runID, func(id string) error {
		_, err := od.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: id})
		return err
	})
	for _, req := range []*orchestratorv1.ListRunsRequest{{}, {Requester: "alice"}} {
		listD, err := od.ListRuns(ctx, req)
		require.NoError(t, err)
		require.NotContains(t, runIDs(listD.GetRuns()), runID, "ListRuns(%v) as a plain user of the same tenant", req)
	}

	after, err := oa.GetRun(ctx, &orchestratorv1.GetRunRequest{RunId: runID})
	require.NoError(t, err)
	require.NotContains(t, after.GetRun().GetFailureReason(), "mischief", "tenant B's cancel changed nothing")
}

func runIDs(runs []*orchestratorv1.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.GetId()
	}
	return ids
}

func crossTenantApproval(ctx context.Context, t *testing.T, c tenantClients) {
	aa, ab := approvalv1.NewApprovalServiceClient(c.a), approvalv1.NewApprovalServiceClient(c.b)
	newApproval := func(client approvalv1.ApprovalServiceClient, runID string) *approvalv1.Approval {
		t.Helper()
		resp, err := client.CreateApproval(ctx, &approvalv1.CreateApprovalRequest{
			RunId: runID, Code: "import os\nprint(os.listdir('/data/in'))\n", PolicyId: "default", PolicyVersion: "v1"})
		require.NoError(t, err)
		return resp.GetApproval()
	}
	// Tenant B watches all its tenant's approvals before tenant A creates one.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchB, err := ab.WatchApprovals(watchCtx, &approvalv1.WatchApprovalsRequest{})
	require.NoError(t, err)

	mine := newApproval(aa, "run_a_cross_tenant")
	id := mine.GetId()
	require.Equal(t, "tenant-a", mine.GetTenant())
	own := newApproval(ab, "run_b_cross_tenant")
	first, err := watchB.Recv()
	require.NoError(t, err)
	require.Equal(t, own.GetId(), first.GetApproval().GetId(), "tenant B's watch shows its own approval, never tenant A's first")
	stopWatch()

	_, err = aa.GetApproval(ctx, &approvalv1.GetApprovalRequest{ApprovalId: id})
	require.NoError(t, err, "tenant A reads its own approval")
	requireLikeMissing(t, "GetApproval", id, func(id string) error {
		_, err := ab.GetApproval(ctx, &approvalv1.GetApprovalRequest{ApprovalId: id})
		return err
	})
	requireLikeMissing(t, "WatchApprovals by id", id, func(id string) error {
		s, err := ab.WatchApprovals(ctx, &approvalv1.WatchApprovalsRequest{ApprovalId: id})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	})
	requireLikeMissing(t, "Approve", id, func(id string) error {
		_, err := ab.Approve(ctx, &approvalv1.ApproveRequest{ApprovalId: id, Reason: "mischief"})
		return err
	})
	requireLikeMissing(t, "Reject", id, func(id string) error {
		_, err := ab.Reject(ctx, &approvalv1.RejectRequest{ApprovalId: id, Reason: "mischief"})
		return err
	})
	still, err := aa.GetApproval(ctx, &approvalv1.GetApprovalRequest{ApprovalId: id})
	require.NoError(t, err)
	require.Equal(t, approvalv1.ApprovalState_APPROVAL_STATE_PENDING, still.GetApproval().GetState(), "tenant B's decisions changed nothing")

	check := &approvalv1.CheckApprovalRequest{RunId: mine.GetRunId(), CodeSha256: mine.GetCodeSha256(), PolicyVersion: mine.GetPolicyVersion()}
	checkA, err := aa.CheckApproval(ctx, check)
	require.NoError(t, err)
	require.Equal(t, id, checkA.GetApproval().GetId(), "tenant A checks its own approval")
	checkB, errB := ab.CheckApproval(ctx, check)
	missing := &approvalv1.CheckApprovalRequest{RunId: "run_nothing_here", CodeSha256: mine.GetCodeSha256(), PolicyVersion: mine.GetPolicyVersion()}
	checkMissing, errMissing := ab.CheckApproval(ctx, missing)
	require.Equal(t, status.Code(errMissing), status.Code(errB), "CheckApproval: foreign like missing")
	require.False(t, checkB.GetApproved())
	require.Nil(t, checkB.GetApproval())
	require.Equal(t, checkMissing.GetApproved(), checkB.GetApproved())

	listA, err := aa.ListApprovals(ctx, &approvalv1.ListApprovalsRequest{})
	require.NoError(t, err)
	require.Contains(t, approvalIDs(listA.GetApprovals()), id, "tenant A lists its own approval")
	for _, req := range []*approvalv1.ListApprovalsRequest{{}, {RunId: mine.GetRunId()}, {Requester: mine.GetRequester()},
		{State: approvalv1.ApprovalState_APPROVAL_STATE_PENDING}} {
		listB, err := ab.ListApprovals(ctx, req)
		require.NoError(t, err)
		require.NotContains(t, approvalIDs(listB.GetApprovals()), id, "ListApprovals(%v) as tenant B", req)
		for _, a := range listB.GetApprovals() {
			require.Equal(t, "tenant-b", a.GetTenant())
		}
	}

	trailA, err := aa.VerifyTrail(ctx, &approvalv1.VerifyTrailRequest{})
	require.NoError(t, err)
	trailB, err := ab.VerifyTrail(ctx, &approvalv1.VerifyTrailRequest{})
	require.NoError(t, err)
	require.True(t, trailB.GetOk())
	require.Equal(t, trailA.GetEventsChecked(), trailB.GetEventsChecked(),
		"each tenant's trail holds its own single creation, not the other's")
}

func approvalIDs(as []*approvalv1.Approval) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.GetId()
	}
	return ids
}

func crossTenantBudget(ctx context.Context, t *testing.T, c tenantClients) {
	ba, bb := budgetv1.NewBudgetServiceClient(c.a), budgetv1.NewBudgetServiceClient(c.b)
	tenantScope := &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_TENANT}
	aliceScope := &budgetv1.Scope{Kind: budgetv1.ScopeKind_SCOPE_KIND_USER, Subject: "alice"}

	// Tenant B watches its events before tenant A causes any.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchB, err := bb.WatchEvents(watchCtx, &budgetv1.WatchEventsRequest{})
	require.NoError(t, err)

	for _, s := range []*budgetv1.Scope{tenantScope, aliceScope} {
		_, err := ba.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: s, Period: budgetv1.Period_PERIOD_LIFETIME, LimitMicros: 1_000_000})
		require.NoError(t, err)
	}
	held, err := ba.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{tenantScope, aliceScope},
		AmountMicros: 700_000, Kind: budgetv1.CostKind_COST_KIND_COMPUTE, RunId: "run_a_budget", IdempotencyKey: "a-1"})
	require.NoError(t, err)
	resID := held.GetReservation().GetId()
	// The same idempotency key from another tenant holds tenant B's money, not tenant A's.
	_, err = bb.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: tenantScope, Period: budgetv1.Period_PERIOD_LIFETIME, LimitMicros: 1000})
	require.NoError(t, err)
	heldB, err := bb.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{tenantScope},
		AmountMicros: 5, Kind: budgetv1.CostKind_COST_KIND_COMPUTE, RunId: "run_b_same_key", IdempotencyKey: "a-1"})
	require.NoError(t, err)
	require.NotEqual(t, resID, heldB.GetReservation().GetId())
	_, err = bb.Release(ctx, &budgetv1.ReleaseRequest{ReservationId: heldB.GetReservation().GetId(), IdempotencyKey: "b-rel"})
	require.NoError(t, err)
	_, err = ba.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{tenantScope},
		AmountMicros: 700_000, Kind: budgetv1.CostKind_COST_KIND_COMPUTE, RunId: "run_a_budget_2", IdempotencyKey: "a-2"})
	requireCode(t, codes.ResourceExhausted, err, "tenant A hits its hard stop: an event of tenant A's")

	// Tenant B's own event, which must be the first its watch sees.
	_, err = bb.SetBudget(ctx, &budgetv1.SetBudgetRequest{Scope: tenantScope, Period: budgetv1.Period_PERIOD_LIFETIME, LimitMicros: 10})
	require.NoError(t, err)
	_, err = bb.Reserve(ctx, &budgetv1.ReserveRequest{Scopes: []*budgetv1.Scope{tenantScope},
		AmountMicros: 11, Kind: budgetv1.CostKind_COST_KIND_COMPUTE, RunId: "run_b_budget", IdempotencyKey: "b-1"})
	requireCode(t, codes.ResourceExhausted, err)
	ev, err := watchB.Recv()
	require.NoError(t, err)
	require.Equal(t, "tenant-b", ev.GetEvent().GetTenant(), "tenant B's watch never shows tenant A's events: %v", ev)
	stopWatch()

	gotA, err := ba.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: aliceScope})
	require.NoError(t, err, "tenant A reads its own budget")
	require.Equal(t, int64(700_000), gotA.GetBudget().GetReservedMicros())
	for _, s := range []*budgetv1.Scope{aliceScope} {
		got, err := bb.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: s})
		if err == nil {
			require.Equal(t, "tenant-b", got.GetBudget().GetTenant())
			require.Zero(t, got.GetBudget().GetLimitMicros(), "GetBudget(%v) as tenant B shows tenant A's limit", s)
			require.Zero(t, got.GetBudget().GetReservedMicros())
		} else {
			requireCode(t, codes.NotFound, err, "GetBudget(%v) as tenant B", s)
		}
	}
	usageB, err := bb.GetUsage(ctx, &budgetv1.GetUsageRequest{Scope: tenantScope})
	require.NoError(t, err)
	require.Equal(t, int64(10), usageB.GetLimitMicros(), "tenant B's usage is its own")
	require.Zero(t, usageB.GetReservedMicros())
	require.Zero(t, usageB.GetSpentMicros())

	requireLikeMissing(t, "Commit", resID, func(id string) error {
		_, err := bb.Commit(ctx, &budgetv1.CommitRequest{ReservationId: id, ActualMicros: 1, IdempotencyKey: "b-commit-" + id})
		return err
	})
	requireLikeMissing(t, "Release", resID, func(id string) error {
		_, err := bb.Release(ctx, &budgetv1.ReleaseRequest{ReservationId: id, Reason: "mischief", IdempotencyKey: "b-release-" + id})
		return err
	})
	after, err := ba.GetBudget(ctx, &budgetv1.GetBudgetRequest{Scope: tenantScope})
	require.NoError(t, err)
	require.Equal(t, int64(700_000), after.GetBudget().GetReservedMicros(), "tenant B's commit and release changed nothing")
	require.Zero(t, after.GetBudget().GetSpentMicros())
}

// tenantPolicies writes a policy directory holding the built-in default and
// "tenant-a-strict", a policy only tenant-a may use.
func tenantPolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "default.yaml"), policies.Default, 0o600))
	own := strings.Replace(string(policies.Default), "\nid: default\n", "\nid: tenant-a-strict\ntenants: [tenant-a]\n", 1)
	require.NotEqual(t, string(policies.Default), own, "the default policy's id line moved")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tenant-a-strict.yaml"), []byte(own), 0o600))
	return dir
}

func crossTenantPolicy(ctx context.Context, t *testing.T, c tenantClients) {
	pa, pb := policyv1.NewPolicyServiceClient(c.a), policyv1.NewPolicyServiceClient(c.b)
	const id = "tenant-a-strict"
	_, err := pa.GetPolicy(ctx, &policyv1.GetPolicyRequest{PolicyId: id})
	require.NoError(t, err, "tenant A reads its own policy")
	listA, err := pa.ListPolicies(ctx, &policyv1.ListPoliciesRequest{})
	require.NoError(t, err)
	require.Contains(t, policyIDs(listA.GetPolicies()), id, "tenant A lists its own policy")
	listB, err := pb.ListPolicies(ctx, &policyv1.ListPoliciesRequest{})
	require.NoError(t, err)
	require.NotContains(t, policyIDs(listB.GetPolicies()), id)
	require.Contains(t, policyIDs(listB.GetPolicies()), "default", "tenant B lists the shared default")

	// Policy ids are names, not random: compare with a missing name.
	getB := func(id string) error {
		_, err := pb.GetPolicy(ctx, &policyv1.GetPolicyRequest{PolicyId: id})
		return err
	}
	checkB := func(id string) error {
		_, err := pb.Check(ctx, &policyv1.CheckRequest{Code: "print(1)", PolicyId: id})
		return err
	}
	for rpc, call := range map[string]func(string) error{"GetPolicy": getB, "Check": checkB} {
		foreign, missing := call(id), call("tenant-a-strictx")
		requireCode(t, codes.NotFound, missing, "%s with a missing policy", rpc)
		requireCode(t, codes.NotFound, foreign, "%s with another tenant's policy", rpc)
		require.Equal(t, status.Convert(missing).Message(),
			strings.ReplaceAll(status.Convert(foreign).Message(), id, "tenant-a-strictx"), rpc)
	}
	_, err = pa.Check(ctx, &policyv1.CheckRequest{Code: "print(1)", PolicyId: id})
	require.NoError(t, err, "tenant A checks code against its own policy")
}

func policyIDs(ps []*policyv1.Policy) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.GetId()
	}
	return ids
}
