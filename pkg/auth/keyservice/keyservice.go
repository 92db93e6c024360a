// Package keyservice serves airlock.auth.v1.KeyService: admins create, list and revoke their tenant's API keys.
package keyservice

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/airlockhq/airlock/gen/go/airlock/auth/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/auth/keystore"
	"github.com/airlockhq/airlock/pkg/grpcerr"
)

// Rules lets admins, and only admins, manage keys.
func Rules() auth.Rules {
	rules := auth.Rules{}
	for _, m := range authv1.KeyService_ServiceDesc.Methods {
		rules["/"+authv1.KeyService_ServiceDesc.ServiceName+"/"+m.MethodName] = []auth.Role{auth.RoleAdmin}
	}
	return rules
}

// Service implements authv1.KeyServiceServer over an Authenticator, so a key
// it revokes stops working on this server at once.
type Service struct {
	authv1.UnimplementedKeyServiceServer
	authn *keystore.Authenticator
	log   *slog.Logger
}

// New returns the key service.
func New(authn *keystore.Authenticator, log *slog.Logger) *Service {
	return &Service{authn: authn, log: log}
}

// caller returns the authenticated principal; the interceptor guarantees one.
func caller(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Tenant == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "no authenticated caller")
	}
	return p, nil
}

// CreateKey implements authv1.KeyServiceServer.
func (s *Service) CreateKey(ctx context.Context, req *authv1.CreateKeyRequest) (*authv1.CreateKeyResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tenant := req.GetTenant()
	if tenant == "" {
		tenant = p.Tenant
	}
	if tenant != p.Tenant {
		return nil, status.Errorf(codes.PermissionDenied,
			"an admin manages keys of its own tenant (%s) only; create the first key of tenant %q with `airlock keys create --database-url`",
			p.Tenant, tenant)
	}
	roles, err := keystore.ParseRoles(req.GetRoles()...)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	k, token, err := s.authn.Store().Create(ctx, keystore.NewKey{
		Tenant: tenant, Subject: req.GetSubject(), Roles: roles, CreatedBy: p.String(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	s.log.InfoContext(ctx, "api key created", "key_id", k.ID, "tenant", k.Tenant, "subject", k.Subject,
		"roles", k.Roles, "by", p.String())
	return &authv1.CreateKeyResponse{Key: ToProto(k), Token: token}, nil
}

// ListKeys implements authv1.KeyServiceServer.
func (s *Service) ListKeys(ctx context.Context, req *authv1.ListKeysRequest) (*authv1.ListKeysResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := s.authn.Store().List(ctx, keystore.ListParams{Tenant: p.Tenant, IncludeRevoked: req.GetIncludeRevoked()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &authv1.ListKeysResponse{}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, ToProto(k))
	}
	return resp, nil
}

// RevokeKey implements authv1.KeyServiceServer.
func (s *Service) RevokeKey(ctx context.Context, req *authv1.RevokeKeyRequest) (*authv1.RevokeKeyResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, grpcerr.Field("id", "required")
	}
	k, err := s.authn.Revoke(ctx, p.Tenant, req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	s.log.InfoContext(ctx, "api key revoked", "key_id", k.ID, "tenant", k.Tenant, "by", p.String())
	return &authv1.RevokeKeyResponse{Key: ToProto(k)}, nil
}

func (s *Service) toStatus(ctx context.Context, err error) error {
	var inv *keystore.InvalidError
	switch {
	case errors.As(err, &inv):
		return grpcerr.Field(inv.Field, "%s", inv.Reason)
	case errors.Is(err, keystore.ErrNotFound):
		return status.Error(codes.NotFound, "api key not found")
	default:
		s.log.ErrorContext(ctx, "key service", "error", err)
		return status.Error(codes.Unavailable, "the key store is unavailable; try again")
	}
}

// ToProto renders k for the wire.
func ToProto(k keystore.Key) *authv1.ApiKey {
	pk := &authv1.ApiKey{Id: k.ID, Tenant: k.Tenant, Subject: k.Subject, CreatedBy: k.CreatedBy,
		CreateTime: timestamppb.New(k.CreatedAt)}
	for _, r := range k.Roles {
		pk.Roles = append(pk.Roles, string(r))
	}
	if k.Revoked() {
		pk.RevokeTime = timestamppb.New(k.RevokedAt)
	}
	if !k.LastUsedAt.IsZero() {
		pk.LastUsedTime = timestamppb.New(k.LastUsedAt)
	}
	return pk
}
