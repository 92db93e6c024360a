package sandbox

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	t.Parallel()
	r := setup(t, 0)
	res := run(t, r, Spec{Code: "print('hello')\n", Cold: true})
	t.Logf("%+v %s %s", res, res.Stdout, res.Stderr)
	require.Equal(t, Exited, res.Reason)
	require.Equal(t, "hello\n", string(res.Stdout))
}
