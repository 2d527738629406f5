// Package sipptest runs SIPp (the sip-tester package) from Go tests: it
// starts a scenario as a child process on a loopback address, waits for it
// and hands back SIPp's verdict, its statistics and, on request, every SIP
// message it sent and received.
//
// # Topology
//
// End-to-end tests put SIPp on both sides of the SBC:
//
//	SIPp UAC (CallerIP 127.0.0.2) ──▶ SBC (127.0.0.1) ──▶ SIPp UAS (CalleeIP 127.0.0.3)
//
// over UDP (Transport "u1") or TCP ("t1"). All of 127.0.0.0/8 is local on
// Linux, so no alias has to be configured. Every run binds its own address
// (-i, -bind_local), so the SBC sees the caller's real source IP and a UAS
// only answers on its own IP.
//
// # Scenarios
//
// The scenarios live in test/sipp at the module root (ScenarioPath). Each
// starts with a comment giving its flow and command line. A UAC takes -s
// (the callee user, what routes match on) and, where it pauses, -d (ms); a
// UAS takes -d where it pauses. Both sides run over u1 and t1.
//
//	call_caller_bye_uac / _uas   call, caller hangs up after -d ms (UAC -s, -d)
//	call_callee_bye_uac / _uas   call, callee hangs up after -d ms (UAC -s; UAS -d)
//	cancel_uac / cancel_uas      caller CANCELs after the 180 (+ -d ms)
//	busy_486_uac / _uas          callee answers 486
//	no_answer_uac / _uas         callee rings forever; the SBC's ring timeout
//	                             sends 408 or 480 to the caller and CANCELs the callee
//	early_media_uac / _uas       183 with SDP, 500 ms later 200 (UAC -s, -d)
//	prack_uac / prack_uas        RFC 3262: the UAC requires 100rel; the UAS sends
//	                             a reliable 183 with SDP, waits for the PRACK, then 200
//	reinvite_hold_uac / _uas     hold (sendonly) and resume re-INVITEs (UAC -s, -d)
//	t38_reinvite_uac / _uas      re-INVITE to T.38 fax (m=image udptl t38) and
//	                             back to audio; each side writes the image address
//	                             it got (ip:port) to image_port (UAC -s, -d; both -key faxport)
//	uas_503                      a trunk answering 503 (first trunk of failover;
//	                             the second trunk runs call_caller_bye_uas)
//	reject_503_uac               a caller that expects 503
//	options_uas / options_uac    OPTIONS answered with 200 (trunk keepalive)
//
// The B2BUA re-originates everything, so a UAS builds its answers from what
// it received ([last_*]) and its BYE from the dialog it sees, and a UAC
// sends ACK and BYE to the Contact of the 200 ([next_url]).
//
// A SIPp UAS treats a message with a new Call-ID as a new call of its one
// scenario, so a call UAS cannot also answer OPTIONS probes: configure
// options_interval: 0 on trunks that point at a call UAS, and options_uas on
// the one trunk whose keepalive a test checks.
//
// # Without an SBC
//
// This package's tests run every UAC directly against its UAS (127.0.0.2 →
// 127.0.0.3) over both transports, which validates each pair before the SBC
// takes the middle. no_answer_uas is driven there by cancel_uac (the same
// CANCEL flow the SBC sends on ring timeout), and no_answer_uac by
// testdata/ring_timeout_{408,480}_uas.xml standing in for the SBC.
package sipptest
