// Package keystore keeps API keys in Postgres or SQLite, stored only as hashes, and authenticates callers by them.
package keystore

import (
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// Migrations create the API key table; `airlock migrate` and `airlock dev` apply them.
var Migrations = database.Migrations{Component: "auth", FS: mustSub(migrationFiles, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// TokenPrefix starts every API key, so leaked keys are easy to recognise and scan for.
const TokenPrefix = "alk_"

const (
	idBytes     = 8  // public id: 16 hex characters
	secretBytes = 32 // 256-bit secret: 64 hex characters
)

// Errors the store returns.
var (
	// ErrNotFound means no key has the id, or the key belongs to another tenant.
	ErrNotFound = errors.New("api key not found")
	// ErrMalformedToken means a token is not of the form alk_<id>_<secret>.
	ErrMalformedToken = errors.New("malformed api key")
)

// InvalidError names the field of a new key that is at fault.
type InvalidError struct {
	// Field is the field at fault: tenant, subject or roles.
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *InvalidError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// Key is an API key as stored: everything but its secret.
type Key struct {
	// ID is the key's public id, the middle part of its token.
	ID string
	// Tenant is the tenant the key's caller belongs to.
	Tenant string
	// Subject names the key's caller within the tenant.
	Subject string
	// Roles are what the key's caller may do.
	Roles []auth.Role
	// CreatedBy names who created the key (tenant/subject), for audit.
	CreatedBy string
	// CreatedAt is when the key was created.
	CreatedAt time.Time
	// RevokedAt is when the key was revoked; zero while it is valid.
	RevokedAt time.Time
	// LastUsedAt is when the key last authenticated a call, to within
	// Authenticator.TouchInterval; zero if never.
	LastUsedAt time.Time
}

// Revoked reports whether the key has been revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Principal is the caller the key authenticates.
func (k Key) Principal() auth.Principal {
	return auth.Principal{Tenant: k.Tenant, Subject: k.Subject, Roles: slices.Clone(k.Roles), KeyID: k.ID}
}

// NewKey describes a key to create.
type NewKey struct {
	// Tenant for the key.
	Tenant string
	// Subject names the key's caller within the tenant.
	Subject string
	// Roles the key grants: user, operator or admin (service credentials are configuration, not keys).
	Roles []auth.Role
	// CreatedBy names who asks, for audit.
	CreatedBy string
}

var (
	tenantRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	subjectRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
)

// Validate checks n and returns it with its roles deduplicated and sorted.
func (n NewKey) Validate() (NewKey, error) {
	if n.Tenant == "" {
		return n, &InvalidError{Field: "tenant", Reason: "required"}
	}
	if !tenantRE.MatchString(n.Tenant) {
		return n, &InvalidError{Field: "tenant", Reason: fmt.Sprintf("%q must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", n.Tenant)}
	}
	if n.Subject == "" {
		return n, &InvalidError{Field: "subject", Reason: "required"}
	}
	if !subjectRE.MatchString(n.Subject) {
		return n, &InvalidError{Field: "subject", Reason: fmt.Sprintf("%q must be 1-128 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit", n.Subject)}
	}
	if len(n.Roles) == 0 {
		return n, &InvalidError{Field: "roles", Reason: "at least one of user, operator, admin is required"}
	}
	var roles []auth.Role
	for _, r := range n.Roles {
		switch r {
		case auth.RoleUser, auth.RoleOperator, auth.RoleAdmin:
		default:
			return n, &InvalidError{Field: "roles", Reason: fmt.Sprintf("%q is not one of user, operator, admin", r)}
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	slices.Sort(roles)
	n.Roles = roles
	return n, nil
}

// ParseRoles parses role names such as "user" or "operator,admin".
func ParseRoles(names ...string) ([]auth.Role, error) {
	var roles []auth.Role
	for _, name := range names {
		for part := range strings.SplitSeq(name, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			r, ok := auth.ParseRole(part)
			if !ok || r == auth.RoleService {
				return nil, &InvalidError{Field: "roles", Reason: fmt.Sprintf("%q is not one of user, operator, admin", strings.TrimSpace(part))}
			}
			roles = append(roles, r)
		}
	}
	return roles, nil
}

// newToken returns a fresh key id, the token to hand out, and the hash to store.
func newToken() (id, token string, hash []byte) {
	var idb [idBytes]byte
	var secret [secretBytes]byte
	if _, err := rand.Read(idb[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	if _, err := rand.Read(secret[:]); err != nil {
		panic(err)
	}
	id = hex.EncodeToString(idb[:])
	s := hex.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(s))
	return id, TokenPrefix + id + "_" + s, sum[:]
}

// ParseToken splits a token into its id and the SHA-256 of its secret.
func ParseToken(token string) (id string, hash []byte, err error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return "", nil, ErrMalformedToken
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 2*idBytes || len(secret) != 2*secretBytes || !isHex(id) || !isHex(secret) {
		return "", nil, ErrMalformedToken
	}
	sum := sha256.Sum256([]byte(secret))
	return id, sum[:], nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// IsKeyID reports whether s has the shape of a key id.
func IsKeyID(s string) bool { return len(s) == 2*idBytes && isHex(s) }
