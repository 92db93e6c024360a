package policydoc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Store keeps the policies of a directory (*.yaml, *.yml) and reloads them
// when files change. Readers get an immutable snapshot swapped in
// atomically, so a reload never disturbs a check in flight. A file that
// stops validating keeps its last good version until it is fixed.
type Store struct {
	dir  string
	log  *slog.Logger
	snap atomic.Pointer[snapshot]

	mu    sync.Mutex // serialises reloads
	files map[string]*fileState
}

type fileState struct {
	modTime time.Time
	size    int64
	sum     [32]byte
	policy  *Policy // last good version; nil if it never validated
	err     error   // the current content's validation error
}

// snapshot is one consistent view of every policy.
type snapshot struct {
	byID    map[string]*Policy
	ids     []string
	tenants map[string]string // tenant -> the policy naming it
	errs    []error
}

// Open loads every policy in dir. Any invalid file fails Open with an
// error naming its file, line and field, so a server never starts on a
// half-understood policy set.
func Open(dir string, log *slog.Logger) (*Store, error) {
	s := &Store{dir: dir, log: log, files: map[string]*fileState{}}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	if errs := s.snap.Load().errs; len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(s.snap.Load().ids) == 0 {
		return nil, fmt.Errorf("no policies (*.yaml) in %s", dir)
	}
	return s, nil
}

// Watch reloads the directory every interval until ctx ends.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Reload(); err != nil {
				s.log.Warn("reloading policies", "dir", s.dir, "error", err)
			}
		}
	}
}

// Reload re-reads changed files and swaps in a new snapshot. It returns an
// error only when the directory cannot be read; invalid files are logged,
// reported by Errors, and keep their previous version.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		return nil // a static store
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("reading policy directory: %w", err)
	}
	present := map[string]bool{}
	changed := false
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		file := filepath.Join(s.dir, name)
		present[file] = true
		info, err := os.Stat(file)
		if err != nil {
			continue // removed while listing
		}
		st := s.files[file]
		if st != nil && st.modTime.Equal(info.ModTime()) && st.size == info.Size() {
			continue
		}
		src, err := readCapped(file)
		if err != nil {
			if st == nil {
				st = &fileState{}
				s.files[file] = st
			}
			// Forget the sum, so the file is parsed again once it reads,
			// even back to its last good content.
			st.err, st.sum = err, [32]byte{}
			changed = true
			s.log.Error("policy file unreadable; keeping its previous version", "file", file, "error", err)
			continue
		}
		sum := sha256.Sum256(src)
		if st != nil && st.sum == sum {
			st.modTime, st.size = info.ModTime(), info.Size()
			continue
		}
		if st == nil {
			st = &fileState{}
			s.files[file] = st
		}
		st.modTime, st.size, st.sum = info.ModTime(), info.Size(), sum
		changed = true
		pol, err := Parse(file, src)
		if err != nil {
			st.err = err
			s.log.Error("policy file refused; keeping its previous version", "file", file, "error", err)
			continue
		}
		st.err, st.policy = nil, pol
		s.log.Info("policy loaded", "file", file, "policy_id", pol.ID, "version", pol.Version)
	}
	for file := range s.files {
		if !present[file] {
			delete(s.files, file)
			changed = true
			s.log.Info("policy file removed", "file", file)
		}
	}
	if changed || s.snap.Load() == nil {
		s.snap.Store(s.build())
	}
	return nil
}

// build makes a snapshot from the files' last good versions, in file name
// order: a second file claiming a taken id or tenant is refused.
func (s *Store) build() *snapshot {
	snap := &snapshot{byID: map[string]*Policy{}, tenants: map[string]string{}}
	files := make([]string, 0, len(s.files))
	for f := range s.files {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, f := range files {
		st := s.files[f]
		if st.err != nil {
			snap.errs = append(snap.errs, st.err)
		}
		p := st.policy
		if p == nil {
			continue
		}
		if other, ok := snap.byID[p.ID]; ok {
			snap.errs = append(snap.errs, &ValidationError{File: f, Field: "id",
				Msg: fmt.Sprintf("policy id %q is already used by %s", p.ID, other.File)})
			continue
		}
		clash := ""
		for _, t := range p.Tenants {
			if owner, ok := snap.tenants[t]; ok {
				clash = fmt.Sprintf("tenant %q already has policy %q as its default", t, owner)
			}
		}
		if clash != "" {
			snap.errs = append(snap.errs, &ValidationError{File: f, Field: "tenants", Msg: clash})
			continue
		}
		for _, t := range p.Tenants {
			snap.tenants[t] = p.ID
		}
		snap.byID[p.ID] = p
		snap.ids = append(snap.ids, p.ID)
	}
	slices.Sort(snap.ids)
	return snap
}

// Errors returns the current problems: files that do not validate and
// clashing ids or tenants.
func (s *Store) Errors() []error { return s.snap.Load().errs }

// Get returns the policy id if tenant may use it; otherwise ErrNotFound,
// the same for a missing policy as for a foreign one.
func (s *Store) Get(tenant, id string) (*Policy, error) {
	p, ok := s.snap.Load().byID[id]
	if !ok || !p.Usable(tenant) {
		return nil, ErrNotFound
	}
	return p, nil
}

// Default returns tenant's default policy: the one naming the tenant,
// else the policy "default".
func (s *Store) Default(tenant string) (*Policy, error) {
	snap := s.snap.Load()
	if id, ok := snap.tenants[tenant]; ok {
		return snap.byID[id], nil
	}
	return s.Get(tenant, DefaultID)
}

// List returns the policies tenant may use, ordered by id, starting after
// the id after (empty for the start), at most limit of them, and whether
// more follow.
func (s *Store) List(tenant, after string, limit int) ([]*Policy, bool) {
	snap := s.snap.Load()
	var out []*Policy
	for _, id := range snap.ids {
		if id <= after {
			continue
		}
		p := snap.byID[id]
		if !p.Usable(tenant) {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, p)
	}
	return out, false
}

// Len returns how many policies are loaded.
func (s *Store) Len() int { return len(s.snap.Load().ids) }

// NewStatic returns a store holding fixed policies that never reload.
func NewStatic(log *slog.Logger, pols ...*Policy) *Store {
	s := &Store{log: log, files: map[string]*fileState{}}
	for _, p := range pols {
		s.files[p.File] = &fileState{policy: p}
	}
	s.snap.Store(s.build())
	return s
}
