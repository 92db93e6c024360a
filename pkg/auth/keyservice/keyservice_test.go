package keyservice

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

var admin = auth.Principal{Tenant: "acme", Subject: "root", Roles: []auth.Role{auth.RoleAdmin}}

func setup(t *testing.T) (*Service, *keystore.Authenticator, *database.DB, context.Context) {
	t.Helper()
	db := dbtest.Open(t, dbtest.NewSQLiteURL(t), keystore.Migrations)
	authn := keystore.NewAuthenticator(keystore.New(db), slog.New(slog.DiscardHandler))
	return New(authn, slog.New(slog.DiscardHandler)), authn, db, auth.WithPrincipal(context.Background(), admin)
}

// violation returns the field named by err's BadRequest detail.
func violation(t *testing.T, err error) string {
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

func TestCreateListRevoke(t *testing.T) {
	t.Parallel()
	s, authn, _, ctx := setup(t)
	created, err := s.CreateKey(ctx, &authv1.CreateKeyRequest{Subject: "alice", Roles: []string{"user", "operator"}})
	require.NoError(t, err)
	k := created.GetKey()
	require.Equal(t, "acme", k.GetTenant(), "an empty tenant is the caller's")
	require.Equal(t, "acme/root", k.GetCreatedBy())
	require.Equal(t, []string{"operator", "user"}, k.GetRoles())
	p, err := authn.Authenticate(ctx, created.GetToken())
	require.NoError(t, err)
	require.Equal(t, "alice", p.Subject)

	list, err := s.ListKeys(ctx, &authv1.ListKeysRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetKeys(), 1)
	require.Equal(t, k.GetId(), list.GetKeys()[0].GetId())
	require.NotNil(t, list.GetKeys()[0].GetLastUsedTime(), "the key was used")

	revoked, err := s.RevokeKey(ctx, &authv1.RevokeKeyRequest{Id: k.GetId()})
	require.NoError(t, err)
	require.NotNil(t, revoked.GetKey().GetRevokeTime())
	_, err = authn.Authenticate(ctx, created.GetToken())
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "revoked here: refused at once")
	list, err = s.ListKeys(ctx, &authv1.ListKeysRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetKeys())
	list, err = s.ListKeys(ctx, &authv1.ListKeysRequest{IncludeRevoked: true})
	require.NoError(t, err)
	require.Len(t, list.GetKeys(), 1)
}

func TestBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	s, _, _, ctx := setup(t)
	for field, req := range map[string]*authv1.CreateKeyRequest{
		"subject": {Roles: []string{"user"}},
		"roles":   {Subject: "x", Roles: []string{"root"}},
	} {
		_, err := s.CreateKey(ctx, req)
		require.Equal(t, field, violation(t, err))
	}
	_, err := s.CreateKey(ctx, &authv1.CreateKeyRequest{Subject: "x"})
	require.Equal(t, "roles", violation(t, err))
	_, err = s.CreateKey(ctx, &authv1.CreateKeyRequest{Subject: "x", Roles: []string{"service"}})
	require.Equal(t, "roles", violation(t, err), "service credentials are configuration, never keys")
	_, err = s.RevokeKey(ctx, &authv1.RevokeKeyRequest{})
	require.Equal(t, "id", violation(t, err))
	list, err := s.ListKeys(ctx, &authv1.ListKeysRequest{IncludeRevoked: true})
	require.NoError(t, err)
	require.Empty(t, list.GetKeys(), "nothing stored")
}

func TestAnAdminStaysInItsTenant(t *testing.T) {
	t.Parallel()
	s, authn, _, ctx := setup(t)
	_, err := s.CreateKey(ctx, &authv1.CreateKeyRequest{Tenant: "globex", Subject: "x", Roles: []string{"admin"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	foreign, _, err := authn.Store().Create(ctx, keystore.NewKey{Tenant: "globex", Subject: "boss", Roles: []auth.Role{auth.RoleAdmin}})
	require.NoError(t, err)
	_, err = s.RevokeKey(ctx, &authv1.RevokeKeyRequest{Id: foreign.ID})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, errMissing := s.RevokeKey(ctx, &authv1.RevokeKeyRequest{Id: "0123456789abcdef"})
	require.Equal(t, status.Convert(errMissing).Message(), status.Convert(err).Message(), "foreign reads like missing")
	list, err := s.ListKeys(ctx, &authv1.ListKeysRequest{IncludeRevoked: true})
	require.NoError(t, err)
	require.Empty(t, list.GetKeys())
	got, err := authn.Store().Get(ctx, "", foreign.ID)
	require.NoError(t, err)
	require.False(t, got.Revoked())
}

func TestStoreFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	s, _, db, ctx := setup(t)
	require.NoError(t, db.Close())
	_, err := s.ListKeys(ctx, &authv1.ListKeysRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = s.ListKeys(context.Background(), &authv1.ListKeysRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "no principal, no answer")
}

func TestRulesAreAdminOnly(t *testing.T) {
	t.Parallel()
	rules := Rules()
	require.Len(t, rules, len(authv1.KeyService_ServiceDesc.Methods))
	for m, roles := range rules {
		require.Equal(t, []auth.Role{auth.RoleAdmin}, roles, m)
	}
}
