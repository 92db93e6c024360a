package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// ForwardedPrincipalHeader carries the end user's principal on calls a service
// makes on that user's behalf. It is honoured only when the authenticated
// caller holds RoleService.
const ForwardedPrincipalHeader = "x-airlock-principal"

// ErrUnauthenticated is returned by an Authenticator for a missing, unknown,
// revoked or malformed credential.
var ErrUnauthenticated = errors.New("invalid credentials")

// Authenticator turns a bearer token into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// Rules maps a full gRPC method name ("/pkg.Service/Method") to the roles
// that may call it. A method with no rule is refused: new RPCs are closed
// until someone decides who may call them.
type Rules map[string][]Role

// Merge adds every rule of other to r.
func (r Rules) Merge(other Rules) Rules {
	for k, v := range other {
		r[k] = v
	}
	return r
}

// publicPrefixes need no credentials: probes and tooling must work without keys.
var publicPrefixes = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// IsPublic reports whether fullMethod needs no credentials.
func IsPublic(fullMethod string) bool {
	for _, p := range publicPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// Interceptor authenticates every non-public RPC and checks its roles.
type Interceptor struct {
	authn    Authenticator
	rules    Rules
	log      *slog.Logger
	failures *failureLimiter
}

// NewInterceptor returns an Interceptor that authenticates with authn and
// authorises with rules. An address that presents DefaultMaxFailures invalid
// credentials within DefaultFailureWindow is refused until the window ends;
// LimitFailures changes that.
func NewInterceptor(authn Authenticator, rules Rules, log *slog.Logger) *Interceptor {
	return &Interceptor{authn: authn, rules: rules, log: log,
		failures: newFailureLimiter(DefaultMaxFailures, DefaultFailureWindow)}
}

// LimitFailures refuses an address that presented max invalid credentials
// within window until that window ends; max 0 turns the limit off. Call it
// before serving.
func (i *Interceptor) LimitFailures(max int, window time.Duration) *Interceptor {
	i.failures = newFailureLimiter(max, window)
	return i
}

// Unary is the unary server interceptor.
func (i *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := i.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream is the stream server interceptor.
func (i *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := i.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

func (i *Interceptor) authorize(ctx context.Context, method string) (context.Context, error) {
	if IsPublic(method) {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	p, err := i.authenticate(ctx, md, method)
	if err != nil {
		return nil, err
	}
	if fwd := md.Get(ForwardedPrincipalHeader); len(fwd) > 0 {
		if p.Has(RoleService) && p.Subject != "" && len(p.Roles) == 1 {
			fp, err := decodePrincipal(fwd[0])
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, "malformed "+ForwardedPrincipalHeader+" header")
			}
			fp.Via = p.Subject
			p = fp
		} else {
			// A user cannot claim to be someone else; the header is ignored and logged.
			i.log.WarnContext(ctx, "ignoring forwarded principal from a non-service caller",
				"method", method, "caller", p.String())
		}
	}
	roles, ok := i.rules[method]
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "method "+method+" is not open to any role")
	}
	if !p.HasAny(roles...) {
		return nil, status.Errorf(codes.PermissionDenied, "%s needs one of the roles %s", method, joinRoles(roles))
	}
	return WithPrincipal(ctx, p), nil
}

// authenticate finds the caller: by its bearer token, or, when it sends
// none, by a verified service client certificate (mutual TLS).
func (i *Interceptor) authenticate(ctx context.Context, md metadata.MD, method string) (Principal, error) {
	token, err := bearerToken(md)
	if err != nil {
		if len(md.Get("authorization")) == 0 {
			if p, ok := ServiceFromCertificate(ctx); ok {
				return p, nil
			}
		}
		return Principal{}, status.Error(codes.Unauthenticated, err.Error())
	}
	addr := peerAddress(ctx)
	if left, blocked := i.failures.blocked(addr); blocked {
		return Principal{}, status.Errorf(codes.ResourceExhausted,
			"too many invalid credentials from this address; try again in %s", left.Round(time.Second))
	}
	p, err := i.authn.Authenticate(ctx, token)
	if err != nil {
		if !errors.Is(err, ErrUnauthenticated) {
			i.log.ErrorContext(ctx, "authenticating caller", "method", method, "error", err)
			return Principal{}, status.Error(codes.Unavailable, "credentials could not be checked; try again")
		}
		if i.failures.fail(addr) {
			i.log.WarnContext(ctx, "refusing an address that presented too many invalid credentials",
				"peer", addr, "max_failures", i.failures.max, "window", i.failures.window.String())
		}
		return Principal{}, status.Error(codes.Unauthenticated, "invalid credentials")
	}
	return p, nil
}

// ServiceCertURIPrefix starts the URI SAN that names a service in its client
// certificate: "spiffe://airlock/service/orchestrator". Only certificates the
// server verified against its client CA (--tls-client-ca) count, so issue
// such URIs only to services.
const ServiceCertURIPrefix = "spiffe://airlock/service/"

// SystemTenant is the tenant of service principals; no API key can name it.
const SystemTenant = "_system"

// ServiceFromCertificate returns the service principal named by the verified
// client certificate of ctx's connection, if there is one.
func ServiceFromCertificate(ctx context.Context) (Principal, bool) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return Principal{}, false
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return Principal{}, false
	}
	leaf := info.State.VerifiedChains[0][0]
	for _, u := range leaf.URIs {
		name, ok := strings.CutPrefix(u.String(), ServiceCertURIPrefix)
		if ok && name != "" && !strings.ContainsAny(name, "/?#") {
			return Principal{Tenant: SystemTenant, Subject: name, Roles: []Role{RoleService},
				KeyID: "cert:" + leaf.SerialNumber.Text(16)}, true
		}
	}
	return Principal{}, false
}

func joinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func bearerToken(md metadata.MD) (string, error) {
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", errors.New("missing authorization header: send 'authorization: Bearer <key>'")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", errors.New("malformed authorization header: want 'Bearer <key>'")
	}
	return strings.TrimSpace(token), nil
}

type wirePrincipal struct {
	Tenant  string   `json:"tenant"`
	Subject string   `json:"subject"`
	Roles   []string `json:"roles"`
}

// EncodePrincipal renders p for the forwarded-principal header.
func EncodePrincipal(p Principal) string {
	w := wirePrincipal{Tenant: p.Tenant, Subject: p.Subject}
	for _, r := range p.Roles {
		w.Roles = append(w.Roles, string(r))
	}
	b, _ := json.Marshal(w)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePrincipal(s string) (Principal, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Principal{}, err
	}
	var w wirePrincipal
	if err := json.Unmarshal(b, &w); err != nil {
		return Principal{}, err
	}
	if w.Tenant == "" || w.Subject == "" {
		return Principal{}, errors.New("forwarded principal needs tenant and subject")
	}
	p := Principal{Tenant: w.Tenant, Subject: w.Subject}
	for _, r := range w.Roles {
		role, ok := ParseRole(r)
		if !ok || role == RoleService {
			return Principal{}, fmt.Errorf("forwarded principal has invalid role %q", r)
		}
		p.Roles = append(p.Roles, role)
	}
	return p, nil
}

// OnBehalfOf returns an outgoing context that forwards p to the next service.
// The call must also carry a service credential, or p is ignored.
func OnBehalfOf(ctx context.Context, p Principal) context.Context {
	return metadata.AppendToOutgoingContext(ctx, ForwardedPrincipalHeader, EncodePrincipal(p))
}

// BearerToken is per-RPC credentials that send a bearer token.
type BearerToken struct {
	Token string
	// Secure requires a TLS connection before the token is sent.
	Secure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
// An empty Token sends nothing, so a service can rely on its client
// certificate alone.
func (b BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b.Token == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b BearerToken) RequireTransportSecurity() bool { return b.Secure }

// StaticKeys authenticates against a fixed map of token to principal. It is
// for tests and for service credentials given in configuration.
type StaticKeys map[string]Principal

// Authenticate implements Authenticator in constant time per key.
func (s StaticKeys) Authenticate(_ context.Context, token string) (Principal, error) {
	var found Principal
	ok := false
	for k, p := range s {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			found, ok = p, true
		}
	}
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	return found, nil
}

// Chain tries each authenticator in turn, returning the first principal found.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(ctx context.Context, token string) (Principal, error) {
	for _, a := range c {
		p, err := a.Authenticate(ctx, token)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, ErrUnauthenticated) {
			return Principal{}, err
		}
	}
	return Principal{}, ErrUnauthenticated
}
