package wrtc

import (
	"encoding/binary"
	"sync"
)

// onceWire is a network that carries each DTLS handshake message once,
// each way: a repeated message, which is what a retransmitted flight is
// (DTLS 1.2 repeats each message with its message_seq, RFC 6347 4.2.2, in
// records with new record sequence numbers), is lost. A handshake over it
// completes only if no side needed a retransmission: a side that lost or
// dropped a flight, or read it too late to answer, waits for a retransmission
// that never comes. A new message (the ClientHello answering a
// HelloVerifyRequest) has a new message_seq and crosses. The encrypted
// Finished (epoch 1) cannot be read: an epoch-1 handshake record and a
// ChangeCipherSpec each cross once per direction.
type onceWire struct {
	mu      sync.Mutex
	seen    map[flightKey]bool
	dropped int
}

type flightKey struct {
	out          bool  // sent by pion
	content      uint8 // record content type
	epoch        uint16
	msgType      uint8 // epoch-0 handshake only
	msgSeq, frag uint32
}

func newOnceWire() *onceWire { return &onceWire{seen: map[flightKey]bool{}} }

// pass is peerOpts.wirePass: false for a datagram that repeats a
// handshake message already carried.
func (w *onceWire) pass(pkt []byte, out bool) bool {
	if Classify(pkt) != ClassDTLS {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []flightKey
	for len(pkt) >= 13 {
		k := flightKey{out: out, content: pkt[0], epoch: binary.BigEndian.Uint16(pkt[3:])}
		n := int(binary.BigEndian.Uint16(pkt[11:]))
		body := pkt[13:]
		if n > len(body) {
			break
		}
		body, pkt = body[:n], body[n:]
		switch {
		case k.content == 22 && k.epoch == 0 && len(body) >= 12: // type, length(3), message_seq(2), fragment_offset(3)
			k.msgType = body[0]
			k.msgSeq = uint32(binary.BigEndian.Uint16(body[4:]))
			k.frag = uint32(body[6])<<16 | uint32(body[7])<<8 | uint32(body[8])
		case k.content == 20 || k.content == 22:
		default:
			continue // alerts and application data are no flight
		}
		if w.seen[k] {
			w.dropped++
			return false
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		w.seen[k] = true
	}
	return true
}

// repeats is how many datagrams the wire lost as repeats.
func (w *onceWire) repeats() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}
