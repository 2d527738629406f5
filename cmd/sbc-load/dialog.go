package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// sipLink carries one caller's SIP to the SBC: a shared UDP socket or the
// call's own WebSocket.
type sipLink interface {
	send(b []byte) error
	// reliable is true on a stream transport: no retransmissions.
	reliable() bool
}

// dialog is the caller's side of one call: it sends INVITE, ACK and BYE,
// waits for their responses on res (fed by the link's reader) and answers
// what the SBC sends within the call.
type dialog struct {
	link      sipLink
	res       chan *sipMsg
	transport string // Via transport: UDP or WSS
	host      string // Via sent-by and Contact host
	user      string // the dialed user, which names the call at the UAS
	ruri      string
	target    string // the remote target from the 2xx Contact
	callID    string
	fromTag   string
	toTag     string
	routes    []string
	ack       atomic.Pointer[[]byte] // the ACK sent, resent on a retransmitted 2xx
	remoteBye atomic.Bool            // the SBC ended the call
}

func newDialog(link sipLink, transport, host, user, sbc string) *dialog {
	ruri := "sip:" + user + "@" + sbc
	return &dialog{link: link, res: make(chan *sipMsg, 16), transport: transport, host: host, user: user,
		ruri: ruri, target: ruri, callID: token(8) + "@sbc-load", fromTag: token(4)}
}

// request renders a request of this dialog.
func (d *dialog) request(method string, seq int, body string) []byte {
	var b strings.Builder
	b.WriteString(method + " " + d.target + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/" + d.transport + " " + d.host + ";branch=z9hG4bK" + token(6) + ";rport\r\n")
	for _, r := range d.routes {
		b.WriteString("Route: " + r + "\r\n")
	}
	to := "<" + d.ruri + ">"
	if d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	b.WriteString("Max-Forwards: 70\r\nFrom: <sip:load@sbc-load.invalid>;tag=" + d.fromTag + "\r\nTo: " + to + "\r\n")
	b.WriteString("Call-ID: " + d.callID + "\r\nCSeq: " + strconv.Itoa(seq) + " " + method + "\r\n")
	b.WriteString("Contact: <sip:load@" + d.host + ";transport=" + strings.ToLower(d.transport) + ">\r\n")
	writeBody(&b, body)
	return []byte(b.String())
}

// transact sends a request and returns its final response, retransmitting
// over UDP (RFC 3261 timers A/E, T1 500 ms, capped at 4 s) until an
// INVITE gets any response or another request its final one.
func (d *dialog) transact(ctx context.Context, method string, seq int, body string, timeout time.Duration) (*sipMsg, error) {
	msg := d.request(method, seq, body)
	if err := d.link.send(msg); err != nil {
		return nil, fmt.Errorf("send %s: %w", method, err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	interval := 500 * time.Millisecond
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	if d.link.reliable() {
		retransmit.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("%s: no final response within %v", method, timeout)
		case <-retransmit.C:
			if err := d.link.send(msg); err != nil {
				return nil, fmt.Errorf("resend %s: %w", method, err)
			}
			interval = min(2*interval, 4*time.Second)
			retransmit.Reset(interval)
		case m := <-d.res:
			n, meth := m.cseq()
			if n != seq || meth != method {
				continue
			}
			if m.status() >= 200 {
				return m, nil
			}
			if method == "INVITE" {
				retransmit.Stop()
			}
		}
	}
}

// invite places the call and acknowledges a 2xx; an error for anything else.
func (d *dialog) invite(ctx context.Context, sdp string, timeout time.Duration) (*sipMsg, error) {
	res, err := d.transact(ctx, "INVITE", 1, sdp, timeout)
	if err != nil {
		return nil, err
	}
	if res.status() >= 300 {
		d.link.send(d.request("ACK", 1, "")) // the SBC's transaction wants it; harmless on a stream
		return nil, fmt.Errorf("INVITE answered %s", strings.TrimPrefix(res.first, "SIP/2.0 "))
	}
	d.toTag = param(res.get("to"), "tag")
	if c := res.get("contact"); c != "" {
		d.target = uriOf(c)
	}
	rr := res.values("record-route")
	slices.Reverse(rr)
	d.routes = rr
	ack := d.request("ACK", 1, "")
	d.ack.Store(&ack)
	if err := d.link.send(ack); err != nil {
		return nil, fmt.Errorf("send ACK: %w", err)
	}
	return res, nil
}

// bye ends an answered call.
func (d *dialog) bye(ctx context.Context, timeout time.Duration) error {
	if d.remoteBye.Load() {
		return nil
	}
	res, err := d.transact(ctx, "BYE", 2, "", timeout)
	if err != nil {
		return err
	}
	if res.status() != 200 && !d.remoteBye.Load() {
		return fmt.Errorf("BYE answered %s", strings.TrimPrefix(res.first, "SIP/2.0 "))
	}
	return nil
}

// deliver hands a message from the SBC to the dialog: a response to the
// waiting transaction (a retransmitted 2xx is ACKed again), a request
// answered at once with 200.
func (d *dialog) deliver(m *sipMsg) {
	if m.isResponse() {
		if _, meth := m.cseq(); meth == "INVITE" && m.status() < 300 && m.status() >= 200 {
			if ack := d.ack.Load(); ack != nil {
				_ = d.link.send(*ack)
				return
			}
		}
		select {
		case d.res <- m:
		default: // nobody waits: a late retransmission
		}
		return
	}
	switch m.method() {
	case "ACK":
		return
	case "BYE":
		d.remoteBye.Store(true)
	}
	_ = d.link.send(response(m, 200, "OK", "", "sip:load@"+d.host, ""))
}

var errRemoteBye = errors.New("the SBC ended the call")
