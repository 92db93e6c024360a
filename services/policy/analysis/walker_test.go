package analysis

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestWalkerNodeHelpers checks the walker's allocation-free node text and
// named-child iteration against plain reference versions (below) on every
// node of both corpora.
func TestWalkerNodeHelpers(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "*", "*.py"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	files = append(files, "") // plus a syntax error below
	for _, file := range files {
		src := []byte("def f(:\n  x = (1, # c\n  2)\n")
		if file != "" {
			src, err = os.ReadFile(file)
			require.NoError(t, err)
		}
		tr, err := parse(context.Background(), src, parseLimits{maxNodes: 400_000, maxDepth: 400, deadline: time.Now().Add(time.Minute)})
		require.NoError(t, err)
		w := newWalker(context.Background(), tr, newLineIndex(src), &Facts{}, time.Now().Add(time.Minute))
		for i := range tr.nodes {
			n := int32(i)
			require.Equal(t, refText(tr, n), w.text(n), "%s node %d", file, n)
			var got []int32
			for c := w.firstNamed(n); c >= 0; c = w.nextNamed(c) {
				got = append(got, c)
			}
			want := refNamedChildren(tr, n)
			require.Equal(t, want, got, "%s node %d", file, n)
			sole := int32(-1)
			if len(want) == 1 {
				sole = want[0]
			}
			require.Equal(t, sole, w.soleNamed(n), "%s node %d", file, n)
		}
	}
}

// refText is the source text of n, copied.
func refText(t *tree, n int32) string {
	nd := &t.nodes[n]
	return string(t.src[nd.start:nd.end])
}

// refNamedChildren lists the named, non-comment children of n.
func refNamedChildren(t *tree, n int32) []int32 {
	var out []int32
	for c := t.nodes[n].firstChild; c >= 0; c = t.nodes[c].nextSibling {
		if t.nodes[c].named && t.nodes[c].kind != kComment {
			out = append(out, c)
		}
	}
	return out
}

// TestLineIndex checks lines and columns against a count from the start
// of the source, for every pair of offsets in a text with multi-byte
// characters, blank lines and no final newline.
func TestLineIndex(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "\n", "a", "ab\n\ncé\nd€f\n\nx", "\n\nz\n"} {
		li := newLineIndex([]byte(src))
		naive := func(off int) (int, int) {
			off = min(off, len(src))
			line, col := 1, 1
			for _, r := range src[:off] {
				if r == '\n' {
					line, col = line+1, 1
				} else {
					col++
				}
			}
			return line, col
		}
		for start := 0; start <= len(src)+1; start++ {
			for end := 0; end <= len(src)+1; end++ {
				if !utf8.ValidString(src[:min(start, len(src))]) || !utf8.ValidString(src[:min(end, len(src))]) {
					continue
				}
				l, c := naive(start)
				el, ec := naive(end)
				require.Equal(t, Pos{Line: l, Column: c, EndLine: el, EndColumn: ec}, li.pos(start, end), "%q %d-%d", src, start, end)
			}
		}
	}
}
