// Package baresip tests the SBC against baresip, a SIP phone nobody here
// wrote: baresip → SBC → baresip over UDP and over TLS with SDES-SRTP,
// and a browser (pion) ↔ baresip. The SBC runs in-process, every baresip
// in its own process from a generated config directory, driven through
// its ctrl_tcp JSON socket; each on its own address in 127.0.1.0/24.
package baresip

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

// sbcIP is the SBC's signaling and media address.
const sbcIP = "127.0.1.1"

// webPassword is the browser's, user web.
const webPassword = "secret-of-web"

type sbcUnderTest struct {
	app    *app.App
	udp    netip.AddrPort
	tcp    netip.AddrPort
	tls    netip.AddrPort
	wss    netip.AddrPort
	cdrDir string
}

// trunk is a baresip the SBC sends calls for user to.
type trunk struct {
	name, user, uri string
	srtp            bool   // media srtp (SDES)
	caFile          string // tls.ca_file for a tls trunk
}

// startSBC runs the SBC in-process on sbcIP with UDP, TLS and WSS
// listeners (the TLS ones with cert, a leaf for sbcIP), routing calls
// for each trunk's user to it, and calls to web to the registered users.
// Each test gives its SBC a media port range of its own (rtpPorts), apart
// from every baresip's: the tests run side by side.
func startSBC(t *testing.T, cert certPair, rtpPorts string, trunks ...trunk) *sbcUnderTest {
	t.Helper()
	cfg := config.Default()
	// A race-detector run on two busy cores can make messages wait over
	// the overload delay with nothing wrong with the SBC.
	cfg.SIP.OverloadDelay = 0
	sym := config.DefaultSymmetric
	cfg.SIP.Listeners = []config.Listener{
		{Name: "udp", Transport: "udp", Addr: sbcIP + ":0", Symmetric: sym},
		{Name: "tls", Transport: "tls", Addr: sbcIP + ":0", Symmetric: sym},
		{Name: "wss", Transport: "wss", Addr: sbcIP + ":0", Symmetric: sym},
		{Name: "tcp", Transport: "tcp", Addr: sbcIP + ":0", Symmetric: sym},
	}
	cfg.SIP.TLS = config.TLS{CertFile: cert.cert, KeyFile: cert.key}
	cfg.Media.BindIP = sbcIP
	cfg.Media.RTPPorts = rtpPorts
	cfg.Trunks = nil
	loopback := []string{"127.0.0.0/8"}
	cfg.Routes = []config.Route{{Name: "web", Match: config.Match{RURIUser: "^web$"}, Target: config.TargetRegistered,
		TrustedSources: loopback}}
	for _, tr := range trunks {
		ct := config.Trunk{Name: tr.name, URI: tr.uri, OptionsTimeout: time.Second, FailureThreshold: 1}
		if tr.srtp {
			ct.Media = "srtp"
		}
		ct.TLS.CAFile = tr.caFile
		cfg.Trunks = append(cfg.Trunks, ct)
		cfg.Routes = append(cfg.Routes, config.Route{Name: tr.name, Match: config.Match{RURIUser: "^" + tr.user + "$"},
			Target: config.TargetTrunks, Trunks: []string{tr.name}, TrustedSources: loopback})
	}
	// The browser registers from the WebSocket listener as web, phones
	// from the TCP listener as reg0 to reg3.
	cfg.Users = []config.User{{Username: "web", Password: webPassword}}
	// baresip 1.0 gives up on a 401 that offers SHA-256 at all (ENOSYS),
	// whatever else it offers: it registers only where MD5 is alone.
	cfg.Auth.Algorithms = []string{"MD5"}
	for i := range lanes {
		cfg.Users = append(cfg.Users, config.User{Username: fmt.Sprint("reg", i), Password: webPassword})
	}
	cfg.Routes = append(cfg.Routes,
		config.Route{Name: "to-registered", Match: config.Match{RURIUser: "^reg[0-9]$"}, Target: config.TargetRegistered,
			TrustedSources: loopback},
		config.Route{Name: "web-register", Match: config.Match{Listener: "wss"}, Target: config.TargetRegistered},
		config.Route{Name: "phone-register", Match: config.Match{Listener: "tcp"}, Target: config.TargetRegistered})
	cfg.SIP.RingTimeout = 10 * time.Second
	cfg.SIP.InviteTimeout = 5 * time.Second
	cfg.Admin.Addr = ""
	dir := t.TempDir()
	cfg.CDRSpool = filepath.Join(dir, "cdr-spool")
	cdrDir := filepath.Join(dir, "cdr")
	cfg.CDR = []config.CDRWriter{{Type: config.CDRJSONL, Dir: cdrDir}}
	cfg.Policy.Bans.File = filepath.Join(dir, "bans.json")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	level := slog.LevelWarn
	if os.Getenv("SBC_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	a, err := app.New(cfg, log, app.Options{Timers: txn.Timers{T1: 100 * time.Millisecond, T2: 400 * time.Millisecond,
		T4: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s := &sbcUnderTest{app: a, cdrDir: cdrDir}
	s.udp, _ = a.Addr("udp")
	s.tcp, _ = a.Addr("tcp")
	s.tls, _ = a.Addr("tls")
	s.wss, _ = a.Addr("wss")
	// No goroutine count here: the tests run side by side (the e2e
	// tests check the SBC's goroutines end).
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// record is the part of a CDR these tests check.
type record struct {
	ID              string `json:"id"`
	TransferredFrom string `json:"transferred_from"`
	TransferredTo   string `json:"transferred_to"`
	Trunk           string `json:"trunk"`
	ACallID         string `json:"a_call_id"`
	ATransport      string `json:"a_transport"`
	Disposition     string `json:"disposition"`
	HangupCause     string `json:"hangup_cause"`
	AToBPackets     uint64 `json:"a_to_b_packets"`
	BToAPackets     uint64 `json:"b_to_a_packets"`
}

// records reads every CDR the SBC wrote.
func (s *sbcUnderTest) records(t *testing.T) []record {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.cdrDir, "*"))
	var out []record
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			var r record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("CDR %s: %v in %q", f, err, sc.Text())
			}
			out = append(out, r)
		}
		fh.Close()
	}
	return out
}

// waitRecord waits for the CDR of the call whose caller's Call-ID is
// callID.
func (s *sbcUnderTest) waitRecord(t *testing.T, callID string) record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range s.records(t) {
			if r.ACallID == callID {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CDR for call %s", callID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relayed returns the packets the SBC relayed a→b and b→a in the call
// in progress whose caller's Call-ID is callID; false when there is none.
func (s *sbcUnderTest) relayed(callID string) ([2]uint64, bool) {
	for _, c := range s.app.Server().Calls() {
		if c.Record.ACallID == callID {
			return [2]uint64{c.Media.AtoB.Packets, c.Media.BtoA.Packets}, true
		}
	}
	return [2]uint64{}, false
}

// waitRegistered waits until user has a binding at the SBC.
func (s *sbcUnderTest) waitRegistered(t *testing.T, user string) {
	t.Helper()
	uri, err := sipmsg.ParseURI("sip:" + user + "@" + sbcIP)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.app.Server().Registration().Bindings(uri)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not register", user)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIdle asserts that no call or media session is left.
func (s *sbcUnderTest) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.app.Server().ActiveCalls() != 0 || s.app.Media().Active() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not idle: calls=%d media=%d", s.app.Server().ActiveCalls(), s.app.Media().Active())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a port free on ip for both UDP and TCP, and the next
// one free for TCP (baresip's TLS listens on its SIP port + 1).
func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		u.Close()
		ok := true
		for _, p := range []int{port, port + 1} {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port on " + ip)
	return 0
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func (r record) String() string {
	return fmt.Sprintf("%s %s cause=%s a→b=%d b→a=%d", r.ACallID, r.Disposition, r.HangupCause, r.AToBPackets, r.BToAPackets)
}
