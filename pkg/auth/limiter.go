package auth

import (
	"context"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/peer"
)

// Defaults of the failed-authentication limit: an address that presents
// this many invalid credentials within the window is refused, without its
// credentials being checked, until the window ends. Guessing key ids then
// costs an attacker a window per few dozen tries, and costs the key store a
// few dozen reads, instead of one read per try.
const (
	DefaultMaxFailures   = 30
	DefaultFailureWindow = time.Minute
	// maxTrackedPeers bounds the limiter's memory; past it, finished windows
	// are dropped, and if none has finished the table starts afresh.
	maxTrackedPeers = 10000
)

// failureLimiter counts failed authentications per peer address in fixed windows.
type failureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	peers map[string]*failureWindow
}

type failureWindow struct {
	start time.Time
	count int
}

func newFailureLimiter(max int, window time.Duration) *failureLimiter {
	return &failureLimiter{max: max, window: window, now: time.Now, peers: map[string]*failureWindow{}}
}

// blocked reports whether addr used up its failures in the current window,
// and how long until the window ends.
func (l *failureLimiter) blocked(addr string) (time.Duration, bool) {
	if l == nil || l.max <= 0 {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.peers[addr]
	if !ok {
		return 0, false
	}
	left := l.window - l.now().Sub(w.start)
	if left <= 0 {
		delete(l.peers, addr)
		return 0, false
	}
	return left, w.count >= l.max
}

// fail counts one failed authentication of addr; it reports true when this
// failure used up addr's allowance, so the caller logs the block once.
func (l *failureLimiter) fail(addr string) bool {
	if l == nil || l.max <= 0 {
		return false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.peers[addr]
	if !ok || now.Sub(w.start) >= l.window {
		if !ok && len(l.peers) >= maxTrackedPeers {
			l.prune(now)
		}
		w = &failureWindow{start: now}
		l.peers[addr] = w
	}
	w.count++
	return w.count == l.max
}

func (l *failureLimiter) prune(now time.Time) {
	for a, w := range l.peers {
		if now.Sub(w.start) >= l.window {
			delete(l.peers, a)
		}
	}
	if len(l.peers) >= maxTrackedPeers {
		l.peers = map[string]*failureWindow{}
	}
}

// peerAddress is the caller's IP address (without its port, which changes
// with every connection), or the whole address for non-IP transports.
func peerAddress(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	s := p.Addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}
