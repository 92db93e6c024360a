package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
)

// TestRolesPerRPC checks the role rules every server enforces against the
// issue's matrix: user submits and reads runs; operator also approves,
// rejects and sets budgets; admin also manages keys. Every RPC of every
// service has a rule (one without is closed to everybody).
func TestRolesPerRPC(t *testing.T) {
	t.Parallel()
	rules := auth.Rules{}
	var names []string
	for _, s := range allServices() {
		rules.Merge(s.Rules)
		names = append(names, s.FullName)
	}
	rules.Merge(extraRules())
	names = append(names, authv1.KeyService_ServiceDesc.ServiceName)
	for _, name := range names {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		require.NoError(t, err, name)
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := "/" + name + "/" + string(methods.Get(i).Name())
			require.NotEmpty(t, rules[m], "%s has no role rule: nobody may call it", m)
		}
	}
	may := func(r auth.Role, method string) bool {
		return auth.Principal{Tenant: "t", Subject: "s", Roles: []auth.Role{r}}.HasAny(rules[method]...)
	}
	const (
		orch     = "/airlock.orchestrator.v1.OrchestratorService/"
		approval = "/airlock.approval.v1.ApprovalService/"
		budget   = "/airlock.budget.v1.BudgetService/"
		keys     = "/airlock.auth.v1.KeyService/"
	)
	for _, m := range []string{orch + "SubmitRun", orch + "GetRun", orch + "ListRuns", orch + "WatchRun"} {
		for _, r := range []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleAdmin} {
			require.True(t, may(r, m), "%s may call %s", r, m)
		}
	}
	for _, m := range []string{approval + "Approve", approval + "Reject", budget + "SetBudget"} {
		require.False(t, may(auth.RoleUser, m), "a user may not call %s", m)
		require.True(t, may(auth.RoleOperator, m), "an operator may call %s", m)
		require.True(t, may(auth.RoleAdmin, m), "an admin may call %s", m)
	}
	for _, m := range []string{keys + "CreateKey", keys + "ListKeys", keys + "RevokeKey"} {
		for _, r := range []auth.Role{auth.RoleUser, auth.RoleOperator, auth.RoleService} {
			require.False(t, may(r, m), "%s may not call %s", r, m)
		}
		require.True(t, may(auth.RoleAdmin, m))
	}
}

// servedMethods lists every RPC of every service dev serves, with its descriptor.
func servedMethods(t *testing.T) map[string]protoreflect.MethodDescriptor {
	t.Helper()
	names := []string{authv1.KeyService_ServiceDesc.ServiceName}
	for _, s := range allServices() {
		names = append(names, s.FullName)
	}
	out := map[string]protoreflect.MethodDescriptor{}
	for _, name := range names {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		require.NoError(t, err, name)
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			out["/"+name+"/"+string(methods.Get(i).Name())] = methods.Get(i)
		}
	}
	return out
}

// invoke calls method with an empty request, unary or streaming, and returns
// the call's error (for a stream, the first receive's).
func invoke(ctx context.Context, conn *grpc.ClientConn, name string, m protoreflect.MethodDescriptor) error {
	req := dynamicpb.NewMessage(m.Input())
	resp := dynamicpb.NewMessage(m.Output())
	if !m.IsStreamingClient() && !m.IsStreamingServer() {
		return conn.Invoke(ctx, name, req, resp)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: m.IsStreamingClient(), ServerStreams: m.IsStreamingServer()}, name)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(resp)
}

// everyRPCNeedsAKey calls every RPC of every service over the wire with no
// key, a malformed one, an unknown one and a revoked one: each must answer
// Unauthenticated before any handler runs. Then, with a valid key of each
// role, every RPC whose rule leaves that role out must answer PermissionDenied.
func everyRPCNeedsAKey(ctx context.Context, t *testing.T, d *devInstance, st *keystore.Store) {
	revoked, token, err := st.Create(ctx, keystore.NewKey{Tenant: "tenant-a", Subject: "eve", Roles: []auth.Role{auth.RoleAdmin}})
	require.NoError(t, err)
	_, err = st.Revoke(ctx, "", revoked.ID)
	require.NoError(t, err)
	creds := map[string]string{
		"no key":        "",
		"malformed key": "alk_not-a-key",
		"unknown key":   keystore.TokenPrefix + "0123456789abcdef_" + strings.Repeat("0", 64),
		"revoked key":   token,
	}
	methods := servedMethods(t)
	require.Greater(t, len(methods), 20)
	for what, tok := range creds {
		conn := dial(t, d.addr, tok, nil)
		for name, m := range methods {
			requireCode(t, codes.Unauthenticated, invoke(ctx, conn, name, m), "%s with %s", name, what)
		}
	}

	// A valid key whose role the RPC's rule leaves out: PermissionDenied.
	rules := auth.Rules{}
	for _, s := range allServices() {
		rules.Merge(s.Rules)
	}
	rules.Merge(extraRules())
	denied := 0
	for _, role := range []auth.Role{auth.RoleUser, auth.RoleOperator} {
		_, token, err := st.Create(ctx, keystore.NewKey{Tenant: "tenant-a", Subject: "only-" + string(role), Roles: []auth.Role{role}})
		require.NoError(t, err)
		conn := dial(t, d.addr, token, nil)
		p := auth.Principal{Tenant: "tenant-a", Subject: "x", Roles: []auth.Role{role}}
		for name, m := range methods {
			if !p.HasAny(rules[name]...) {
				requireCode(t, codes.PermissionDenied, invoke(ctx, conn, name, m), "%s as a plain %s", name, role)
				denied++
			}
		}
	}
	require.Positive(t, denied)
}
