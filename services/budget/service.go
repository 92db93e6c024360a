package budget

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlockhq/airlock/pkg/textcheck"
)

// MaxAmount bounds every amount and limit (about 1.1 billion USD), so sums
// of them can never overflow int64.
const MaxAmount int64 = 1 << 50

// Config tunes a Service.
type Config struct {
	// TimeZone is the zone of budgets set without one, and of the calendar
	// month GetUsage reports for a scope with no budget. Default UTC.
	TimeZone *time.Location
	// DefaultTTL is a reservation's ttl when the request gives none.
	DefaultTTL time.Duration
	// MaxTTL is the longest ttl a request may ask for.
	MaxTTL time.Duration
	// SweepInterval is how often expired reservations are released; zero
	// disables the background sweeper (tests call Sweep).
	SweepInterval time.Duration
	// BatchSize caps how many concurrent requests share one transaction.
	BatchSize int
	// Workers is how many transactions may run at once; zero means 2, or 1
	// on SQLite, whose single write lock runs one at a time anyway.
	Workers int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// The defaults of Config's settings, shared with the command line's flags.
const (
	DefaultTTL           = 10 * time.Minute
	DefaultMaxTTL        = 24 * time.Hour
	DefaultBatchSize     = 256
	DefaultSweepInterval = 5 * time.Second
)

func (c *Config) defaults(store Store) {
	if c.TimeZone == nil {
		c.TimeZone = time.UTC
	}
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Workers <= 0 {
		c.Workers = 2
		if _, ok := store.(*SQLiteStore); ok {
			c.Workers = 1
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is the budget domain: it validates requests, groups concurrent
// reservations, commits and releases into shared transactions, runs the
// sweeper and fans events out.
type Service struct {
	store Store
	log   *slog.Logger
	cfg   Config
	hub   *hub
	// localEvents is true when events are published in-process after each
	// commit; false when the store announces them to every replica.
	localEvents bool

	// listenErr holds the event listener's last error; nil while listening.
	listenErr atomic.Pointer[error]

	ops    chan *op
	quit   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New starts a Service on store: its batch workers, its sweeper and, when
// the store announces events across replicas, its event listener.
func New(ctx context.Context, store Store, log *slog.Logger, cfg Config) (*Service, error) {
	cfg.defaults(store)
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Service{
		store: store, log: log, cfg: cfg, hub: newHub(), localEvents: true,
		ops: make(chan *op, cfg.BatchSize*cfg.Workers), quit: make(chan struct{}), cancel: cancel,
	}
	if src, ok := store.(EventSource); ok {
		s.localEvents = false
		ready := make(chan struct{})
		var readyOnce sync.Once
		notStarted := errors.New("event listener not started")
		s.listenErr.Store(&notStarted)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := src.Listen(bg, func(err error) {
				prev := *s.listenErr.Load()
				s.listenErr.Store(&err)
				switch {
				case err == nil:
					readyOnce.Do(func() { close(ready) })
					if prev != nil && prev != notStarted {
						log.Info("budget event listener reconnected; events of the gap were not delivered")
					}
				case prev == nil:
					log.Warn("budget event listener lost; retrying", "error", err)
				}
			}, s.hub.publish)
			if err != nil {
				log.Error("budget event listener stopped", "error", err)
			}
		}()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			s.Close()
			return nil, errors.New("budget events: LISTEN did not start within 10s")
		}
	}
	for i := 0; i < cfg.Workers; i++ {
		s.wg.Add(1)
		go s.worker(bg)
	}
	if cfg.SweepInterval > 0 {
		s.wg.Add(1)
		go s.sweeper(bg)
	}
	return s, nil
}

// Close stops the workers, the sweeper and the listener, answers queued
// requests with ErrClosed and ends every event subscription.
func (s *Service) Close() error {
	s.once.Do(func() {
		close(s.quit)
		s.cancel()
		s.wg.Wait()
		for {
			select {
			case o := <-s.ops:
				o.res <- opResult{err: ErrClosed}
				continue
			default:
			}
			break
		}
		s.hub.closeAll()
	})
	return nil
}

// Ping checks the store answers, for health.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// CheckEvents reports whether events reach this replica's watchers: on
// Postgres, whether the LISTEN connection is up. It is a health check.
func (s *Service) CheckEvents(context.Context) error {
	if p := s.listenErr.Load(); p != nil && *p != nil {
		return *p
	}
	return nil
}

// Now returns the service's clock reading.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// TimeZone returns the default zone.
func (s *Service) TimeZone() *time.Location { return s.cfg.TimeZone }

func newID(prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return prefix + hex.EncodeToString(b[:])
}

// checkText refuses what a database cannot store or a log should not show:
// invalid UTF-8, NUL and other control characters, and overlong values.
func checkText(field, v string) error {
	if err := textcheck.Check(v, 256); err != nil {
		return invalid(field, "%s", err)
	}
	return nil
}

func validateScope(field string, sc Scope) error {
	switch sc.Kind {
	case ScopeTenant:
		if sc.Subject != "" {
			return invalid(field+".subject", "must be empty for a TENANT scope")
		}
	case ScopeUser:
		if sc.Subject == "" {
			return invalid(field+".subject", "is required for a USER scope")
		}
		if err := checkText(field+".subject", sc.Subject); err != nil {
			return err
		}
	default:
		return invalid(field+".kind", "unknown scope kind %d; want SCOPE_KIND_TENANT or SCOPE_KIND_USER", sc.Kind)
	}
	return nil
}

func checkTenant(tenant string) error {
	if tenant == "" {
		return errors.New("budget: empty tenant") // a caller bug, never user input
	}
	return nil
}

// SetBudgetRequest creates or replaces a scope's budget.
type SetBudgetRequest struct {
	Tenant     string
	Scope      Scope
	Period     Period
	Limit      int64
	Thresholds []int32
	// TimeZone is an IANA zone; empty means the service's zone.
	TimeZone string
}

// SetBudget creates or replaces a budget. Money held against the scope stays
// held; the current period's spend is recomputed from the ledger, so changing
// the period or zone counts exactly the commits of the new period. Thresholds
// already crossed are marked fired without announcing them again.
func (s *Service) SetBudget(ctx context.Context, req SetBudgetRequest) (Budget, error) {
	if err := checkTenant(req.Tenant); err != nil {
		return Budget{}, err
	}
	if err := validateScope("scope", req.Scope); err != nil {
		return Budget{}, err
	}
	if req.Period < PeriodDaily || req.Period > PeriodLifetime {
		return Budget{}, invalid("period", "unknown period %d; want DAILY, WEEKLY, MONTHLY or LIFETIME", req.Period)
	}
	if req.Limit < 0 {
		return Budget{}, invalid("limit_micros", "must not be negative, got %d", req.Limit)
	}
	if req.Limit > MaxAmount {
		return Budget{}, invalid("limit_micros", "must be at most %d", MaxAmount)
	}
	thresholds := slices.Clone(req.Thresholds)
	if len(thresholds) == 0 {
		thresholds = slices.Clone(DefaultThresholds)
	}
	if len(thresholds) > 20 {
		return Budget{}, invalid("thresholds_percent", "at most 20 thresholds")
	}
	for i, t := range thresholds {
		if t < 1 || t > 100 {
			return Budget{}, invalid(fmt.Sprintf("thresholds_percent[%d]", i), "must be between 1 and 100, got %d", t)
		}
	}
	slices.Sort(thresholds)
	if len(slices.Compact(slices.Clone(thresholds))) != len(thresholds) {
		return Budget{}, invalid("thresholds_percent", "must not repeat a value")
	}
	zone := req.TimeZone
	if zone == "" {
		zone = s.cfg.TimeZone.String()
	}
	loc, err := loadZone(zone)
	if err != nil || zone == "Local" {
		return Budget{}, invalid("time_zone", "%q is not an IANA time zone such as Europe/Paris", req.TimeZone)
	}
	key := Key{Tenant: req.Tenant, Scope: req.Scope}
	var out Budget
	err = s.store.InTx(ctx, func(tx Tx) error {
		now := s.cfg.Now()
		rows, err := tx.LockBudgets(ctx, []Key{key})
		if err != nil {
			return err
		}
		b := rows[key] // zero for a new budget: nothing held on it yet
		b.Key, b.Period, b.Limit, b.Thresholds, b.TimeZone = key, req.Period, req.Limit, thresholds, zone
		b.PeriodStart, _ = Bounds(req.Period, loc, now)
		if b.Spent, err = tx.SpentSince(ctx, req.Tenant, req.Scope, b.PeriodStart); err != nil {
			return err
		}
		b.FiredPercent, b.HardStopped, b.UpdatedAt = 0, false, now
		b.markCrossed(nil, nil)
		out = b
		return tx.Write(ctx, &Writes{Budgets: []Budget{b}})
	})
	if err != nil {
		return Budget{}, err
	}
	return out, nil
}

// GetBudget returns a scope's budget with its current period's figures.
func (s *Service) GetBudget(ctx context.Context, tenant string, scope Scope) (Budget, error) {
	if err := checkTenant(tenant); err != nil {
		return Budget{}, err
	}
	if err := validateScope("scope", scope); err != nil {
		return Budget{}, err
	}
	b, err := s.store.Budget(ctx, Key{Tenant: tenant, Scope: scope})
	if err != nil {
		return Budget{}, err
	}
	b.roll(s.cfg.Now()) // a view: the row itself rolls on its next write
	return b, nil
}

// PeriodEnd is when b's current period ends; zero for LIFETIME.
func (b Budget) PeriodEnd() time.Time {
	_, end := b.bounds(b.PeriodStart)
	return end
}

// GetUsage reports a scope's spend in the period containing at, from the
// ledger. A scope with no budget reports the calendar month in the
// service's zone, with Limit -1.
func (s *Service) GetUsage(ctx context.Context, tenant string, scope Scope, at time.Time) (Usage, error) {
	if err := checkTenant(tenant); err != nil {
		return Usage{}, err
	}
	if err := validateScope("scope", scope); err != nil {
		return Usage{}, err
	}
	now := s.cfg.Now()
	if at.IsZero() {
		at = now
	}
	u := Usage{Scope: scope, Limit: -1}
	b, err := s.store.Budget(ctx, Key{Tenant: tenant, Scope: scope})
	switch {
	case err == nil:
		u.Limit = b.Limit
		u.PeriodStart, u.PeriodEnd = b.bounds(at)
		u.Reserved = b.Reserved
	case errors.Is(err, ErrNotFound):
		u.PeriodStart, u.PeriodEnd = Bounds(PeriodMonthly, s.cfg.TimeZone, at)
		if u.Reserved, err = s.store.HeldAmount(ctx, tenant, scope); err != nil {
			return Usage{}, err
		}
	default:
		return Usage{}, err
	}
	if u.Breakdown, err = s.store.Usage(ctx, tenant, scope, u.PeriodStart, u.PeriodEnd); err != nil {
		return Usage{}, err
	}
	for _, l := range u.Breakdown {
		u.Spent += l.Amount
	}
	return u, nil
}

// ReserveRequest holds money before a paid step.
type ReserveRequest struct {
	Tenant         string
	Scopes         []Scope
	Amount         int64
	TTL            time.Duration
	IdempotencyKey string
	Kind           CostKind
	Model          string
	RunID          string
}

func (s *Service) validateReserve(req *ReserveRequest) error {
	if err := checkTenant(req.Tenant); err != nil {
		return err
	}
	if len(req.Scopes) == 0 {
		return invalid("scopes", "at least one scope is required")
	}
	seen := map[ScopeKind]bool{}
	for i, sc := range req.Scopes {
		if err := validateScope(fmt.Sprintf("scopes[%d]", i), sc); err != nil {
			return err
		}
		if seen[sc.Kind] {
			return invalid(fmt.Sprintf("scopes[%d]", i), "names a second %s scope; give each kind once", sc)
		}
		seen[sc.Kind] = true
	}
	if req.Amount <= 0 {
		return invalid("amount_micros", "must be positive, got %d", req.Amount)
	}
	if req.Amount > MaxAmount {
		return invalid("amount_micros", "must be at most %d", MaxAmount)
	}
	if req.TTL < 0 {
		return invalid("ttl", "must not be negative, got %s", req.TTL)
	}
	if req.TTL == 0 {
		req.TTL = s.cfg.DefaultTTL
	}
	if req.TTL > s.cfg.MaxTTL {
		return invalid("ttl", "must be at most %s, got %s", s.cfg.MaxTTL, req.TTL)
	}
	if req.IdempotencyKey == "" {
		return invalid("idempotency_key", "is required, so a retry never holds money twice")
	}
	if err := checkText("idempotency_key", req.IdempotencyKey); err != nil {
		return err
	}
	if req.Kind != CostLLM && req.Kind != CostCompute {
		return invalid("kind", "must be COST_KIND_LLM or COST_KIND_COMPUTE, got %d", req.Kind)
	}
	if err := checkText("model", req.Model); err != nil {
		return err
	}
	if err := checkText("run_id", req.RunID); err != nil {
		return err
	}
	return nil
}

// requestHash fingerprints a reservation request's parameters.
func requestHash(req *ReserveRequest) string {
	var tenantScope bool
	var user string
	for _, sc := range req.Scopes {
		if sc.Kind == ScopeTenant {
			tenantScope = true
		} else {
			user = sc.Subject
		}
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%t\x00%q\x00%d\x00%d\x00%d\x00%q\x00%q",
		tenantScope, user, req.Amount, req.TTL, req.Kind, req.Model, req.RunID))
	return hex.EncodeToString(h[:16])
}

// Reserve atomically checks every scope and holds Amount against each scope
// that has a budget, or fails with a *QuotaError. A scope with no budget is
// unlimited. A retry with the same key returns the first reservation in
// whatever state it is now; the same key with other parameters fails with
// ErrIdempotencyConflict.
func (s *Service) Reserve(ctx context.Context, req ReserveRequest) (Reservation, error) {
	if err := s.validateReserve(&req); err != nil {
		return Reservation{}, err
	}
	return s.submit(ctx, &op{kind: opReserve, tenant: req.Tenant, reserve: req, hash: requestHash(&req)})
}

// Commit settles a reservation with the actual amount and frees the rest.
// An actual above the reservation is recorded and raises an OVERAGE event;
// so is a commit after the sweeper expired the reservation, since the money
// was spent all the same. Committing again with the same actual returns the
// settled reservation; with another actual, ErrIdempotencyConflict.
func (s *Service) Commit(ctx context.Context, tenant, id string, actual int64) (Reservation, error) {
	if err := checkTenant(tenant); err != nil {
		return Reservation{}, err
	}
	if err := checkID(id); err != nil {
		return Reservation{}, err
	}
	if actual < 0 {
		return Reservation{}, invalid("actual_micros", "must not be negative, got %d", actual)
	}
	if actual > MaxAmount {
		return Reservation{}, invalid("actual_micros", "must be at most %d", MaxAmount)
	}
	return s.submit(ctx, &op{kind: opCommit, tenant: tenant, id: id, actual: actual})
}

// Release frees a whole reservation. Releasing a released or expired
// reservation returns it unchanged; a committed one fails with ErrNotHeld.
func (s *Service) Release(ctx context.Context, tenant, id string) (Reservation, error) {
	if err := checkTenant(tenant); err != nil {
		return Reservation{}, err
	}
	if err := checkID(id); err != nil {
		return Reservation{}, err
	}
	return s.submit(ctx, &op{kind: opRelease, tenant: tenant, id: id})
}

func checkID(id string) error {
	if id == "" {
		return invalid("reservation_id", "is required")
	}
	return checkText("reservation_id", id)
}

// Reservation reads one reservation of tenant.
func (s *Service) Reservation(ctx context.Context, tenant, id string) (Reservation, error) {
	return s.store.Reservation(ctx, tenant, id)
}

// LedgerTotals sums a tenant's ledger: spent and released amounts.
func (s *Service) LedgerTotals(ctx context.Context, tenant string) (spent, released int64, err error) {
	return s.store.LedgerTotals(ctx, tenant)
}

// Sweep expires every held reservation past its ttl and reports how many.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		expired, err := s.store.Expired(ctx, s.cfg.Now(), 500)
		if err != nil {
			return total, err
		}
		if len(expired) == 0 {
			return total, nil
		}
		results := make([]chan opResult, len(expired))
		for i, r := range expired {
			o := &op{kind: opExpire, tenant: r.Tenant, id: r.ID, res: make(chan opResult, 1)}
			results[i] = o.res
			if err := s.enqueue(ctx, o); err != nil {
				return total, err
			}
		}
		n := 0
		for _, ch := range results {
			select {
			case res := <-ch:
				if res.err != nil {
					return total, res.err
				}
				if res.r.State == StateExpired {
					n++
				}
			case <-ctx.Done():
				return total, ctx.Err()
			}
		}
		total += n
		if n == 0 || len(expired) < 500 {
			return total, nil
		}
	}
}

func (s *Service) sweeper(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("sweeping expired reservations", "error", err)
			} else if n > 0 {
				s.log.Info("released expired reservations", "count", n)
			}
		}
	}
}

// Subscribe streams tenant's events (one scope's when scope is not nil)
// until the subscription is closed.
func (s *Service) Subscribe(tenant string, scope *Scope) *Subscription {
	return s.hub.subscribe(tenant, scope, 1024)
}
