package generator_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a retry timer, HTTP connection or server
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
