package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	callout "github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// Reliable provisional responses (RFC 3262) through the SBC, on each leg
// on its own, with SIPp on both sides: a caller that requires 100rel in
// front of a PBX without it, a PBX that sends its early media reliably to
// a caller without 100rel, and both. The caller and the PBX each check
// their side (prack_uac, prack_uas); this test checks what crosses the
// SBC and the call's record.

// The SIPp endpoints' own addresses (127.0.4.2 and .3 before the split).
var (
	prackCallerIP = e2e.IP(42)
	prackCalleeIP = e2e.IP(43)
)

func TestSIPpPRACK(t *testing.T) {
	cases := []struct {
		name, uac, uas string
		tcp            bool // run over TCP too (no retransmissions there)
	}{
		{"caller requires 100rel, callee without", "prack_uac.xml", "early_media_uas.xml", false},
		{"callee reliable, caller without", "early_media_uac.xml", "prack_uas.xml", false},
		{"both sides 100rel", "prack_uac.xml", "prack_uas.xml", true},
	}
	for _, tp := range []string{sipptest.UDP, sipptest.TCP} {
		for _, tc := range cases {
			if tp == sipptest.TCP && !tc.tcp {
				continue
			}
			t.Run(transportName(tp)+"/"+tc.name, func(t *testing.T) {
				sipptest.Require(t)
				uac, uas, recs := runPRACKCall(t, tp, tc.uac, tc.uas)
				checkPRACKCaller(t, uac, tc.uac == "prack_uac.xml")
				checkPRACKCallee(t, uas, tc.uas == "prack_uas.xml")
				if len(recs) != 1 {
					t.Fatalf("%d records, want 1", len(recs))
				}
				r := recs[0]
				if r.Disposition != callout.Answered || r.SIPCode != 200 || r.HangupCause != "caller_bye" ||
					r.HangupSide != "a" || r.BillsecS <= 0 {
					t.Errorf("record: %+v", r)
				}
			})
		}
	}
}

// runPRACKCall runs one call from the UAC scenario through the SBC to the
// UAS scenario and returns both runs' results and the call's records.
func runPRACKCall(t *testing.T, tp, uacName, uasName string) (uac, uas sipptest.Result, recs []cdr.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "jsonl")
	cdrs := func(c *config.Config) {
		c.CDRSpool = filepath.Join(dir, "spool")
		c.CDR = []config.CDRWriter{{Name: "jsonl", Type: config.CDRJSONL, Dir: jsonl, RotateEvery: 100 * time.Millisecond}}
	}
	callee := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath(uasName), Transport: tp,
		LocalIP: prackCalleeIP, MessageLog: true, Timeout: 30 * time.Second})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: cdrs, Trunks: []e2e.TrunkSpec{{Name: "pbx",
		Addr: prackCalleeIP, Port: int(callee.Addr().Port()), Transport: transportName(tp)}}})
	caller := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath(uacName), Transport: tp,
		LocalIP: prackCallerIP, Remote: sbc.UDP.String(), MessageLog: true, Timeout: 30 * time.Second,
		Args: []string{"-s", "1000", "-d", "300"}})
	uac, uas = caller.Wait(), callee.Wait()
	if err := uac.Check(1); err != nil {
		t.Error(err)
	}
	if err := uas.Check(1); err != nil {
		t.Error(err)
	}
	sbc.WaitIdle(t)
	if err := sbc.App.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range e2e.FinishedCDRFiles(t, jsonl, "jsonl") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for dec := json.NewDecoder(bytes.NewReader(data)); dec.More(); {
			var r cdr.Record
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			recs = append(recs, r)
		}
	}
	return uac, uas, recs
}

// checkPRACKCaller: a caller with 100rel got its 183 reliably and its PRACK
// answered 200 before the 2xx; one without got a plain 183 with the SDP.
func checkPRACKCaller(t *testing.T, uac sipptest.Result, rel bool) {
	t.Helper()
	var early []sipptest.Message
	got2xx := false
	for _, m := range uac.Received() {
		if m.StatusCode() == 183 {
			early = append(early, m)
		}
		if m.StatusCode() == 200 && strings.HasSuffix(m.Header("CSeq"), "INVITE") {
			got2xx = true
		}
		if m.StatusCode() == 200 && strings.HasSuffix(m.Header("CSeq"), "PRACK") && got2xx {
			t.Error("caller: the 2xx came before the PRACK of the 183 with SDP was answered")
		}
	}
	if len(early) == 0 || !strings.Contains(early[0].Body(), "m=audio") {
		t.Fatalf("caller: no 183 with SDP (%d 183s)", len(early))
	}
	reliable := strings.Contains(early[0].Header("Require"), "100rel") && early[0].Header("RSeq") != ""
	if reliable != rel {
		t.Errorf("caller: 183 Require %q RSeq %q, want reliable %v", early[0].Header("Require"), early[0].Header("RSeq"), rel)
	}
}

// checkPRACKCallee: leg B's INVITE advertised 100rel; a callee that sent a
// reliable 183 got one PRACK whose RAck names RSeq 1 and the INVITE's CSeq,
// in the early dialog of its 183.
func checkPRACKCallee(t *testing.T, uas sipptest.Result, rel bool) {
	t.Helper()
	var invite sipptest.Message
	var pracks []sipptest.Message
	for _, m := range uas.Received() {
		switch m.Method() {
		case "INVITE":
			invite = m
		case "PRACK":
			pracks = append(pracks, m)
		}
	}
	if !strings.Contains(invite.Header("Supported"), "100rel") {
		t.Errorf("callee: INVITE Supported %q, want 100rel", invite.Header("Supported"))
	}
	if !rel {
		if len(pracks) != 0 {
			t.Errorf("callee without 100rel got %d PRACKs", len(pracks))
		}
		return
	}
	if len(pracks) == 0 {
		t.Fatal("callee: no PRACK")
	}
	seq, _, _ := strings.Cut(invite.Header("CSeq"), " ")
	if got, want := pracks[0].Header("RAck"), "1 "+seq+" INVITE"; got != want {
		t.Errorf("callee: PRACK RAck %q, want %q", got, want)
	}
	if pracks[0].Header("Call-ID") != invite.Header("Call-ID") || !strings.Contains(pracks[0].Header("To"), "tag=") {
		t.Errorf("callee: PRACK outside the early dialog: Call-ID %q To %q", pracks[0].Header("Call-ID"), pracks[0].Header("To"))
	}
}
