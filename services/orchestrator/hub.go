package orchestrator

import (
	"sync"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
)

// Event is something that happened to a run, for watchers.
type Event struct {
	// Transition is set for a state change; the watcher re-reads the run.
	Transition *Transition
	// Output is set for a piece of execution output.
	Output *executorv1.OutputChunk
	// Changed is set when the run changed without changing state (an approval id).
	Changed bool
}

// hub fans a run's events out to its watchers in this process. Transitions
// are also in the store, so a watcher that misses one (a full buffer, another
// replica) catches up by reading them; output chunks are best effort.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan Event]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan Event]struct{}{}} }

func (h *hub) subscribe(runID string) (<-chan Event, func()) {
	ch := make(chan Event, 256)
	h.mu.Lock()
	if h.subs[runID] == nil {
		h.subs[runID] = map[chan Event]struct{}{}
	}
	h.subs[runID][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[runID], ch)
		if len(h.subs[runID]) == 0 {
			delete(h.subs, runID)
		}
		h.mu.Unlock()
	}
}

func (h *hub) publish(runID string, ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[runID] {
		select {
		case ch <- ev:
		default: // a slow watcher loses output; it re-reads transitions from the store
		}
	}
}
