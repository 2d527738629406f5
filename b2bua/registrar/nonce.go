package registrar

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"
)

// A nonce is base64url(issued[8] | random[8] | mac[16]): issued is the Unix
// time in nanoseconds it was minted, mac the first 16 bytes of
// HMAC-SHA256(key, issued|random). The server keeps no state per challenge;
// the MAC proves the nonce is its own and the time says how old it is.
const (
	nonceRawLen = 8 + 8 + 16
	nonceLen    = (nonceRawLen*8 + 5) / 6
)

// maxClockSkew is how far in the future a nonce's time may be (the clock
// stepped back) before it is treated as not ours.
const maxClockSkew = 5 * time.Second

// nonceMinter mints and checks nonces with a key drawn at start: nonces do
// not survive a restart, which clients absorb as one stale challenge.
type nonceMinter struct {
	key [32]byte
	ttl time.Duration
}

func newNonceMinter(ttl time.Duration) (*nonceMinter, error) {
	m := &nonceMinter{ttl: ttl}
	if _, err := rand.Read(m.key[:]); err != nil {
		return nil, err
	}
	return m, nil
}

// mint returns a fresh nonce issued at now.
func (m *nonceMinter) mint(now time.Time) string {
	var raw [nonceRawLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(now.UnixNano()))
	_, _ = rand.Read(raw[8:16]) // crypto/rand.Read never fails (Go 1.24+)
	copy(raw[16:], m.mac(raw[:16]))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (m *nonceMinter) mac(b []byte) []byte {
	h := hmac.New(sha256.New, m.key[:])
	h.Write(b)
	return h.Sum(nil)[:16]
}

// check reports the issue time of nonce and whether it is ours and younger
// than the TTL. A nonce that is not ours (another instance, a restart, a
// forgery) or too old is not fresh; the caller answers stale when the digest
// over it is nevertheless right.
func (m *nonceMinter) check(nonce string, now time.Time) (issued int64, fresh bool) {
	if len(nonce) != nonceLen {
		return 0, false
	}
	var raw [nonceRawLen]byte
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(nonce))
	if err != nil || n != nonceRawLen {
		return 0, false
	}
	if !hmac.Equal(raw[16:], m.mac(raw[:16])) {
		return 0, false
	}
	issued = int64(binary.BigEndian.Uint64(raw[:8]))
	age := now.UnixNano() - issued
	if age < -int64(maxClockSkew) || age > int64(m.ttl) {
		return issued, false
	}
	return issued, true
}

// ncResult is the outcome of a nonce-count check.
type ncResult uint8

const (
	ncOK ncResult = iota
	ncReplay
	ncStale
)

// replayGuard remembers, per nonce in use, the highest nonce-count accepted,
// in bounded memory: at most max nonces, each dropped once its TTL has run
// out (it would be stale anyway). When the cap forces out a nonce that is
// still fresh, floor rises to its issue time, and any nonce issued no later
// than that and no longer known is treated as stale, so eviction never
// reopens a replay: the client just retries with a new nonce.
type replayGuard struct {
	mu    sync.Mutex
	max   int
	ttl   int64
	byKey map[string]*list.Element
	order *list.List // of *ncEntry, in first-use order
	floor int64
}

type ncEntry struct {
	nonce  string
	issued int64
	nc     uint32
}

func newReplayGuard(max int, ttl time.Duration) *replayGuard {
	return &replayGuard{max: max, ttl: int64(ttl), byKey: make(map[string]*list.Element), order: list.New()}
}

// use records nonce-count nc for nonce (issued at issued) if it is higher
// than any seen before for that nonce.
func (g *replayGuard) use(nonce string, issued int64, nc uint32, now time.Time) ncResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.prune(now.UnixNano())
	if el, ok := g.byKey[nonce]; ok {
		e := el.Value.(*ncEntry)
		if nc <= e.nc {
			return ncReplay
		}
		e.nc = nc
		return ncOK
	}
	if issued <= g.floor {
		return ncStale
	}
	g.byKey[nonce] = g.order.PushBack(&ncEntry{nonce: nonce, issued: issued, nc: nc})
	for g.order.Len() > g.max {
		e := g.order.Remove(g.order.Front()).(*ncEntry)
		delete(g.byKey, e.nonce)
		g.floor = max(g.floor, e.issued)
	}
	return ncOK
}

// prune drops entries from the front whose nonces have expired. Entries are
// in first-use order, which follows issue order closely enough: a few
// expired ones behind a live front wait for the next call.
func (g *replayGuard) prune(now int64) {
	for el := g.order.Front(); el != nil; el = g.order.Front() {
		e := el.Value.(*ncEntry)
		if now-e.issued <= g.ttl {
			return
		}
		g.order.Remove(el)
		delete(g.byKey, e.nonce)
	}
}

// len returns the number of nonces tracked.
func (g *replayGuard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.order.Len()
}
