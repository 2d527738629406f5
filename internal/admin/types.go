package admin

import "time"

// The JSON documents of the API. Field names are the README's; times are
// RFC 3339 in UTC, a time that did not happen is null.

// Call is one call in progress (GET /api/v1/calls).
type Call struct {
	ID        string     `json:"id"`             // the CDR id: 32 hex digits
	Node      string     `json:"node,omitempty"` // the node holding it, in a cluster's listing
	State     string     `json:"state"`          // calling, ringing, answered or ending
	From      string     `json:"from"`           // the caller's From URI
	To        string     `json:"to"`             // the caller's To URI
	SrcAddr   string     `json:"src_addr"`
	Route     string     `json:"route"`
	Trunk     string     `json:"trunk"` // last B-leg destination ("echo" for the echo destination)
	Start     time.Time  `json:"start_time"`
	Ring      *time.Time `json:"ring_time"`
	Answer    *time.Time `json:"answer_time"`
	DurationS float64    `json:"duration_s"` // since start_time
	BillsecS  float64    `json:"billsec_s"`  // since answer_time; 0 if not answered
	Traced    bool       `json:"traced"`     // debug-logged by a trace
	Legs      []Leg      `json:"legs"`       // a, then b once one was sent
	Media     Media      `json:"media"`
}

// Leg is one dialog of a call.
type Leg struct {
	Side      string `json:"side"`      // a (the caller's) or b (the callee's)
	CallID    string `json:"call_id"`   // this leg's Call-ID
	Transport string `json:"transport"` // udp, tcp, tls, ws or wss
	Peer      string `json:"peer"`      // ip:port of the far end
	Codec     string `json:"codec"`     // e.g. PCMU/8000; "" until negotiated
	Confirmed bool   `json:"confirmed"` // the dialog is established
}

// Media is a call's media counters so far, per direction.
type Media struct {
	AtoB Flow `json:"a_to_b"`
	BtoA Flow `json:"b_to_a"`
}

// Flow is one direction of media, as in the CDR.
type Flow struct {
	Packets  uint64  `json:"packets"`
	Bytes    uint64  `json:"bytes"`
	Lost     int64   `json:"lost"`
	JitterMs float64 `json:"jitter_ms"`
	MOS      float64 `json:"mos"`
}

// Registration is one registered contact (GET /api/v1/registrations).
type Registration struct {
	AOR       string    `json:"aor"`     // address of record, sip:user@domain
	Contact   string    `json:"contact"` // the contact URI as registered
	Source    string    `json:"source"`  // ip:port the REGISTER came from
	Transport string    `json:"transport"`
	UserAgent string    `json:"user_agent"`
	Expires   time.Time `json:"expires"`
}

// Ban is one banned source (GET/POST /api/v1/bans).
type Ban struct {
	Addr   string     `json:"addr"`   // an IP address or CIDR prefix
	Reason string     `json:"reason"` // why; "admin" when given by the API without one
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until"` // null: until removed
	// Scope is "all" (every transport) or "udp" (UDP only: a dynamic ban
	// on evidence that came in datagrams, whose source can be forged).
	Scope string `json:"scope"`
	// Evidence counts the events behind a dynamic ban; 0 for an
	// operator's ban (never evicted when the table is full).
	Evidence int `json:"evidence"`
}

// Trunk is one trunk's state (GET /api/v1/trunks).
type Trunk struct {
	Name                string     `json:"name"`
	URI                 string     `json:"uri"`
	Up                  bool       `json:"up"`
	LastProbe           *time.Time `json:"last_probe"` // null: never probed (or probing off)
	LastError           string     `json:"last_error"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	// Registration is the SBC's registration at the trunk; null when the
	// trunk has no register section.
	Registration *TrunkRegistration `json:"registration"`
	// History is the trunk's last up/down changes, oldest first; empty
	// before the first change (a trunk starts up).
	History []TrunkChange `json:"history"`
}

// TrunkChange is one change of a trunk's state.
type TrunkChange struct {
	At time.Time `json:"at"`
	Up bool      `json:"up"`
}

// TrunkRegistration is the state of the registration the SBC keeps at a
// trunk (trunks[].register).
type TrunkRegistration struct {
	State     string     `json:"state"` // registering, registered, failed, unregistered
	Registrar string     `json:"registrar"`
	Contact   string     `json:"contact"`    // the Contact registered; "" before the first success
	Expires   *time.Time `json:"expires"`    // null unless registered
	LastError string     `json:"last_error"` // why the last attempt failed; "" after a success
	Failures  int        `json:"failures"`   // failed attempts in a row
	Since     *time.Time `json:"since"`      // when state last changed
	NextTry   *time.Time `json:"next_try"`   // the next REGISTER (refresh or retry)
}

// Readiness is the answer of /readyz.
type Readiness struct {
	Ready  bool    `json:"ready"`
	Checks []Check `json:"checks"`
}

// Check is one readiness condition.
type Check struct {
	Name   string `json:"name"` // listeners, trunks, cdr, draining
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// ReloadResult is what a successful reload changed.
type ReloadResult struct {
	// Applied names the config sections now in force: routes, trunks,
	// tls, log...
	Applied []string `json:"applied"`
	// RestartRequired names the changed keys that only a restart applies
	// (listeners, media ports, admin address...).
	RestartRequired []string `json:"restart_required"`
}

// DrainStatus is the answer of POST /api/v1/drain.
type DrainStatus struct {
	Draining    bool      `json:"draining"`
	ActiveCalls int       `json:"active_calls"`
	Deadline    time.Time `json:"deadline"` // the remaining calls are ended then
}
