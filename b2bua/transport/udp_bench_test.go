package transport

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
)

// BenchmarkUDPSendParallel: datagrams sent through one UDP listener by
// every CPU at once, as the workers and transactions do; run with -cpu
// 1,2,4 to see what the socket's write lock and the listener lookup cost
// when senders contend.
func BenchmarkUDPSendParallel(b *testing.B) {
	l := New(nil, Limits{}, func(Packet) {})
	defer l.Close()
	local, err := l.Listen("u", UDP, "127.0.0.1:0", ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() { // drain, so the kernel does not spend its time dropping
		buf := make([]byte, 2048)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	t := Target{Kind: UDP, Addr: sink.LocalAddr().(*net.UDPAddr).AddrPort(), Local: local, Listener: "u"}
	t.Addr = netip.AddrPortFrom(t.Addr.Addr().Unmap(), t.Addr.Port())
	msg := make([]byte, 800)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Send(t, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUDPSocketsParallel: the ceiling for several sending sockets:
// each sender writes on a socket of its own (sockets: 1 is the one
// socket every sender shares) to a sink of its own, so that only the
// sending socket is shared. Compare -cpu 2 of sockets=1 and sockets=2.
func BenchmarkUDPSocketsParallel(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			socks := make([]*net.UDPConn, n)
			for i := range socks {
				s, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				socks[i] = s
			}
			var next atomic.Int32
			msg := make([]byte, 800)
			b.SetBytes(int64(len(msg)))
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1) - 1)
				sock := socks[i%n]
				sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Error(err)
					return
				}
				defer sink.Close()
				_ = sink.SetReadBuffer(1) // delivery is cheapest as a drop: the sender is what is measured
				dst := sink.LocalAddr().(*net.UDPAddr).AddrPort()
				for pb.Next() {
					if _, err := sock.WriteToUDPAddrPort(msg, dst); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
