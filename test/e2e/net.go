// Package e2e is the harness of the end-to-end tests: the SBC in-process
// (StartSBC), SIP phones and PBXs written for the tests (UA, UAS,
// SIPClient, MediaPBX), RTP and pion WebRTC peers, the browser suite's
// scenarios, CDR sinks and the admin API client. The tests live in the
// packages below it, one per area, which go test runs in parallel:
//
//	calls      SIP flows, registration, loops, echo, torture messages, trunk DNS and registration
//	media      RTP and WebRTC media, DTMF, IPv6, call transfer
//	ops        CDRs, admin API, metrics, HEP, drain, reload, certificate reload
//	scenarios  SIPp scenarios, PRACK, WebSocket calls, topology hiding
//	security   attacks: policy, floods, scans, bans, digest, identity, media, TLS trunks
//	webconn    Chromium losing its page or process, ICE restart, certificates
//	webphone   Chromium web phone calls, ten in a row, digest with JsSIP and SIP.js
//	console    the operator console in headless Chromium against a live call
//	timeline   the per-call timeline API: a WebRTC call's milestones, ended calls kept
//	monitoring what operators watch: RTCP in HEP, the Grafana dashboard's and alert rules' metrics
//	fax        T.38 re-INVITEs: UDPTL relayed between SIPp sides, refused toward a browser
//	announce   local ringback to a browser, announcements before refusals
//	transcode  calls whose sides share no codec: transcoded both ways, DTMF, the cap
//
// # Addresses
//
// Packages running side by side must not bind the same address and port,
// so every endpoint of a test (phones, PBXs, attackers, SIPp) has an
// address of its package's own /24, from IP, CallerIP and PBXIP; host
// numbers keep the parts the tests had on 127.0.0.x before the split
// (.2 the caller, .3 the PBX, .66 the attacker, ...). The SBC itself
// listens on 127.0.0.1, on ports the kernel picks. The ranges:
//
//	127.0.20.0/24  calls (and 127.10.0.0-127.12.255.255: the torture tests' strangers)
//	127.0.21.0/24  media
//	127.0.22.0/24  ops
//	127.0.23.0/24  scenarios
//	127.0.24.0/24  security
//	127.0.25.0/24  webconn
//	127.0.26.0/24  webphone
//	127.0.12.0/24  timeline
//	127.0.13.0/24  console
//	127.0.14.0/24  monitoring
//	127.0.17.0/24  fax
//	127.0.28.0/24  announce
//	127.0.27.0/24  transcode
//
// Taken elsewhere: 127.0.0.0/24 (unit tests, test/sipptest), 127.0.1.0/24
// (test/interop/baresip), 127.0.2.0/24 (test/interop/linphone),
// 127.0.3.0/24-127.0.5.0/24 (unit tests of b2bua, its routing and trunk
// registration), 127.0.6.0/24 (test/interop/kamailio), 127.0.41.0/24 and
// up (other work in progress). TestRanges checks that every test package
// has a range and that no test hard-wires a 127.0.0.x peer.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// ranges maps a test package (its directory under test/e2e) to the third
// byte of its /24 (see the package comment).
var ranges = map[string]int{
	"announce":   28,
	"calls":      20,
	"console":    13,
	"fax":        17,
	"media":      21,
	"monitoring": 14,
	"ops":        22,
	"scenarios":  23,
	"security":   24,
	"timeline":   12,
	"transcode":  27,
	"webconn":    25,
	"webphone":   26,
}

var subnet = sync.OnceValue(func() int {
	// go test runs a package's test binary in the package's directory.
	wd, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("e2e: working directory: %v", err))
	}
	n, ok := ranges[filepath.Base(wd)]
	if !ok {
		panic(fmt.Sprintf("e2e: no address range for tests run in %s: add the package to ranges in test/e2e/net.go", wd))
	}
	return n
})

// IP returns address host (1-254) of the running test package's /24, e.g.
// 127.0.24.66 for host 66 in test/e2e/security. It panics outside a test
// package listed in ranges.
func IP(host int) string {
	if host < 1 || host > 254 {
		panic(fmt.Sprintf("e2e: host %d outside 1-254", host))
	}
	return "127.0." + strconv.Itoa(subnet()) + "." + strconv.Itoa(host)
}

// CallerIP is the package's phone: where SIP and RTP of the calling side
// come from (IP(2)).
func CallerIP() string { return IP(2) }

// PBXIP is the package's PBX or trunk: where the SBC sends calls (IP(3)).
func PBXIP() string { return IP(3) }

// Subnet is the running test package's /24 in CIDR notation, for trusted
// sources.
func Subnet() string { return "127.0." + strconv.Itoa(subnet()) + ".0/24" }
