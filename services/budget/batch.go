package budget

import (
	"context"
	"fmt"
	"time"
)

type opKind int

const (
	opReserve opKind = iota + 1
	opCommit
	opRelease
	opExpire
)

// op is one request waiting for a batch transaction.
type op struct {
	kind    opKind
	ctx     context.Context
	tenant  string
	reserve ReserveRequest
	hash    string
	id      string
	actual  int64
	res     chan opResult
}

type opResult struct {
	r   Reservation
	err error
}

func (s *Service) enqueue(ctx context.Context, o *op) error {
	o.ctx = ctx
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	select {
	case s.ops <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return ErrClosed
	}
}

func (s *Service) submit(ctx context.Context, o *op) (Reservation, error) {
	o.res = make(chan opResult, 1)
	if err := s.enqueue(ctx, o); err != nil {
		return Reservation{}, err
	}
	select {
	case r := <-o.res:
		return r.r, r.err
	case <-ctx.Done():
		// The request may still be applied; a retry with the same key or
		// reservation id finds out how it went.
		return Reservation{}, ctx.Err()
	}
}

// worker takes whatever requests are waiting, up to BatchSize, and applies
// them in one transaction: one fsync for the lot. This is what lets one hot
// budget go past the one-transaction-per-request ceiling.
func (s *Service) worker(ctx context.Context) {
	defer s.wg.Done()
	for {
		var first *op
		select {
		case <-s.quit:
			return
		case first = <-s.ops:
		}
		batch := []*op{first}
	drain:
		for len(batch) < s.cfg.BatchSize {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.run(ctx, batch)
	}
}

// run applies batch and answers every request in it. When the shared
// transaction fails for a reason other than contention, each request is
// tried alone so one bad request cannot fail its neighbours.
func (s *Service) run(ctx context.Context, batch []*op) {
	live := batch[:0]
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.res <- opResult{err: err}
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	err := s.runTx(ctx, live)
	if err == nil || ctx.Err() != nil {
		if err != nil {
			for _, o := range live {
				o.res <- opResult{err: ErrClosed}
			}
		}
		return
	}
	if len(live) == 1 {
		s.log.Error("budget transaction failed", "error", err)
		live[0].res <- opResult{err: err}
		return
	}
	s.log.Warn("budget batch failed; applying its requests one by one", "size", len(live), "error", err)
	for _, o := range live {
		if err := s.runTx(ctx, []*op{o}); err != nil {
			s.log.Error("budget transaction failed", "error", err)
			o.res <- opResult{err: err}
		}
	}
}

// runTx applies ops in one transaction and, once it committed, answers them
// and publishes their events.
func (s *Service) runTx(ctx context.Context, ops []*op) error {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var results []opResult
	var events []Event
	err := s.store.InTx(tctx, func(tx Tx) error {
		a, err := s.apply(tctx, tx, s.cfg.Now(), ops)
		if err != nil {
			return err
		}
		results, events = a.results, a.writes.Events
		return tx.Write(tctx, &a.writes)
	})
	if err != nil {
		return err
	}
	for i, o := range ops {
		o.res <- results[i]
	}
	if s.localEvents {
		for _, e := range events {
			s.hub.publish(e)
		}
	}
	return nil
}

// applied is the outcome of a batch before it is written.
type applied struct {
	results []opResult
	writes  Writes
}

// batchState is what a batch transaction has read and changed.
type batchState struct {
	now      time.Time
	budgets  map[Key]*Budget
	dirty    map[Key]bool
	byID     map[string]*Reservation
	byKey    map[IdemKey]*Reservation
	created  []*Reservation
	settled  []*Reservation
	isNew    map[string]bool
	isSettle map[string]bool
	ledger   []LedgerEntry
	events   []Event
}

func (s *Service) apply(ctx context.Context, tx Tx, now time.Time, ops []*op) (*applied, error) {
	var ids []string
	var idem []IdemKey
	keys := map[Key]bool{}
	for _, o := range ops {
		if o.kind == opReserve {
			idem = append(idem, IdemKey{Tenant: o.tenant, Key: o.reserve.IdempotencyKey})
			for _, sc := range o.reserve.Scopes {
				keys[Key{Tenant: o.tenant, Scope: sc}] = true
			}
		} else {
			ids = append(ids, o.id)
		}
	}
	st := &batchState{now: now, budgets: map[Key]*Budget{}, dirty: map[Key]bool{},
		byID: map[string]*Reservation{}, byKey: map[IdemKey]*Reservation{},
		isNew: map[string]bool{}, isSettle: map[string]bool{}}
	keyList := make([]Key, 0, len(keys))
	for k := range keys {
		keyList = append(keyList, k)
	}
	loaded, err := tx.Load(ctx, LoadSpec{Keys: keyList, IDs: dedupe(ids), IdemKeys: dedupe(idem)})
	if err != nil {
		return nil, err
	}
	for id, r := range loaded.Reservations {
		r := r
		st.byID[id] = &r
	}
	for k, r := range loaded.ByKey {
		r := r
		if cur, ok := st.byID[r.ID]; ok {
			st.byKey[k] = cur
		} else {
			st.byKey[k] = &r
		}
	}
	for k, b := range loaded.Budgets {
		b := b
		if b.roll(now) {
			st.dirty[k] = true
		}
		st.budgets[k] = &b
	}

	out := &applied{results: make([]opResult, len(ops))}
	for i, o := range ops {
		var r Reservation
		var err error
		switch o.kind {
		case opReserve:
			r, err = st.reserve(o)
		case opCommit:
			r, err = st.commit(o)
		case opRelease:
			r, err = st.release(o)
		case opExpire:
			r, err = st.expire(o)
		}
		out.results[i] = opResult{r: r, err: err}
	}
	for k := range st.dirty {
		b := st.budgets[k]
		b.UpdatedAt = now
		out.writes.Budgets = append(out.writes.Budgets, *b)
	}
	for _, r := range st.created {
		out.writes.NewReservations = append(out.writes.NewReservations, *r)
	}
	for _, r := range st.settled {
		out.writes.Settled = append(out.writes.Settled, *r)
	}
	out.writes.Ledger, out.writes.Events = st.ledger, st.events
	return out, nil
}

func dedupe[T comparable](in []T) []T {
	seen := make(map[T]bool, len(in))
	out := in[:0:0]
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func (st *batchState) event(r *Reservation, kind EventKind, scope Scope, threshold int32, amount int64, msg string) {
	e := Event{ID: newID("evt_"), Tenant: r.Tenant, Kind: kind, Scope: scope, Threshold: threshold,
		Amount: amount, ReservationID: r.ID, Message: msg, At: st.now}
	st.events = append(st.events, e)
}

func (st *batchState) reserve(o *op) (Reservation, error) {
	req := &o.reserve
	ik := IdemKey{Tenant: o.tenant, Key: req.IdempotencyKey}
	if r, ok := st.byKey[ik]; ok {
		if r.RequestHash != o.hash {
			return Reservation{}, ErrIdempotencyConflict
		}
		return *r, nil
	}
	var held []*Budget
	for _, sc := range req.Scopes {
		b, ok := st.budgets[Key{Tenant: o.tenant, Scope: sc}]
		if !ok {
			continue // no budget: unlimited, nothing to hold
		}
		if b.Limit-b.Spent-b.Reserved < req.Amount {
			qe := &QuotaError{Scope: sc, Limit: b.Limit, Spent: b.Spent, Reserved: b.Reserved, Requested: req.Amount}
			if !b.HardStopped {
				b.HardStopped = true
				st.dirty[b.Key] = true
				st.event(&Reservation{Tenant: o.tenant}, EventHardStop, sc, 0, req.Amount,
					fmt.Sprintf("%s budget refused a reservation of %d micro-dollars: limit %d, spent %d, reserved %d",
						sc, req.Amount, b.Limit, b.Spent, b.Reserved))
			}
			return Reservation{}, qe
		}
		held = append(held, b)
	}
	r := &Reservation{
		ID: newID("res_"), Tenant: o.tenant, IdempotencyKey: req.IdempotencyKey, RequestHash: o.hash,
		Amount: req.Amount, State: StateHeld, Kind: req.Kind, Model: req.Model, RunID: req.RunID,
		CreatedAt: st.now, ExpiresAt: st.now.Add(req.TTL),
	}
	for _, sc := range req.Scopes {
		if sc.Kind == ScopeTenant {
			r.ScopeTenant = true
		} else {
			r.ScopeUser = sc.Subject
		}
	}
	for _, b := range held {
		b.Reserved += req.Amount
		st.dirty[b.Key] = true
		if b.Scope.Kind == ScopeTenant {
			r.HeldTenant = true
		} else {
			r.HeldUser = true
		}
	}
	st.byID[r.ID], st.byKey[ik] = r, r
	st.created = append(st.created, r)
	st.isNew[r.ID] = true
	return *r, nil
}

// lookup finds o's reservation in o's tenant: a foreign one is not found.
func (st *batchState) lookup(o *op) (*Reservation, error) {
	r, ok := st.byID[o.id]
	if !ok || r.Tenant != o.tenant {
		return nil, ErrNotFound
	}
	return r, nil
}

// free takes r's held amount off the budgets that hold it.
func (st *batchState) free(r *Reservation) {
	for _, k := range r.keys() {
		if (k.Scope.Kind == ScopeTenant && !r.HeldTenant) || (k.Scope.Kind == ScopeUser && !r.HeldUser) {
			continue
		}
		if b, ok := st.budgets[k]; ok {
			b.Reserved -= r.Amount
			if b.Reserved < 0 {
				b.Reserved = 0 // never: held amounts are added and removed together
			}
			st.dirty[k] = true
		}
	}
}

func (st *batchState) settle(r *Reservation, state State, actual int64) {
	r.State, r.Actual, r.SettledAt = state, actual, st.now
	if !st.isNew[r.ID] && !st.isSettle[r.ID] {
		st.isSettle[r.ID] = true
		st.settled = append(st.settled, r)
	}
}

func (st *batchState) ledgerEntry(r *Reservation, kind LedgerKind, amount, released int64) {
	st.ledger = append(st.ledger, LedgerEntry{Tenant: r.Tenant, ReservationID: r.ID, Entry: kind,
		ScopeTenant: r.ScopeTenant, ScopeUser: r.ScopeUser, Kind: r.Kind, Model: r.Model,
		Amount: amount, Released: released, At: st.now})
}

func (st *batchState) commit(o *op) (Reservation, error) {
	r, err := st.lookup(o)
	if err != nil {
		return Reservation{}, err
	}
	switch r.State {
	case StateCommitted:
		if r.Actual != o.actual {
			return Reservation{}, ErrIdempotencyConflict
		}
		return *r, nil
	case StateReleased:
		return Reservation{}, fmt.Errorf("%w: it was released", ErrNotHeld)
	}
	late := r.State == StateExpired
	var released int64
	if !late {
		st.free(r)
		released = max(r.Amount-o.actual, 0)
	}
	st.settle(r, StateCommitted, o.actual)
	st.ledgerEntry(r, LedgerCommit, o.actual, released)
	for _, k := range r.keys() {
		if b, ok := st.budgets[k]; ok && o.actual > 0 {
			b.Spent += o.actual
			st.dirty[k] = true
			b.markCrossed(st, r)
		}
		switch {
		case late:
			st.event(r, EventOverage, k.Scope, 0, o.actual, fmt.Sprintf(
				"reservation %s was committed with %d micro-dollars after it expired", r.ID, o.actual))
		case o.actual > r.Amount:
			st.event(r, EventOverage, k.Scope, 0, o.actual-r.Amount, fmt.Sprintf(
				"reservation %s of %d micro-dollars was committed with %d", r.ID, r.Amount, o.actual))
		}
	}
	return *r, nil
}

func (st *batchState) release(o *op) (Reservation, error) {
	r, err := st.lookup(o)
	if err != nil {
		return Reservation{}, err
	}
	switch r.State {
	case StateReleased, StateExpired:
		return *r, nil
	case StateCommitted:
		return Reservation{}, fmt.Errorf("%w: it was committed", ErrNotHeld)
	}
	st.free(r)
	st.settle(r, StateReleased, 0)
	st.ledgerEntry(r, LedgerRelease, 0, r.Amount)
	return *r, nil
}

func (st *batchState) expire(o *op) (Reservation, error) {
	r, err := st.lookup(o)
	if err != nil {
		return Reservation{}, err
	}
	if r.State != StateHeld || r.ExpiresAt.After(st.now) {
		return *r, nil // settled or renewed meanwhile
	}
	st.free(r)
	st.settle(r, StateExpired, 0)
	st.ledgerEntry(r, LedgerExpiry, 0, r.Amount)
	for _, k := range r.keys() {
		st.event(r, EventExpiry, k.Scope, 0, r.Amount, fmt.Sprintf(
			"reservation %s of %d micro-dollars expired unsettled and was released", r.ID, r.Amount))
	}
	return *r, nil
}

// markCrossed marks every threshold b's spend has reached as fired; with st
// set it also raises a THRESHOLD event for each one not fired before.
func (b *Budget) markCrossed(st *batchState, r *Reservation) {
	if b.Spent <= 0 {
		return
	}
	for _, t := range b.Thresholds {
		if t <= b.FiredPercent {
			continue
		}
		need := (int64(t)*b.Limit + 99) / 100 // spend at which t% is reached, rounded up
		if b.Spent < need {
			break
		}
		b.FiredPercent = t
		if st != nil {
			st.event(r, EventThreshold, b.Scope, t, b.Spent, fmt.Sprintf(
				"%s budget reached %d%% of its limit: spent %d of %d micro-dollars", b.Scope, t, b.Spent, b.Limit))
		}
	}
}
