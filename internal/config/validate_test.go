package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/security"
)

// certPair writes a certificate and key valid for lifetime into dir.
func certPair(t *testing.T, dir string, lifetime time.Duration) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := security.SelfSigned(nil, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	return certFile, keyFile
}

func trunk(name string) Trunk {
	return Trunk{Name: name, URI: "sip:192.0.2.10", OptionsInterval: DefaultOptionsInterval,
		OptionsTimeout: DefaultOptionsTimeout, FailureThreshold: DefaultFailureThreshold}
}

// withTrunks adds trunks pbx and carrier and a route to them.
func withTrunks(c *Config) {
	c.Trunks = []Trunk{trunk("pbx"), trunk("carrier")}
	c.Routes = append(c.Routes, Route{Name: "out", Target: TargetTrunks, Trunks: []string{"pbx", "carrier"}})
}

func listeners(ls ...Listener) func(c *Config) {
	return func(c *Config) { c.SIP.Listeners = ls }
}

type validateCase struct {
	name   string
	modify func(c *Config)
	want   []string // "key: reason substring", in order; none means valid
}

func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(c)
			wantProblems(t, c.Validate(), tt.want...)
		})
	}
}

func TestValidateTop(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"defaults", func(c *Config) {}, nil},
		{"node_id empty", func(c *Config) { c.NodeID = "" }, []string{"node_id: must not be empty"}},
		{"node_id blank", func(c *Config) { c.NodeID = "  " }, []string{"node_id: must not be empty"}},
		{"node_id control", func(c *Config) { c.NodeID = "a\nb" }, []string{"node_id: control characters"}},
		{"log level unknown", func(c *Config) { c.Log.Level = "verbose" }, []string{"log.level: want one of debug, info, warn, error"}},
		{"log level upper case", func(c *Config) { c.Log.Level = "INFO" }, []string{"log.level: want one of"}},
		{"log format unknown", func(c *Config) { c.Log.Format = "xml" }, []string{"log.format: want one of text, json"}},
		{"admin addr disabled", func(c *Config) { c.Admin.Addr = "" }, nil},
		{"admin addr host name", func(c *Config) { c.Admin.Addr = "localhost:9090" }, []string{"admin.addr: want ip:port"}},
		{"every problem at once", func(c *Config) {
			c.NodeID = ""
			c.SIP.Listeners[1].Addr = "x"
			c.Media.RTPPorts = "1-2"
			c.Routes[0].Target = "nowhere"
			c.Admin.Addr = "y"
		}, []string{"node_id", "sip.listeners[1].addr", "media.rtp_ports", "routes[0].target", "admin.addr"}},
	})
}

func TestValidateListeners(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"none", listeners(), []string{"sip.listeners: at least one"}},
		{"unknown transport", func(c *Config) { c.SIP.Listeners[0].Transport = "sctp" },
			[]string{"sip.listeners[0].transport: want one of udp, tcp, tls, ws, wss"}},
		{"host name address", func(c *Config) { c.SIP.Listeners[0].Addr = "localhost:5060" },
			[]string{"sip.listeners[0].addr: literal IP"}},
		{"address without port", func(c *Config) { c.SIP.Listeners[2].Addr = "127.0.0.1" },
			[]string{"sip.listeners[2].addr: want ip:port"}},
		{"wildcards allowed", listeners(
			Listener{Name: "udp", Transport: "udp", Addr: "0.0.0.0:5060"},
			Listener{Name: "tcp", Transport: "tcp", Addr: "[::]:5061"},
			Listener{Name: "tls6", Transport: "tls", Addr: "[2001:db8::1]:5062"}), nil},
		{"port 0 twice allowed", listeners(
			Listener{Name: "a", Transport: "udp", Addr: "127.0.0.1:0"},
			Listener{Name: "b", Transport: "udp", Addr: "127.0.0.1:0"}), nil},
		{"duplicate names", func(c *Config) { c.SIP.Listeners[1].Name = "udp" },
			[]string{"sip.listeners[1].name: already names sip.listeners[0]"}},
		{"empty name", func(c *Config) { c.SIP.Listeners[0].Name = "" }, []string{"sip.listeners[0].name: must not be empty"}},
		{"same transport and addr twice", listeners(
			Listener{Name: "a", Transport: "udp", Addr: "127.0.0.1:5060"},
			Listener{Name: "b", Transport: "udp", Addr: "127.0.0.1:5060"}),
			[]string{"sip.listeners[1].addr: udp port already bound by sip.listeners[0]"}},
		{"udp and tcp share an addr", listeners(
			Listener{Name: "a", Transport: "udp", Addr: "127.0.0.1:5060"},
			Listener{Name: "b", Transport: "tcp", Addr: "127.0.0.1:5060"}), nil},
		{"tcp and ws share a tcp port", listeners(
			Listener{Name: "a", Transport: "tcp", Addr: "127.0.0.1:5060"},
			Listener{Name: "b", Transport: "ws", Addr: "127.0.0.1:5060"}),
			[]string{"sip.listeners[1].addr: tcp port already bound by sip.listeners[0]"}},
		{"IPv4 wildcard covers a specific IPv4", listeners(
			Listener{Name: "a", Transport: "tls", Addr: "0.0.0.0:5061"},
			Listener{Name: "b", Transport: "wss", Addr: "127.0.0.1:5061"}),
			[]string{"sip.listeners[1].addr: tcp port already bound"}},
		{"IPv6 wildcard covers IPv4 too", listeners(
			Listener{Name: "a", Transport: "udp", Addr: "[::]:5060"},
			Listener{Name: "b", Transport: "udp", Addr: "192.0.2.1:5060"}),
			[]string{"sip.listeners[1].addr: udp port already bound"}},
		{"IPv4 wildcard and IPv6 loopback", listeners(
			Listener{Name: "a", Transport: "udp", Addr: "0.0.0.0:5060"},
			Listener{Name: "b", Transport: "udp", Addr: "[::1]:5060"}), nil},
		{"admin on a listener's tcp port", func(c *Config) { c.Admin.Addr = "127.0.0.1:8080" },
			[]string{"admin.addr: tcp port already bound by sip.listeners[2]"}},
	})
}

func TestValidateTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := certPair(t, dir, time.Hour)
	_, otherKey := certPair(t, t.TempDir(), time.Hour)
	expiredCert, expiredKey := certPair(t, t.TempDir(), -30*time.Second)
	missing := filepath.Join(dir, "missing.pem")
	tlsCase := func(cert, key string) func(c *Config) {
		return func(c *Config) { c.SIP.TLS = TLS{CertFile: cert, KeyFile: key} }
	}
	runValidateCases(t, []validateCase{
		{"valid pair", tlsCase(certFile, keyFile), nil},
		{"cert without key", tlsCase(certFile, ""), []string{"sip.tls.key_file: required when cert_file is set"}},
		{"key without cert", tlsCase("", keyFile), []string{"sip.tls.cert_file: required when key_file is set"}},
		{"unreadable files", tlsCase(missing, missing+"2"),
			[]string{"sip.tls.cert_file: cannot open: no such file", "sip.tls.key_file: cannot open"}},
		{"key file is the certificate", tlsCase(certFile, certFile), []string{"sip.tls.cert_file: no valid certificate and key pair"}},
		{"mismatched pair", tlsCase(certFile, otherKey), []string{"sip.tls.cert_file: no valid certificate and key pair"}},
		{"expired", tlsCase(expiredCert, expiredKey), []string{"sip.tls.cert_file: certificate expired"}},
		{"reload_interval negative", func(c *Config) { c.SIP.TLS.ReloadInterval = -time.Second }, []string{"sip.tls.reload_interval: 0 (off) or more"}},
		{"reload_interval off", func(c *Config) { c.SIP.TLS.ReloadInterval = 0 }, nil},
	})
}

func TestValidateSIPLimits(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"max_message_size too small", func(c *Config) { c.SIP.MaxMessageSize = 511 }, []string{"sip.max_message_size: want 512..65535"}},
		{"max_message_size smallest", func(c *Config) { c.SIP.MaxMessageSize = 512 }, nil},
		{"max_message_size over UDP", func(c *Config) { c.SIP.MaxMessageSize = 65536 }, []string{"sip.max_message_size"}},
		{"max_headers", func(c *Config) { c.SIP.MaxHeaders = 15 }, []string{"sip.max_headers: at least 16"}},
		{"max_line_length", func(c *Config) { c.SIP.MaxLineLength = 255 }, []string{"sip.max_line_length: at least 256"}},
		{"max_conns_per_ip negative", func(c *Config) { c.SIP.MaxConnsPerIP = -1 }, []string{"sip.max_conns_per_ip"}},
		{"timeouts zero", func(c *Config) {
			c.SIP.HandshakeTimeout, c.SIP.IdleTimeout, c.SIP.InviteTimeout, c.SIP.RingTimeout = 0, 0, 0, -time.Second
		}, []string{"sip.handshake_timeout: positive", "sip.idle_timeout", "sip.invite_timeout", "sip.ring_timeout"}},
		{"retry_after zero", func(c *Config) { c.SIP.RetryAfter = 0 }, []string{"sip.retry_after: positive"}},
		{"min_se below 90s", func(c *Config) { c.SIP.MinSE = 89 * time.Second }, []string{"sip.min_se: at least 1m30s"}},
		{"session_expires below min_se", func(c *Config) { c.SIP.MinSE = 40 * time.Minute },
			[]string{"sip.session_expires: at least min_se (40m0s)"}},
		{"session_expires equal to min_se", func(c *Config) { c.SIP.SessionExpires = c.SIP.MinSE }, nil},
		{"prack unknown", func(c *Config) { c.SIP.PRACK = "always" }, []string{"sip.prack: want supported, required or off"}},
		{"prack off", func(c *Config) { c.SIP.PRACK = PRACKOff }, nil},
		{"flow_grace negative", func(c *Config) { c.SIP.FlowGrace = -time.Second }, []string{"sip.flow_grace: want 0"}},
		{"flow_grace too long", func(c *Config) { c.SIP.FlowGrace = time.Hour }, []string{"sip.flow_grace: want 0 (calls end when their connection closes) up to 10m0s"}},
		{"flow_grace off", func(c *Config) { c.SIP.FlowGrace = 0 }, nil},
		{"public_addr name", func(c *Config) { c.SIP.PublicAddr = "sbc.example.com" }, nil},
		{"public_addr with port", func(c *Config) { c.SIP.PublicAddr = "203.0.113.7:5060" }, []string{"sip.public_addr"}},
		{"user_agent injection", func(c *Config) { c.SIP.UserAgent = "sbc\r\nX-Evil: 1" }, []string{"sip.user_agent: control"}},
		{"header_whitelist", func(c *Config) {
			c.SIP.HeaderWhitelist = []string{"P-Asserted-Identity", "Bad Header", "VIA", "m", "X-Account"}
		}, []string{"sip.header_whitelist[0]: asserts caller identity itself", "sip.header_whitelist[1]: want a header name",
			"sip.header_whitelist[2]: always rebuilds", "sip.header_whitelist[3]: always rebuilds"}},
	})
}

func TestValidateMedia(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"bind_ip name", func(c *Config) { c.Media.BindIP = "localhost" }, []string{"media.bind_ip: want an IP"}},
		{"bind_ip wildcard needs public_ip", func(c *Config) { c.Media.BindIP = "0.0.0.0" }, []string{"media.public_ip: required"}},
		{"bind_ip wildcard with public_ip", func(c *Config) { c.Media.BindIP, c.Media.PublicIP = "::", "2001:db8::7" }, nil},
		{"public_ip wildcard", func(c *Config) { c.Media.PublicIP = "0.0.0.0" }, []string{"media.public_ip: reach"}},
		{"public_ip name", func(c *Config) { c.Media.PublicIP = "media.example.com" }, []string{"media.public_ip"}},
		{"dual stack", func(c *Config) { c.Media.BindIP = "127.0.0.1, ::1" }, nil},
		{"public_addr of each family", func(c *Config) { c.SIP.PublicAddr = "203.0.113.5, 2001:db8::5" }, nil},
		{"public_addr ipv6", func(c *Config) { c.SIP.PublicAddr = "2001:db8::5" }, nil},
		{"public_addr ipv6 in brackets", func(c *Config) { c.SIP.PublicAddr = "[2001:db8::5]" }, []string{"sip.public_addr: want an IP address or DNS name"}},
		{"public_addr name and ip", func(c *Config) { c.SIP.PublicAddr = "sbc.example.com, 2001:db8::5" },
			[]string{"sip.public_addr: an IPv4 and an IPv6 address"}},
		{"public_addr two of a family", func(c *Config) { c.SIP.PublicAddr = "203.0.113.5, 203.0.113.6" },
			[]string{"sip.public_addr: an IPv4 and an IPv6 address"}},
		{"dual stack wildcards with public_ip of each family", func(c *Config) {
			c.Media.BindIP, c.Media.PublicIP = "0.0.0.0,::", "2001:db8::7, 203.0.113.5"
		}, nil},
		{"dual stack wildcard without public_ip of its family", func(c *Config) {
			c.Media.BindIP, c.Media.PublicIP = "0.0.0.0,::", "203.0.113.5"
		}, []string{"media.public_ip: required when bind_ip is ::"}},
		{"bind_ip two of a family", func(c *Config) { c.Media.BindIP = "127.0.0.1,127.0.0.2" }, []string{"media.bind_ip: at most one address of each IP family"}},
		{"bind_ip three", func(c *Config) { c.Media.BindIP = "127.0.0.1,::1,::2" }, []string{"media.bind_ip: at most one"}},
		{"bind_ip with a zone", func(c *Config) { c.Media.BindIP = "fe80::1%eth0" }, []string{"media.bind_ip: want an IP address"}},
		{"public_ip of a family not bound", func(c *Config) { c.Media.PublicIP = "2001:db8::7" }, []string{"media.public_ip: no address of its family"}},
		{"public_ip two of a family", func(c *Config) { c.Media.PublicIP = "203.0.113.5,203.0.113.6" }, []string{"media.public_ip: at most one"}},
		{"public_ip ipv6 wildcard", func(c *Config) { c.Media.BindIP, c.Media.PublicIP = "::1", "::" }, []string{"media.public_ip: reach"}},
		{"rtp_ports not a range", func(c *Config) { c.Media.RTPPorts = "20000" }, []string{"media.rtp_ports: want min-max"}},
		{"rtp_ports words", func(c *Config) { c.Media.RTPPorts = "a-b" }, []string{"media.rtp_ports: want min-max"}},
		{"rtp_ports below 1024", func(c *Config) { c.Media.RTPPorts = "1000-2000" }, []string{"media.rtp_ports: within 1024..65535"}},
		{"rtp_ports above 65535", func(c *Config) { c.Media.RTPPorts = "60000-70000" }, []string{"media.rtp_ports: within"}},
		{"rtp_ports reversed", func(c *Config) { c.Media.RTPPorts = "30000-20000" }, []string{"media.rtp_ports: min below max"}},
		{"rtp_ports empty range", func(c *Config) { c.Media.RTPPorts = "20000-20000" }, []string{"media.rtp_ports: min below max"}},
		{"rtp_ports odd min", func(c *Config) { c.Media.RTPPorts = "20001-29999" }, []string{"media.rtp_ports: even"}},
		{"rtp_ports one pair", func(c *Config) { c.Media.RTPPorts = "1024-1025" }, nil},
		{"webrtc_port out of range", func(c *Config) { c.Media.WebRTCPort = 70000 }, []string{"media.webrtc_port: 1..65535"}},
		{"webrtc_port inside rtp_ports", func(c *Config) { c.Media.WebRTCPort = 25000 }, []string{"media.webrtc_port: outside rtp_ports"}},
		{"webrtc_port outside rtp_ports", func(c *Config) { c.Media.WebRTCPort = 40000 }, nil},
		{"timeout zero", func(c *Config) { c.Media.Timeout = 0 }, []string{"media.timeout: positive"}},
	})
}

func TestValidateTrunks(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"valid", withTrunks, nil},
		{"name empty", func(c *Config) { withTrunks(c); c.Trunks = append(c.Trunks, trunk("")) }, []string{"trunks[2].name: must not be empty"}},
		{"name duplicate", func(c *Config) { withTrunks(c); c.Trunks[1].Name = "pbx" },
			// The route's second trunk, carrier, now names nothing.
			[]string{"trunks[1].name: already names trunks[0]", "routes[1].trunks[1]: no trunk has this name"}},
		{"uri", func(c *Config) { withTrunks(c); c.Trunks[0].URI = "http://x" }, []string{"trunks[0].uri: want a sip: or sips: URI"}},
		{"username without password", func(c *Config) { withTrunks(c); c.Trunks[0].Username = "u" },
			[]string{"trunks[0].username: set together"}},
		{"password without username", func(c *Config) { withTrunks(c); c.Trunks[0].Password = "secret" },
			[]string{"trunks[0].username: set together"}},
		{"from_domain", func(c *Config) { withTrunks(c); c.Trunks[0].FromDomain = "bad domain" }, []string{"trunks[0].from_domain"}},
		{"media", func(c *Config) { withTrunks(c); c.Trunks[1].Media = "zrtp" }, []string{"trunks[1].media: want rtp or srtp"}},
		{"dtmf", func(c *Config) { withTrunks(c); c.Trunks[0].DTMF = "inband" }, []string{"trunks[0].dtmf: want rfc4733 or info"}},
		{"options_interval negative", func(c *Config) { withTrunks(c); c.Trunks[0].OptionsInterval = -time.Second },
			[]string{"trunks[0].options_interval: want 0"}},
		{"probing off needs no timeout", func(c *Config) { withTrunks(c); c.Trunks[0].OptionsInterval, c.Trunks[0].OptionsTimeout = 0, 0 }, nil},
		{"options_timeout zero", func(c *Config) { withTrunks(c); c.Trunks[0].OptionsTimeout = 0 },
			[]string{"trunks[0].options_timeout: positive duration when options_interval is set"}},
		{"options_timeout negative", func(c *Config) {
			withTrunks(c)
			c.Trunks[1].OptionsInterval, c.Trunks[1].OptionsTimeout = 0, -time.Second
		}, []string{"trunks[1].options_timeout: want 0 or a positive"}},
		{"options_timeout over interval", func(c *Config) { withTrunks(c); c.Trunks[1].OptionsTimeout = time.Minute }, nil},
		{"failure_threshold", func(c *Config) { withTrunks(c); c.Trunks[0].FailureThreshold = 0 },
			[]string{"trunks[0].failure_threshold: at least 1"}},
		{"pass_headers", func(c *Config) { withTrunks(c); c.Trunks[0].PassHeaders = []string{"Privacy", "Contact", ""} },
			[]string{"trunks[0].pass_headers[0]: asserts caller identity itself", "trunks[0].pass_headers[1]: always rebuilds",
				"trunks[0].pass_headers[2]: want a header name"}},
	})
}

func TestValidateRoutes(t *testing.T) {
	route := func(r Route) func(c *Config) {
		return func(c *Config) { withTrunks(c); c.Routes = append(c.Routes, r) }
	}
	runValidateCases(t, []validateCase{
		{"name empty", route(Route{Target: TargetEcho}), []string{"routes[2].name: must not be empty"}},
		{"name duplicate", route(Route{Name: "echo", Target: TargetEcho}), []string{"routes[2].name: already names routes[0]"}},
		{"target unknown", route(Route{Name: "r", Target: "pbx"}), []string{"routes[2].target: want one of trunks, registered, echo"}},
		{"trunks target without trunks", route(Route{Name: "r", Target: TargetTrunks}), []string{"routes[2].trunks: at least one trunk"}},
		{"unknown trunk", route(Route{Name: "r", Target: TargetTrunks, Trunks: []string{"pbx", "nope"}}),
			[]string{"routes[2].trunks[1]: no trunk has this name"}},
		{"trunk twice", route(Route{Name: "r", Target: TargetTrunks, Trunks: []string{"pbx", "carrier", "pbx"}}),
			[]string{"routes[2].trunks[2]: listed twice"}},
		{"echo with trunks", route(Route{Name: "r", Target: TargetEcho, Trunks: []string{"pbx"}}),
			[]string{"routes[2].trunks: only target trunks"}},
		{"registered with trunks", route(Route{Name: "r", Target: TargetRegistered, Trunks: []string{"pbx"}}),
			[]string{"routes[2].trunks: only target trunks"}},
		{"ruri_user regexp", route(Route{Name: "r", Target: TargetEcho, Match: Match{RURIUser: "^+1("}}),
			[]string{"routes[2].match.ruri_user: not a regular expression"}},
		{"source_cidrs", route(Route{Name: "r", Target: TargetRegistered,
			Match: Match{SourceCIDRs: []string{"192.0.2.0/24", "10.0.0.0/33", "10.0.0.1", "2001:db8::/32"}}}),
			[]string{"routes[2].match.source_cidrs[1]: want a CIDR", "routes[2].match.source_cidrs[2]: want a CIDR"}},
		{"match listener", route(Route{Name: "r", Target: TargetEcho, Match: Match{Listener: "wss"}}), nil},
		{"match unknown listener", route(Route{Name: "r", Target: TargetEcho, Match: Match{Listener: "web"}}),
			[]string{"routes[2].match.listener: no listener has this name"}},
		{"match trunk", route(Route{Name: "r", Target: TargetRegistered, Match: Match{Trunk: "pbx"}}), nil},
		{"match unknown trunk", route(Route{Name: "r", Target: TargetRegistered, Match: Match{Trunk: "nope"}}),
			[]string{"routes[2].match.trunk: no trunk has this name"}},
		{"match from_domain", route(Route{Name: "r", Target: TargetEcho, Match: Match{FromDomain: "a b"}}),
			[]string{"routes[2].match.from_domain"}},
	})
}

func TestProblemsError(t *testing.T) {
	ps := Problems{{Key: "a", Value: "", Reason: "r1"}, {Key: "b[0].c", Value: "x: y", Reason: "r2"}}
	want := `a: "": r1` + "\n" + `b[0].c: "x: y": r2`
	if got := ps.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if err := (Problems{}).err(); err != nil {
		t.Errorf("empty Problems.err() = %v, want nil", err)
	}
	if lines := strings.Count(ps.Error(), "\n") + 1; lines != len(ps) {
		t.Errorf("%d lines for %d problems", lines, len(ps))
	}
}

func TestHelpers(t *testing.T) {
	tests := []struct {
		name      string
		media     Media
		lo, hi    int
		trunkURI  string
		transport string
	}{
		{"defaults", Media{RTPPorts: DefaultRTPPorts}, 20000, 29999, "sip:192.0.2.1", "udp"},
		{"tcp trunk", Media{RTPPorts: "1024-1025"}, 1024, 1025, "sip:pbx.example.com:5060;transport=TCP", "tcp"},
		{"sips trunk", Media{RTPPorts: "bad"}, 0, 0, "sips:pbx.example.com", "tls"},
		{"sips over tcp is tls", Media{RTPPorts: "20001-20002"}, 0, 0, "sips:pbx.example.com;transport=tcp", "tls"},
		{"invalid uri", Media{}, 0, 0, "pbx", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if lo, hi := tt.media.PortRange(); lo != tt.lo || hi != tt.hi {
				t.Errorf("PortRange() = %d, %d, want %d, %d", lo, hi, tt.lo, tt.hi)
			}
			if got := (Trunk{URI: tt.trunkURI}).Transport(); got != tt.transport {
				t.Errorf("Transport() = %q, want %q", got, tt.transport)
			}
		})
	}
}
