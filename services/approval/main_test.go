package approval_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a watch, listener, sweeper, poller or server
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
