package budget

import (
	"sync"
)

// hub fans events out to in-process subscribers. A subscriber that falls
// more than its buffer behind is dropped (its channel closed with lagged
// set) rather than slowing every writer down.
type hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscription receives the events of one tenant.
type Subscription struct {
	// C delivers events; it is closed when the subscription ends.
	C      chan Event
	tenant string
	scope  *Scope
	h      *hub
	lagged bool
	closed bool
}

// Lagged reports whether the subscription was dropped for falling behind.
func (s *Subscription) Lagged() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.lagged
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.closeLocked(s)
}

func newHub() *hub { return &hub{subs: map[*Subscription]struct{}{}} }

func (h *hub) subscribe(tenant string, scope *Scope, buffer int) *Subscription {
	s := &Subscription{C: make(chan Event, buffer), tenant: tenant, scope: scope, h: h}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) closeLocked(s *Subscription) {
	if s.closed {
		return
	}
	s.closed = true
	delete(h.subs, s)
	close(s.C)
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.tenant != e.Tenant || (s.scope != nil && *s.scope != e.Scope) {
			continue
		}
		select {
		case s.C <- e:
		default:
			s.lagged = true
			h.closeLocked(s)
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.closeLocked(s)
	}
}
