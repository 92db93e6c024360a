package orchestrator

import (
	"crypto/rand"
	"encoding/hex"
)

// newID returns prefix_ and 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}
