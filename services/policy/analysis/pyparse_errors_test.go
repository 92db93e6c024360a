package analysis

import (
	"context"
	"testing"
)

// TestSyntaxErrorPositions pins where a syntax error is reported: at the
// offending token with the rest of its line, or, where a token is missing
// at a line's end or the end of the input, after the last token with the
// snippet "missing token".
func TestSyntaxErrorPositions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		src       string
		line, col int
		snippet   string
	}{
		{"def broken(:\n    return 1\n", 1, 12, ":"},
		{"print 'x'\n", 1, 7, "'x'"},
		{"x = '\n", 1, 5, "'"},
		{"def f():\nreturn 1\n", 2, 1, "return 1"},
		{"a = [1, 2\nb = 3\n", 2, 1, "b = 3"},
		{"x = 1\nif x\n  pass\n", 2, 5, "missing token"},
		{"x = 1\ny = 2 +\n", 2, 8, "missing token"},
		{"x = (1,\n\n  \n", 1, 8, "missing token"},
		{"x = 1 +", 1, 8, "missing token"},
		{"x = 1 +\r\ny = 2\r\n", 1, 8, "missing token"},
		{"y = 1 $ 2\r\n", 1, 7, "$ 2"},
	} {
		f, err := Analyze(context.Background(), []byte(c.src), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.SyntaxErrors) != 1 {
			t.Errorf("%q: %d syntax errors, want 1", c.src, len(f.SyntaxErrors))
			continue
		}
		if e := f.SyntaxErrors[0]; e.Line != c.line || e.Column != c.col || e.Snippet != c.snippet {
			t.Errorf("%q: error at %d:%d %q, want %d:%d %q", c.src, e.Line, e.Column, e.Snippet, c.line, c.col, c.snippet)
		}
	}
}
