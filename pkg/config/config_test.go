package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// Not parallel: t.Setenv.
func TestApplyEnv(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	addr := fs.String("listen-addr", "default", "")
	timeout := fs.Duration("shutdown-timeout", time.Second, "")
	url := fs.String("database-url", "", "")
	given := fs.String("given", "", "")
	require.NoError(t, fs.Parse([]string{"--given=flag"}))
	t.Setenv("AIRLOCK_LISTEN_ADDR", "1.2.3.4:5")
	t.Setenv("AIRLOCK_SHUTDOWN_TIMEOUT", "3s")
	t.Setenv("DATABASE_URL", "postgres://x")
	t.Setenv("AIRLOCK_GIVEN", "env")
	require.NoError(t, ApplyEnv(fs, Aliases{"database-url": {"DATABASE_URL"}}))
	require.Equal(t, "1.2.3.4:5", *addr)
	require.Equal(t, 3*time.Second, *timeout)
	require.Equal(t, "postgres://x", *url)
	require.Equal(t, "flag", *given, "a flag on the command line wins over the environment")
}

func TestApplyEnvNamesBadVariable(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.Duration("shutdown-timeout", time.Second, "")
	t.Setenv("AIRLOCK_SHUTDOWN_TIMEOUT", "soon")
	err := ApplyEnv(fs, nil)
	require.ErrorContains(t, err, "AIRLOCK_SHUTDOWN_TIMEOUT")
	require.ErrorContains(t, err, "--shutdown-timeout")
}

func TestInvalidAndSecret(t *testing.T) {
	t.Parallel()
	err := Invalid("llm-base-url", "%q is not a URL", "::")
	var cerr *Error
	require.True(t, errors.As(err, &cerr))
	require.Equal(t, `invalid setting --llm-base-url (AIRLOCK_LLM_BASE_URL): "::" is not a URL`, err.Error())
	require.Equal(t, "***", fmt.Sprint(Secret("sk-123")))
	require.Equal(t, "", Secret("").String())

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "token", Secret("sk-123"))
	slog.New(slog.NewTextHandler(&buf, nil)).Info("start", "token", Secret("sk-123"))
	require.NotContains(t, buf.String(), "sk-123", "a secret never reaches a log line")
	require.Contains(t, buf.String(), `"token":"***"`)
}
