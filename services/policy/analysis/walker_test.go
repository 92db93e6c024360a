package analysis

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWalkerNodeHelpers checks the walker's allocation-free node text and
// named-child iteration against the tree's own helpers on every node of
// both corpora.
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
			require.Equal(t, tr.text(n), w.text(n), "%s node %d", file, n)
			var got []int32
			for c := w.firstNamed(n); c >= 0; c = w.nextNamed(c) {
				got = append(got, c)
			}
			want := tr.namedChildren(n)
			require.Equal(t, want, got, "%s node %d", file, n)
			sole := int32(-1)
			if len(want) == 1 {
				sole = want[0]
			}
			require.Equal(t, sole, w.soleNamed(n), "%s node %d", file, n)
		}
	}
}
