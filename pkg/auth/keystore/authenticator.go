package keystore

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/airlockhq/airlock/pkg/auth"
)

// Defaults for an Authenticator.
const (
	// DefaultCacheTTL bounds how long a revoked key keeps working on a server
	// that did not revoke it: every server re-reads a key at most this old.
	DefaultCacheTTL = 5 * time.Second
	// DefaultTouchInterval is how stale a key's last-used time may get: it is
	// written at most once per interval per key and server.
	DefaultTouchInterval = time.Minute
	// maxCached bounds the cache; past it the cache starts afresh, which
	// costs one database read per key and keeps guessed ids from filling memory.
	maxCached = 10000
)

// Authenticator authenticates API keys against a Store through a short
// cache: a key revoked through this Authenticator stops working at once; one
// revoked elsewhere (another server, direct database access) within CacheTTL.
type Authenticator struct {
	store *Store
	log   *slog.Logger
	// CacheTTL is how long a key read from the store is trusted.
	CacheTTL time.Duration
	// TouchInterval is how often a key's last-used time is written.
	TouchInterval time.Duration

	mu    sync.Mutex
	cache map[string]*cached
}

type cached struct {
	key     Key
	hash    []byte // nil: no such key
	fetched time.Time
	touched time.Time
}

var _ auth.Authenticator = (*Authenticator)(nil)

// NewAuthenticator returns an Authenticator over store with the default cache TTL and touch interval.
func NewAuthenticator(store *Store, log *slog.Logger) *Authenticator {
	return &Authenticator{store: store, log: log, CacheTTL: DefaultCacheTTL,
		TouchInterval: DefaultTouchInterval, cache: map[string]*cached{}}
}

// Store returns the store keys are read from.
func (a *Authenticator) Store() *Store { return a.store }

// Authenticate implements auth.Authenticator. A token that is not an API key,
// an unknown key, a wrong secret and a revoked key all give
// auth.ErrUnauthenticated; a database failure gives another error.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	id, hash, err := ParseToken(token)
	if err != nil {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	now := a.store.now()
	c, err := a.get(ctx, id, now)
	if err != nil {
		return auth.Principal{}, err
	}
	if c.hash == nil || subtle.ConstantTimeCompare(c.hash, hash) != 1 || c.key.Revoked() {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	a.touch(ctx, c, now)
	return c.key.Principal(), nil
}

// get returns the cached entry for id, reading the store when it is missing or stale.
func (a *Authenticator) get(ctx context.Context, id string, now time.Time) (*cached, error) {
	a.mu.Lock()
	c, ok := a.cache[id]
	a.mu.Unlock()
	if ok && now.Sub(c.fetched) < a.CacheTTL {
		return c, nil
	}
	k, hash, err := a.store.lookup(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	fresh := &cached{key: k, hash: hash, fetched: now}
	a.mu.Lock()
	if old, ok := a.cache[id]; ok {
		fresh.touched = old.touched
	}
	if len(a.cache) >= maxCached {
		a.cache = map[string]*cached{}
	}
	a.cache[id] = fresh
	a.mu.Unlock()
	return fresh, nil
}

// touch records the key's use at most once per TouchInterval. A failure is
// logged, never fatal: the call is already authenticated.
func (a *Authenticator) touch(ctx context.Context, c *cached, now time.Time) {
	a.mu.Lock()
	due := now.Sub(c.touched) >= a.TouchInterval
	if due {
		c.touched = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.store.Touch(ctx, c.key.ID, now, a.TouchInterval); err != nil {
		a.log.WarnContext(ctx, "recording api key use", "key_id", c.key.ID, "error", err)
	}
}

// Forget drops id from the cache, so its next use reads the store.
func (a *Authenticator) Forget(id string) {
	a.mu.Lock()
	delete(a.cache, id)
	a.mu.Unlock()
}

// Revoke revokes key id (of tenant, when not empty) and forgets it, so it
// stops working on this server at once.
func (a *Authenticator) Revoke(ctx context.Context, tenant, id string) (Key, error) {
	k, err := a.store.Revoke(ctx, tenant, id)
	if err != nil {
		return Key{}, err
	}
	a.Forget(id)
	return k, nil
}
