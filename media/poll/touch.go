package poll

import "net/netip"

// Toucher is a Handler that can read ahead. A loop that received several
// datagrams in one round first calls Touch for each of them, then
// Datagram for each: Touch loads the state its Datagram will read
// (the call's, out of the CPU's caches since its last packet 20 ms ago),
// and because one datagram's loads do not wait for another's, the
// processor overlaps their cache misses, which Datagram, one packet
// after the other, would take one at a time.
//
// Touch must change nothing and read only what it may read on the loop's
// goroutine without a lock (atomics, fields set before the socket was
// added, state only the loop writes); it returns a value derived from
// what it read, so that the compiler keeps the loads. pkt is the
// datagram, valid during the call.
type Toucher interface {
	Touch(pkt []byte, from netip.AddrPort) uintptr
}
