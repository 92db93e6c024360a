package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	"github.com/airlockhq/airlock/pkg/config"
)

func TestExecCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "job.py")
	require.NoError(t, os.WriteFile(script, []byte(`import pandas as pd
df = pd.read_csv("/data/in/sales.csv")
print(int(df.revenue.sum()))
df.to_excel("/data/out/sales.xlsx", index=False)
`), 0o644))
	csv := filepath.Join(dir, "sales.csv")
	require.NoError(t, os.WriteFile(csv, []byte("customer,revenue\nacme,100\nglobex,23\n"), 0o644))
	out := filepath.Join(dir, "out")

	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"exec", script, "--input", csv, "--out", out, "--memory", "512MiB", "--timeout", "60s"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	require.Equal(t, "123\n", stdout.String())
	require.Contains(t, stderr.String(), "EXITED")
	b, err := os.ReadFile(filepath.Join(out, "sales.xlsx"))
	require.NoError(t, err)
	require.Equal(t, []byte("PK"), b[:2], "an XLSX (zip) file")

	stdout.Reset()
	stderr.Reset()
	err = run(context.Background(), []string{"exec", script, "--input", csv, "--json", "--timeout", "60s"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	var res executorv1.ExecutionResult
	require.NoError(t, protojson.Unmarshal(stdout.Bytes(), &res), stdout.String())
	require.Equal(t, executorv1.TerminationReason_TERMINATION_REASON_EXITED, res.GetTerminationReason())
	require.Equal(t, "123\n", string(res.GetStdout()))
	require.Len(t, res.GetOutputFiles(), 1)
}

func TestExecCommandLimitsAndErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow.py")
	require.NoError(t, os.WriteFile(slow, []byte("import time\ntime.sleep(30)\n"), 0o644))
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"exec", slow, "--timeout", "500ms"}, &stdout, &stderr)
	var ee *exitError
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Equal(t, execExitTimeout, ee.code)
	require.Contains(t, stderr.String(), "TIMEOUT")

	fail := filepath.Join(dir, "fail.py")
	require.NoError(t, os.WriteFile(fail, []byte("raise SystemExit(7)\n"), 0o644))
	err = run(context.Background(), []string{"exec", fail}, &stdout, &stderr)
	require.True(t, errors.As(err, &ee))
	require.Equal(t, 7, ee.code)

	for _, tc := range []struct{ args []string }{
		{[]string{"exec", fail, "--memory", "lots"}},
		{[]string{"exec", fail, "--memory", "64GiB"}},
		{[]string{"exec", fail, "--input", filepath.Join(dir, "missing.csv")}},
		{[]string{"exec", filepath.Join(dir, "missing.py")}},
	} {
		err := run(context.Background(), tc.args, &stdout, &stderr)
		require.Error(t, err, "%v", tc.args)
		require.False(t, errors.As(err, &ee), "a usage error, not the script's exit: %v", err)
	}
	err = run(context.Background(), []string{"exec", fail, "--memory", "64GiB"}, &stdout, &stderr)
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, "memory", ce.Flag)
	require.Contains(t, ce.Reason, "above the maximum")
}
