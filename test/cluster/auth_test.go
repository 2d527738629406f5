package cluster

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/cluster"
	"github.com/sbc-project/sbc/test/redistest"
)

// TestClusterListenerRefusesStrangers: an attacker who reaches a node's
// internal listener and sends it an INVITE, with no proof or with one
// made with another secret, gets 403 and no call; the same INVITE signed
// with the cluster's secret is taken (and answered as a call for a user
// registered nowhere).
func TestClusterListenerRefusesStrangers(t *testing.T) {
	r := redistest.Start(t, redisIP)
	n1 := startNode(t, nodeConfig(t, 1, r.Addr, ""))
	internal := n1.addr(t, "cluster")
	ruri := "sip:attacker-guess@" + internal + ";transport=tcp"
	for _, tc := range []struct {
		name, proof string
		want        string
	}{
		{"no proof", "", "403 Cluster Authentication Failed"},
		{"another secret", cluster.NewSigner("node-9", "not-the-cluster-secret").Sign("c1@attacker", ruri), "403 Cluster Authentication Failed"},
		{"a proof for another call", cluster.NewSigner("node-2", secret).Sign("other-call", ruri), "403 Cluster Authentication Failed"},
		{"the cluster's secret", cluster.NewSigner("node-2", secret).Sign("c1@attacker", ruri), "480 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := inviteOverTCP(t, internal, ruri, "c1@attacker", tc.proof)
			if !strings.HasPrefix(got, "SIP/2.0 "+tc.want) {
				t.Fatalf("answer %q, want SIP/2.0 %s", got, tc.want)
			}
		})
	}
	waitFor(t, "no call left", 10*time.Second, func() bool { return n1.app.Server().ActiveCalls() == 0 })
}

// inviteOverTCP sends one INVITE to addr and returns the status line of
// the first final answer.
func inviteOverTCP(t *testing.T, addr, ruri, callID, proof string) string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerIP)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	sdp := "v=0\r\no=x 1 1 IN IP4 127.0.0.16\r\ns=-\r\nc=IN IP4 127.0.0.16\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	msg := "INVITE " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TCP " + local + ";branch=z9hG4bK-" + strings.ReplaceAll(callID, "@", "-") + strings.ReplaceAll(proof[:min(len(proof), 8)], ";", "") + "\r\n" +
		"From: <sip:attacker@127.0.0.16>;tag=a1\r\nTo: <" + ruri + ">\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:attacker@" + local + ";transport=tcp>\r\nMax-Forwards: 70\r\n"
	if proof != "" {
		msg += cluster.AuthHeader + ": " + proof + "\r\n"
	}
	msg += "Content-Type: application/sdp\r\nContent-Length: " + itoa(len(sdp)) + "\r\n\r\n" + sdp
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("no final answer: %v", err)
		}
		if strings.HasPrefix(line, "SIP/2.0 ") && !strings.HasPrefix(line, "SIP/2.0 1") {
			return strings.TrimSpace(line)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
