package policydoc

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/services/policy/analysis"
)

const minimal = "id: p\nallowed_imports: [pandas]\n"

func TestParseDefaultPolicy(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"../../../policies/default.yaml", "../../../examples/policies/acme.yaml", "../../../examples/policies/default.yaml"} {
		p, err := LoadFile(file)
		require.NoError(t, err, file)
		require.NotEmpty(t, p.Config.AllowedImports)
		require.Len(t, p.Version, 64)
	}
	p, err := LoadFile("../../../policies/default.yaml")
	require.NoError(t, err)
	require.Equal(t, DefaultID, p.ID)
	require.Empty(t, p.Tenants)
	require.Equal(t, 60*time.Second, p.Limits.Timeout)
	require.Equal(t, int64(1<<30), p.Limits.MemoryBytes)
	require.Equal(t, analysis.Review, p.Config.Actions[analysis.RuleDelete])
	require.Equal(t, analysis.Deny, p.Config.Actions[analysis.RuleInputModified])

	// examples/policies is a complete policy directory: its default is a
	// copy of policies/default.yaml, so it must not drift from it.
	ex, err := LoadFile("../../../examples/policies/default.yaml")
	require.NoError(t, err)
	require.Equal(t, p.Version, ex.Version, "examples/policies/default.yaml differs from policies/default.yaml")
}

func TestParseFields(t *testing.T) {
	t.Parallel()
	src := `id: acme-data
description: test
tenants: [acme, beta]
allowed_imports: [pandas, os.path]
denied_calls: ["os.system", "subprocess.*"]
review_calls: [time.sleep]
paths:
  inputs: /in
  outputs: [/out]
  reads: [/in, /out]
actions:
  loop.unbounded: deny
deletions: deny
limits:
  timeout: 90s
  cpu_time: 1m
  memory: 512MiB
  max_processes: 8
  max_output_bytes: 10MB
  max_output_files: 5
  max_stdout_bytes: 4096
  max_stderr_bytes: 1KiB
cel_cost_limit: 5000
`
	p, err := Parse("acme.yaml", []byte(src))
	require.NoError(t, err)
	require.Equal(t, "acme-data", p.ID)
	require.Equal(t, []string{"acme", "beta"}, p.Tenants)
	require.Equal(t, []string{"pandas", "os.path"}, p.Config.AllowedImports)
	require.Equal(t, "/in", p.Config.InputRoot)
	require.Equal(t, []string{"/out"}, p.Config.WriteRoots)
	require.Equal(t, analysis.Deny, p.Config.Actions[analysis.RuleUnboundedLoop])
	require.Equal(t, analysis.Deny, p.Config.Actions[analysis.RuleDelete])
	require.Equal(t, Limits{Timeout: 90 * time.Second, CPUTime: time.Minute, MemoryBytes: 512 << 20, MaxProcesses: 8,
		MaxOutputBytes: 10_000_000, MaxOutputFiles: 5, MaxStdoutBytes: 4096, MaxStderrBytes: 1024}, p.Limits)
	require.Equal(t, uint64(5000), p.CostLimit)
	require.True(t, p.Usable("acme"))
	require.False(t, p.Usable("other"))

	p2, err := Parse("dir/from-name.yml", []byte("allowed_imports: [csv]\n"))
	require.NoError(t, err)
	require.Equal(t, "from-name", p2.ID, "a missing id defaults to the file name")
	require.NotEqual(t, p.Version, p2.Version)
}

// TestParseErrors checks a bad document is refused with the line and the
// field at fault.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, src string
		line      int
		field     string
		msg       string
	}{
		{"unknown top field", minimal + "alowed_calls: [x]\n", 3, "alowed_calls", "unknown field"},
		{"unknown nested field", minimal + "limits:\n  timeout: 5s\n  memroy: 1GiB\n", 5, "limits.memroy", "unknown field"},
		{"bad size", minimal + "limits:\n  memory: 12XB\n", 4, "limits.memory", "not a size"},
		{"negative size", minimal + "limits:\n  max_output_bytes: -5\n", 4, "limits.max_output_bytes", "not a size"},
		{"bad duration", minimal + "limits:\n  timeout: forever\n", 4, "limits.timeout", "not a duration"},
		{"zero processes", minimal + "limits:\n  max_processes: 0\n", 4, "limits.max_processes", "whole number"},
		{"bad action", minimal + "deletions: maybe\n", 3, "deletions", "not allow, review or deny"},
		{"unknown rule in actions", minimal + "actions:\n  io.nope: deny\n", 4, "actions.io.nope", "not a built-in rule"},
		{"list not scalar", "id: [a, b]\nallowed_imports: [pandas]\n", 1, "id", "want a single value"},
		{"scalar not list", "id: p\nallowed_imports: pandas\n", 2, "allowed_imports", "want a list"},
		{"bad module", "id: p\nallowed_imports:\n  - pandas\n  - 'os;rm'\n", 4, "allowed_imports[1]", "not a module name"},
		{"bad pattern", minimal + "denied_calls: ['os.[']\n", 3, "denied_calls[0]", "glob"},
		{"bad id", "id: Bad Id\nallowed_imports: [pandas]\n", 1, "id", "not a valid id"},
		{"duplicate key", "id: p\nid: q\nallowed_imports: [pandas]\n", 2, "id", "given twice"},
		{"relative path", minimal + "paths:\n  outputs: [out]\n", 4, "paths.outputs[0]", "absolute"},
		{"missing imports", "id: p\n", 1, "allowed_imports", "missing"},
		{"cel syntax", minimal + "rules:\n  - id: custom.x\n    message: m\n    over: calls\n    when: 'fact.name =='\n", 7, "rules[0].when", "CEL"},
		{"cel not bool", minimal + "rules:\n  - id: custom.x\n    message: m\n    when: '1 + 2'\n", 6, "rules[0].when", "want bool"},
		{"cel unknown var", minimal + "rules:\n  - id: custom.x\n    message: m\n    when: 'nope.x == 1'\n", 6, "rules[0].when", "CEL"},
		{"rule bad over", minimal + "rules:\n  - id: custom.x\n    over: files\n    message: m\n    when: 'true'\n", 5, "rules[0].over", "not one of"},
		{"rule bad id", minimal + "rules:\n  - id: x\n    message: m\n    when: 'true'\n", 4, "rules[0].id", "custom.name"},
		{"rule missing message", minimal + "rules:\n  - id: custom.x\n    when: 'true'\n", 4, "rules[0].message", "missing"},
		{"rule unknown field", minimal + "rules:\n  - id: custom.x\n    whenever: 'true'\n", 5, "rules[0].whenever", "unknown field"},
		{"yaml syntax", "id: p\nallowed_imports: [pandas]\nlimits:\n\ttimeout: 5s\n", 4, "", "YAML syntax"},
		{"yaml mapping", "id: p\nx: a: b\n", 2, "", "YAML syntax"},
		{"two documents", minimal + "---\nid: q\n", 3, "", "exactly one YAML document"},
		{"not a mapping", "- a\n- b\n", 1, "(document)", "want a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("bad.yaml", []byte(tc.src))
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			var ve *ValidationError
			require.True(t, errors.As(err, &ve))
			require.Equal(t, tc.line, ve.Line, "line of %v", err)
			require.Equal(t, tc.field, ve.Field, "field of %v", err)
			require.Contains(t, ve.Msg, tc.msg)
			require.True(t, strings.HasPrefix(err.Error(), "bad.yaml:"), err.Error())
		})
	}
	_, err := Parse("empty.yaml", []byte("# nothing\n"))
	require.ErrorIs(t, err, ErrInvalid)
}

func TestLoadFileTooLarge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "big.yaml")
	writeFile(t, file, minimal+"description: "+strings.Repeat("x", MaxDocumentBytes)+"\n")
	_, err := LoadFile(file)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestCustomRules(t *testing.T) {
	t.Parallel()
	src := `id: acme
allowed_imports: [requests, pandas]
rules:
  - id: custom.no_internal_admin
    over: calls
    when: 'fact.name == "requests.get" && fact.literal.size() > 0 && fact.args[0].startsWith("http://internal-admin")'
    message: no internal admin
    fix_hint: use the public API
  - id: custom.too_long
    when: 'facts.lines > 3'
    action: review
    severity: low
    message: long script
  - id: custom.writes_xlsx
    over: writes
    when: 'fact.known && fact.path.endsWith(".xlsx")'
    action: review
    message: writes a workbook
`
	p, err := Parse("acme.yaml", []byte(src))
	require.NoError(t, err)
	ctx := context.Background()

	res, err := p.Check(ctx, []byte("import requests\nrequests.get('https://api.example.com/prices')\n"), analysis.Options{})
	require.NoError(t, err)
	require.Equal(t, analysis.Allow, res.Verdict)

	res, err = p.Check(ctx, []byte("import requests\n\nrequests.get('http://internal-admin/users')\n"), analysis.Options{})
	require.NoError(t, err)
	require.Equal(t, analysis.Deny, res.Verdict)
	require.Equal(t, "custom.no_internal_admin", res.Findings[0].RuleID)
	require.Equal(t, 3, res.Findings[0].Line)
	require.Equal(t, "use the public API", res.Findings[0].FixHint)

	res, err = p.Check(ctx, []byte("import pandas as pd\na = 1\nb = 2\nc = 3\npd.DataFrame().to_excel('/data/out/a.xlsx')\n"), analysis.Options{})
	require.NoError(t, err)
	require.Equal(t, analysis.Review, res.Verdict)
	ids := []string{}
	for _, f := range res.Findings {
		ids = append(ids, f.RuleID)
	}
	require.ElementsMatch(t, []string{"custom.too_long", "custom.writes_xlsx"}, ids)
}

// TestCustomRuleCostBounded checks an expensive rule stops at its budget
// and fires rather than silently passing.
func TestCustomRuleCostBounded(t *testing.T) {
	t.Parallel()
	src := `id: costly
allowed_imports: [pandas]
cel_cost_limit: 2000
rules:
  - id: custom.expensive
    over: strings
    when: 'fact.value.size() > 0 && [1,2,3,4,5,6,7,8,9,10].all(i, [1,2,3,4,5,6,7,8,9,10].all(j, [1,2,3,4,5,6,7,8,9,10].all(k, i + j + k > 0))) && false'
    message: expensive
`
	p, err := Parse("costly.yaml", []byte(src))
	require.NoError(t, err)
	var code strings.Builder
	for i := 0; i < 50; i++ {
		code.WriteString("s = 'x'\n")
	}
	start := time.Now()
	res, err := p.Check(context.Background(), []byte(code.String()), analysis.Options{})
	require.NoError(t, err)
	require.NotEmpty(t, res.Findings, "a rule that runs out of budget must fire")
	require.Contains(t, res.Findings[0].Message, "cost limit exceeded")
	require.Equal(t, analysis.Deny, res.Verdict)
	t.Logf("bounded evaluation took %s", time.Since(start))
}
