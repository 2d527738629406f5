package transport

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"strings"
)

// Kind is a SIP transport.
type Kind uint8

// The transports the SBC speaks.
const (
	UDP Kind = iota + 1
	TCP
	TLS
	WS
	WSS
)

var kindNames = [...]string{UDP: "UDP", TCP: "TCP", TLS: "TLS", WS: "WS", WSS: "WSS"}

// kindParams are kindNames in lower case, made once: Param is asked of
// every message received.
var kindParams = func() (p [len(kindNames)]string) {
	for k, name := range kindNames {
		p[k] = strings.ToLower(name)
	}
	return p
}()

// String returns the Via transport token: UDP, TCP, TLS, WS or WSS.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Param returns the transport's name as a URI transport parameter and in
// logs and records: udp, tcp, tls, ws or wss.
func (k Kind) Param() string {
	if int(k) < len(kindParams) && kindParams[k] != "" {
		return kindParams[k]
	}
	return strings.ToLower(k.String())
}

// Reliable reports whether the transport is a stream (no SIP retransmissions).
func (k Kind) Reliable() bool { return k != UDP }

// Secure reports whether the transport is encrypted (sips: and WSS).
func (k Kind) Secure() bool { return k == TLS || k == WSS }

// ParseKind parses a transport name, case-insensitively.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if name != "" && strings.EqualFold(s, name) {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown transport %q (want udp, tcp, tls, ws or wss)", s)
}

// Target says where a message goes. When Conn is set and still open the
// message is written on that connection (responses, and requests to a client
// that can only be reached on the connection it opened, such as a browser on
// WebSocket); otherwise Kind and Addr pick a socket or an existing or new
// outbound connection.
//
// Local and Listener describe where an inbound message arrived; a reply over
// UDP is sent from the socket of the listener named Listener, else from the
// one bound to Local, when there is one, so that the peer sees the address it
// wrote to (a NAT in front of it lets nothing else in).
type Target struct {
	Kind     Kind
	Addr     netip.AddrPort
	Conn     *Conn
	Local    netip.AddrPort
	Listener string
	// Symmetric, on the source of an inbound message, is its UDP
	// listener's ListenOptions.Symmetric (Packet.Symmetric): where the
	// transaction layer sends the responses. Send does not read it.
	Symmetric bool
	// Host is the server name for a TLS connection we dial: sent as SNI
	// (unless it is an IP literal) and the name the peer's certificate must
	// carry, a DNS name or an IP address (IP SAN); empty: the IP of Addr.
	// Only TLS uses it.
	Host string
	// TLS is the client configuration for a TLS connection we dial to this
	// target (CA bundle, client certificate), cloned per dial; nil: the
	// layer's (SetClientTLS). Its ServerName, when set, wins over Host.
	// Only TLS uses it. It must not be modified once used.
	TLS *tls.Config
}

// String is for logs: kind and address, and the TLS server name if any.
func (t Target) String() string {
	s := t.Kind.String() + ":" + t.Addr.String()
	if t.Kind == TLS && t.Host != "" {
		s += " (" + t.Host + ")"
	}
	return s
}
