package policy

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/services/policy/analysis"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/findings.golden")

// TestCorpusFindingsGolden pins every finding (rule, place, snippet,
// message, hint, order) and the verdict for each corpus file under the
// default policy, under a policy with CEL rules over every kind of fact
// and under one whose CEL budget runs out, so a change to the parser, the
// fact extraction or the rules that alters any of them shows up as a diff.
func TestCorpusFindingsGolden(t *testing.T) {
	t.Parallel()
	pols := []*policydoc.Policy{defaultPolicy(t)}
	for _, name := range []string{"allkinds.yaml", "costly.yaml"} {
		pol, err := policydoc.LoadFile(filepath.Join("testdata", "golden", name))
		require.NoError(t, err)
		pols = append(pols, pol)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.py"))
	require.NoError(t, err)
	require.Greater(t, len(files), 70)
	var b strings.Builder
	for _, file := range files {
		src, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, pol := range pols {
			res, err := pol.Check(context.Background(), src, analysis.Options{})
			require.NoError(t, err)
			fmt.Fprintf(&b, "%s [%s] %s\n", filepath.ToSlash(file), pol.ID, res.Verdict)
			for _, f := range res.Findings {
				fmt.Fprintf(&b, "  %d:%d-%d:%d %s %s %s %q\n    %q\n    %q\n", f.Line, f.Column, f.EndLine, f.EndColumn,
					f.RuleID, f.Severity, f.Action, f.Snippet, f.Message, f.FixHint)
			}
		}
	}
	got := b.String()
	path := filepath.Join("testdata", "golden", "findings.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./services/policy -run Golden -update to create %s", path)
	require.Equal(t, string(want), got, "findings changed; if on purpose, run go test ./services/policy -run Golden -update and review the diff")
}
