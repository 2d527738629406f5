// Package transfer tests call transfer (REFER) through the SBC with
// endpoints nobody here wrote: baresip transfers a call with its own
// transfer command.
package transfer

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

// Addresses of this package's endpoints (its range is 127.0.3.0/24).
const (
	sbcIP    = "127.0.3.1"
	callerIP = "127.0.3.10"
	pbxIP    = "127.0.3.11"
	targetIP = "127.0.3.12"
)

// records collects the SBC's call records.
type records struct {
	mu    sync.Mutex
	ended []outcome.CallRecord
}

func (r *records) CallStarted(outcome.CallRecord)  {}
func (r *records) CallAnswered(outcome.CallRecord) {}
func (r *records) CallEnded(c outcome.CallRecord) {
	r.mu.Lock()
	r.ended = append(r.ended, c)
	r.mu.Unlock()
}

func (r *records) all() []outcome.CallRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outcome.CallRecord(nil), r.ended...)
}

// startSBC runs the SBC in-process on sbcIP: 1000 goes to the PBX, 2000
// to the target, both trunks over UDP; every source on loopback is
// trusted.
func startSBC(t *testing.T, pbx, target *baresip) (string, *records) {
	t.Helper()
	cfg := config.Default()
	port := freePort(t, sbcIP)
	cfg.SIP.Listeners = []config.Listener{{Name: "udp", Transport: "udp", Addr: sbcIP + ":" + strconv.Itoa(port),
		Symmetric: config.DefaultSymmetric}}
	cfg.SIP.OverloadDelay = 0 // a loaded CI machine under -race is not an overloaded SBC
	cfg.Media.BindIP, cfg.Media.RTPPorts = sbcIP, "40000-49999"
	cfg.Trunks = []config.Trunk{
		{Name: "pbx", URI: fmt.Sprintf("sip:%s:%d", pbx.ip, pbx.port), FailureThreshold: 1},
		{Name: "target", URI: fmt.Sprintf("sip:%s:%d", target.ip, target.port), FailureThreshold: 1},
	}
	trusted := []string{"127.0.0.0/8"}
	cfg.Routes = []config.Route{
		{Name: "to-target", Match: config.Match{RURIUser: "^2000$"}, Target: config.TargetTrunks,
			Trunks: []string{"target"}, TrustedSources: trusted},
		{Name: "to-pbx", Match: config.Match{RURIUser: "^1000$"}, Target: config.TargetTrunks,
			Trunks: []string{"pbx"}, TrustedSources: trusted},
	}
	cfg.Admin.Addr = ""
	cfg.WebPhone.Enabled = false
	cfg.CDRSpool = filepath.Join(t.TempDir(), "spool")
	cfg.CDR = []config.CDRWriter{{Type: config.CDRJSONL, Dir: filepath.Join(t.TempDir(), "cdr")}}
	cfg.Policy.Bans.File = filepath.Join(t.TempDir(), "bans.json")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	level := slog.LevelWarn
	if os.Getenv("SBC_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	recs := &records{}
	a.Observe(recs)
	return sbcIP + ":" + strconv.Itoa(port), recs
}

// TestBaresipBlindTransfer: baresip on the PBX side answers a call from
// another baresip and transfers it to a third with its transfer command
// (REFER); the SBC performs the transfer: the target hears the caller's
// 440 Hz tone, the PBX's leg ends, and the records are linked.
func TestBaresipBlindTransfer(t *testing.T) {
	need(t, "baresip")
	need(t, "sox")
	caller := startBaresip(t, "caller", callerIP, 440, false)
	pbx := startBaresip(t, "1000", pbxIP, 660, false) // baresip answers only its account's user
	target := startBaresip(t, "2000", targetIP, 880, true)
	sbc, recs := startSBC(t, pbx, target)

	caller.command("dial", "sip:1000@"+sbc)
	waitFor(t, 15*time.Second, "the pbx answers", func() bool { return pbx.count("CALL_ESTABLISHED") == 1 }, caller, pbx)
	pbx.command("transfer", "sip:2000@"+sbc)
	waitFor(t, 15*time.Second, "the transfer target answers", func() bool {
		for _, r := range recs.all() {
			if r.Cause == outcome.CauseTransferred {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "the pbx's call ends", func() bool { return pbx.count("CALL_CLOSED") == 1 })
	// Three seconds of audio at the target: 8000 samples of 16 bits a
	// second, after the WAV header.
	waitFor(t, 15*time.Second, "3 s of audio recorded at the target", func() bool {
		st, err := os.Stat(target.recording())
		return err == nil && st.Size() > 3*16000
	})
	caller.command("hangup", "")
	waitFor(t, 10*time.Second, "two call records", func() bool { return len(recs.all()) == 2 })
	target.stop() // flushes the recording
	f := frequency(t, target.recording())
	t.Logf("the target heard %d Hz", f)
	if f < 400 || f > 480 {
		t.Errorf("the target heard %d Hz, want the caller's 440 Hz", f)
	}
	all := recs.all()
	old, next := all[0], all[1]
	if old.Cause != outcome.CauseTransferred || old.Side != outcome.SideB || old.TransferredTo != next.ID ||
		next.TransferredFrom != old.ID || next.Trunk != "target" {
		t.Errorf("records not linked: %+v\n%+v", old, next)
	}
	if next.Media.AtoB.Packets < 100 || next.Media.BtoA.Packets < 100 {
		t.Errorf("the transferred call's media: %+v", next.Media)
	}
	if t.Failed() {
		t.Logf("pbx:\n%s\ntarget:\n%s", pbx.output(), target.output())
	}
}
