package approval

import (
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"time"
)

// pageToken is the decoded form of an opaque page token: the last request of
// the previous page and a fingerprint of the filters it was listed with.
type pageToken struct {
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
	Filters   uint64 `json:"f"`
}

func filterPrint(p ListParams) uint64 {
	h := fnv.New64a()
	for _, s := range []string{string(p.State), p.Requester, p.RunID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func encodePageToken(c Cursor, p ListParams) string {
	b, _ := json.Marshal(pageToken{CreatedAt: c.CreatedAt.UnixMicro(), ID: c.ID, Filters: filterPrint(p)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(tok string, p ListParams) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var t pageToken
	if err != nil || len(tok) > 512 || json.Unmarshal(b, &t) != nil || !ValidID(t.ID) || t.CreatedAt <= 0 {
		return Cursor{}, invalid("page_token", "is not a token this server issued")
	}
	if t.Filters != filterPrint(p) {
		return Cursor{}, invalid("page_token", "was issued for different filters")
	}
	return Cursor{CreatedAt: time.UnixMicro(t.CreatedAt).UTC(), ID: t.ID}, nil
}
