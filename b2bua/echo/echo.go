// Package echo is the SBC's built-in echo destination: a real SIP user agent
// on loopback that answers every call, sends back every RTP packet it
// receives, and hangs up when told. It records the DTMF digits it receives
// (RFC 4733 events and SIP INFO) per call: see Digits. The B2BUA reaches it like any PBX, so a
// newcomer can test the whole path (browser → SBC → echo) on the embedded
// defaults.
package echo

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media/rtpproc"
)

// MaxCallDuration ends an echo call that was never hung up (its caller
// vanished without a BYE).
const MaxCallDuration = 2 * time.Hour

// UA is the echo user agent. Create it with Start; stop it with Close.
type UA struct {
	log    *slog.Logger
	ip     netip.Addr
	tp     *transport.Layer
	tx     *txn.Layer
	parser *sipmsg.Parser
	// addr is set once Listen returns, while the reader may already run.
	addr atomic.Pointer[netip.AddrPort]

	mu    sync.Mutex
	calls map[string]*call // by Call-ID
	wg    sync.WaitGroup

	dtmf *digitLog
}

type call struct {
	id      string // Call-ID
	tag     string
	version int
	streams []*stream
	timer   *time.Timer
}

// Start binds the echo UA to a UDP port on ip (port 0: any free port).
func Start(ip netip.Addr, port uint16, log *slog.Logger) (*UA, error) {
	u := &UA{log: log, ip: ip, parser: sipmsg.NewParser(sipmsg.Limits{}), calls: make(map[string]*call),
		dtmf: newDigitLog()}
	u.tp = transport.New(log, transport.Limits{MaxMessageSize: 65535, MaxLineLength: 8192,
		HandshakeTimeout: 5 * time.Second, IdleTimeout: time.Hour}, u.onPacket)
	u.tx = txn.New(func(m sip.Message, dst transport.Target) error {
		return u.tp.Send(dst, []byte(m.String()))
	}, u, txn.Timers{}, log)
	addr, err := u.tp.Listen("echo", transport.UDP, netip.AddrPortFrom(ip, port).String(), transport.ListenOptions{})
	if err != nil {
		u.tx.Close()
		_ = u.tp.Close()
		return nil, fmt.Errorf("echo: listen: %w", err)
	}
	u.addr.Store(&addr)
	return u, nil
}

// Addr is where the echo UA takes SIP over UDP.
func (u *UA) Addr() netip.AddrPort {
	if a := u.addr.Load(); a != nil {
		return *a
	}
	return netip.AddrPort{}
}

// Calls is the number of calls up.
func (u *UA) Calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.calls)
}

// Close ends every call and stops the UA.
func (u *UA) Close() error {
	u.mu.Lock()
	for id, c := range u.calls {
		u.drop(id, c)
	}
	u.mu.Unlock()
	u.tx.Close()
	err := u.tp.Close()
	u.wg.Wait()
	return err
}

func (u *UA) onPacket(p transport.Packet) {
	msg, err := u.parser.Parse(p.Data)
	if err != nil {
		return
	}
	u.tx.Receive(msg, transport.Target{Kind: p.Kind, Addr: p.Src, Conn: p.Conn, Local: p.Local})
}

// OnRequest implements txn.Handler.
func (u *UA) OnRequest(req sip.Request, tx *txn.ServerTx) {
	if tx == nil {
		return // ACK
	}
	id := sipmsg.CallID(req)
	switch req.Method() {
	case sip.INVITE:
		u.invite(id, req, tx)
	case sip.BYE:
		u.mu.Lock()
		c := u.calls[id]
		if c != nil {
			u.drop(id, c)
		}
		u.mu.Unlock()
		if c == nil {
			u.respond(tx, 481, "Call/Transaction Does Not Exist", "", "")
			return
		}
		u.respond(tx, 200, "OK", c.tag, "")
	case sip.UPDATE:
		u.update(id, req, tx)
	case sip.OPTIONS, sip.INFO:
		if req.Method() == sip.INFO {
			u.info(id, sipmsg.Header(req, "Content-Type"), []byte(req.Body()))
		}
		tag := ""
		u.mu.Lock()
		if c := u.calls[id]; c != nil {
			tag = c.tag
		}
		u.mu.Unlock()
		u.respond(tx, 200, "OK", tag, "")
	default:
		u.respond(tx, 405, "Method Not Allowed", "", "")
	}
}

// invite answers a new call or a re-INVITE with an echoing SDP answer.
func (u *UA) invite(id string, req sip.Request, tx *txn.ServerTx) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.calls[id]
	if c == nil {
		if sipmsg.ToTag(req) != "" {
			u.respond(tx, 481, "Call/Transaction Does Not Exist", "", "")
			return
		}
		c = &call{id: id, tag: sipmsg.NewToken(6)}
		u.calls[id] = c
		c.timer = time.AfterFunc(MaxCallDuration, func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.calls[id] == c {
				u.drop(id, c)
			}
		})
	}
	body, err := u.answer(c, req.Body())
	if err != nil {
		if sipmsg.ToTag(req) == "" {
			u.drop(id, c)
		}
		u.respond(tx, 488, "Not Acceptable Here", c.tag, "")
		return
	}
	u.respond(tx, 200, "OK", c.tag, body)
}

func (u *UA) update(id string, req sip.Request, tx *txn.ServerTx) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.calls[id]
	if c == nil {
		u.respond(tx, 481, "Call/Transaction Does Not Exist", "", "")
		return
	}
	body := ""
	if req.Body() != "" {
		var err error
		if body, err = u.answer(c, req.Body()); err != nil {
			u.respond(tx, 488, "Not Acceptable Here", c.tag, "")
			return
		}
	}
	u.respond(tx, 200, "OK", c.tag, body)
}

// drop ends a call's media. u.mu is held.
func (u *UA) drop(id string, c *call) {
	delete(u.calls, id)
	c.timer.Stop()
	for _, s := range c.streams {
		_ = s.conn.Close()
	}
}

func (u *UA) respond(tx *txn.ServerTx, code int, reason, tag, sdp string) {
	req := tx.Request()
	if req == nil {
		return // answered for good already (the layer's deadline for the TU)
	}
	res := txn.NewResponse(req, code, reason)
	if tag != "" {
		if to, ok := res.To(); ok && sipmsg.ToTag(res) == "" {
			sipmsg.SetTag(to, tag)
		}
	}
	if code >= 200 && code < 300 && req.Method() == sip.INVITE {
		res.AppendHeader(sipmsg.Generic("Contact", "<sip:echo@"+u.Addr().String()+">"))
	}
	res.AppendHeader(sipmsg.Generic("Server", "sbc-echo"))
	res.AppendHeader(sipmsg.Generic("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO"))
	if sdp != "" {
		sipmsg.SetBody(res, "application/sdp", sdp)
	}
	_ = tx.Respond(res)
}

// echoRTP sends every packet back to where it came from, and records the
// digits of the RFC 4733 telephone events among them.
func (u *UA) echoRTP(callID string, s *stream) {
	defer u.wg.Done()
	buf := make([]byte, 1500)
	var det rtpproc.DTMFDetector
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if n > 1 {
			pt := buf[1] & 0x7f
			if clock := s.eventClock(pt); clock != 0 {
				if ev, ended, _ := det.Feed(buf[:n], pt, clock); ended {
					u.digit(callID, ev, "rfc4733")
				}
			}
		}
		_, _ = s.conn.WriteToUDPAddrPort(buf[:n], from)
	}
}
