package transport

import (
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

// String returns the Via transport token: UDP, TCP, TLS, WS or WSS.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
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
// wrote to.
type Target struct {
	Kind     Kind
	Addr     netip.AddrPort
	Conn     *Conn
	Local    netip.AddrPort
	Listener string
	// Host is the server name for a TLS connection we dial (SNI and
	// certificate verification); empty: the IP of Addr.
	Host string
}

// String is for logs.
func (t Target) String() string { return t.Kind.String() + ":" + t.Addr.String() }
