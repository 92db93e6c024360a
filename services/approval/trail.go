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
// event whose hash does not match its content (edited), or a trail that ends
// before the chain head says it does (truncated).
func VerifyTrail(ctx context.Context, st Store, tenant string) (TrailReport, error) {
	var rep TrailReport
	prevHash := GenesisHash
	next := int64(1)
	for {
		evs, err := st.Events(ctx, tenant, next-1, verifyBatch)
		if err != nil {
			return rep, err
		}
		for i := range evs {
			e := &evs[i]
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
		}
		if len(evs) < verifyBatch {
			break
		}
	}
	last := next - 1
	headSeq, headHash, err := st.ChainHead(ctx, tenant)
	switch {
	case errors.Is(err, ErrNotFound):
		if last > 0 {
			return broken(rep, 1, "the chain head is missing although the trail has events"), nil
		}
	case err != nil:
		return rep, err
	case headSeq > last:
		return broken(rep, last+1, fmt.Sprintf("event %d is missing: the trail ends at %d but the chain head is at %d", last+1, last, headSeq)), nil
	case headSeq < last || headHash != prevHash:
		return broken(rep, headSeq+1, fmt.Sprintf("the chain head (event %d) does not match the trail's last event %d", headSeq, last)), nil
	}
	rep.OK = true
	rep.Message = fmt.Sprintf("%d events, every link holds", rep.EventsChecked)
	return rep, nil
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
