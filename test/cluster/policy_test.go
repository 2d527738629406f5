package cluster

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/redistest"
)

const scannerIP = "127.0.0.18"

// options sends one OPTIONS from ip (with User-Agent ua) to addr over UDP
// and reports whether anything answered within wait.
func options(t *testing.T, ip, addr, ua string, wait time.Duration) bool {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().String()
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	msg := "OPTIONS sip:100@" + addr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + tag + ";rport\r\n" +
		"From: <sip:100@" + local + ">;tag=" + tag + "\r\nTo: <sip:100@" + addr + ">\r\nCall-ID: " + tag + "@" + ip +
		"\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: " + ua + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	n, _, err := c.ReadFrom(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ")
}

// bans lists n's bans by address, from its admin API.
func bans(t *testing.T, n *node) map[string]string {
	t.Helper()
	addr, _ := n.app.AdminAddr()
	resp, err := http.Get("http://" + addr.String() + "/api/v1/bans")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Bans []struct{ Addr, Reason string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range body.Bans {
		out[b.Addr] = b.Reason
	}
	return out
}

// TestScannerBannedOnEveryNode: a scanner probing node 1 (SIPVicious's
// OPTIONS, User-Agent friendly-scanner) is banned there on its first
// request; node 2 holds the ban within a second and drops the scanner's
// packets unanswered, where it answered the same source just before.
func TestScannerBannedOnEveryNode(t *testing.T) {
	r := redistest.Start(t, redisIP)
	n1 := startNode(t, nodeConfig(t, 1, r.Addr, ""))
	n2 := startNode(t, nodeConfig(t, 2, r.Addr, ""))
	waitFor(t, "both nodes listening for bans", 10*time.Second, func() bool {
		reply, err := r.Do("EVAL", "return redis.call('PUBSUB','NUMSUB',KEYS[1])[2]", "1", "sbc:bans")
		return err == nil && reply == ":2"
	})
	if !options(t, scannerIP, n2.addr(t, "udp"), "polite-phone", 5*time.Second) {
		t.Fatal("node 2 did not answer the source before any ban")
	}

	options(t, scannerIP, n1.addr(t, "udp"), "friendly-scanner", 200*time.Millisecond)
	waitFor(t, "node 1 banning the scanner", 5*time.Second, func() bool { return bans(t, n1)[scannerIP] != "" })
	banned := time.Now()
	waitFor(t, "node 2 holding the ban", 5*time.Second, func() bool { return bans(t, n2)[scannerIP] != "" })
	if took := time.Since(banned); took > time.Second {
		t.Errorf("node 2 held the ban %s after node 1 made it, want within 1 s", took.Round(time.Millisecond))
	}
	if options(t, scannerIP, n2.addr(t, "udp"), "polite-phone", 2*time.Second) {
		t.Fatal("node 2 answered the banned scanner")
	}
}
