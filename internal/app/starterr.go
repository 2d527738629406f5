package app

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// ListenError is a socket the SBC could not open at start. Its text is one
// line naming the config key, what listens there and the address, then
// why:
//
//	sip.listeners[0] (listener "udp", udp 127.0.0.1:5060): address already in use
//	admin.addr (admin server, tcp 127.0.0.1:9090): address already in use
type ListenError struct {
	Key     string // the config key: sip.listeners[0], admin.addr, webphone.addr, media.webrtc_port
	What    string // what listens: `listener "udp"`, admin server, web phone, WebRTC media
	Network string // udp, tcp, tls, ws or wss
	Addr    string // ip:port as configured
	Err     error  // the cause, from net.Listen and friends
}

func (e *ListenError) Error() string {
	return e.Key + " (" + e.What + ", " + e.Network + " " + e.Addr + "): " + listenReason(e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// listenReason is the cause of a failed listen in words an operator acts
// on: the system call's error without the layers of "listen tcp ...: bind:"
// around it, with a hint for the usual ones.
func listenReason(err error) string {
	var se *os.SyscallError
	if !errors.As(err, &se) {
		return err.Error()
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "address already in use"
	case errors.Is(err, syscall.EACCES):
		return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "cannot assign requested address (not an address of this host)"
	}
	return se.Err.Error()
}

// asListenError wraps err as a ListenError of key and what when it is a
// failed listen (a *net.OpError), taking the network and address from it
// when they are not given; other errors are returned as they are.
func asListenError(err error, key, what, network, addr string) error {
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "listen" {
		return err
	}
	if network == "" {
		network = op.Net
	}
	if addr == "" && op.Addr != nil {
		addr = op.Addr.String()
	}
	return &ListenError{Key: key, What: what, Network: network, Addr: addr, Err: err}
}
