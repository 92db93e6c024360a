package approval

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// GenesisHash is the prev_hash of a tenant's first event.
var GenesisHash = strings.Repeat("0", 64)

// eventEncodingVersion opens every canonical encoding, so a future change
// of the encoding cannot be confused with this one.
const eventEncodingVersion = "airlock.approval.event.v1"

// ComputeHash returns the hex SHA-256 of e's canonical encoding: each field
// in a fixed order as an 8-byte big-endian length followed by its bytes
// (integers as 8-byte big-endian values), ending with PrevHash. Hash itself
// is not part of the encoding.
func (e *Event) ComputeHash() string {
	h := sha256.New()
	var n [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	num := func(v int64) {
		binary.BigEndian.PutUint64(n[:], 8)
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	str(eventEncodingVersion)
	str(e.Tenant)
	num(e.Seq)
	str(e.ApprovalID)
	str(string(e.Kind))
	str(e.Actor)
	num(e.At.UnixMicro())
	str(e.Reason)
	str(e.RunID)
	str(e.CodeSHA256)
	str(e.PolicyVersion)
	str(e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// link fills in e's place in the chain after the head (headSeq, headHash).
func (e *Event) link(headSeq int64, headHash string) {
	e.Seq = headSeq + 1
	e.PrevHash = headHash
	e.Hash = e.ComputeHash()
}

// TrailReport is the result of walking a tenant's audit trail.
type TrailReport struct {
	// OK is true when every link holds.
	OK bool
	// EventsChecked counts the events read.
	EventsChecked int64
	// FirstBrokenSeq is the sequence of the first broken link; 0 when OK.
	FirstBrokenSeq int64
	// Message describes the break, or the intact trail, for a person.
	Message string
}

// verifyBatch is how many events one read of the trail fetches.
const verifyBatch = 500

// VerifyTrail walks tenant's audit trail from the first event and reports the
// first broken link: a missing sequence number (a deleted event), an event
// whose prev_hash is not its predecessor's hash (reordered or replaced), an
// event whose hash does not match its content (edited), a trail that ends
// before the chain head says it does (truncated), or an event past the head
// (inserted behind the chain's back).
//
// Then it checks every request against its trail: a request whose state,
// decider, code hash or policy version is not what its last event says was
// changed behind the trail's back; the break is reported at that request's
// last event.
//
// It needs no lock: it verifies the chain up to the head it reads first, and
// changes committed while it runs are left for the next check.
func VerifyTrail(ctx context.Context, st Store, tenant string) (TrailReport, error) {
	var rep TrailReport
	headSeq, headHash, err := st.ChainHead(ctx, tenant)
	hasHead := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return rep, err
	}
	prevHash := GenesisHash
	next := int64(1)
	lastOf := map[string]Event{} // approval id -> its newest event
walk:
	for next <= headSeq {
		evs, err := st.Events(ctx, tenant, next-1, verifyBatch)
		if err != nil {
			return rep, err
		}
		for i := range evs {
			e := &evs[i]
			if e.Seq > headSeq {
				break walk // appended after the head was read
			}
			rep.EventsChecked++
			switch {
			case e.Seq != next:
				return broken(rep, next, fmt.Sprintf("event %d is missing: the trail jumps from %d to %d", next, next-1, e.Seq)), nil
			case e.PrevHash != prevHash:
				return broken(rep, e.Seq, fmt.Sprintf("event %d does not link to event %d: prev_hash %.12s…, want %.12s…", e.Seq, e.Seq-1, e.PrevHash, prevHash)), nil
			case e.ComputeHash() != e.Hash:
				return broken(rep, e.Seq, fmt.Sprintf("event %d (%s of %s) was altered: its content does not match its hash", e.Seq, e.Kind, e.ApprovalID)), nil
			}
			prevHash = e.Hash
			next++
			e.Reason = "" // keep the map small; only the fields checked below are needed
			lastOf[e.ApprovalID] = *e
		}
		if len(evs) < verifyBatch {
			break
		}
	}
	last := next - 1
	switch {
	case last < headSeq:
		return broken(rep, last+1, fmt.Sprintf("event %d is missing: the trail ends at %d but the chain head is at %d", last+1, last, headSeq)), nil
	case hasHead && headHash != prevHash:
		return broken(rep, headSeq, fmt.Sprintf("the chain head does not match event %d", headSeq)), nil
	}
	// Events past the head are legitimate only if the head has moved on to
	// cover them since it was read.
	extra, err := st.Events(ctx, tenant, headSeq, 1)
	if err != nil {
		return rep, err
	}
	if len(extra) > 0 {
		now, _, err := st.ChainHead(ctx, tenant)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return rep, err
		}
		if extra[0].Seq > now {
			return broken(rep, extra[0].Seq, fmt.Sprintf("event %d lies past the chain head (%d): it was not appended through the service", extra[0].Seq, now)), nil
		}
	}
	if bad, msg, err := checkRequests(ctx, st, tenant, lastOf, headSeq); err != nil {
		return rep, err
	} else if bad != 0 {
		return broken(rep, bad, msg), nil
	}
	rep.OK = true
	rep.Message = fmt.Sprintf("%d events, every link holds", rep.EventsChecked)
	return rep, nil
}

// stateAfter is the state a request is in after an event of kind k.
var stateAfter = map[EventKind]State{
	EventCreated: StatePending, EventApproved: StateApproved, EventRejected: StateRejected, EventExpired: StateExpired,
}

// checkRequests compares each of tenant's requests with its newest event up
// to the verified head and returns the seq of the first disagreement (0 if
// none). A request changed after the head was read is skipped; one with no
// event at all is reported one past the head.
func checkRequests(ctx context.Context, st Store, tenant string, last map[string]Event, headSeq int64) (int64, string, error) {
	var first int64
	var msg string
	var after *Cursor
	for {
		page, err := st.List(ctx, ListParams{Tenant: tenant, After: after, Limit: verifyBatch})
		if err != nil {
			return 0, "", err
		}
		for _, a := range page {
			ev, ok := last[a.ID]
			var why string
			switch {
			case !ok:
				why = fmt.Sprintf("request %s has no event in the trail", a.ID)
			case stateAfter[ev.Kind] != a.State:
				why = fmt.Sprintf("request %s is %s but its last event %d says %s", a.ID, a.State, ev.Seq, ev.Kind)
			case a.State != StatePending && a.DecidedBy != ev.Actor:
				why = fmt.Sprintf("request %s names %q as decider but event %d names %q", a.ID, a.DecidedBy, ev.Seq, ev.Actor)
			case a.CodeSHA256 != ev.CodeSHA256 || a.PolicyVersion != ev.PolicyVersion || a.RunID != ev.RunID:
				why = fmt.Sprintf("request %s's run, code hash or policy version differs from event %d", a.ID, ev.Seq)
			}
			if why == "" {
				continue
			}
			// Written after the head was read? Then it is the next check's business.
			newest, err := st.LastEvent(ctx, tenant, a.ID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return 0, "", err
			}
			if err == nil && newest.Seq > headSeq {
				continue
			}
			seq := ev.Seq
			if !ok {
				seq = headSeq + 1
			}
			if first == 0 || seq < first {
				first, msg = seq, why
			}
		}
		if len(page) < verifyBatch {
			return first, msg, nil
		}
		l := page[len(page)-1]
		after = &Cursor{CreatedAt: l.CreatedAt, ID: l.ID}
	}
}

func broken(rep TrailReport, seq int64, msg string) TrailReport {
	rep.OK = false
	rep.FirstBrokenSeq = seq
	rep.Message = msg
	return rep
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}
