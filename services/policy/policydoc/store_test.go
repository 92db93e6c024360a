package policydoc

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/airlockhq/airlock/services/policy/analysis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func writeFile(t testing.TB, file, content string) {
	t.Helper()
	tmp := file + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, file))
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

const (
	defaultDoc = "id: default\nallowed_imports: [pandas]\n"
	acmeDoc    = "id: acme\ntenants: [acme]\nallowed_imports: [pandas, csv]\n"
	sharedDoc  = "id: shared\nallowed_imports: [csv]\n"
)

func setupStore(t *testing.T) (string, *Store) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "default.yaml"), defaultDoc)
	writeFile(t, filepath.Join(dir, "acme.yaml"), acmeDoc)
	writeFile(t, filepath.Join(dir, "shared.yml"), sharedDoc)
	writeFile(t, filepath.Join(dir, "README.md"), "not a policy")
	s, err := Open(dir, testLog(t))
	require.NoError(t, err)
	return dir, s
}

func TestStoreTenants(t *testing.T) {
	t.Parallel()
	_, s := setupStore(t)
	require.Equal(t, 3, s.Len())

	p, err := s.Default("acme")
	require.NoError(t, err)
	require.Equal(t, "acme", p.ID, "a policy naming the tenant is its default")
	p, err = s.Default("globex")
	require.NoError(t, err)
	require.Equal(t, DefaultID, p.ID, "other tenants fall back to default")

	_, err = s.Get("globex", "acme")
	require.ErrorIs(t, err, ErrNotFound, "a foreign policy reads as missing")
	_, err = s.Get("globex", "missing")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Get("globex", "shared")
	require.NoError(t, err)

	ids := func(tenant, after string, limit int) ([]string, bool) {
		ps, more := s.List(tenant, after, limit)
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out, more
	}
	got, more := ids("acme", "", 10)
	require.Equal(t, []string{"acme", "default", "shared"}, got)
	require.False(t, more)
	got, more = ids("globex", "", 1)
	require.Equal(t, []string{"default"}, got)
	require.True(t, more)
	got, more = ids("globex", "default", 1)
	require.Equal(t, []string{"shared"}, got)
	require.False(t, more)
}

func TestStoreOpenRefusesInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "default.yaml"), defaultDoc)
	writeFile(t, filepath.Join(dir, "bad.yaml"), "id: bad\nallowed_imports: [pandas]\nlimits:\n  memory: lots\n")
	_, err := Open(dir, testLog(t))
	require.ErrorIs(t, err, ErrInvalid)
	require.Contains(t, err.Error(), "bad.yaml:4:")
	require.Contains(t, err.Error(), "limits.memory")

	dup := t.TempDir()
	writeFile(t, filepath.Join(dup, "a.yaml"), defaultDoc)
	writeFile(t, filepath.Join(dup, "b.yaml"), defaultDoc)
	_, err = Open(dup, testLog(t))
	require.ErrorContains(t, err, "already used")

	clash := t.TempDir()
	writeFile(t, filepath.Join(clash, "a.yaml"), acmeDoc)
	writeFile(t, filepath.Join(clash, "b.yaml"), "id: acme2\ntenants: [acme]\nallowed_imports: [csv]\n")
	_, err = Open(clash, testLog(t))
	require.ErrorContains(t, err, "tenant \"acme\" already has policy")

	_, err = Open(t.TempDir(), testLog(t))
	require.ErrorContains(t, err, "no policies")
}

// TestStoreHotReload changes, breaks, fixes, adds and removes files while
// checks run, and requires every check to succeed against a whole policy.
func TestStoreHotReload(t *testing.T) {
	t.Parallel()
	dir, s := setupStore(t)
	old, err := s.Default("globex")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Watch(ctx, 5*time.Millisecond) })
	var checks, failures atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				p, err := s.Default("globex")
				if err != nil {
					failures.Add(1)
					continue
				}
				if _, err := p.Check(ctx, []byte("import pandas\nimport csv\n"), analysis.Options{}); err != nil {
					failures.Add(1)
				}
				checks.Add(1)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	eventually := func(cond func() bool, what string) {
		t.Helper()
		require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, what)
	}
	// A change takes effect with a new version.
	writeFile(t, filepath.Join(dir, "default.yaml"), "id: default\nallowed_imports: [pandas, csv]\n")
	eventually(func() bool {
		p, _ := s.Default("globex")
		return p.Version != old.Version
	}, "the changed policy is loaded")
	cur, _ := s.Default("globex")
	require.Equal(t, []string{"pandas", "csv"}, cur.Config.AllowedImports)

	// A broken edit keeps the previous version and is reported.
	writeFile(t, filepath.Join(dir, "default.yaml"), "id: default\nallowed_imports: [pandas, csv]\nlimits: {memory: huge}\n")
	eventually(func() bool { return len(s.Errors()) == 1 }, "the broken file is reported")
	kept, _ := s.Default("globex")
	require.Equal(t, cur.Version, kept.Version, "a broken file keeps its last good version")
	require.Contains(t, s.Errors()[0].Error(), "limits.memory")

	// Fixing it clears the error.
	writeFile(t, filepath.Join(dir, "default.yaml"), "id: default\nallowed_imports: [numpy]\n")
	eventually(func() bool { return len(s.Errors()) == 0 }, "the fixed file is loaded")
	fixed, _ := s.Default("globex")
	require.Equal(t, []string{"numpy"}, fixed.Config.AllowedImports)

	// New files appear and removed ones disappear.
	writeFile(t, filepath.Join(dir, "globex.yaml"), "id: globex\ntenants: [globex]\nallowed_imports: [json]\n")
	eventually(func() bool { p, _ := s.Default("globex"); return p.ID == "globex" }, "a new tenant policy applies")
	require.NoError(t, os.Remove(filepath.Join(dir, "globex.yaml")))
	eventually(func() bool { p, _ := s.Default("globex"); return p.ID == DefaultID }, "a removed policy stops applying")

	cancel()
	wg.Wait()
	require.Zero(t, failures.Load(), "no check may fail during reloads")
	require.Positive(t, checks.Load())
}

// TestStoreUnreadableThenRestored checks a file that stops reading (here:
// too large) is reported, and restoring its last good content clears that.
func TestStoreUnreadableThenRestored(t *testing.T) {
	t.Parallel()
	dir, s := setupStore(t)
	file := filepath.Join(dir, "default.yaml")
	old, err := s.Default("globex")
	require.NoError(t, err)

	writeFile(t, file, defaultDoc+"#"+strings.Repeat("x", MaxDocumentBytes)+"\n")
	require.NoError(t, s.Reload())
	require.Len(t, s.Errors(), 1)
	require.Contains(t, s.Errors()[0].Error(), "larger than")
	kept, err := s.Default("globex")
	require.NoError(t, err)
	require.Equal(t, old.Version, kept.Version, "an unreadable file keeps its last good version")

	writeFile(t, file, defaultDoc)
	require.NoError(t, s.Reload())
	require.Empty(t, s.Errors(), "restoring the last good content clears the error")
}
