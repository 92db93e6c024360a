// Package textcheck refuses short text fields that a database cannot store
// or a log line should not show.
package textcheck

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Check reports what is wrong with v as a single-line text of at most
// maxBytes bytes: too long, invalid UTF-8, or holding a control character
// (NUL, newline and the rest). The error reads after a field's name, as in
// "subject is longer than 256 bytes".
func Check(v string, maxBytes int) error {
	if len(v) > maxBytes {
		return fmt.Errorf("is longer than %d bytes", maxBytes)
	}
	if !utf8.ValidString(v) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("contains control character %U", r)
		}
	}
	return nil
}
