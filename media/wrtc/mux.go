package wrtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/ice/v4"
)

// tcpReadQueue is the number of framed packets pion queues per ICE-TCP
// connection before the agent reads them.
const tcpReadQueue = 64

// MuxConfig configures NewMux.
type MuxConfig struct {
	// UDP is the socket every transport shares (required). Bind it to one
	// address, IPv4 or IPv6: its transports gather host candidates of that
	// family only. An unspecified bind makes pion advertise every interface
	// of the family (all rewritten to Config.PublicIP when that is set).
	UDP *net.UDPConn
	// TCP is an optional listener for passive ICE-TCP, normally on the same IP
	// and port number as UDP; nil disables ICE-TCP.
	TCP net.Listener
	// Log receives pion's diagnostics at Debug (errors at Warn); nil discards.
	Log *slog.Logger
}

// Mux holds the sockets shared by all WebRTC transports: one UDP socket,
// demultiplexed by ICE username fragment (ice.UDPMuxDefault), and optionally
// one TCP listener for passive ICE-TCP (ice.TCPMuxDefault). It is safe for
// concurrent use; transports come and go while it keeps serving the others.
type Mux struct {
	udp      *ice.UDPMuxDefault
	tcp      *ice.TCPMuxDefault // nil without ICE-TCP
	addr     netip.AddrPort     // the UDP socket's local address
	loopback bool               // bound to a loopback IP: pion skips those unless told
	v6       bool               // bound to an IPv6 address: candidates are IPv6

	closeOnce sync.Once
	closeErr  error
}

// NewMux starts the shared ICE muxes on cfg's sockets. The Mux owns them from
// now on: Close closes the socket and the listener.
func NewMux(cfg MuxConfig) (*Mux, error) {
	if cfg.UDP == nil {
		return nil, errors.New("wrtc: mux needs a UDP socket")
	}
	addr, ok := cfg.UDP.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("wrtc: mux socket has address %T, want *net.UDPAddr", cfg.UDP.LocalAddr())
	}
	ap := addr.AddrPort()
	log := cfg.Log
	if log == nil {
		log = discardLog
	}
	pl := pionLogs{log: log.With("component", "wrtc-mux")}
	m := &Mux{
		udp: ice.NewUDPMuxDefault(ice.UDPMuxParams{
			Logger:  pl.NewLogger("ice-udp-mux"),
			UDPConn: cfg.UDP,
		}),
		addr:     netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
		loopback: ap.Addr().IsLoopback(),
		v6:       !ap.Addr().Unmap().Is4(),
	}
	if cfg.TCP != nil {
		m.tcp = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener:       cfg.TCP,
			Logger:         pl.NewLogger("ice-tcp-mux"),
			ReadBufferSize: tcpReadQueue,
		})
	}
	return m, nil
}

// Addr returns the local address of the shared UDP socket.
func (m *Mux) Addr() netip.AddrPort { return m.addr }

// Close stops both muxes and closes the UDP socket and the TCP listener.
// Transports still using the Mux lose their path. Close is idempotent.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if err := m.udp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close udp mux: %w", err))
		}
		if m.tcp != nil {
			if err := m.tcp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("close tcp mux: %w", err))
			}
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}
