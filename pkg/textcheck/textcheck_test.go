package textcheck

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"acme", ""},
		{"", ""},
		{"Zoë 東", ""},
		{strings.Repeat("a", 8), ""},
		{strings.Repeat("a", 9), "is longer than 8 bytes"},
		{"a\xffb", "is not valid UTF-8"},
		{"a\x00b", "contains control character U+0000"},
		{"a\nb", "contains control character U+000A"},
		{"bell\u0085", "contains control character U+0085"},
	} {
		err := Check(tc.in, 8)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Check(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
