package kamailio

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/sipptest"
)

// Addresses of the registrar test.
const (
	kamIP    = "127.0.6.40"
	regSBCIP = "127.0.6.41"
	regPBXIP = "127.0.6.50"
	pbxNum   = "2125550100"
)

// TestKamailioRegistrar: the shipped kamailio-registrar.yaml in front of
// Kamailio running the shipped registrar.cfg with its db_text users. Two
// web phones (JsSIP in Chromium) register through the SBC to Kamailio with
// Kamailio's digest users; alice calls bob (SBC → Kamailio, whose
// lookup("location") sends it back to the SBC contact bob registered, →
// bob's browser) and then the PBX (a SIPp UAS behind Kamailio echoing RTP).
// Both calls carry audio both ways; the SBC's CDRs show the three calls it
// handled answered, with packets both ways.
func TestKamailioRegistrar(t *testing.T) {
	sipptest.Require(t)
	chromium := browser.NeedChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	mp := evenFreePort(t, regPBXIP)
	pbx := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: regPBXIP, Timeout: 100 * time.Second,
		Args: []string{"-rtp_echo", "-mi", regPBXIP, "-mp", strconv.Itoa(mp)}})

	kam := netip.AddrPortFrom(netip.MustParseAddr(kamIP), uint16(freePort(t, kamIP)))
	cfg := loadConfig(t, "kamailio-registrar.yaml", regSBCIP, freePort(t, regSBCIP))
	setTrunk(t, cfg, "kamailio", "sip:"+kam.String())
	s := startSBC(t, cfg)
	startKamailio(t, filepath.Join(kamailioCF, "registrar.cfg"), kam,
		"KAM_IP="+kamIP, "KAM_PORT="+strconv.Itoa(int(kam.Port())), quote("SBC_IP", regSBCIP),
		quote("PBX_IP", regPBXIP), quote("PBX_URI", "sip:"+pbx.Addr().String()),
		quote("DBURL", "text://"+copyDB(t)), "KAM_CHILDREN=2")

	wss, ok := s.app.Addr("wss")
	if !ok {
		t.Fatal("no wss listener")
	}
	page := func(user string) string {
		q := url.Values{"user": {user}, "password": {user + "-secret"}, "domain": {"example.com"},
			"register": {"1"}, "autoconnect": {"1"}, "autoanswer": {"1"}}
		return "https://" + wss.String() + "/?" + q.Encode()
	}
	dir := t.TempDir()
	gate, bobHeard := filepath.Join(dir, "bob-registered"), filepath.Join(dir, "bob-heard-alice")
	// The web phones are the SBC's own page (JsSIP) in headless Chromium,
	// driven by test/browser/driver.mjs.
	bob := browser.Phone{Name: "bob", URL: page("bob"), Steps: []browser.Step{
		browser.Do("wait", "status", "registered"),
		browser.Do("wait", "call", "in-call", "timeoutMs", 60000),
		browser.Do("audio", "packets", 50, "label", "alice"),
		browser.Do("mark", "name", "heard-alice"),
		browser.Do("wait", "call", "ended", "timeoutMs", 30000),
	}}
	alice := browser.Phone{Name: "alice", URL: page("alice"), Steps: []browser.Step{
		browser.Do("wait", "status", "registered"),
		browser.Do("waitFile", "path", gate, "timeoutMs", 60000),
		browser.Do("call", "target", "bob"), browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 50, "label", "bob"),
		browser.Do("waitFile", "path", bobHeard),
		browser.Do("hangup"), browser.Do("wait", "call", "ended"),
		browser.Do("call", "target", pbxNum), browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 50, "label", "pbx"),
		browser.Do("hangup"), browser.Do("wait", "call", "ended"),
	}}
	sc := browser.Scenario{Chromium: chromium, AudioFile: browser.WriteTone(t), IgnoreHTTPSErrors: true, TimeoutMs: 20000,
		Phones: []browser.Phone{bob, alice}, Deadline: 110 * time.Second, Gates: map[string]string{"bob/heard-alice": bobHeard}}
	run := browser.Start(t, sc)
	// Both registered at Kamailio (the SBC keeps a binding only once
	// Kamailio said 200): alice may call.
	waitFor(t, "alice and bob registered through the SBC", 60*time.Second, func() bool {
		return len(s.app.Bindings().Lookup("alice@example.com")) == 1 && len(s.app.Bindings().Lookup("bob@example.com")) == 1
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := run.MustPass()
	checkAudio(t, "alice hearing bob", res["alice"].Stats(t, "bob"))
	checkAudio(t, "bob hearing alice", res["bob"].Stats(t, "alice"))
	checkAudio(t, "alice hearing the PBX's echo", res["alice"].Stats(t, "pbx"))
	if err := pbx.Wait().Check(1); err != nil {
		t.Error(err)
	}
	waitFor(t, "calls over", 15*time.Second, func() bool { return s.app.Server().ActiveCalls() == 0 })
	s.close(t)
	checkCDRs(t, cfg.CDR[0].Dir)
}

// checkCDRs wants three answered calls with packets both ways: alice's
// call to bob toward Kamailio, Kamailio's call to bob's browser, and
// alice's call to the PBX.
func checkCDRs(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var recs []cdr.Record
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var r cdr.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			recs = append(recs, r)
		}
		fh.Close()
	}
	want := map[string]string{"alice→bob": "wss", "kamailio→bob": "udp", "alice→pbx": "wss"}
	got := map[string]string{}
	for _, r := range recs {
		if r.Disposition != "ANSWERED" || r.AToBPackets == 0 || r.BToAPackets == 0 {
			t.Errorf("cdr %s → %s: %s, packets %d/%d; want ANSWERED with media both ways", r.FromURI, r.ToURI, r.Disposition, r.AToBPackets, r.BToAPackets)
		}
		switch {
		case r.ATransport == "wss" && r.Trunk == "kamailio" && contains(r.ToURI, "bob"):
			got["alice→bob"] = r.ATransport
		case r.ATransport == "udp" && contains(r.FromURI, "alice"):
			got["kamailio→bob"] = r.ATransport
		case r.ATransport == "wss" && contains(r.ToURI, pbxNum):
			got["alice→pbx"] = r.ATransport
		}
	}
	if len(recs) != 3 || len(got) != 3 {
		t.Errorf("%d CDRs %+v, matched %v; want %v", len(recs), recs, got, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// copyDB copies the shipped db_text directory (its subscriber users) to a
// temporary one Kamailio may write to.
func copyDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"subscriber", "version"} {
		b, err := os.ReadFile(filepath.Join(kamailioCF, "dbtext", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// evenFreePort is a free even UDP port on ip whose odd neighbour is free
// too (SIPp echoes RTP on it and RTCP on the next).
func evenFreePort(t *testing.T, ip string) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port%2 != 0 {
			continue
		}
		c2, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port+1)))
		if err == nil {
			c2.Close()
			return port
		}
	}
	t.Fatal("no free even port on " + ip)
	return 0
}

// checkAudio fails unless the stats show audio both ways.
func checkAudio(t *testing.T, who string, s browser.AudioStats) {
	t.Helper()
	if s.PacketsReceived < 50 || s.PacketsSent == 0 || s.TotalAudioEnergy <= 0 {
		t.Errorf("%s: received %v packets (energy %v), sent %v; want audio both ways", who, s.PacketsReceived, s.TotalAudioEnergy, s.PacketsSent)
	}
}
