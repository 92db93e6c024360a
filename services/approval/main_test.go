package approval_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a watch, listener, sweeper or server
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's opener for pools closed by dbtest's cleanup may still be winding down.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}
