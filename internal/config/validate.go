package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Accepted values of enumerated keys (lower case only).
var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
	transports = []string{"udp", "tcp", "tls", "ws", "wss"}
	targets    = []string{TargetTrunks, TargetRegistered, TargetEcho}
	cdrTypes   = []string{CDRJSONL, CDRCSV, CDRPostgres}
)

// Limits Validate enforces.
const (
	MinMaxMessageSize = 512   // bytes; a SIP message needs at least this
	MaxMaxMessageSize = 65535 // bytes; the UDP ceiling
	MinMaxHeaders     = 16
	MinMaxLineLength  = 256              // bytes
	MinMinSE          = 90 * time.Second // RFC 4028 section 4
	MinRTPPort        = 1024
)

// Validate checks the whole configuration and returns nil or Problems
// listing every problem found, not just the first. It reads the TLS
// certificate and key files when they are set; it opens no sockets.
func (c *Config) Validate() error {
	var ps Problems
	if strings.TrimSpace(c.NodeID) == "" {
		ps.add("node_id", c.NodeID, "must not be empty")
	} else if hasControl(c.NodeID) {
		ps.add("node_id", c.NodeID, "must not contain control characters")
	}
	checkOneOf(&ps, "log.level", c.Log.Level, logLevels)
	checkOneOf(&ps, "log.format", c.Log.Format, logFormats)
	c.validateListeners(&ps)
	c.SIP.TLS.validate(&ps)
	c.SIP.validateLimits(&ps)
	c.Media.validate(&ps)
	c.validateTrunks(&ps)
	c.validateTrunkRegister(&ps)
	c.DNS.validate(&ps)
	c.Cluster.validate(&ps)
	c.validateRoutes(&ps)
	c.validateTranscoding(&ps)
	c.validateCDR(&ps)
	c.validateRegistration(&ps)
	c.validatePolicy(&ps)
	c.validateOps(&ps)
	c.validateWebPhone(&ps)
	c.Admin.validate(&ps)
	c.Timeline.validate(&ps)
	c.Media.Ringback.validate(&ps)
	c.Announcements.validate(&ps)
	c.validateSockets(&ps)
	return ps.err()
}

func (c *Config) validateListeners(ps *Problems) {
	if len(c.SIP.Listeners) == 0 {
		ps.add("sip.listeners", "", "want at least one listener")
	}
	names := map[string]int{}
	for i, l := range c.SIP.Listeners {
		key := "sip.listeners[" + strconv.Itoa(i) + "]"
		validTransport := checkOneOf(ps, key+".transport", l.Transport, transports)
		if _, err := parseBindAddr(l.Addr); err != nil {
			ps.add(key+".addr", l.Addr, err.Error())
		}
		switch j, dup := names[l.Name]; {
		case l.Name == "" && validTransport:
			ps.add(key+".name", l.Name, "must not be empty")
		case dup:
			ps.add(key+".name", l.Name, fmt.Sprintf("already names sip.listeners[%d]; give listeners sharing a transport distinct names", j))
		case l.Name == ClusterListener && c.Cluster.Enabled():
			ps.add(key+".name", l.Name, "is the cluster's own listener (on cluster.internal_addr): name this one otherwise")
		case l.Name != "":
			names[l.Name] = i
		}
	}
}

// validate checks the certificate pair: both files or neither, readable,
// a matching pair, not expired.
func (t TLS) validate(ps *Problems) {
	if t.ReloadInterval < 0 {
		ps.add("sip.tls.reload_interval", t.ReloadInterval.String(), "want a duration of 0 (off) or more")
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return // self-signed at start
	case t.CertFile == "":
		ps.add("sip.tls.cert_file", "", "required when key_file is set")
		return
	case t.KeyFile == "":
		ps.add("sip.tls.key_file", "", "required when cert_file is set")
		return
	}
	certPEM, certErr := os.ReadFile(t.CertFile)
	if certErr != nil {
		ps.add("sip.tls.cert_file", t.CertFile, fileReason(certErr))
	}
	keyPEM, keyErr := os.ReadFile(t.KeyFile)
	if keyErr != nil {
		ps.add("sip.tls.key_file", t.KeyFile, fileReason(keyErr))
	}
	if certErr != nil || keyErr != nil {
		return
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		ps.add("sip.tls.cert_file", t.CertFile, "no valid certificate and key pair with key_file: "+err.Error())
		return
	}
	if pair.Leaf != nil && time.Now().After(pair.Leaf.NotAfter) {
		ps.add("sip.tls.cert_file", t.CertFile, "certificate expired at "+pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// fileReason words a file error without repeating the path (the problem's
// value already shows it).
func fileReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "cannot " + pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

func (s SIP) validateLimits(ps *Problems) {
	s.validatePublicAddr(ps)
	if hasControl(s.UserAgent) {
		ps.add("sip.user_agent", s.UserAgent, "must not contain control characters")
	}
	if s.MaxMessageSize < MinMaxMessageSize || s.MaxMessageSize > MaxMaxMessageSize {
		ps.add("sip.max_message_size", strconv.Itoa(s.MaxMessageSize),
			fmt.Sprintf("want %d..%d bytes", MinMaxMessageSize, MaxMaxMessageSize))
	}
	if s.MaxHeaders < MinMaxHeaders {
		ps.add("sip.max_headers", strconv.Itoa(s.MaxHeaders), fmt.Sprintf("want at least %d", MinMaxHeaders))
	}
	if s.MaxLineLength < MinMaxLineLength {
		ps.add("sip.max_line_length", strconv.Itoa(s.MaxLineLength), fmt.Sprintf("want at least %d bytes", MinMaxLineLength))
	}
	if s.MaxConnsPerIP < 0 {
		ps.add("sip.max_conns_per_ip", strconv.Itoa(s.MaxConnsPerIP), "want 0 (unlimited) or more")
	}
	checkPositive(ps, "sip.handshake_timeout", s.HandshakeTimeout)
	checkPositive(ps, "sip.idle_timeout", s.IdleTimeout)
	checkPositive(ps, "sip.invite_timeout", s.InviteTimeout)
	checkPositive(ps, "sip.retry_after", s.RetryAfter)
	if s.OverloadDelay < 0 {
		ps.add("sip.overload_delay", s.OverloadDelay.String(), "want 0 (off) or a positive duration")
	}
	checkPositive(ps, "sip.ring_timeout", s.RingTimeout)
	if s.FlowGrace < 0 || s.FlowGrace > MaxFlowGrace {
		ps.add("sip.flow_grace", s.FlowGrace.String(), "want 0 (calls end when their connection closes) up to "+MaxFlowGrace.String())
	}
	if s.MinSE < MinMinSE {
		ps.add("sip.min_se", s.MinSE.String(), "want at least "+MinMinSE.String()+" (RFC 4028)")
	}
	if s.SessionExpires < s.MinSE {
		ps.add("sip.session_expires", s.SessionExpires.String(), "want at least min_se ("+s.MinSE.String()+")")
	}
	checkHeaderNames(ps, "sip.header_whitelist", s.HeaderWhitelist)
	switch s.PRACK {
	case PRACKSupported, PRACKRequired, PRACKOff:
	default:
		ps.add("sip.prack", s.PRACK, "want supported, required or off")
	}
}

func (m Media) validate(ps *Problems) {
	if _, p := m.addrs(); p != nil {
		ps.add(p.Key, p.Value, p.Reason)
	}
	lo, hi, err := parsePortRange(m.RTPPorts)
	if err != nil {
		ps.add("media.rtp_ports", m.RTPPorts, err.Error())
	}
	switch {
	case m.WebRTCPort < 0 || m.WebRTCPort > 65535:
		ps.add("media.webrtc_port", strconv.Itoa(m.WebRTCPort), "want 0 (a port per call) or 1..65535")
	case m.WebRTCPort != 0 && err == nil && m.WebRTCPort >= lo && m.WebRTCPort <= hi:
		ps.add("media.webrtc_port", strconv.Itoa(m.WebRTCPort), "must lie outside rtp_ports "+m.RTPPorts)
	}
	checkPositive(ps, "media.timeout", m.Timeout)
	checkPositive(ps, "media.handshake_timeout", m.HandshakeTimeout)
}

// parsePortRange parses "min-max" with MinRTPPort <= min < max <= 65535 and
// min even (RTP takes the even port of each pair).
func parsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, errLo := strconv.Atoi(strings.TrimSpace(a))
	hi, errHi := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case !ok || errLo != nil || errHi != nil:
		return 0, 0, errors.New("want min-max, such as 20000-29999")
	case lo < MinRTPPort || hi > 65535:
		return 0, 0, fmt.Errorf("want ports within %d..65535", MinRTPPort)
	case lo >= hi:
		return 0, 0, errors.New("want min below max")
	case lo%2 != 0:
		return 0, 0, errors.New("want an even min: RTP takes the even port of each pair")
	}
	return lo, hi, nil
}

// parseBindAddr parses an ip:port to bind. Port 0 (any free port) is
// allowed, for tests.
func parseBindAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, errors.New("want ip:port with a literal IP, such as 0.0.0.0:5060 or [::]:5060")
	}
	return ap, nil
}

// checkOneOf reports whether v is one of want, adding a problem if not.
func checkOneOf(ps *Problems, key, v string, want []string) bool {
	if slices.Contains(want, v) {
		return true
	}
	ps.add(key, v, "want one of "+strings.Join(want, ", "))
	return false
}

func checkPositive(ps *Problems, key string, d time.Duration) {
	if d <= 0 {
		ps.add(key, d.String(), "want a positive duration")
	}
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
