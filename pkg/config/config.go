// Package config fills command-line flags from AIRLOCK_* environment
// variables and reports bad settings by name.
package config

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// EnvName returns the environment variable for a flag: "llm-base-url"
// becomes "AIRLOCK_LLM_BASE_URL".
func EnvName(flag string) string {
	return "AIRLOCK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Aliases maps flag names to extra environment variables read when the
// AIRLOCK_* one is unset, such as "database-url" to DATABASE_URL.
type Aliases map[string][]string

// ApplyEnv sets every flag not given on the command line from its
// environment variable. A value that does not parse is an error naming
// both the variable and the flag.
func ApplyEnv(fs *pflag.FlagSet, aliases Aliases) error {
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		names := append([]string{EnvName(f.Name)}, aliases[f.Name]...)
		for _, env := range names {
			val, ok := os.LookupEnv(env)
			if !ok {
				continue
			}
			if err := fs.Set(f.Name, val); err != nil {
				errs = append(errs, fmt.Sprintf("%s (flag --%s): %v", env, f.Name, err))
			}
			return
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("invalid setting: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Error is a setting that failed validation.
type Error struct {
	Flag   string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid setting --%s (%s): %s", e.Flag, EnvName(e.Flag), e.Reason)
}

// Invalid returns an *Error for flag.
func Invalid(flag, format string, args ...any) error {
	return &Error{Flag: flag, Reason: fmt.Sprintf(format, args...)}
}

// Secret is a string that prints masked, for logging configuration.
type Secret string

// String masks the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// LogValue masks the value in slog output. It implements slog.LogValuer;
// without it the JSON handler would marshal the raw string.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
