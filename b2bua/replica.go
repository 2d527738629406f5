package b2bua

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// Calls that outlive their node (issue 19): an answered call's
// continuation state, CallState, is handed to the Replicator at each
// change (replicate), and another server builds the call again from it
// (Restore, replica_restore.go) after this one died or handed it over.

// Replicator keeps the continuation states of calls where another node
// can read them (internal/cluster: Redis). Save and Forget are called on
// the call's goroutine, at each change of an answered call and once when
// it ends: they must not block (queue the write, coalesce a call's
// states). state is CallState's JSON, id the call's record ID.
type Replicator interface {
	Save(id string, state []byte)
	Forget(id string)
}

// MediaReplica is a media session that can hand over its state (ports,
// latched peers, keys) so that Hooks.RestoreMedia continues it on another
// node; a session without it replicates no media state.
type MediaReplica interface {
	ReplicaState() ([]byte, error)
}

// MediaRestorer opens a call's media session again from the state
// MediaReplica gave (nil: the session had none to give).
type MediaRestorer func(callID string, state []byte) (MediaSession, error)

// CallState is what another node needs to continue an answered call:
// both dialogs, both SDPs, the record so far and the media session's
// state. Its JSON is the replicated form (short names: one per call and
// change, some 2 kB).
type CallState struct {
	Rec         outcome.CallRecord `json:"rec"`
	A           LegState           `json:"a"`
	B           LegState           `json:"b"`
	User        string             `json:"user,omitempty"`
	Users       []string           `json:"users,omitempty"`
	MaxDuration time.Duration      `json:"max,omitempty"`
	Media       json.RawMessage    `json:"media,omitempty"`
}

// LegState is one dialog of a call (RFC 3261 12: Call-ID, tags, CSeqs,
// route set, remote target), where its messages go, the SBC's Contact
// and Via in it, its last SDPs and its session timer (RFC 4028).
type LegState struct {
	CallID     string         `json:"cid"`
	LocalTag   string         `json:"ltag"`
	RemoteTag  string         `json:"rtag"`
	LocalName  string         `json:"lname,omitempty"`
	LocalURI   string         `json:"luri"`
	RemoteName string         `json:"rname,omitempty"`
	RemoteURI  string         `json:"ruri"`
	LocalSeq   uint32         `json:"lseq"`
	RemoteSeq  uint32         `json:"rseq"`
	Target     string         `json:"target"`
	Routes     []string       `json:"routes,omitempty"`
	Kind       string         `json:"kind"`
	Addr       netip.AddrPort `json:"addr"`
	Local      netip.AddrPort `json:"local,omitzero"`
	Listener   string         `json:"lis,omitempty"`
	Host       string         `json:"host,omitempty"` // TLS server name
	Contact    string         `json:"contact"`
	ViaHost    string         `json:"vhost"`
	ViaPort    uint16         `json:"vport"`
	Pass       []string       `json:"pass,omitempty"`
	Update     bool           `json:"upd,omitempty"`
	DTMFInfo   bool           `json:"info,omitempty"`
	SDPIn      string         `json:"sdpin,omitempty"`
	SDPOut     string         `json:"sdpout,omitempty"`
	// SessionExpires is the leg's session interval in seconds (0: none);
	// WeRefresh whether the SBC is its refresher.
	SessionExpires int  `json:"se,omitempty"`
	WeRefresh      bool `json:"refresher,omitempty"`
	// FlowUser and FlowInstance are who a WebSocket leg's party is (the
	// user and RFC 5626 instance that may take the dialog over from a new
	// connection: flowgrace.go); "" for other legs.
	FlowUser     string `json:"fuser,omitempty"`
	FlowInstance string `json:"finst,omitempty"`
}

// State returns the call's continuation state; call goroutine only, and
// only for a confirmed call (both legs up).
func (c *Call) State() (CallState, error) {
	st := CallState{Rec: c.rec.full(), A: c.a.state(), B: c.b.state(), User: c.user, Users: c.users, MaxDuration: c.maxDuration}
	if m, ok := c.media.(MediaReplica); ok {
		ms, err := m.ReplicaState()
		if err != nil {
			return CallState{}, fmt.Errorf("media state: %w", err)
		}
		st.Media = ms
	}
	return st, nil
}

func (l *leg) state() LegState {
	st := LegState{
		CallID: l.callID, LocalTag: l.localTag, RemoteTag: l.remoteTag,
		LocalName: nameOf(l.local), LocalURI: l.local.Uri.String(),
		RemoteName: nameOf(l.remote), RemoteURI: l.remote.Uri.String(),
		LocalSeq: l.localSeq, RemoteSeq: l.remoteSeq, Target: l.remoteTarget.String(),
		Kind: l.dst.Kind.Param(), Addr: l.dst.Addr, Local: l.dst.Local, Listener: l.dst.Listener, Host: l.dst.Host,
		ViaHost: l.viaHost, ViaPort: l.viaPort,
		Update: l.peerAllowsUpdate, DTMFInfo: l.dtmfInfo, SDPIn: l.lastSDPIn, SDPOut: l.lastSDPOut,
		SessionExpires: int(l.timer.interval / time.Second), WeRefresh: l.timer.weRefresh,
	}
	if ch, ok := l.contact.(*sip.ContactHeader); ok && ch.Address != nil {
		st.Contact = ch.Address.String()
	}
	for _, h := range l.routeSet {
		if r, ok := h.(*sip.RouteHeader); ok {
			for _, u := range r.Addresses {
				st.Routes = append(st.Routes, u.String())
			}
		}
	}
	if k := l.dst.Kind; k == transport.WS || k == transport.WSS {
		owner := l.call.flowOwnerOf(l)
		st.FlowUser, st.FlowInstance = owner.user, owner.instance
	}
	for name := range l.pass {
		st.Pass = append(st.Pass, name)
	}
	slices.Sort(st.Pass)
	return st
}

func nameOf(a *sip.Address) string {
	if a.DisplayName == nil {
		return ""
	}
	return a.DisplayName.String()
}

// replMark is what replicate compares to know whether a call changed
// since its last saved state: what State reads that can change in an
// answered call, by identity where a change makes a new value (a leg, a
// target URI, an SDP). CSeqs are left out: a restore jumps them
// (replica_restore.go).
type replMark struct {
	id       string
	b        *leg
	a, bm    legMark
	mediaGen uint64
}

type legMark struct {
	tag            string
	target         sip.Uri
	routes         int
	dst            transport.Target
	sdpIn, sdpOut  string
	timer          sessionTimer
	confirmed, upd bool
}

func (l *leg) mark() legMark {
	return legMark{l.remoteTag, l.remoteTarget, len(l.routeSet), l.dst, l.lastSDPIn, l.lastSDPOut,
		l.timer, l.confirmed, l.peerAllowsUpdate}
}

// replica is a call's replication bookkeeping; nil until its first save.
type replica struct {
	last     replMark
	mediaGen uint64 // media events other than DTMF seen: latches, DTLS up
}

// replicate saves the call's state when it changed since the last save;
// it runs after each event of an answered call, with a Replicator.
func (c *Call) replicate() {
	r := c.s.hooks.Replicate
	if r == nil || c.state != stateConfirmed || c.a == nil || c.b == nil || !c.a.confirmed {
		return
	}
	if c.repl == nil {
		c.repl = &replica{}
	}
	m := replMark{id: c.rec.ID, b: c.b, a: c.a.mark(), bm: c.b.mark(), mediaGen: c.repl.mediaGen}
	if m == c.repl.last {
		return
	}
	st, err := c.State()
	if err != nil {
		c.log.Warn("call not replicated", "err", err)
		return
	}
	data, err := json.Marshal(&st)
	if err != nil {
		c.log.Warn("call not replicated", "err", err)
		return
	}
	if old := c.repl.last.id; old != "" && old != m.id {
		r.Forget(old) // a transfer split the record: the call goes on under the new one
	}
	r.Save(m.id, data)
	c.repl.last = m
}

// unreplicate forgets an ending call's state: nobody must restore it.
func (c *Call) unreplicate() {
	if r := c.s.hooks.Replicate; r != nil && c.repl != nil && c.repl.last.id != "" {
		r.Forget(c.repl.last.id)
		c.repl.last.id = ""
	}
}

// mediaChanged notes a media event that changed the session's state
// (a latch, DTLS keys): the next replicate saves it.
func (c *Call) mediaChanged() {
	if c.s.hooks.Replicate == nil {
		return // nothing replicated: no state to keep (0.5 kB a call)
	}
	if c.repl == nil {
		c.repl = &replica{}
	}
	c.repl.mediaGen++
}

// flowOwnerOf is who may take leg l over from a new connection: the
// owner of its lost flow when in its grace, else of its connection.
func (c *Call) flowOwnerOf(l *leg) flowOwner {
	if lf := c.grace.of(l); lf != nil {
		return lf.owner
	}
	var b registrar.Binding
	if c.s.reg != nil && l.dst.Conn != nil {
		b, _ = c.s.reg.BindingOn(l.dst.Conn, "")
	}
	return c.ownerOf(l, b)
}
