package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A runner cleans up what a dead executor left in the same work dir (its
// directories and output mounts), and leaves a live one's alone.
func TestSweepStale(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(work), 0o711)) // the sandbox uids must reach it
	require.NoError(t, os.Chmod(work, 0o711))
	live := setup(t, 0, func(c *Config) { c.WorkDir = work })
	// A dead executor: a work dir owned by a process that has exited.
	dead := exec.Command("/bin/sleep", "60")
	require.NoError(t, dead.Start())
	identity := processIdentity(dead.Process.Pid)
	require.NotEmpty(t, identity)
	require.NoError(t, dead.Process.Kill())
	_ = dead.Wait()
	stale := filepath.Join(work, "airlock-executor-123")
	require.NoError(t, os.MkdirAll(filepath.Join(stale, "abc", "out"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stale, ownerFile), []byte(identity), 0o644))
	// Not to be judged: no owner file.
	foreign := filepath.Join(work, "airlock-executor-456")
	require.NoError(t, os.MkdirAll(foreign, 0o755))

	r := setup(t, 0, func(c *Config) { c.WorkDir = work })
	require.NoDirExists(t, stale)
	require.DirExists(t, foreign)
	require.DirExists(t, live.dir)
	res := run(t, live, Spec{Code: "print('still works')\n"})
	require.Equal(t, "still works\n", string(res.Stdout))
	_, err := r.Run(context.Background(), Spec{Code: "print(1)\n", Limits: limits(nil)})
	require.NoError(t, err)
}
