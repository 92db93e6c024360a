// Package auth carries the caller's identity: principals, roles, and the
// interceptors that authenticate every RPC and check its roles.
package auth

import (
	"context"
	"slices"
	"strings"
)

// Role is what a principal may do.
type Role string

// Roles. A user submits runs and reads their own; an operator approves,
// rejects, sets budgets and reads the tenant's runs; an admin manages keys and
// policies; a service is another Airlock service calling on a user's behalf.
const (
	RoleUser     Role = "user"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
	RoleService  Role = "service"
)

// ParseRole returns the role named s, or false when s names none.
func ParseRole(s string) (Role, bool) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case RoleUser, RoleOperator, RoleAdmin, RoleService:
		return r, true
	}
	return "", false
}

// Principal is an authenticated caller.
type Principal struct {
	// Tenant is the tenant the caller belongs to; every read and write is scoped to it.
	Tenant string
	// Subject names the caller within the tenant.
	Subject string
	// Roles are what the caller may do.
	Roles []Role
	// KeyID identifies the credential that authenticated the caller, for audit.
	KeyID string
	// Via names the service principal that forwarded this principal, if any.
	Via string
}

// Has reports whether p holds role r. An admin holds every role but service.
func (p Principal) Has(r Role) bool {
	if slices.Contains(p.Roles, r) {
		return true
	}
	return r != RoleService && slices.Contains(p.Roles, RoleAdmin)
}

// HasAny reports whether p holds any of roles.
func (p Principal) HasAny(roles ...Role) bool {
	for _, r := range roles {
		if p.Has(r) {
			return true
		}
	}
	return false
}

// String renders p for logs.
func (p Principal) String() string {
	return p.Tenant + "/" + p.Subject
}

type principalKey struct{}

// WithPrincipal returns a context that carries p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
