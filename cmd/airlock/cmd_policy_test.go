package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// runPolicyCheck runs `airlock policy check` and returns its exit code and
// standard output.
func runPolicyCheck(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"policy", "check"}, args...), &out, &errb)
	if err == nil {
		return 0, out.String()
	}
	var ee *exitError
	require.True(t, errors.As(err, &ee), "unexpected error %v", err)
	return ee.code, out.String() + ee.msg
}

func TestPolicyCheckExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	policy := filepath.Join("..", "..", "policies", "default.yaml")
	allow := write("allow.py", "import pandas as pd\npd.read_csv('/data/in/a.csv').to_csv('/data/out/a.csv')\n")
	review := write("review.py", "while True:\n    pass\n")
	deny := write("deny.py", "import os\nos.system('id')\n")

	code, out := runPolicyCheck(t, allow, "--policy", policy)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "ALLOW")
	code, out = runPolicyCheck(t, review, "--policy", policy)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "loop.unbounded")
	code, out = runPolicyCheck(t, deny, "--policy", policy)
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "deny.py:2:1: DENY call.system")
	require.Contains(t, out, "fix:")

	code, out = runPolicyCheck(t, deny, "--policy", policy, "--json")
	require.Equal(t, 2, code)
	var resp struct {
		Verdict       string `json:"verdict"`
		PolicyID      string `json:"policyId"`
		PolicyVersion string `json:"policyVersion"`
		Findings      []struct {
			RuleID string `json:"ruleId"`
			Line   int    `json:"line"`
		} `json:"findings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
	require.Equal(t, "VERDICT_DENY", resp.Verdict)
	require.Equal(t, "default", resp.PolicyID)
	require.Len(t, resp.PolicyVersion, 64)
	require.Equal(t, "call.system", resp.Findings[0].RuleID)
	require.Equal(t, 2, resp.Findings[0].Line)

	bad := write("bad.yaml", "id: bad\nallowed_imports: [pandas]\nlimits:\n  memory: lots\n")
	code, out = runPolicyCheck(t, allow, "--policy", bad)
	require.Equal(t, exitPolicyError, code)
	require.Contains(t, out, "bad.yaml:4:")
	require.Contains(t, out, "limits.memory")
	code, _ = runPolicyCheck(t, filepath.Join(dir, "missing.py"), "--policy", policy)
	require.Equal(t, exitPolicyError, code)
	code, _ = runPolicyCheck(t)
	require.Equal(t, exitPolicyError, code, "a usage error must not look like REVIEW")
	code, _ = runPolicyCheck(t, allow, "--no-such-flag")
	require.Equal(t, exitPolicyError, code)
}
