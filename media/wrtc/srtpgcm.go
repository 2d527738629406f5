package wrtc

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pion/srtp/v3"
)

// gcmRTP is the RTP half of SRTP for the AEAD-AES-GCM profiles (RFC
// 7714) that the DTLS handshake negotiates first: one direction's session
// key and salt, and the rollover counter (and, decrypting, the replay
// window) of each SSRC. SRTCP, and the AES-CM profile, stay with pion's
// srtp.Context.
//
// Why our own: at 500 WebRTC calls pion's work around the cipher (the
// header parsed into an rtp.Header, the SSRC state map, the ROC guess
// behind interfaces and closures) cost more than the cipher itself
// (BENCHMARKS.md, "Issue 15, fifth step"). This keeps pion's decisions:
// the same ROC guess and update, the replay check before authentication
// and the accept after it, state kept only for an SSRC whose packet
// authenticated, pion's header checks; TestGCMLikePion holds it to pion's
// output and errors packet by packet.
//
// Like srtp.Context, it is used by one goroutine at a time (the demux's
// reader, or the sender under the transport's wmu). Its steady path does
// not allocate.
type gcmRTP struct {
	aead   cipher.AEAD
	salt   [gcmSaltLen]byte
	replay bool // decrypting: each SSRC has a replay window

	last  *gcmSSRC // the state of the last packet's SSRC (a stream has one)
	ssrcs map[uint32]*gcmSSRC
	probe gcmSSRC // an unknown SSRC's state until its packet authenticates
	iv    [gcmSaltLen]byte
}

// gcmSSRC is one SSRC's packet index (ROC and sequence) and replay window.
type gcmSSRC struct {
	ssrc    uint32
	index   uint64
	started bool // pion's rolloverHasProcessed: a packet set index
	window  replayWindow
}

const (
	gcmSaltLen = 12 // RFC 7714 section 12: the session salt
	gcmTagLen  = 16 // the AEAD tag of both GCM profiles

	labelSRTPEncryption = 0x00 // RFC 3711 section 4.3.2
	labelSRTPSalt       = 0x02

	seqNumMedian = 1 << 15
	seqNumMax    = 1 << 16
	maxROC       = 1<<32 - 1

	// The RFC 8285 header extension profiles, and RFC 9335's cryptex
	// ones, which a context without cryptex refuses.
	extProfileOneByte     = 0xbede
	extProfileTwoByte     = 0x1000
	extProfileCryptexOne  = 0xc0de
	extProfileCryptexTwo  = 0xc2de
	extIDPadding          = 0
	extIDReservedOneByte  = 15
	minRTPHeader          = 12
	rtpExtensionHeaderLen = 4
)

// The errors of gcmRTP. decryptFailed counts errGCMReplay as a replay and
// srtp.ErrFailedToVerifyAuthTag as an authentication failure, as it does
// pion's; the rest are malformed packets.
var (
	errGCMReplay      = errors.New("wrtc: srtp: duplicated packet")
	errGCMShort       = errors.New("wrtc: srtp: packet too short")
	errGCMHeader      = errors.New("wrtc: srtp: malformed rtp header")
	errGCMCryptex     = errors.New("wrtc: srtp: cryptex not negotiated")
	errGCMExhausted   = errors.New("wrtc: srtp: 2^48 packets sent with one key")
	errGCMNotAProfile = errors.New("wrtc: srtp: not an aead-aes-gcm profile")
)

// isGCM reports whether profile is one of the AEAD-AES-GCM ones gcmRTP
// serves.
func isGCM(profile srtp.ProtectionProfile) bool {
	return profile == srtp.ProtectionProfileAeadAes128Gcm || profile == srtp.ProtectionProfileAeadAes256Gcm
}

// newGCMRTP derives the SRTP session key and salt from a master key and
// salt (RFC 3711 section 4.3, the AES-CM PRF, key derivation rate 0).
// replay: decrypting, with a replay window per SSRC.
func newGCMRTP(profile srtp.ProtectionProfile, masterKey, masterSalt []byte, replay bool) (*gcmRTP, error) {
	keyLen := 16
	if profile == srtp.ProtectionProfileAeadAes256Gcm {
		keyLen = 32
	}
	switch {
	case !isGCM(profile):
		return nil, errGCMNotAProfile
	case len(masterKey) != keyLen || len(masterSalt) != gcmSaltLen:
		return nil, fmt.Errorf("wrtc: srtp: master key of %d bytes and salt of %d, want %d and %d",
			len(masterKey), len(masterSalt), keyLen, gcmSaltLen)
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("wrtc: srtp: %w", err)
	}
	key := make([]byte, keyLen)
	kdf(block, labelSRTPEncryption, masterSalt, key)
	g := &gcmRTP{replay: replay, ssrcs: make(map[uint32]*gcmSSRC)}
	kdf(block, labelSRTPSalt, masterSalt, g.salt[:])
	sk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wrtc: srtp: %w", err)
	}
	if g.aead, err = cipher.NewGCM(sk); err != nil {
		return nil, fmt.Errorf("wrtc: srtp: %w", err)
	}
	return g, nil
}

// kdf fills out with the AES-CM PRF's output for label: the master salt,
// label XORed into its eighth byte, as the counter block's first 14 bytes.
func kdf(master cipher.Block, label byte, masterSalt, out []byte) {
	var in, blk [aes.BlockSize]byte
	copy(in[:], masterSalt)
	in[7] ^= label
	for i, n := uint16(0), 0; n < len(out); i, n = i+1, n+aes.BlockSize {
		binary.BigEndian.PutUint16(in[14:], i)
		master.Encrypt(blk[:], in[:])
		copy(out[n:], blk[:])
	}
}

// rtpHeaderLen returns the length of pkt's RTP header (CSRCs and
// extension included) and its extension profile (0: none), with pion's
// rtp.Header.Unmarshal checks: the lengths, and the elements of an RFC
// 8285 extension.
func rtpHeaderLen(pkt []byte) (n int, profile uint16, err error) {
	if len(pkt) < minRTPHeader {
		return 0, 0, errGCMHeader
	}
	n = minRTPHeader + 4*int(pkt[0]&0x0f)
	if len(pkt) < n {
		return 0, 0, errGCMHeader
	}
	if pkt[0]&0x10 == 0 {
		return n, 0, nil
	}
	if len(pkt) < n+rtpExtensionHeaderLen {
		return 0, 0, errGCMHeader
	}
	profile = binary.BigEndian.Uint16(pkt[n:])
	start := n + rtpExtensionHeaderLen
	end := start + 4*int(binary.BigEndian.Uint16(pkt[n+2:]))
	if len(pkt) < end {
		return 0, 0, errGCMHeader
	}
	if profile == extProfileOneByte || profile == extProfileTwoByte {
		if !extensionElementsFit(pkt[start:end], profile == extProfileOneByte) {
			return 0, 0, errGCMHeader
		}
	}
	return end, profile, nil
}

// extensionElementsFit walks RFC 8285 elements as pion's parser does and
// reports whether each fits in ext.
func extensionElementsFit(ext []byte, oneByte bool) bool {
	for i := 0; i < len(ext); {
		if ext[i] == extIDPadding {
			i++
			continue
		}
		var size int
		if oneByte {
			id := ext[i] >> 4
			size = int(ext[i]&0x0f) + 1
			i++
			if id == extIDReservedOneByte || id == extIDPadding {
				return true // pion stops reading here
			}
		} else {
			i++
			if i >= len(ext) {
				return false
			}
			size = int(ext[i])
			i++
		}
		if i+size > len(ext) {
			return false
		}
		i += size
	}
	return true
}

// state returns the state of ssrc; an unknown SSRC's is the probe, reset,
// unless keep (encrypting: kept at once).
func (g *gcmRTP) state(ssrc uint32, keep bool) (s *gcmSSRC, known bool) {
	if s = g.last; s != nil && s.ssrc == ssrc {
		return s, true
	}
	if s = g.ssrcs[ssrc]; s != nil {
		g.last = s
		return s, true
	}
	if keep {
		s = &gcmSSRC{ssrc: ssrc}
		g.ssrcs[ssrc], g.last = s, s
		return s, false
	}
	g.probe = gcmSSRC{ssrc: ssrc}
	return &g.probe, false
}

// keep makes the probe, whose packet authenticated, the SSRC's state.
func (g *gcmRTP) keep() {
	s := new(gcmSSRC)
	*s = g.probe
	g.ssrcs[s.ssrc], g.last = s, s
}

// nextROC is pion's srtpSSRCState.nextRolloverCount: the ROC of seq
// guessed from the highest index seen (RFC 3711 appendix A), the distance
// from it, and whether the ROC would wrap.
func (s *gcmSSRC) nextROC(seq uint16) (roc uint32, diff int64, overflow bool) {
	sq := int32(seq)
	localROC := uint32(s.index >> 16)
	localSeq := int32(s.index & (seqNumMax - 1))
	guess := localROC
	var d int32
	if s.started {
		if s.index > seqNumMedian {
			if localSeq < seqNumMedian {
				if sq-localSeq > seqNumMedian {
					guess, d = localROC-1, sq-localSeq-seqNumMax
				} else {
					d = sq - localSeq
				}
			} else if localSeq-seqNumMedian > sq {
				guess, d = localROC+1, sq-localSeq+seqNumMax
			} else {
				d = sq - localSeq
			}
		} else {
			d = sq - localSeq
		}
	}
	return guess, int64(d), guess == 0 && localROC == maxROC
}

// update is pion's updateRolloverCount without a ROC from the packet.
func (s *gcmSSRC) update(seq uint16, diff int64) {
	switch {
	case !s.started:
		s.index |= uint64(seq)
		s.started = true
	case diff > 0:
		s.index += uint64(diff)
	}
}

// setIV is RFC 7714 section 8.1's IV: 00 00, SSRC, ROC, SEQ, XOR the
// session salt.
func (g *gcmRTP) setIV(ssrc, roc uint32, seq uint16) {
	g.iv = g.salt
	g.iv[2] ^= byte(ssrc >> 24)
	g.iv[3] ^= byte(ssrc >> 16)
	g.iv[4] ^= byte(ssrc >> 8)
	g.iv[5] ^= byte(ssrc)
	g.iv[6] ^= byte(roc >> 24)
	g.iv[7] ^= byte(roc >> 16)
	g.iv[8] ^= byte(roc >> 8)
	g.iv[9] ^= byte(roc)
	g.iv[10] ^= byte(seq >> 8)
	g.iv[11] ^= byte(seq)
}

// encrypt protects the RTP packet pkt into dst (grown if its capacity is
// short of len(pkt)+16) and returns it; pkt is not modified unless dst
// shares its start.
func (g *gcmRTP) encrypt(dst, pkt []byte) ([]byte, error) {
	hl, _, err := rtpHeaderLen(pkt)
	if err != nil {
		return nil, err
	}
	ssrc, seq := binary.BigEndian.Uint32(pkt[8:]), binary.BigEndian.Uint16(pkt[2:])
	s, _ := g.state(ssrc, true)
	roc, diff, overflow := s.nextROC(seq)
	if overflow {
		// RFC 3711 section 9.2: the key must not protect more.
		return nil, errGCMExhausted
	}
	s.update(seq, diff)
	dst = grow(dst, len(pkt)+gcmTagLen)
	copy(dst, pkt[:hl])
	g.setIV(ssrc, roc, seq)
	g.aead.Seal(dst[hl:hl], g.iv[:], pkt[hl:], dst[:hl])
	return dst, nil
}

// decrypt authenticates and decrypts the SRTP packet pkt into dst (grown
// if short) and returns the plain RTP packet. The checks and their order
// are pion's: the length, the replay window (before the cipher's cost),
// cryptex, the tag; the window and the ROC move only for a packet that
// authenticated.
func (g *gcmRTP) decrypt(dst, pkt []byte) ([]byte, error) {
	hl, profile, err := rtpHeaderLen(pkt)
	if err != nil {
		return nil, err
	}
	if len(pkt) < hl+gcmTagLen {
		return nil, errGCMShort
	}
	ssrc, seq := binary.BigEndian.Uint32(pkt[8:]), binary.BigEndian.Uint16(pkt[2:])
	s, known := g.state(ssrc, false)
	roc, diff, _ := s.nextROC(seq)
	index := uint64(roc)<<16 | uint64(seq)
	if g.replay && !s.window.ok(index) {
		return nil, errGCMReplay
	}
	if profile == extProfileCryptexOne || profile == extProfileCryptexTwo {
		return nil, errGCMCryptex
	}
	dst = grow(dst, len(pkt)-gcmTagLen)
	g.setIV(ssrc, roc, seq)
	if _, err := g.aead.Open(dst[hl:hl], g.iv[:], pkt[hl:], pkt[:hl]); err != nil {
		return nil, srtp.ErrFailedToVerifyAuthTag
	}
	copy(dst, pkt[:hl])
	if g.replay {
		s.window.accept(index)
	}
	s.update(seq, diff)
	if !known {
		g.keep()
	}
	return dst, nil
}

// ROC is srtp.Context.ROC: the rollover counter of ssrc's highest index,
// false for an SSRC without state.
func (g *gcmRTP) ROC(ssrc uint32) (uint32, bool) {
	s := g.ssrcs[ssrc]
	if s == nil {
		return 0, false
	}
	return uint32(s.index >> 16), true
}

// SetROC is srtp.Context.SetROC: ssrc's next packets take roc, guessed
// anew from the first one (its replay window, if any, kept).
func (g *gcmRTP) SetROC(ssrc, roc uint32) {
	s, _ := g.state(ssrc, true)
	s.index, s.started = uint64(roc)<<16, false
}

// grow returns buf resized to n, a new slice when its capacity is short.
func grow(buf []byte, n int) []byte {
	if n <= cap(buf) {
		return buf[:n]
	}
	return make([]byte, n)
}
