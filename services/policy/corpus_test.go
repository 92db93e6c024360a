package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/services/policy/analysis"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

func defaultPolicy(t testing.TB) *policydoc.Policy {
	t.Helper()
	pol, err := policydoc.LoadFile(filepath.Join("..", "..", "policies", "default.yaml"))
	require.NoError(t, err)
	return pol
}

func corpus(t *testing.T, dir string, min int) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.py"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), min, "corpus %s is too small", dir)
	return files
}

// TestAdversarialCorpus checks every known way around block-lists and
// sandbox checks ends in DENY or REVIEW under the default policy.
func TestAdversarialCorpus(t *testing.T) {
	t.Parallel()
	pol := defaultPolicy(t)
	for _, file := range corpus(t, "adversarial", 40) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			require.NoError(t, err)
			res, err := pol.Check(context.Background(), src, analysis.Options{})
			require.NoError(t, err)
			require.NotEqual(t, analysis.Allow, res.Verdict, "adversarial code was allowed")
			require.NotEmpty(t, res.Findings)
			for _, f := range res.Findings {
				require.Positive(t, f.Line, "finding %s has no line", f.RuleID)
				require.NotEmpty(t, f.Message)
				require.NotEmpty(t, f.FixHint)
			}
		})
	}
}

// TestBenignCorpus checks realistic small-business jobs are allowed.
func TestBenignCorpus(t *testing.T) {
	t.Parallel()
	pol := defaultPolicy(t)
	for _, file := range corpus(t, "benign", 30) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			require.NoError(t, err)
			res, err := pol.Check(context.Background(), src, analysis.Options{})
			require.NoError(t, err)
			require.Equal(t, analysis.Allow, res.Verdict, "benign job refused: %+v", res.Findings)
			require.Empty(t, res.Findings)
		})
	}
}
