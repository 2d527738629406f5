package wrtc

import (
	"encoding/binary"
	"sync"
	"testing"
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

// dtlsRecord is one DTLS 1.2 record: an epoch-0 handshake message (type,
// message_seq) when content is 22 and epoch 0, else body as it is.
func dtlsRecord(content uint8, epoch uint16, recSeq uint64, msgType uint8, msgSeq uint16, body []byte) []byte {
	if content == 22 && epoch == 0 {
		hs := []byte{msgType, 0, 0, byte(len(body)), byte(msgSeq >> 8), byte(msgSeq), 0, 0, 0, 0, 0, byte(len(body))}
		body = append(hs, body...)
	}
	r := []byte{content, 0xfe, 0xfd, byte(epoch >> 8), byte(epoch)}
	r = binary.BigEndian.AppendUint16(r, uint16(recSeq>>32))
	r = binary.BigEndian.AppendUint32(r, uint32(recSeq))
	r = binary.BigEndian.AppendUint16(r, uint16(len(body)))
	return append(r, body...)
}

// TestOnceWireLosesRepeats: the wire TestDTLSSetupPionTiming relies on
// carries each handshake message once per direction, whatever its record
// sequence number, and everything else as it comes.
func TestOnceWireLosesRepeats(t *testing.T) {
	w := newOnceWire()
	hello := dtlsRecord(22, 0, 0, 1, 0, []byte("hello"))
	steps := []struct {
		name string
		pkt  []byte
		out  bool
		want bool
	}{
		{"ClientHello", hello, true, true},
		{"the same ClientHello, retransmitted in a new record", dtlsRecord(22, 0, 1, 1, 0, []byte("hello")), true, false},
		{"the same message the other way", hello, false, true},
		{"the ClientHello with a cookie (new message_seq)", dtlsRecord(22, 0, 2, 1, 1, []byte("hello+cookie")), true, true},
		{"a flight of two records, the first new, the second a repeat", append(dtlsRecord(22, 0, 3, 16, 2, []byte("kx")), dtlsRecord(22, 0, 4, 1, 1, []byte("x"))...), true, false},
		{"ChangeCipherSpec", dtlsRecord(20, 0, 5, 0, 0, []byte{1}), true, true},
		{"ChangeCipherSpec again", dtlsRecord(20, 0, 6, 0, 0, []byte{1}), true, false},
		{"Finished (epoch 1)", dtlsRecord(22, 1, 0, 0, 0, []byte("sealed")), true, true},
		{"Finished again", dtlsRecord(22, 1, 1, 0, 0, []byte("sealed2")), true, false},
		{"application data", dtlsRecord(23, 1, 2, 0, 0, []byte("data")), true, true},
		{"application data again", dtlsRecord(23, 1, 3, 0, 0, []byte("data")), true, true},
		{"STUN", []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, true, true},
	}
	lost := 0
	for _, s := range steps {
		if got := w.pass(s.pkt, s.out); got != s.want {
			t.Errorf("%s: pass = %v, want %v", s.name, got, s.want)
		}
		if !s.want {
			lost++
		}
	}
	// A datagram lost for one repeated record does not mark its other,
	// new records as carried: key exchange (message_seq 2) crosses later.
	if !w.pass(dtlsRecord(22, 0, 7, 16, 2, []byte("kx")), true) {
		t.Error("a message first seen in a lost datagram: lost again")
	}
	if got := w.repeats(); got != lost {
		t.Errorf("repeats() = %d, want %d", got, lost)
	}
}
