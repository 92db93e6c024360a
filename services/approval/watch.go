package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
)

// ErrWatchLagged ends a watch whose reader fell too far behind; the client
// watches again (and lists, to catch up).
var ErrWatchLagged = errors.New("watcher fell behind; watch again")

// ErrShuttingDown ends every watch when the server stops; the client
// watches again, on this replica once it is back or on another.
var ErrShuttingDown = errors.New("the approval service is shutting down; watch again")

// watchBuffer is how many changes a watcher may have unread before it is cut off.
const watchBuffer = 256

// Subscription receives the changes one watcher may see.
type Subscription struct {
	// C delivers each changed request as it is after the change.
	C <-chan Approval

	c         chan Approval
	done      chan struct{}
	err       error
	tenant    string
	id        string
	requester string
	lastID    string
	lastState State
	hub       *hub
}

// Done is closed when the subscription ends on the server's side; Err says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended, once Done is closed.
func (s *Subscription) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() { s.hub.remove(s, nil) }

// hub fans changes out to this process's watchers.
type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	kickc  chan struct{}
}

func newHub() *hub { return &hub{subs: map[*Subscription]struct{}{}, kickc: make(chan struct{}, 1)} }

// kick tells the SQLite poller a local write just committed.
func (h *hub) kick() {
	select {
	case h.kickc <- struct{}{}:
	default:
	}
}

func (h *hub) add(s *Subscription) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrShuttingDown
	}
	h.subs[s] = struct{}{}
	return nil
}

// closeAll ends every subscription with err and refuses new ones.
func (h *hub) closeAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		s.err = err
		close(s.done)
	}
}

func (h *hub) remove(s *Subscription, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.err = err
	close(s.done)
}

func (h *hub) publish(a Approval) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.tenant != a.Tenant || (s.id != "" && s.id != a.ID) || (s.requester != "" && s.requester != a.Requester) {
			continue
		}
		h.send(s, a)
	}
}

// deliver sends a to one subscriber only.
func (h *hub) deliver(s *Subscription, a Approval) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		h.send(s, a)
	}
}

// send needs h.mu held.
func (h *hub) send(s *Subscription, a Approval) {
	if s.lastID == a.ID && s.lastState == a.State {
		return // two notices of one change collapse into one message
	}
	select {
	case s.c <- a:
		s.lastID, s.lastState = a.ID, a.State
	default:
		delete(h.subs, s)
		s.err = ErrWatchLagged
		close(s.done)
	}
}

// Subscribe starts a watch of p's tenant's requests, or of one request when
// id is set (ErrNotFound when p cannot see it). A plain user sees only their
// own requests. For one request, its current state is delivered first.
func (s *Service) Subscribe(ctx context.Context, p auth.Principal, id string) (*Subscription, error) {
	sub := &Subscription{c: make(chan Approval, watchBuffer), done: make(chan struct{}), tenant: p.Tenant, id: id, hub: s.hub}
	sub.C = sub.c
	if !seesAll(p) {
		sub.requester = p.Subject
	}
	if id == "" {
		if err := s.hub.add(sub); err != nil {
			return nil, err
		}
		return sub, nil
	}
	if _, err := s.Get(ctx, p, id); err != nil {
		return nil, err
	}
	// Subscribe before reading the snapshot, so no change falls in between.
	if err := s.hub.add(sub); err != nil {
		return nil, err
	}
	a, err := s.Get(ctx, p, id)
	if err != nil {
		sub.Close()
		return nil, err
	}
	s.hub.deliver(sub, a)
	return sub, nil
}

// Start runs the service's background work until ctx ends or stop is
// called: the expiry sweeper and the change feed that drives watchers. When
// ctx ends, every watch ends with ErrShuttingDown. On
// Postgres the feed LISTENs on a dedicated connection, so every replica sees
// every replica's changes; Start returns once it listens. On SQLite it polls
// the trail (immediately after a local write, and every PollInterval for
// other processes sharing the file).
func (s *Service) Start(ctx context.Context, db *database.DB) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	var conn *pgx.Conn
	if db.Dialect == database.Postgres {
		s.usesListener.Store(true)
		// The pool's own connection settings (TLS, timeouts), minus pool-only options.
		connCfg := db.Pool.Config().ConnConfig
		if conn, err = listen(ctx, connCfg); err != nil {
			cancel()
			return nil, err
		}
	}
	// Read the position after LISTEN, so a change is either before it or heard.
	pos, err := s.store.LastChange(ctx)
	if err != nil {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
		cancel()
		return nil, fmt.Errorf("%w (has `airlock migrate` been run on this database?)", err)
	}
	if conn != nil {
		s.listening.Store(true)
		connCfg := db.Pool.Config().ConnConfig
		wg.Go(func() { s.listenLoop(ctx, connCfg, conn, pos) })
	} else {
		wg.Go(func() { s.pollLoop(ctx, pos) })
	}
	wg.Go(func() { s.sweepLoop(ctx) })
	// Watches are endless streams: end them when the service stops, or they
	// would hold a graceful shutdown until its timeout.
	wg.Go(func() {
		<-ctx.Done()
		s.hub.closeAll(ErrShuttingDown)
	})
	return stop, nil
}

// FeedHealth reports whether watchers hear every replica's changes: on
// Postgres, whether the LISTEN connection is up. It is a health check.
func (s *Service) FeedHealth(context.Context) error {
	if s.usesListener.Load() && !s.listening.Load() {
		return errors.New("the approval change listener is reconnecting; watchers may miss changes until it is back")
	}
	return nil
}

func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		if n, err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "expiring approval requests", "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "expired approval requests", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func listen(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("connecting the approval change listener: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("listening for approval changes: %w", err)
	}
	return conn, nil
}

// listenLoop publishes every change NOTIFYed by any replica. After a lost
// connection it reconnects and catches up from the trail.
func (s *Service) listenLoop(ctx context.Context, cfg *pgx.ConnConfig, conn *pgx.Conn, last int64) {
	backoff := 100 * time.Millisecond
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.WithoutCancel(ctx))
				conn = nil
				s.listening.Store(false)
				if ctx.Err() != nil {
					return
				}
				s.log.WarnContext(ctx, "approval change listener lost its connection", "error", err)
				break
			}
			var msg notification
			if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil {
				s.log.WarnContext(ctx, "ignoring malformed approval notification", "payload", n.Payload)
				continue
			}
			last = max(last, msg.Pos)
			s.publishChange(ctx, Change{Pos: msg.Pos, Key: Key{Tenant: msg.Tenant, ID: msg.ID}})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
		c, err := listen(ctx, cfg)
		if err != nil {
			s.log.WarnContext(ctx, "reconnecting the approval change listener", "error", err)
			continue
		}
		conn, backoff = c, 100*time.Millisecond
		s.listening.Store(true)
		last = s.catchUp(ctx, last)
	}
}

// catchUp publishes changes stored after pos and returns the new position.
func (s *Service) catchUp(ctx context.Context, pos int64) int64 {
	for {
		chs, err := s.store.Changes(ctx, pos, 500)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "reading approval changes", "error", err)
			}
			return pos
		}
		for _, c := range chs {
			s.publishChange(ctx, c)
			pos = c.Pos
		}
		if len(chs) < 500 {
			return pos
		}
	}
}

func (s *Service) pollLoop(ctx context.Context, pos int64) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.hub.kickc:
		}
		pos = s.catchUp(ctx, pos)
	}
}

func (s *Service) publishChange(ctx context.Context, c Change) {
	a, err := s.store.Get(ctx, c.Tenant, c.ID)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "reading changed approval request", "approval_id", c.ID, "error", err)
		}
		return
	}
	s.hub.publish(a)
}
