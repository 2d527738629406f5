package registration

import (
	"net/netip"
	"sync"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// pendingTTL is how long a relayed registration the PBX has not accepted
// yet (it challenged it) waits for the UA's answer: a UA answers a
// challenge at once, and 64*T1 is how long its transaction lives.
const pendingTTL = 32 * time.Second

// maxPendingRelays caps the relayed registrations waiting for the PBX:
// each one is a few hundred bytes, and the REGISTER rate limit keeps a
// single source far below this.
const maxPendingRelays = 10000

// relays holds the SBC's registration dialogs toward upstream registrars
// (relay mode): one per flow (connection or UDP source) and
// address-of-record. A relay is pending until the PBX answers it 2xx and
// accepted afterwards; only then is there a binding in the store, under
// the relay's token. Safe for concurrent use.
type relays struct {
	mu        sync.Mutex
	byToken   map[string]*relayBinding
	byFlow    map[relayKey]*relayBinding
	pending   int
	lastPrune time.Time
}

// relayKey names the flow and AOR of a relayed registration.
type relayKey struct {
	conn *transport.Conn // stream flows
	kind transport.Kind
	addr netip.AddrPort // UDP flows
	aor  string
}

func relayKeyOf(src transport.Target, aor string) relayKey {
	if src.Conn != nil {
		return relayKey{conn: src.Conn, aor: aor}
	}
	return relayKey{kind: src.Kind, addr: src.Addr, aor: aor}
}

// relayBinding is what the SBC keeps of one registration it relays: its
// own registration dialog toward the PBX (Call-ID, CSeq) and the last
// REGISTER it sent (to de-register with).
type relayBinding struct {
	key      relayKey
	token    string
	trunk    *routing.Trunk
	callID   string
	cseq     uint32      // the CSeq of the last REGISTER sent upstream
	last     sip.Request // that REGISTER
	accepted bool        // the PBX answered 2xx: the binding is in the store
	since    time.Time   // created; a pending relay lapses pendingTTL later
}

// relayDialog is a snapshot of a relay's dialog for one REGISTER.
type relayDialog struct {
	token, callID string
	cseq          uint32
	accepted      bool
}

func newRelays() *relays {
	return &relays{byToken: make(map[string]*relayBinding), byFlow: make(map[relayKey]*relayBinding)}
}

// find returns the dialog of the relay of key, if there is one.
func (r *relays) find(key relayKey) (relayDialog, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rb := r.byFlow[key]
	if rb == nil {
		return relayDialog{}, false
	}
	return relayDialog{token: rb.token, callID: rb.callID, cseq: rb.cseq, accepted: rb.accepted}, true
}

// next returns the dialog for the next REGISTER of key's registration
// toward tr, creating a pending relay with a new token when there is none;
// ok is false when too many are pending.
func (r *relays) next(key relayKey, tr *routing.Trunk, now time.Time) (relayDialog, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rb := r.byFlow[key]
	if rb == nil {
		r.pruneLocked(now)
		if r.pending >= maxPendingRelays {
			return relayDialog{}, false
		}
		rb = &relayBinding{key: key, token: registrar.NewToken(), trunk: tr, callID: sipmsg.NewToken(12), since: now}
		r.byToken[rb.token] = rb
		r.byFlow[key] = rb
		r.pending++
	}
	rb.cseq++
	return relayDialog{token: rb.token, callID: rb.callID, cseq: rb.cseq, accepted: rb.accepted}, true
}

// sent records the REGISTER that went upstream for token.
func (r *relays) sent(token string, req sip.Request) {
	r.mu.Lock()
	if rb := r.byToken[token]; rb != nil {
		rb.last = req
	}
	r.mu.Unlock()
}

// accept marks token's relay accepted by the PBX.
func (r *relays) accept(token string) {
	r.mu.Lock()
	if rb := r.byToken[token]; rb != nil && !rb.accepted {
		rb.accepted = true
		r.pending--
	}
	r.mu.Unlock()
}

// drop removes token's relay and returns it (nil if there was none).
func (r *relays) drop(token string) *relayBinding {
	r.mu.Lock()
	defer r.mu.Unlock()
	rb := r.byToken[token]
	if rb != nil {
		r.removeLocked(rb)
	}
	return rb
}

// dropPending removes token's relay if the PBX never accepted it.
func (r *relays) dropPending(token string) {
	r.mu.Lock()
	if rb := r.byToken[token]; rb != nil && !rb.accepted {
		r.removeLocked(rb)
	}
	r.mu.Unlock()
}

// dropConn removes the pending relays of a closed connection (accepted
// ones go with their bindings).
func (r *relays) dropConn(c *transport.Conn) {
	r.mu.Lock()
	for key, rb := range r.byFlow {
		if key.conn == c && !rb.accepted {
			r.removeLocked(rb)
		}
	}
	r.mu.Unlock()
}

// deregistration returns a copy of the last REGISTER of an accepted relay
// and its next CSeq, for telling the PBX the binding is gone.
func (rb *relayBinding) deregistration() (sip.Request, uint32, bool) {
	if rb == nil || !rb.accepted || rb.last == nil {
		return nil, 0, false
	}
	return sipmsg.CopyRequest(rb.last), rb.cseq + 1, true
}

// isAccepted reports whether token's relay was accepted by the PBX.
func (r *relays) isAccepted(token string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rb := r.byToken[token]
	return rb != nil && rb.accepted
}

func (r *relays) removeLocked(rb *relayBinding) {
	delete(r.byToken, rb.token)
	if r.byFlow[rb.key] == rb {
		delete(r.byFlow, rb.key)
	}
	if !rb.accepted {
		r.pending--
	}
}

// pruneLocked drops pending relays older than pendingTTL, at most once a
// second.
func (r *relays) pruneLocked(now time.Time) {
	if r.pending == 0 || now.Sub(r.lastPrune) < time.Second {
		return
	}
	r.lastPrune = now
	for _, rb := range r.byToken {
		if !rb.accepted && now.Sub(rb.since) > pendingTTL {
			r.removeLocked(rb)
		}
	}
}

// count returns the number of relays and of pending ones (for tests).
func (r *relays) count() (all, pending int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byToken), r.pending
}
