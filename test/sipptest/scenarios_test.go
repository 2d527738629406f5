package sipptest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pair is one UAC scenario run directly against one UAS scenario, without
// an SBC in between.
type pair struct {
	name             string
	uac, uas         string // paths
	uacArgs, uasArgs []string
	// udpOnly: run over UDP only. The register pair fails over TCP
	// (SIPp reports the calls failed after a complete exchange; not yet
	// investigated), and the phones it stands for register over UDP.
	udpOnly bool
}

// testdata returns the path of a scenario in this package's testdata.
func testdata(name string) string { return filepath.Join("testdata", name+".xml") }

// pairs validates every scenario in test/sipp (see TestEveryScenarioValidated).
var pairs = []pair{
	{name: "call_caller_bye", uac: ScenarioPath("call_caller_bye_uac"), uas: ScenarioPath("call_caller_bye_uas"),
		uacArgs: []string{"-s", "alice", "-d", "200"}},
	// A PCMA-only far end (test/e2e/transcode): its offer check wants
	// PCMA first, which a PCMU offer must fail (TestFailuresAreReported).
	{name: "call_caller_bye_pcma", uac: testdata("call_caller_bye_pcma_uac"), uas: ScenarioPath("call_caller_bye_pcma_uas"),
		uacArgs: []string{"-s", "alice", "-d", "200"}},
	{name: "call_callee_bye", uac: ScenarioPath("call_callee_bye_uac"), uas: ScenarioPath("call_callee_bye_uas"),
		uacArgs: []string{"-s", "alice"}, uasArgs: []string{"-d", "200"}},
	{name: "cancel", uac: ScenarioPath("cancel_uac"), uas: ScenarioPath("cancel_uas"),
		uacArgs: []string{"-s", "alice", "-d", "100"}},
	{name: "cancel_487_before_200", uac: ScenarioPath("cancel_uac"), uas: testdata("cancel_487_first_uas"),
		uacArgs: []string{"-s", "alice"}},
	{name: "busy_486", uac: ScenarioPath("busy_486_uac"), uas: ScenarioPath("busy_486_uas"),
		uacArgs: []string{"-s", "alice"}},
	// The SBC CANCELs the callee on ring timeout: cancel_uac plays it here.
	{name: "no_answer_uas", uac: ScenarioPath("cancel_uac"), uas: ScenarioPath("no_answer_uas"),
		uacArgs: []string{"-s", "alice", "-d", "300"}},
	// The SBC answers the caller 408 or 480 on ring timeout: these UASs play it.
	{name: "no_answer_uac_408", uac: ScenarioPath("no_answer_uac"), uas: testdata("ring_timeout_408_uas"),
		uacArgs: []string{"-s", "alice"}, uasArgs: []string{"-d", "300"}},
	{name: "no_answer_uac_480", uac: ScenarioPath("no_answer_uac"), uas: testdata("ring_timeout_480_uas"),
		uacArgs: []string{"-s", "alice"}, uasArgs: []string{"-d", "300"}},
	{name: "early_media", uac: ScenarioPath("early_media_uac"), uas: ScenarioPath("early_media_uas"),
		uacArgs: []string{"-s", "alice", "-d", "100"}},
	{name: "prack", uac: ScenarioPath("prack_uac"), uas: ScenarioPath("prack_uas"),
		uacArgs: []string{"-s", "alice", "-d", "100"}},
	{name: "reinvite_hold", uac: ScenarioPath("reinvite_hold_uac"), uas: ScenarioPath("reinvite_hold_uas"),
		uacArgs: []string{"-s", "alice", "-d", "100"}},
	// Directly, each side gets the other's fax port (no datagrams here:
	// test/e2e/fax relays them through the SBC).
	{name: "t38_reinvite", uac: ScenarioPath("t38_reinvite_uac"), uas: ScenarioPath("t38_reinvite_uas"),
		uacArgs: []string{"-s", "alice", "-d", "100", "-key", "faxport", "40000"}, uasArgs: []string{"-key", "faxport", "40002"}},
	{name: "uas_503", uac: ScenarioPath("reject_503_uac"), uas: ScenarioPath("uas_503"),
		uacArgs: []string{"-s", "alice"}},
	{name: "options", uac: ScenarioPath("options_uac"), uas: ScenarioPath("options_uas"),
		uacArgs: []string{"-s", "alice"}},
	// A phone registering with digest at a PBX's registrar; calls to it
	// are answered by the out-of-call scenario (none come here).
	{name: "register", uac: ScenarioPath("register_answer_uac"), uas: ScenarioPath("registrar_uas"),
		uacArgs: []string{"-s", "alice", "-au", "alice", "-ap", "secret", "-d", "100",
			"-oocsf", ScenarioPath("register_answer_ooc")}, udpOnly: true},
}

// runPair runs p's UAS and UAC for calls calls over transport and returns
// both results.
func runPair(t *testing.T, p pair, transport string, calls int, log bool) (uac, uas Result) {
	t.Helper()
	ctx := t.Context()
	server := Start(ctx, t, Options{
		Scenario: p.uas, Args: p.uasArgs, LocalIP: CalleeIP, Transport: transport,
		Calls: calls, Timeout: 20 * time.Second, MessageLog: log,
	})
	client := Start(ctx, t, Options{
		Scenario: p.uac, Args: p.uacArgs, LocalIP: CallerIP, Remote: server.Addr().String(),
		Transport: transport, Calls: calls, Rate: 10, Timeout: 20 * time.Second, MessageLog: log,
	})
	uac = client.Wait()
	if uac.ExitCode != 0 {
		server.Stop() // a failed caller can leave the callee waiting for ever
	}
	return uac, server.Wait()
}

func TestScenarioPairsDirect(t *testing.T) {
	Require(t)
	const calls = 2
	for _, p := range pairs {
		for _, transport := range []string{UDP, TCP} {
			if p.udpOnly && transport != UDP {
				continue
			}
			t.Run(p.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				uac, uas := runPair(t, p, transport, calls, false)
				if err := uac.Check(calls); err != nil {
					t.Errorf("caller: %v", err)
				}
				if err := uas.Check(calls); err != nil {
					t.Errorf("callee: %v", err)
				}
			})
		}
	}
}

// TestEveryScenarioValidated fails when a scenario in test/sipp is in no
// pair, so a new scenario cannot skip direct validation.
func TestEveryScenarioValidated(t *testing.T) {
	files, err := filepath.Glob(ScenarioPath("*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scenario found at %s", ScenarioPath("*"))
	}
	var used []string
	for _, p := range pairs {
		used = append(used, p.uac, p.uas)
		// Out-of-call scenarios (-oocsf) run inside a validated one.
		for i, a := range p.uacArgs {
			if a == "-oocsf" && i+1 < len(p.uacArgs) {
				used = append(used, p.uacArgs[i+1])
			}
		}
	}
	for _, f := range files {
		if !slices.Contains(used, f) {
			t.Errorf("%s is validated by no pair", filepath.Base(f))
		}
	}
}

// TestFailuresAreReported checks that a run whose checks fail is reported
// as failed, so a passing pair means something.
func TestFailuresAreReported(t *testing.T) {
	Require(t)
	t.Run("caller expects 183, callee sends none", func(t *testing.T) {
		t.Parallel()
		p := pair{uac: ScenarioPath("early_media_uac"), uas: ScenarioPath("call_caller_bye_uas"),
			uacArgs: []string{"-s", "alice"}}
		uac, _ := runPair(t, p, UDP, 1, false)
		if err := uac.Check(1); err == nil {
			t.Fatalf("caller: want failure, got success\n%s", uac.Summary())
		}
		if uac.Stats.Failed != 1 {
			t.Errorf("caller: %d failed calls, want 1\n%s", uac.Stats.Failed, uac.Summary())
		}
	})
	t.Run("PCMA-only callee offered PCMU", func(t *testing.T) {
		t.Parallel()
		p := pair{uac: ScenarioPath("call_caller_bye_uac"), uas: ScenarioPath("call_caller_bye_pcma_uas"),
			uacArgs: []string{"-s", "alice"}}
		_, uas := runPair(t, p, UDP, 1, false)
		if err := uas.Check(1); err == nil {
			t.Fatalf("callee: want failure, got success\n%s", uas.Summary())
		}
		if got := uas.Stats.Raw["FailedRegexpDoesntMatch(C)"]; got != "1" {
			t.Errorf("callee: FailedRegexpDoesntMatch(C) = %q, want 1\n%s", got, uas.Summary())
		}
	})
	t.Run("callee sees no hold in the re-INVITE", func(t *testing.T) {
		t.Parallel()
		p := pair{uac: testdata("reinvite_no_hold_uac"), uas: ScenarioPath("reinvite_hold_uas"),
			uacArgs: []string{"-s", "alice"}}
		uac, uas := runPair(t, p, TCP, 1, false)
		if err := uac.Check(1); err != nil {
			t.Errorf("caller: %v", err)
		}
		if err := uas.Check(1); err == nil {
			t.Fatalf("callee: want failure, got success\n%s", uas.Summary())
		}
		if got := uas.Stats.Raw["FailedRegexpDoesntMatch(C)"]; got != "1" {
			t.Errorf("callee: FailedRegexpDoesntMatch(C) = %q, want 1\n%s", got, uas.Summary())
		}
	})
}

// dedupe drops UDP retransmissions: messages equal to an earlier one.
func dedupe(msgs []Message) []Message {
	var out []Message
	for _, m := range msgs {
		if !slices.ContainsFunc(out, func(o Message) bool { return o.Text == m.Text && o.Dir == m.Dir }) {
			out = append(out, m)
		}
	}
	return out
}

func describe(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Method() != "" {
			out = append(out, m.Dir.String()+" "+m.Method())
		} else {
			out = append(out, m.Dir.String()+" "+strings.Fields(m.StartLine())[1])
		}
	}
	return out
}

func TestMessageLog(t *testing.T) {
	Require(t)
	tests := []struct {
		transport string
		wantProto string
	}{
		{UDP, "UDP"},
		{TCP, "TCP"},
	}
	for _, tc := range tests {
		t.Run(tc.transport, func(t *testing.T) {
			t.Parallel()
			p := pairs[0] // call_caller_bye
			uac, uas := runPair(t, p, tc.transport, 1, true)
			if err := uac.Check(1); err != nil {
				t.Fatalf("caller: %v", err)
			}
			if err := uas.Check(1); err != nil {
				t.Fatalf("callee: %v", err)
			}
			wantUAC := []string{"sent INVITE", "received 180", "received 200", "sent ACK", "sent BYE", "received 200"}
			wantUAS := []string{"received INVITE", "sent 180", "sent 200", "received ACK", "received BYE", "sent 200"}
			if got := describe(dedupe(uac.Messages)); !slices.Equal(got, wantUAC) {
				t.Errorf("caller messages = %q, want %q", got, wantUAC)
			}
			if got := describe(dedupe(uas.Messages)); !slices.Equal(got, wantUAS) {
				t.Errorf("callee messages = %q, want %q", got, wantUAS)
			}
			for _, m := range append(uac.Messages, uas.Messages...) {
				if m.Transport != tc.wantProto {
					t.Errorf("message %q logged over %q, want %q", m.StartLine(), m.Transport, tc.wantProto)
				}
			}
			invite := uas.Received()[0]
			if got, want := invite.Header("Call-ID"), uac.Sent()[0].Header("Call-ID"); got == "" || got != want {
				t.Errorf("callee got Call-ID %q, caller sent %q", got, want)
			}
			if !strings.Contains(invite.Body(), "m=audio ") {
				t.Errorf("INVITE body has no audio m-line:\n%s", invite.Body())
			}
		})
	}
}

// TestStopUnlimitedUAS checks the keepalive UAS shape: a UAS without -m
// answers until Stop and then reports what it handled.
func TestStopUnlimitedUAS(t *testing.T) {
	Require(t)
	ctx := t.Context()
	server := Start(ctx, t, Options{Scenario: ScenarioPath("options_uas"), Calls: Unlimited, Timeout: 20 * time.Second})
	client := Start(ctx, t, Options{
		Scenario: ScenarioPath("options_uac"), Remote: server.Addr().String(),
		Calls: 3, Rate: 20, Timeout: 20 * time.Second,
	})
	if err := client.Wait().Check(3); err != nil {
		t.Fatalf("caller: %v", err)
	}
	if err := server.Stop().Check(3); err != nil {
		t.Fatalf("callee: %v", err)
	}
}

func TestScenarioPath(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"without extension", "cancel_uac", "test/sipp/cancel_uac.xml"},
		{"with extension", "cancel_uac.xml", "test/sipp/cancel_uac.xml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ScenarioPath(tc.in)
			if !strings.HasSuffix(got, tc.want) || !filepath.IsAbs(got) {
				t.Fatalf("ScenarioPath(%q) = %q, want an absolute path ending in %q", tc.in, got, tc.want)
			}
			if _, err := os.Stat(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}
