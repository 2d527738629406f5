package e2e

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
)

// AdminClient talks to an SBC's admin server.
type AdminClient struct {
	T     *testing.T
	Base  string // http://ip:port
	Token string
}

// WithAdmin turns the admin server on at a free loopback port, with token.
func WithAdmin(token string) func(*config.Config) {
	return func(c *config.Config) {
		c.Admin.Addr = "127.0.0.1:0"
		c.Admin.Token = token
	}
}

// admin returns a client for the in-process SBC's admin server.
func (s *SBC) Admin(t *testing.T, token string) *AdminClient {
	t.Helper()
	addr, ok := s.App.AdminAddr()
	if !ok {
		t.Fatal("admin server not running")
	}
	return &AdminClient{T: t, Base: "http://" + addr.String(), Token: token}
}

// do sends a request as an operator's tool does (Content-Type:
// application/json on every request that is not a GET) and returns the
// status and the body.
func (c *AdminClient) Do(method, path, body string) (int, []byte) {
	c.T.Helper()
	req, err := http.NewRequest(method, c.Base+path, strings.NewReader(body))
	if err != nil {
		c.T.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	client := http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.T.Fatal(err)
	}
	return res.StatusCode, b
}

// json sends a request, checks the status and decodes the answer into v.
func (c *AdminClient) JSON(method, path, body string, want int, v any) {
	c.T.Helper()
	code, b := c.Do(method, path, body)
	if code != want {
		c.T.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			c.T.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// metrics scrapes /metrics into series ("name{labels}" as printed) and
// values.
func (c *AdminClient) Metrics() map[string]float64 {
	c.T.Helper()
	code, b := c.Do("GET", "/metrics", "")
	if code != 200 {
		c.T.Fatalf("/metrics: status %d: %s", code, b)
	}
	return parseMetrics(string(b))
}

func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// hepCollector is a UDP socket on loopback that keeps every datagram.
type hepCollector struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts [][]byte
	wg   sync.WaitGroup
}

func NewHEPCollector(t *testing.T) *hepCollector {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h := &hepCollector{conn: conn}
	h.wg.Go(func() {
		buf := make([]byte, 70000)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			h.mu.Lock()
			h.pkts = append(h.pkts, append([]byte(nil), buf[:n]...))
			h.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		conn.Close()
		h.wg.Wait()
	})
	return h
}

func (h *hepCollector) Addr() string { return h.conn.LocalAddr().String() }

func (h *hepCollector) Packets() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.pkts...)
}

// OptionsAnswered sends an OPTIONS from src to the SBC over UDP and
// reports whether any answer came back within a second.
func OptionsAnswered(t *testing.T, src string, sbc netip.AddrPort) bool {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	msg := "OPTIONS sip:" + sbc.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + sipmsg.NewToken(8) + ";rport\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:probe@" + local + ">;tag=" + sipmsg.NewToken(4) + "\r\n" +
		"To: <sip:" + sbc.String() + ">\r\nCall-ID: " + sipmsg.NewToken(10) + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.WriteToUDP([]byte(msg), net.UDPAddrFromAddrPort(sbc)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFromUDP(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ")
}

// ServedCert returns the fingerprint of the certificate a new TLS
// handshake with addr presents.
func ServedCert(t *testing.T, addr string) [32]byte {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("tls dial %s: %v", addr, err)
	}
	defer conn.Close()
	return sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
}
