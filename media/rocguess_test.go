package media

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"

	"github.com/sbc-project/sbc/media/rtpproc"
)

// TestRestoreSDESWrappedROC: an SDES endpoint restored from a state with
// the peer's rollover counter at 5, whose peer wrapped its sequence
// since (ROC 6): garbage with the peer's SSRC does not move the counter,
// the peer's packets decrypt, and once one has, the counter is no longer
// a guess. A peer that did not wrap is decrypted at 5.
func TestRestoreSDESWrappedROC(t *testing.T) {
	const in, out = 0x5eed1001, 0x5eed1002
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"} {
		t.Run(suite, func(t *testing.T) {
			local, err := rtpproc.NewCrypto(1, suite)
			if err != nil {
				t.Fatal(err)
			}
			remote, err := rtpproc.NewCrypto(1, suite)
			if err != nil {
				t.Fatal(err)
			}
			for _, wrapped := range []bool{true, false} {
				sd, err := restoreSDES(SDESState{Local: local.String(), Remote: remote.String(), RxROC: 5}, out, 0, in)
				if err != nil {
					t.Fatal(err)
				}
				sender, err := remote.Context()
				if err != nil {
					t.Fatal(err)
				}
				roc := uint32(5)
				if wrapped {
					roc = 6
				}
				sender.SetROC(in, roc)
				seal := func(seq uint16) []byte {
					p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, SSRC: in}, Payload: bytes.Repeat([]byte{byte(seq)}, 160)}
					plain, err := p.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					pkt, err := sender.EncryptRTP(nil, plain, nil)
					if err != nil {
						t.Fatal(err)
					}
					return pkt
				}
				dec := sd.decRTP.Load()
				var hdr rtp.Header
				dst := make([]byte, 0, maxPacket)
				for i := range 20 {
					bad := seal(uint16(100 + i))
					bad[len(bad)-3] ^= 0x55
					if _, err := sd.rxGuess.decrypt(dec, dst, bad, &hdr); err == nil {
						t.Fatalf("garbage packet %d decrypted", i)
					}
				}
				if got, _ := dec.ROC(in); got != 5 || sd.rxGuess.ctx == nil {
					t.Fatalf("after garbage: ROC %d (pending %v), want 5 still a guess", got, sd.rxGuess.ctx != nil)
				}
				for seq := uint16(3); seq < 8; seq++ {
					plain, err := sd.rxGuess.decrypt(dec, dst, seal(seq), &hdr)
					if err != nil {
						t.Fatalf("wrapped %v: seq %d: %v", wrapped, seq, err)
					}
					if binary.BigEndian.Uint16(plain[2:]) != seq || plain[len(plain)-1] != byte(seq) {
						t.Fatalf("seq %d decrypted wrong", seq)
					}
				}
				if got, _ := dec.ROC(in); got != roc || sd.rxGuess.ctx != nil {
					t.Fatalf("wrapped %v: ROC %d (pending %v), want %d confirmed", wrapped, got, sd.rxGuess.ctx != nil, roc)
				}
			}
		})
	}
}
