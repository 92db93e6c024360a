package executor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "256MiB": 256 << 20, "1GiB": 1 << 30, "1gib": 1 << 30, "10MB": 10_000_000,
		"512k": 512 << 10, "0": 0, " 2 GiB ": 2 << 30, "7B": 7,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GiB", "12XB", "99999999999999TiB"} {
		_, err := ParseSize(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "256MiB", FormatSize(256<<20))
	require.Equal(t, "1000", FormatSize(1000))
}
