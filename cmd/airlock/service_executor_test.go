package main

import (
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/services/executor/sandbox"
)

// The executor's flags reach the sandbox runner's configuration; bad ones
// are refused naming the flag.
func TestExecutorFlagsConfigureTheRunner(t *testing.T) {
	parse := func(args ...string) (sandbox.Config, error) {
		var f executorFlags
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		f.register(fs)
		require.NoError(t, fs.Parse(args))
		return f.sandboxConfig()
	}
	cfg, err := parse()
	require.NoError(t, err)
	require.Equal(t, sandbox.DefaultSpares, cfg.Spares)
	require.Equal(t, 2, cfg.PoolSize)

	cfg, err = parse("--executor-spares", "5", "--executor-pool-size", "3")
	require.NoError(t, err)
	require.Equal(t, 5, cfg.Spares)
	require.Equal(t, 3, cfg.PoolSize)

	cfg, err = parse("--executor-spares", "0")
	require.NoError(t, err)
	require.Equal(t, 0, cfg.Spares, "0 turns the spares off")

	for _, bad := range [][]string{{"--executor-spares", "-1"}, {"--executor-spares", "65"}} {
		_, err = parse(bad...)
		require.ErrorContains(t, err, "executor-spares", "%v", bad)
	}
	_, err = parse("--executor-pool-size", "-1")
	require.ErrorContains(t, err, "executor-pool-size")
}
