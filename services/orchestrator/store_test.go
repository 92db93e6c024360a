package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	executorv1 "github.com/airlockhq/airlock/gen/go/airlock/executor/v1"
	orchestratorv1 "github.com/airlockhq/airlock/gen/go/airlock/orchestrator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/auth"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
)

func newTestRun(tenant, requester, key string) *Run {
	return &Run{
		ID: newID("run"), Tenant: tenant, Requester: requester,
		Principal: auth.Principal{Tenant: tenant, Subject: requester, Roles: []auth.Role{auth.RoleUser}},
		State:     orchestratorv1.RunState_RUN_STATE_RECEIVED,
		Prompt:    "top customers", MaxAttempts: 3, IdempotencyKey: key,
		Inputs: []FileRef{{ID: "file_a", Name: "sales.csv", Size: 10, SHA256: "ab"}},
	}
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, []database.Migrations{Migrations()}, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := NewSQLStore(db)

		r := newTestRun("acme", "alice", "k1")
		stored, created, err := s.CreateRun(ctx, r)
		require.NoError(t, err)
		require.True(t, created)
		again, created, err := s.CreateRun(ctx, newTestRun("acme", "alice", "k1"))
		require.NoError(t, err)
		require.False(t, created, "same idempotency key must return the first run")
		require.Equal(t, stored.ID, again.ID)
		other, created, err := s.CreateRun(ctx, newTestRun("acme", "bob", "k1"))
		require.NoError(t, err)
		require.True(t, created, "idempotency keys are per requester")

		got, err := s.GetRun(ctx, "acme", r.ID)
		require.NoError(t, err)
		require.Equal(t, "alice", got.Principal.Subject)
		require.Equal(t, []auth.Role{auth.RoleUser}, got.Principal.Roles)
		require.Equal(t, r.Inputs, got.Inputs)
		_, err = s.GetRun(ctx, "globex", r.ID)
		require.ErrorIs(t, err, ErrNotFound, "a foreign tenant sees nothing")

		// Transitions are compare-and-set.
		gen := orchestratorv1.RunState_RUN_STATE_GENERATING
		require.NoError(t, s.Transition(ctx, r.ID, orchestratorv1.RunState_RUN_STATE_RECEIVED, gen, "generating", RunUpdate{}))
		err = s.Transition(ctx, r.ID, orchestratorv1.RunState_RUN_STATE_RECEIVED, gen, "again", RunUpdate{})
		require.ErrorIs(t, err, ErrConflict)
		a := &Attempt{Number: 1, Status: AttemptChecked, Code: "print(1)", CodeSHA256: "h",
			Check: &policyv1.CheckResponse{Verdict: policyv1.Verdict_VERDICT_REVIEW, PolicyVersion: "v1"}}
		require.NoError(t, s.PutAttempt(ctx, r.ID, a))
		a.Status = AttemptExecuted
		a.Execution = &executorv1.ExecutionResult{TerminationReason: executorv1.TerminationReason_TERMINATION_REASON_EXITED, Stdout: []byte("1\n")}
		require.NoError(t, s.PutAttempt(ctx, r.ID, a))
		require.NoError(t, s.AddCost(ctx, r.ID, 120, 7))
		require.NoError(t, s.AddCost(ctx, r.ID, 30, 0))
		failed := orchestratorv1.RunState_RUN_STATE_FAILED
		require.NoError(t, s.Transition(ctx, r.ID, gen, failed, "boom", RunUpdate{FailureReason: "model down"}))

		got, err = s.GetRun(ctx, "acme", r.ID)
		require.NoError(t, err)
		require.Equal(t, failed, got.State)
		require.Equal(t, "model down", got.FailureReason)
		require.False(t, got.FinishedAt.IsZero())
		require.Equal(t, int64(150), got.LLMMicros)
		require.Equal(t, int64(7), got.ComputeMicros)
		require.Len(t, got.Attempts, 1)
		require.Equal(t, AttemptExecuted, got.Attempts[0].Status)
		require.Equal(t, "v1", got.Attempts[0].Check.GetPolicyVersion())
		require.Equal(t, []byte("1\n"), got.Attempts[0].Execution.GetStdout())

		trs, err := s.Transitions(ctx, r.ID, 0)
		require.NoError(t, err)
		require.Len(t, trs, 3)
		require.Equal(t, failed, trs[2].To)
		trs, err = s.Transitions(ctx, r.ID, 2)
		require.NoError(t, err)
		require.Len(t, trs, 1)

		active, err := s.ActiveRuns(ctx)
		require.NoError(t, err)
		require.Len(t, active, 1)
		require.Equal(t, other.ID, active[0].ID)

		// Listing pages newest first and filters by requester and state.
		var ids []string
		for i := 0; i < 5; i++ {
			x, _, err := s.CreateRun(ctx, newTestRun("acme", "carol", ""))
			require.NoError(t, err)
			ids = append(ids, x.ID)
			time.Sleep(time.Millisecond)
		}
		page, err := s.ListRuns(ctx, ListParams{Tenant: "acme", Requester: "carol", Limit: 3})
		require.NoError(t, err)
		require.Len(t, page, 3)
		require.Equal(t, ids[4], page[0].ID)
		last := page[2]
		page, err = s.ListRuns(ctx, ListParams{Tenant: "acme", Requester: "carol", Limit: 3, AfterCreated: last.CreatedAt, AfterID: last.ID})
		require.NoError(t, err)
		require.Len(t, page, 2)
		require.Equal(t, ids[0], page[1].ID)
		page, err = s.ListRuns(ctx, ListParams{Tenant: "acme", State: failed})
		require.NoError(t, err)
		require.Len(t, page, 1)
		page, err = s.ListRuns(ctx, ListParams{Tenant: "globex"})
		require.NoError(t, err)
		require.Empty(t, page)

		// Reservations are remembered until settled.
		require.NoError(t, s.AddReservation(ctx, Reservation{ID: "res1", RunID: other.ID, Kind: "llm", Amount: 99}))
		res, err := s.Reservations(ctx, other.ID)
		require.NoError(t, err)
		require.Equal(t, []Reservation{{ID: "res1", RunID: other.ID, Kind: "llm", Amount: 99}}, res)
		require.NoError(t, s.DeleteReservation(ctx, "res1"))
		res, err = s.Reservations(ctx, other.ID)
		require.NoError(t, err)
		require.Empty(t, res)

		// InTx: all of it or none of it.
		boom := errors.New("boom")
		err = s.InTx(ctx, func(st Store) error {
			require.NoError(t, st.AddReservation(ctx, Reservation{ID: "res2", RunID: other.ID, Kind: "compute", Amount: 5}))
			require.NoError(t, st.Transition(ctx, other.ID, orchestratorv1.RunState_RUN_STATE_RECEIVED, gen, "x", RunUpdate{}))
			return boom
		})
		require.ErrorIs(t, err, boom)
		res, err = s.Reservations(ctx, other.ID)
		require.NoError(t, err)
		require.Empty(t, res, "rolled back")
		got, err = s.GetRun(ctx, "acme", other.ID)
		require.NoError(t, err)
		require.Equal(t, orchestratorv1.RunState_RUN_STATE_RECEIVED, got.State, "rolled back")
		require.NoError(t, s.InTx(ctx, func(st Store) error {
			if err := st.AddReservation(ctx, Reservation{ID: "res3", RunID: other.ID, Kind: "compute", Amount: 5}); err != nil {
				return err
			}
			return st.InTx(ctx, func(inner Store) error { return inner.AddCost(ctx, other.ID, 0, 5) })
		}))
		res, err = s.Reservations(ctx, other.ID)
		require.NoError(t, err)
		require.Len(t, res, 1)
		require.False(t, res[0].Settling, "a new reservation is not settling")
		require.NoError(t, s.SettleReservation(ctx, "res3", 4))
		res, err = s.Reservations(ctx, other.ID)
		require.NoError(t, err)
		require.True(t, res[0].Settling)
		require.Equal(t, int64(4), res[0].Actual)
		require.NoError(t, s.SettleReservation(ctx, "res3", 0))
		res, err = s.Reservations(ctx, other.ID)
		require.NoError(t, err)
		require.True(t, res[0].Settling, "a step charged nothing still settles")
		require.Zero(t, res[0].Actual)
		require.ErrorIs(t, s.SettleReservation(ctx, "no-such", 1), ErrNotFound)
		require.NoError(t, s.DeleteReservation(ctx, "res3"))

		yes, reason, err := s.CancelRequested(ctx, other.ID)
		require.NoError(t, err)
		require.False(t, yes)
		require.Empty(t, reason)
		require.NoError(t, s.RequestCancel(ctx, "acme", other.ID, "cancelled by alice: wrong file"))
		require.NoError(t, s.RequestCancel(ctx, "acme", other.ID, "cancelled by bob"))
		require.ErrorIs(t, s.RequestCancel(ctx, "globex", other.ID, "cancelled by mallory"), ErrNotFound)
		got, err = s.GetRun(ctx, "acme", other.ID)
		require.NoError(t, err)
		require.True(t, got.CancelRequested)
		require.Equal(t, "cancelled by alice: wrong file", got.CancelReason, "the first request's reason is kept")
		yes, reason, err = s.CancelRequested(ctx, other.ID)
		require.NoError(t, err)
		require.True(t, yes)
		require.Equal(t, "cancelled by alice: wrong file", reason)
	})
}

func TestStoreFiles(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, []database.Migrations{Migrations()}, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := NewSQLStore(db)
		f := &File{FileRef: FileRef{ID: "file_1", Name: "a.csv"}, Tenant: "acme", Owner: "alice", Kind: FileInput}
		require.NoError(t, s.CreateFile(ctx, f))
		_, err := s.GetFile(ctx, "acme", "file_1")
		require.ErrorIs(t, err, ErrNotFound, "an incomplete upload is invisible")
		require.NoError(t, s.AppendChunk(ctx, "file_1", 0, []byte("hello ")))
		require.NoError(t, s.AppendChunk(ctx, "file_1", 1, []byte("world")))
		require.NoError(t, s.CompleteFile(ctx, "file_1", 11, "sha"))
		got, err := s.GetFile(ctx, "acme", "file_1")
		require.NoError(t, err)
		require.Equal(t, int64(11), got.Size)
		require.Equal(t, "alice", got.Owner)
		_, err = s.GetFile(ctx, "globex", "file_1")
		require.ErrorIs(t, err, ErrNotFound)
		var buf bytes.Buffer
		require.NoError(t, s.ReadChunks(ctx, "file_1", func(b []byte) error { buf.Write(b); return nil }))
		require.Equal(t, "hello world", buf.String())

		old := &File{FileRef: FileRef{ID: "file_2", Name: "b.csv"}, Tenant: "acme", Owner: "alice", Kind: FileInput,
			CreatedAt: time.Now().Add(-time.Hour)}
		require.NoError(t, s.CreateFile(ctx, old))
		require.NoError(t, s.AppendChunk(ctx, "file_2", 0, []byte("x")))
		n, err := s.DeleteIncompleteFiles(ctx, time.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = s.GetFile(ctx, "acme", "file_1")
		require.NoError(t, err, "complete files stay")
	})
}
