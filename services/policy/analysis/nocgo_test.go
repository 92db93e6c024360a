//go:build !cgo

package analysis

import "testing"

// TestTreeSitterOracleNeedsCgo fails a cgo-less test run, which leaves out
// the differential tests against tree-sitter (a C library): run the tests
// with CGO_ENABLED=1 and gcc installed.
func TestTreeSitterOracleNeedsCgo(t *testing.T) {
	t.Fatal("the differential tests against tree-sitter need cgo: run go test with CGO_ENABLED=1 and a C compiler (gcc)")
}
