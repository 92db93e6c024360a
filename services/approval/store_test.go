package approval_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/database"
	"github.com/airlockhq/airlock/pkg/database/dbtest"
	"github.com/airlockhq/airlock/services/approval"
)

var migrations = []database.Migrations{approval.Migrations()}

var base = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func newApproval(tenant, run, requester string, created time.Time) approval.Approval {
	return approval.Approval{
		ID: randomID(), Tenant: tenant,
		RunID: run, Requester: requester, Code: "print(1)\n", CodeSHA256: "ab" + fmt.Sprint(created.Unix()),
		PolicyID: "default", PolicyVersion: "v1",
		Findings: []*policyv1.Finding{{RuleId: "import.not_allowed", Severity: policyv1.Severity_SEVERITY_MEDIUM, Line: 3, Message: "os"}},
		Risk:     approval.RiskMedium, Inputs: []approval.Input{{Name: "sales.xlsx", SizeBytes: 1234}},
		State: approval.StatePending, CreatedAt: created, ExpiresAt: created.Add(time.Hour),
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "apr_" + hex.EncodeToString(b[:])
}

func created(a approval.Approval) *approval.Event {
	return &approval.Event{Tenant: a.Tenant, ApprovalID: a.ID, Kind: approval.EventCreated, Actor: a.Requester,
		At: a.CreatedAt, RunID: a.RunID, CodeSHA256: a.CodeSHA256, PolicyVersion: a.PolicyVersion}
}

func mustCreate(t *testing.T, st approval.Store, a approval.Approval) approval.Approval {
	t.Helper()
	require.NoError(t, st.Create(context.Background(), a, created(a)))
	return a
}

// TestStoreConformance runs the same behaviour against Postgres and SQLite.
func TestStoreConformance(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, migrations, func(t *testing.T, db *database.DB) {
		st := approval.NewStore(db)
		ctx := context.Background()

		t.Run("create and get round trip, scoped to the tenant", func(t *testing.T) {
			a := mustCreate(t, st, newApproval("t-get", "run-1", "alice", base))
			got, err := st.Get(ctx, "t-get", a.ID)
			require.NoError(t, err)
			require.Equal(t, a.ID, got.ID)
			require.Equal(t, a.Code, got.Code)
			require.Equal(t, a.CreatedAt, got.CreatedAt)
			require.Equal(t, a.ExpiresAt, got.ExpiresAt)
			require.True(t, got.DecidedAt.IsZero())
			require.Equal(t, a.Inputs, got.Inputs)
			require.Len(t, got.Findings, 1)
			require.Equal(t, "import.not_allowed", got.Findings[0].GetRuleId())
			require.Equal(t, policyv1.Severity_SEVERITY_MEDIUM, got.Findings[0].GetSeverity())
			_, err = st.Get(ctx, "t-other", a.ID)
			require.ErrorIs(t, err, approval.ErrNotFound)
			_, err = st.Get(ctx, "t-get", "apr_00000000000000000000000000000000")
			require.ErrorIs(t, err, approval.ErrNotFound)
		})

		t.Run("update writes only when fn returns an event", func(t *testing.T) {
			a := mustCreate(t, st, newApproval("t-upd", "run-1", "alice", base))
			got, err := st.Update(ctx, "t-upd", a.ID, func(*approval.Approval) (*approval.Event, error) { return nil, nil })
			require.NoError(t, err)
			require.Equal(t, approval.StatePending, got.State)
			boom := fmt.Errorf("boom")
			_, err = st.Update(ctx, "t-upd", a.ID, func(x *approval.Approval) (*approval.Event, error) {
				x.State = approval.StateApproved
				return &approval.Event{Tenant: x.Tenant, ApprovalID: x.ID, Kind: approval.EventApproved, Actor: "bob", At: base}, boom
			})
			require.ErrorIs(t, err, boom)
			got, err = st.Get(ctx, "t-upd", a.ID)
			require.NoError(t, err)
			require.Equal(t, approval.StatePending, got.State, "an aborted update changes nothing")
			got, err = st.Update(ctx, "t-upd", a.ID, func(x *approval.Approval) (*approval.Event, error) {
				x.State, x.DecidedBy, x.Reason, x.DecidedAt = approval.StateApproved, "bob", "fine", base.Add(time.Minute)
				return &approval.Event{Tenant: x.Tenant, ApprovalID: x.ID, Kind: approval.EventApproved, Actor: "bob", At: x.DecidedAt, Reason: "fine"}, nil
			})
			require.NoError(t, err)
			require.Equal(t, approval.StateApproved, got.State)
			got, err = st.Get(ctx, "t-upd", a.ID)
			require.NoError(t, err)
			require.Equal(t, "bob", got.DecidedBy)
			require.Equal(t, base.Add(time.Minute), got.DecidedAt)
			_, err = st.Update(ctx, "t-other", a.ID, func(*approval.Approval) (*approval.Event, error) { return nil, nil })
			require.ErrorIs(t, err, approval.ErrNotFound)
			evs, err := st.Events(ctx, "t-upd", 0, 10)
			require.NoError(t, err)
			require.Len(t, evs, 2)
			require.Equal(t, approval.EventApproved, evs[1].Kind)
		})

		t.Run("list is newest first with stable keyset pages and filters", func(t *testing.T) {
			var ids []string
			for i := range 7 {
				// Pairs share a creation time: the id breaks the tie.
				a := newApproval("t-list", fmt.Sprintf("run-%d", i%2), []string{"alice", "bob"}[i%2], base.Add(time.Duration(i/2)*time.Second))
				a.ID = fmt.Sprintf("apr_%032x", i+1)
				mustCreate(t, st, a)
				ids = append(ids, a.ID)
			}
			var got []string
			var after *approval.Cursor
			for {
				page, err := st.List(ctx, approval.ListParams{Tenant: "t-list", After: after, Limit: 3})
				require.NoError(t, err)
				for _, a := range page {
					got = append(got, a.ID)
				}
				if len(page) < 3 {
					break
				}
				last := page[len(page)-1]
				after = &approval.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			want := []string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}
			require.Equal(t, want, got)
			bobs, err := st.List(ctx, approval.ListParams{Tenant: "t-list", Requester: "bob", Limit: 10})
			require.NoError(t, err)
			require.Len(t, bobs, 3)
			runs, err := st.List(ctx, approval.ListParams{Tenant: "t-list", RunID: "run-0", State: approval.StatePending, Limit: 10})
			require.NoError(t, err)
			require.Len(t, runs, 4)
			none, err := st.List(ctx, approval.ListParams{Tenant: "t-list", State: approval.StateApproved, Limit: 10})
			require.NoError(t, err)
			require.Empty(t, none)
		})

		t.Run("find approved and latest for run", func(t *testing.T) {
			a := mustCreate(t, st, newApproval("t-find", "run-f", "alice", base))
			_, err := st.FindApproved(ctx, "t-find", "run-f", a.CodeSHA256, "v1")
			require.ErrorIs(t, err, approval.ErrNotFound)
			latest, err := st.LatestForRun(ctx, "t-find", "run-f", "")
			require.NoError(t, err)
			require.Equal(t, a.ID, latest.ID)
			_, err = st.LatestForRun(ctx, "t-find", "run-f", "bob")
			require.ErrorIs(t, err, approval.ErrNotFound)
			_, err = st.Update(ctx, "t-find", a.ID, func(x *approval.Approval) (*approval.Event, error) {
				x.State = approval.StateApproved
				return &approval.Event{Tenant: x.Tenant, ApprovalID: x.ID, Kind: approval.EventApproved, Actor: "bob", At: base}, nil
			})
			require.NoError(t, err)
			got, err := st.FindApproved(ctx, "t-find", "run-f", a.CodeSHA256, "v1")
			require.NoError(t, err)
			require.Equal(t, a.ID, got.ID)
			_, err = st.FindApproved(ctx, "t-find", "run-f", a.CodeSHA256, "v2")
			require.ErrorIs(t, err, approval.ErrNotFound)
			_, err = st.FindApproved(ctx, "t-other", "run-f", a.CodeSHA256, "v1")
			require.ErrorIs(t, err, approval.ErrNotFound)
		})

		t.Run("due lists pending requests past expiry", func(t *testing.T) {
			far := base.Add(1000 * time.Hour)
			a := mustCreate(t, st, newApproval("t-due", "run-d", "alice", far))
			keys, err := st.Due(ctx, far.Add(time.Hour-time.Microsecond), 100)
			require.NoError(t, err)
			require.NotContains(t, keys, approval.Key{Tenant: "t-due", ID: a.ID})
			keys, err = st.Due(ctx, far.Add(time.Hour), 100)
			require.NoError(t, err)
			require.Contains(t, keys, approval.Key{Tenant: "t-due", ID: a.ID})
		})

		t.Run("concurrent appends keep one gapless chain per tenant", func(t *testing.T) {
			before, err := st.LastChange(ctx)
			require.NoError(t, err)
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Go(func() {
					a := newApproval("t-conc", "run-c", "alice", base.Add(time.Duration(i)*time.Millisecond))
					errs <- st.Create(ctx, a, created(a))
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			evs, err := st.Events(ctx, "t-conc", 0, 100)
			require.NoError(t, err)
			require.Len(t, evs, 16)
			for i, e := range evs {
				require.Equal(t, int64(i+1), e.Seq)
			}
			rep, err := approval.VerifyTrail(ctx, st, "t-conc")
			require.NoError(t, err)
			require.True(t, rep.OK, rep.Message)
			require.EqualValues(t, 16, rep.EventsChecked)
			seq, hash, err := st.ChainHead(ctx, "t-conc")
			require.NoError(t, err)
			require.EqualValues(t, 16, seq)
			require.Equal(t, evs[15].Hash, hash)
			chs, err := st.Changes(ctx, before, 100)
			require.NoError(t, err)
			n := 0
			for _, c := range chs {
				require.Greater(t, c.Pos, before)
				if c.Tenant == "t-conc" {
					n++
				}
			}
			require.Equal(t, 16, n)
		})

		t.Run("verifying while others write never reports a break", func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				for i := range 40 {
					a := newApproval("t-live", "run-live", "alice", base.Add(time.Duration(i)*time.Millisecond))
					if err := st.Create(ctx, a, created(a)); err != nil {
						done <- err
						return
					}
					if _, err := st.Update(ctx, "t-live", a.ID, func(x *approval.Approval) (*approval.Event, error) {
						x.State, x.DecidedBy = approval.StateRejected, "bob"
						return &approval.Event{Tenant: x.Tenant, ApprovalID: x.ID, Kind: approval.EventRejected, Actor: "bob",
							At: base, RunID: x.RunID, CodeSHA256: x.CodeSHA256, PolicyVersion: x.PolicyVersion}, nil
					}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for running := true; running; {
				select {
				case err := <-done:
					require.NoError(t, err)
					running = false
				default:
				}
				rep, err := approval.VerifyTrail(ctx, st, "t-live")
				require.NoError(t, err)
				require.True(t, rep.OK, rep.Message)
			}
			rep, err := approval.VerifyTrail(ctx, st, "t-live")
			require.NoError(t, err)
			require.True(t, rep.OK, rep.Message)
			require.EqualValues(t, 80, rep.EventsChecked)
		})

		t.Run("tampering is found at the right event", func(t *testing.T) {
			for _, tc := range []struct {
				name, tenant, sql string
				want              int64
			}{
				{"edited reason", "t-tamper-edit", `UPDATE approval_events SET reason = 'nothing to see' WHERE tenant = $1 AND seq = 2`, 2},
				{"edited actor", "t-tamper-actor", `UPDATE approval_events SET actor = 'mallory' WHERE tenant = $1 AND seq = 3`, 3},
				{"request approved behind the trail", "t-tamper-row", `UPDATE approval_requests SET state = 'APPROVED', decided_by = 'mallory'
					WHERE tenant = $1 AND id = (SELECT approval_id FROM approval_events WHERE tenant = $1 AND seq = 3)`, 3},
				{"request inserted behind the trail", "t-tamper-ins", `INSERT INTO approval_requests (id, tenant, run_id, requester, code,
					code_sha256, policy_id, policy_version, findings, risk, inputs, state, created_at_us, expires_at_us)
					VALUES ('apr_ffffffffffffffffffffffffffffffff', $1, 'run-x', 'mallory', 'x', 'x', 'p', 'v1', '[]', 'LOW', '[]',
					'APPROVED', 1, 2)`, 6},
				{"event appended behind the chain head", "t-tamper-tailins", `INSERT INTO approval_events (tenant, seq, approval_id, kind,
					actor, at_us, reason, run_id, code_sha256, policy_version, prev_hash, hash)
					SELECT tenant, 6, approval_id, 'approved', 'mallory', at_us, '', run_id, code_sha256, policy_version, hash, hash
					FROM approval_events WHERE tenant = $1 AND seq = 5`, 6},
				{"deleted", "t-tamper-del", `DELETE FROM approval_events WHERE tenant = $1 AND seq = 3`, 3},
				{"deleted last", "t-tamper-tail", `DELETE FROM approval_events WHERE tenant = $1 AND seq = 5`, 5},
				{"reordered", "t-tamper-swap", `UPDATE approval_events SET seq = -2 WHERE tenant = $1 AND seq = 2;
					UPDATE approval_events SET seq = 2 WHERE tenant = $1 AND seq = 4;
					UPDATE approval_events SET seq = 4 WHERE tenant = $1 AND seq = -2`, 2},
			} {
				for i := range 5 {
					a := newApproval(tc.tenant, "run-t", "alice", base.Add(time.Duration(i)*time.Second))
					mustCreate(t, st, a)
				}
				rep, err := approval.VerifyTrail(ctx, st, tc.tenant)
				require.NoError(t, err)
				require.True(t, rep.OK, rep.Message)
				for _, q := range strings.Split(tc.sql, ";") {
					_, err = db.SQL.ExecContext(ctx, database.Rebind(db.Dialect, q), tc.tenant)
					require.NoError(t, err, tc.name)
				}
				rep, err = approval.VerifyTrail(ctx, st, tc.tenant)
				require.NoError(t, err)
				require.False(t, rep.OK, tc.name)
				require.Equal(t, tc.want, rep.FirstBrokenSeq, "%s: %s", tc.name, rep.Message)
			}
		})
	})
}
