package security

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/jackc/pgx/v5"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/cdr/pgtest"
	"github.com/sbc-project/sbc/test/e2e"
)

// rawPeer is an attacker's socket on the SBC's UDP or TCP listener, from
// a loopback address of its own: it writes bytes as they are and reads
// responses without parsing them (a 400 echoes the attacker's bytes).
type rawPeer struct {
	t      *testing.T
	conn   net.Conn
	stream bool // TCP: responses are cut from a byte stream
	buf    []byte
}

func dialRaw(t *testing.T, network, src string, sbc fmt.Stringer) *rawPeer {
	t.Helper()
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).Dial(network, sbc.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, conn: c, stream: network == "tcp"}
}

func (p *rawPeer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.Write([]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
}

// final returns the first final response the SBC sends, skipping
// provisional ones, or nil if none comes within 5 seconds.
func (p *rawPeer) final() []byte {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	chunk := make([]byte, 65535)
	for {
		if msg, rest, ok := e2e.NextMessage(p.buf); ok && p.stream {
			p.buf = rest
			if e2e.FinalCode(msg) != 0 {
				return msg
			}
			continue
		}
		_ = p.conn.SetReadDeadline(deadline)
		n, err := p.conn.Read(chunk)
		if err != nil {
			return nil
		}
		if !p.stream {
			if e2e.FinalCode(chunk[:n]) != 0 {
				return append([]byte(nil), chunk[:n]...)
			}
			continue
		}
		p.buf = append(p.buf, chunk[:n]...)
	}
}

// attackRequest is a request to user with the given From, To and Call-ID
// values written as they are; an INVITE carries an SDP offer.
func attackRequest(p *rawPeer, method, user, from, to, callID, branch string) string {
	transport, host := "UDP", p.conn.LocalAddr().String()
	if p.stream {
		transport = "TCP"
	}
	body := ""
	if method == "INVITE" {
		body = strings.ReplaceAll(e2e.CallerSDP(), "\n", "\r\n")
	}
	return method + " sip:" + user + "@" + p.conn.RemoteAddr().String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/" + transport + " " + host + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\nFrom: " + from + "\r\nTo: " + to + "\r\nCall-ID: " + callID + "\r\n" +
		"CSeq: 1 " + method + "\r\nContact: <sip:x@" + host + ";transport=" + strings.ToLower(transport) + ">\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// TestSecurityCDRControlCharacters attacks the CDR pipeline as issue 13
// found it open: an INVITE whose Call-ID, From or To carries a NUL (or
// another control character, or bytes that are not UTF-8) was accepted,
// and its record then made PostgreSQL refuse every batch forever. Over UDP
// and TCP, from addresses of their own, the attackers now get 400 with the
// reason and no call; an escaped %00 in a URI user (valid SIP, RFC 4475
// escnull) is a call like any other whose record keeps the escape. The
// legitimate calls before and after have their records in PostgreSQL,
// and no writer quarantined or failed anything.
func TestSecurityCDRControlCharacters(t *testing.T) {
	pg := pgtest.Start(t)
	sinks := e2e.NewCDRSinks(t, pg.CreateDB(t, "nul"))
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: sinks.Apply})

	before := legitimateCall(t, sbc, pbx, "1000")
	refused := controlCharacterAttacks(t, sbc)
	if got := sbc.App.Server().Stats().BadMessages.Load(); got != uint64(refused) {
		t.Errorf("%d bad messages counted, want the %d attacks", got, refused)
	}
	escapedNullCalls(t, sbc, pbx) // the PBX's next INVITEs are these: no attack reached it
	after := legitimateCall(t, sbc, pbx, "2000")

	sbc.WaitIdle(t)
	e2e.WaitFor(t, 30*time.Second, "every record delivered", func() bool {
		for _, w := range sbc.App.CDR().Stats().Writers {
			if w.Pending > 0 {
				return false
			}
		}
		return true
	})
	if s := sbc.App.CDR().Stats(); s.Alarm() || s.Recorded != 4 {
		t.Errorf("cdr stats %+v, want 4 records and no alarm (nothing failing, nothing quarantined)", s)
	}
	rows := cdrRows(t, sinks.DSN)
	want := map[string]string{before: "sip:alice@caller.example", after: "sip:alice@caller.example",
		"escnull-udp": "sip:null-%00-null@attacker.example", "escnull-tcp": "sip:null-%00-null@attacker.example"}
	if len(rows) != len(want) {
		t.Errorf("postgres holds %d records, want %d: %v", len(rows), len(want), rows)
	}
	for callID, from := range want {
		if rows[callID] != from {
			t.Errorf("postgres record of %s: from_uri %q, want %q", callID, rows[callID], from)
		}
	}
	if err := sbc.App.Close(); err != nil {
		t.Fatal(err)
	}
	if recs := sinks.Records(t); len(recs) != len(want) { // every writer holds the same records
		t.Errorf("%d records in the files, want %d", len(recs), len(want))
	}
}

// controlCharacterAttacks sends INVITEs with control characters (or bytes
// that are not UTF-8) in Call-ID, From or To over UDP and TCP, each from a
// loopback address of its own, checks that each gets 400 with the reason,
// and returns how many it sent.
func controlCharacterAttacks(t *testing.T, sbc *e2e.SBC) int {
	attacks := []struct {
		name, from, to, callID, reason string
	}{
		{"NUL in Call-ID", "", "", "evil\x00", "Control character in Call-ID"},
		{"NUL in From user", "<sip:ev\x00il@attacker.example>;tag=a1", "", "", "Control character in From"},
		{"NUL in To display name", "", "\"Bo\x00b\" <sip:666@sbc.example>", "", "Control character in To"},
		{"ESC sequence in Call-ID", "", "", "x\x1b[2J", "Control character in Call-ID"},
		{"bare CR in From", "<sip:mallory@attacker.example>;tag=a2\rX-Injected: 1", "", "", "Control character in From"},
		{"not UTF-8 in Call-ID", "", "", "x\xff\xfe", "Invalid UTF-8 in Call-ID"},
	}
	host := 20
	for _, network := range []string{"udp", "tcp"} {
		for _, a := range attacks {
			t.Run(network+"/"+a.name, func(t *testing.T) {
				host++
				p := dialRaw(t, network, e2e.IP(host), sbc.UDP)
				from, to := cmp.Or(a.from, "<sip:mallory@attacker.example>;tag=a0"), cmp.Or(a.to, "<sip:666@sbc.example>")
				callID := a.callID + sipmsg.NewToken(6)
				p.send(attackRequest(p, "INVITE", "666", from, to, callID, "z9hG4bK"+sipmsg.NewToken(6)))
				res := p.final()
				if want := "SIP/2.0 400 " + a.reason + "\r\n"; !bytes.HasPrefix(res, []byte(want)) {
					t.Fatalf("attacker got %q, want %q", res, want)
				}
			})
		}
	}
	return 2 * len(attacks)
}

// escapedNullCalls places, over UDP and TCP, a call whose From user holds
// an escaped %00: valid SIP (RFC 4475 escnull), routed like any call. The
// PBX refuses it; its record keeps "%00" as text.
func escapedNullCalls(t *testing.T, sbc *e2e.SBC, pbx *e2e.UAS) {
	t.Helper()
	for i, network := range []string{"udp", "tcp"} {
		p := dialRaw(t, network, e2e.IP(60+i), sbc.UDP)
		branch, from, callID := "z9hG4bK"+sipmsg.NewToken(6), "<sip:null-%00-null@attacker.example>;tag=e"+network, "escnull-"+network
		p.send(attackRequest(p, "INVITE", "777", from, "<sip:777@sbc.example>", callID, branch))
		inv := pbx.ExpectReq("INVITE")
		if u := inv.Recipient().User(); u == nil || u.String() != "777" {
			t.Fatalf("%s: the PBX got an INVITE for %v: a refused attack reached a call", network, inv.Recipient())
		}
		pbx.Respond(inv, 403, "Forbidden", "pbx", "")
		pbx.ExpectReq("ACK")
		res := p.final()
		if e2e.FinalCode(res) != 403 {
			t.Fatalf("%s: escaped %%00 caller got %q, want the PBX's 403", network, res)
		}
		toTag := sipmsg.ToTag(mustParse(t, res))
		p.send(attackRequest(p, "ACK", "777", from, "<sip:777@sbc.example>;tag="+toTag, callID, branch))
	}
}

// TestSecurityCDRPoisonedSpool: an SBC upgraded over a spool in which an
// older version left the record of an attacker's call with a NUL in its
// Call-ID, between two good ones. PostgreSQL refused that batch on every
// retry and nothing after it was ever delivered. Now the good records
// reach PostgreSQL, the bad one is quarantined by the postgres and csv
// writers (JSON lines carries it, escaped), and the operator sees it in
// /metrics and /readyz while the SBC stays ready.
func TestSecurityCDRPoisonedSpool(t *testing.T) {
	pg := pgtest.Start(t)
	sinks := e2e.NewCDRSinks(t, pg.CreateDB(t, "spool"))
	good := func(id string) cdr.Record {
		return cdr.Record{ID: id, NodeID: "sbc-1", ACallID: id + "@caller.example", Disposition: outcome.Failed,
			HangupCause: "normal_clearing", HangupSide: "sbc"}
	}
	bad := good("bad")
	bad.ACallID = "evil\x00@attacker.example"
	writeOldSpool(t, sinks.Spool, good("before"), bad, good("after"))

	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) { sinks.Apply(c); e2e.WithAdmin("tok")(c) }})
	e2e.WaitFor(t, 30*time.Second, "every record delivered", func() bool {
		for _, w := range sbc.App.CDR().Stats().Writers {
			if w.Pending > 0 {
				return false
			}
		}
		return true
	})
	rows := cdrRows(t, sinks.DSN)
	_, before := rows["before@caller.example"]
	_, after := rows["after@caller.example"]
	if len(rows) != 2 || !before || !after {
		t.Errorf("postgres holds the records of %v, want the two good ones", rows)
	}
	admin := sbc.Admin(t, "tok")
	m := admin.Metrics()
	for writer, want := range map[string]float64{"postgres": 1, "csv": 1, "jsonl": 0} {
		if got := m[`sbc_cdr_quarantined_total{writer="`+writer+`"}`]; got != want {
			t.Errorf("sbc_cdr_quarantined_total of %s = %v, want %v", writer, got, want)
		}
	}
	var ready struct {
		Ready  bool
		Checks []struct {
			Name, Detail string
			OK           bool
		}
	}
	admin.JSON("GET", "/readyz", "", 200, &ready)
	for _, c := range ready.Checks {
		if c.Name == "cdr" && (!c.OK || !strings.Contains(c.Detail, "writer postgres quarantined 1 records in "+
			filepath.Join(sinks.Spool, "quarantine-postgres.jsonl"))) {
			t.Errorf("readyz cdr check %+v, want ok and the quarantine named", c)
		}
	}
}

// writeOldSpool writes recs as finished records into a journal segment in
// dir, the way the spool stores them (cdr/frame.go): per record, a frame
// of length and CRC-32C (little endian) of the payload, then the payload:
// 'E' and the record's JSON, in which a NUL is \u0000.
func writeOldSpool(t *testing.T, dir string, recs ...cdr.Record) {
	t.Helper()
	var seg []byte
	for _, r := range recs {
		body, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		payload := append([]byte{'E'}, body...)
		seg = binary.LittleEndian.AppendUint32(seg, uint32(len(payload)))
		seg = binary.LittleEndian.AppendUint32(seg, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
		seg = append(seg, payload...)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seg-%020d.log", 1)), seg, 0o640); err != nil {
		t.Fatal(err)
	}
}

// legitimateCall places an answered call to user through the PBX, hangs
// it up, and returns its Call-ID.
func legitimateCall(t *testing.T, sbc *e2e.SBC, pbx *e2e.UAS, user string) string {
	t.Helper()
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite(user, "")
	inv := pbx.ExpectReq("INVITE")
	if u := inv.Recipient().User(); u == nil || u.String() != user {
		t.Fatalf("the PBX got an INVITE for %v, want %s", inv.Recipient(), user)
	}
	pbx.Respond(inv, 200, "OK", "pbx", e2e.UASSDP())
	call.Answered(ua.Expect(200))
	call.Ack()
	pbx.ExpectReq("ACK")
	call.Bye()
	bye := pbx.ExpectReq("BYE")
	pbx.Respond(bye, 200, "OK", "", "")
	ua.Expect(200)
	return call.CallID
}

// cdrRows returns the from_uri of every record in the cdr table at dsn,
// by a_call_id.
func cdrRows(t *testing.T, dsn string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT a_call_id, from_uri FROM cdr")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var id, from string
		if err := rows.Scan(&id, &from); err != nil {
			t.Fatal(err)
		}
		out[id] = from
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustParse(t *testing.T, data []byte) sip.Message {
	t.Helper()
	m, err := sipmsg.NewParser(sipmsg.Limits{}).Parse(data)
	if err != nil {
		t.Fatalf("parse %q: %v", data, err)
	}
	return m
}
