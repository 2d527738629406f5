package wrtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// errClass is how decryptFailed counts a decrypt error ("" for none).
func errClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		return "auth"
	case errors.Is(err, errGCMReplay), isReplay(err):
		return "replay"
	default:
		return "malformed"
	}
}

// gcmCase builds the plain RTP packets of the equivalence test: streams
// of a few SSRCs whose sequence numbers go forward, back, repeat, jump
// and wrap (so the ROC moves both ways), with CSRCs, RFC 8285 and RFC
// 3550 extensions, malformed extensions, cryptex profiles and runt
// packets among them.
func gcmPackets(r *rand.Rand, n int) [][]byte {
	ssrcs := []uint32{0x0a0b0c0d, 0x11223344, r.Uint32()}
	seqs := []uint16{65000, 10, uint16(r.Uint32())}
	out := make([][]byte, 0, n)
	for range n {
		k := r.IntN(len(ssrcs))
		switch x := r.IntN(100); {
		case x < 70:
			seqs[k] += uint16(1 + r.IntN(3))
		case x < 80:
			seqs[k] -= uint16(r.IntN(40))
		case x < 85:
			seqs[k] += uint16(r.IntN(40000)) // a jump: past half the space, a ROC guess
		case x < 90:
			// the same sequence number again
		default:
			seqs[k] -= uint16(r.IntN(3000))
		}
		out = append(out, gcmPlain(r, ssrcs[k], seqs[k]))
	}
	return out
}

// gcmPlain is one plain RTP packet of ssrc and seq with a random header
// shape.
func gcmPlain(r *rand.Rand, ssrc uint32, seq uint16) []byte {
	cc := 0
	if r.IntN(8) == 0 {
		cc = r.IntN(3)
	}
	p := make([]byte, 12+4*cc, 12+4*cc+64+200)
	p[0] = 0x80 | byte(cc)
	p[1] = byte(r.IntN(128)) | byte(r.IntN(2))<<7
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], r.Uint32())
	binary.BigEndian.PutUint32(p[8:], ssrc)
	if r.IntN(3) == 0 {
		p[0] |= 0x10
		profiles := []uint16{extProfileOneByte, extProfileTwoByte, 0x1234, extProfileCryptexOne, extProfileCryptexTwo}
		ext := make([]byte, 4*r.IntN(4))
		for i := range ext {
			ext[i] = byte(r.IntN(256)) // elements that may not fit: pion refuses those
		}
		if r.IntN(2) == 0 && len(ext) >= 4 {
			ext[0], ext[1] = 0x10, 0xaa // one-byte element id 1, 1 byte
			ext[2], ext[3] = 0, 0
		}
		p = binary.BigEndian.AppendUint16(p, profiles[r.IntN(len(profiles))])
		p = binary.BigEndian.AppendUint16(p, uint16(len(ext)/4))
		p = append(p, ext...)
	}
	for range r.IntN(200) {
		p = append(p, byte(r.IntN(256)))
	}
	if r.IntN(50) == 0 {
		p = p[:r.IntN(len(p))] // a runt: a header cut short
	}
	return p
}

// TestGCMLikePion holds our AEAD-AES-GCM SRTP (srtpgcm.go) to pion's
// srtp.Context with the same keys, packet by packet: encrypting, the
// same bytes or both an error; decrypting pion's packets (and tampered,
// replayed, reordered and malformed ones), the same plain packet or the
// same counted error class, with the replay window and ROC of both
// moving alike.
func TestGCMLikePion(t *testing.T) {
	for _, profile := range []srtp.ProtectionProfile{srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm} {
		t.Run(profileName(profile), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(profile), 7))
			keyLen, _ := profile.KeyLen()
			key, salt := make([]byte, keyLen), make([]byte, gcmSaltLen)
			for i := range key {
				key[i] = byte(r.IntN(256))
			}
			for i := range salt {
				salt[i] = byte(r.IntN(256))
			}
			pionTx, err := srtp.CreateContext(key, salt, profile)
			if err != nil {
				t.Fatal(err)
			}
			pionRx, err := srtp.CreateContext(key, salt, profile, srtp.SRTPReplayDetectorFactory(newReplayDetector))
			if err != nil {
				t.Fatal(err)
			}
			ourTx, err := newGCMRTP(profile, key, salt, false)
			if err != nil {
				t.Fatal(err)
			}
			ourRx, err := newGCMRTP(profile, key, salt, true)
			if err != nil {
				t.Fatal(err)
			}
			var sealed [][]byte
			for i, plain := range gcmPackets(r, 20000) {
				want, werr := pionTx.EncryptRTP(nil, plain, nil)
				got, gerr := ourTx.encrypt(make([]byte, 0, 4), plain)
				if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
					t.Fatalf("packet %d %x: encrypt gave %x, %v; pion %x, %v", i, plain, got, gerr, want, werr)
				}
				if werr == nil {
					sealed = append(sealed, want)
				}
			}
			decryptLikePion(t, r, sealed, pionRx, ourRx)
		})
	}
}

// decryptLikePion feeds both decrypters the sealed packets, shuffled a
// little, some twice, some with a flipped bit, some cut.
func decryptLikePion(t *testing.T, r *rand.Rand, sealed [][]byte, pionRx *srtp.Context, ourRx *gcmRTP) {
	t.Helper()
	for i := 0; i+1 < len(sealed); i++ {
		if r.IntN(10) == 0 {
			sealed[i], sealed[i+1] = sealed[i+1], sealed[i]
		}
	}
	counts := map[string]int{}
	for i := 0; i < len(sealed); i++ {
		in := bytes.Clone(sealed[i])
		switch x := r.IntN(100); {
		case x < 3:
			in[r.IntN(len(in))] ^= 1 << r.IntN(8)
		case x < 5:
			in = in[:r.IntN(len(in))]
		case x < 10 && i > 0:
			in = bytes.Clone(sealed[r.IntN(i)]) // a replay, or a straggler
		}
		want, werr := pionRx.DecryptRTP(nil, bytes.Clone(in), nil)
		got, gerr := ourRx.decrypt(make([]byte, 0, 4), in)
		if errClass(gerr) != errClass(werr) || !bytes.Equal(got, want) {
			t.Fatalf("packet %d %x: decrypt gave %x, %v; pion %x, %v", i, in, got, gerr, want, werr)
		}
		counts[errClass(werr)]++
	}
	// The stream must exercise each outcome.
	for _, c := range []string{"", "auth", "replay", "malformed"} {
		if counts[c] < 20 {
			t.Fatalf("outcomes %v: too few %q", counts, c)
		}
	}
}

// TestGCMDecryptDoesNotAllocate: the steady decrypt and encrypt paths
// allocate nothing.
func TestGCMPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	key, salt := bytes.Repeat([]byte{5}, 16), bytes.Repeat([]byte{6}, gcmSaltLen)
	tx, err := newGCMRTP(srtp.ProtectionProfileAeadAes128Gcm, key, salt, false)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := newGCMRTP(srtp.ProtectionProfileAeadAes128Gcm, key, salt, true)
	if err != nil {
		t.Fatal(err)
	}
	plain := rtpPacket(t, testSSRC, testPT, 1, payloadN(1))
	sealed, out := make([]byte, 0, maxPacket), make([]byte, 0, maxPacket)
	seq := uint16(1)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(plain[2:], seq)
		s, err := tx.encrypt(sealed, plain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rx.decrypt(out, s); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet, want 0", allocs)
	}
}

// TestGCMRefusesROCWrap: as pion's, the encrypter refuses the packet
// whose index would wrap the 48-bit space (RFC 3711 section 9.2: the key
// must not protect more), and keeps refusing.
func TestGCMRefusesROCWrap(t *testing.T) {
	tx, err := newGCMRTP(srtp.ProtectionProfileAeadAes128Gcm, bytes.Repeat([]byte{5}, 16), bytes.Repeat([]byte{6}, gcmSaltLen), false)
	if err != nil {
		t.Fatal(err)
	}
	plain := rtpPacket(t, testSSRC, testPT, 0xfffe, payloadN(1))
	if _, err := tx.encrypt(nil, plain); err != nil {
		t.Fatal(err)
	}
	s := tx.ssrcs[testSSRC]
	s.index = maxROC<<16 | 0xfffe // the last ROC
	binary.BigEndian.PutUint16(plain[2:], 0xffff)
	if _, err := tx.encrypt(nil, plain); err != nil {
		t.Fatalf("the last index: %v", err)
	}
	for _, seq := range []uint16{0, 1} {
		binary.BigEndian.PutUint16(plain[2:], seq)
		if _, err := tx.encrypt(nil, plain); !errors.Is(err, errGCMExhausted) {
			t.Fatalf("seq %d past the last index: %v, want errGCMExhausted", seq, err)
		}
	}
}

// BenchmarkSRTPGCM: one RTP packet (160-byte payload, 12-byte header)
// protected and one unprotected, by pion's srtp.Context and by ours, in
// one binary so that the two compare on a shared machine.
func BenchmarkSRTPGCM(b *testing.B) {
	profile := srtp.ProtectionProfileAeadAes128Gcm
	key, salt := bytes.Repeat([]byte{5}, 16), bytes.Repeat([]byte{6}, gcmSaltLen)
	plain := rtpPacket(b, testSSRC, testPT, 1, payloadN(1))
	sealed, out := make([]byte, 0, maxPacket), make([]byte, 0, maxPacket)
	pionTx, _ := srtp.CreateContext(key, salt, profile)
	pionRx, _ := srtp.CreateContext(key, salt, profile, srtp.SRTPReplayDetectorFactory(newReplayDetector))
	ourTx, _ := newGCMRTP(profile, key, salt, false)
	ourRx, _ := newGCMRTP(profile, key, salt, true)
	var txHdr, rxHdr rtp.Header
	ways := []struct {
		name string
		enc  func(dst, pkt []byte) ([]byte, error)
		dec  func(dst, pkt []byte) ([]byte, error)
	}{
		// With the reused headers of the transport's paths.
		{"pion", func(d, p []byte) ([]byte, error) { return pionTx.EncryptRTP(d, p, &txHdr) },
			func(d, p []byte) ([]byte, error) { return pionRx.DecryptRTP(d, p, &rxHdr) }},
		{"ours", ourTx.encrypt, ourRx.decrypt},
	}
	for _, w := range ways {
		seq := uint16(1) // on across the runs: the replay window sees each index once
		b.Run(w.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				seq++
				binary.BigEndian.PutUint16(plain[2:], seq)
				s, err := w.enc(sealed, plain)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.dec(out, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestGCMSetROCLikePion: after SetROC (a restored transport's counters),
// ours and pion's encrypt to the same bytes, decrypt alike and report
// the same ROC, for a new SSRC and for one with state.
func TestGCMSetROCLikePion(t *testing.T) {
	profile := srtp.ProtectionProfileAeadAes128Gcm
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{8}, gcmSaltLen)
	pionTx, _ := srtp.CreateContext(key, salt, profile)
	pionRx, _ := srtp.CreateContext(key, salt, profile, srtp.SRTPReplayDetectorFactory(newReplayDetector))
	ourTx, _ := newGCMRTP(profile, key, salt, false)
	ourRx, _ := newGCMRTP(profile, key, salt, true)
	plain := rtpPacket(t, testSSRC, testPT, 0, payloadN(3))
	step := func(seq uint16) {
		t.Helper()
		binary.BigEndian.PutUint16(plain[2:], seq)
		want, werr := pionTx.EncryptRTP(nil, plain, nil)
		got, gerr := ourTx.encrypt(nil, plain)
		if werr != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Fatalf("seq %d: encrypt %x, %v; pion %x, %v", seq, got, gerr, want, werr)
		}
		wp, werr := pionRx.DecryptRTP(nil, want, nil)
		gp, gerr := ourRx.decrypt(nil, want)
		if errClass(werr) != errClass(gerr) || !bytes.Equal(gp, wp) {
			t.Fatalf("seq %d: decrypt %v, pion %v", seq, gerr, werr)
		}
		for _, c := range []struct {
			name string
			a, b func(uint32) (uint32, bool)
		}{{"tx", pionTx.ROC, ourTx.ROC}, {"rx", pionRx.ROC, ourRx.ROC}} {
			wr, wok := c.a(testSSRC)
			gr, gok := c.b(testSSRC)
			if wr != gr || wok != gok {
				t.Fatalf("seq %d: %s ROC %d %v, pion %d %v", seq, c.name, gr, gok, wr, wok)
			}
		}
	}
	if _, ok := ourTx.ROC(testSSRC); ok {
		t.Fatal("ROC of an SSRC without state")
	}
	for _, roc := range []uint32{7, 9} { // a new SSRC, then one with state
		pionTx.SetROC(testSSRC, roc)
		ourTx.SetROC(testSSRC, roc)
		pionRx.SetROC(testSSRC, roc)
		ourRx.SetROC(testSSRC, roc)
		for seq := uint16(65530); seq != 10; seq++ {
			step(seq)
		}
	}
}
