package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestFailureLimiterWindows(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newFailureLimiter(2, time.Minute)
	l.now = func() time.Time { return now }
	if _, b := l.blocked("10.0.0.1"); b {
		t.Fatal("an unknown address is blocked")
	}
	if l.fail("10.0.0.1") {
		t.Fatal("the first failure reported the block")
	}
	if !l.fail("10.0.0.1") {
		t.Fatal("the failure that used up the allowance did not report the block")
	}
	if l.fail("10.0.0.1") {
		t.Fatal("the block was reported twice")
	}
	now = now.Add(20 * time.Second)
	left, b := l.blocked("10.0.0.1")
	if !b || left != 40*time.Second {
		t.Fatalf("blocked = %v, %v; want true, 40s", b, left)
	}
	if _, b := l.blocked("10.0.0.2"); b {
		t.Fatal("another address is blocked")
	}
	now = now.Add(40 * time.Second)
	if _, b := l.blocked("10.0.0.1"); b {
		t.Fatal("still blocked after the window ended")
	}
	if l.fail("10.0.0.1") {
		t.Fatal("a new window started with the old count")
	}
}

func TestFailureLimiterOffAndBounded(t *testing.T) {
	off := newFailureLimiter(0, time.Minute)
	for range 100 {
		off.fail("10.0.0.1")
	}
	if _, b := off.blocked("10.0.0.1"); b {
		t.Fatal("a limit of 0 blocked")
	}
	now := time.Unix(1_700_000_000, 0)
	l := newFailureLimiter(5, time.Minute)
	l.now = func() time.Time { return now }
	for i := range maxTrackedPeers + 10 {
		l.fail(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if len(l.peers) > maxTrackedPeers {
		t.Fatalf("tracking %d addresses; the bound is %d", len(l.peers), maxTrackedPeers)
	}
}
