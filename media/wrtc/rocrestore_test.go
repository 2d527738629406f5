package wrtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// rocCase is a restored receive context of profile (restoreROC'd at
// roc for ssrc) and a sender with the same key.
func rocCase(t *testing.T, profile srtp.ProtectionProfile, ssrc, roc uint32) (rx *srtpKeys, sender *srtp.Context) {
	t.Helper()
	kl, err := profile.KeyLen()
	if err != nil {
		t.Fatal(err)
	}
	sl, err := profile.SaltLen()
	if err != nil {
		t.Fatal(err)
	}
	key, salt := bytes.Repeat([]byte{7}, kl), bytes.Repeat([]byte{9}, sl)
	rx, _, err = newSRTPContexts(profile, srtp.SessionKeys{LocalMasterKey: key, LocalMasterSalt: salt, RemoteMasterKey: key, RemoteMasterSalt: salt})
	if err != nil {
		t.Fatal(err)
	}
	rx.restoreROC(ssrc, roc)
	if sender, err = srtp.CreateContext(key, salt, profile); err != nil {
		t.Fatal(err)
	}
	return rx, sender
}

func rocPacket(t *testing.T, sender *srtp.Context, ssrc uint32, seq uint16) []byte {
	t.Helper()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc}, Payload: bytes.Repeat([]byte{byte(seq)}, 160)}
	plain, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sender.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var rocProfiles = map[string]srtp.ProtectionProfile{
	"aes-cm": srtp.ProtectionProfileAes128CmHmacSha1_80, "aes-gcm": srtp.ProtectionProfileAeadAes128Gcm,
}

// TestRestoredROCMovesOnAuthOnly: a restored receive context at ROC 5
// gets, first, packets of the SSRC that a stranger made without the key
// (the restored header, a random body; ROC 5 and 6 both fail): the ROC
// stays 5. Then the peer's packets at ROC 6 (its sequence wrapped since
// the state) decrypt, and the ROC is 6. Once a packet has confirmed it,
// the ROC is no longer a guess: a packet from 2 rollovers on fails.
func TestRestoredROCMovesOnAuthOnly(t *testing.T) {
	const ssrc = 0x5eed0001
	for name, profile := range rocProfiles {
		t.Run(name, func(t *testing.T) {
			rx, sender := rocCase(t, profile, ssrc, 5)
			sender.SetROC(ssrc, 6)
			var hdr rtp.Header
			dst := make([]byte, maxPacket)
			good := rocPacket(t, sender, ssrc, 3)
			for i := range 50 {
				bad := bytes.Clone(good)
				binary.BigEndian.PutUint16(bad[2:], uint16(i))
				for j := 12; j < len(bad); j++ {
					bad[j] ^= byte(i*31 + j)
				}
				if _, err := rx.decryptRTP(dst, bad, &hdr); !errors.Is(err, srtp.ErrFailedToVerifyAuthTag) {
					t.Fatalf("garbage packet %d: %v, want an authentication failure", i, err)
				}
			}
			if roc, _ := rx.ROC(ssrc); roc != 5 || len(rx.pending) != 1 {
				t.Fatalf("after garbage: ROC %d (pending %v), want 5 still a guess", roc, rx.pending)
			}
			for seq := uint16(3); seq < 8; seq++ {
				pkt := rocPacket(t, sender, ssrc, seq)
				out, err := rx.decryptRTP(dst, pkt, &hdr)
				if err != nil {
					t.Fatalf("seq %d at ROC 6: %v", seq, err)
				}
				if got := binary.BigEndian.Uint16(out[2:]); got != seq || out[len(out)-1] != byte(seq) {
					t.Fatalf("seq %d decrypted as seq %d", seq, got)
				}
			}
			if roc, _ := rx.ROC(ssrc); roc != 6 || len(rx.pending) != 0 {
				t.Fatalf("ROC %d (pending %v), want 6 confirmed", roc, rx.pending)
			}
			sender.SetROC(ssrc, 8)
			if _, err := rx.decryptRTP(dst, rocPacket(t, sender, ssrc, 9), &hdr); err == nil {
				t.Fatal("a packet 2 rollovers on decrypted after the ROC was confirmed")
			}
		})
	}
}

// TestRestoredROCUnwrapped: a peer that did not wrap keeps the restored
// ROC, including packets from just before 65535 and after it.
func TestRestoredROCUnwrapped(t *testing.T) {
	const ssrc = 0x5eed0002
	for name, profile := range rocProfiles {
		t.Run(name, func(t *testing.T) {
			rx, sender := rocCase(t, profile, ssrc, 5)
			sender.SetROC(ssrc, 5)
			var hdr rtp.Header
			dst := make([]byte, maxPacket)
			for _, seq := range []uint16{65530, 65535, 0, 4} {
				if _, err := rx.decryptRTP(dst, rocPacket(t, sender, ssrc, seq), &hdr); err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
			}
			if roc, _ := rx.ROC(ssrc); roc != 6 || len(rx.pending) != 0 {
				t.Fatalf("ROC %d (pending %v), want 6 after the wrap", roc, rx.pending)
			}
		})
	}
}

// TestRestoredROCTryAllocs: the second try of a restored context's
// packet (garbage that fails both) allocates nothing.
func TestRestoredROCTryAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	const ssrc = 0x5eed0003
	for name, profile := range rocProfiles {
		t.Run(name, func(t *testing.T) {
			rx, sender := rocCase(t, profile, ssrc, 5)
			bad := rocPacket(t, sender, ssrc, 3)
			bad[len(bad)-1] ^= 1
			var hdr rtp.Header
			dst := make([]byte, maxPacket)
			if n := testing.AllocsPerRun(100, func() { _, _ = rx.decryptRTP(dst, bad, &hdr) }); n != 0 {
				t.Errorf("%v allocations per failed restored packet", n)
			}
		})
	}
}
