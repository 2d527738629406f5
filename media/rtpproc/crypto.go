package rtpproc

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// ErrBadCrypto marks an a=crypto attribute this package cannot use:
// malformed, or asking for something unsupported (an unknown suite, MKI,
// several keys, session parameters that change the transform).
var ErrBadCrypto = errors.New("rtpproc: unusable crypto attribute")

// SDES-SRTP crypto suites (RFC 4568 section 6.2; AEAD_AES_128_GCM from RFC 7714).
const (
	SuiteAES128HMACSHA1_80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES128HMACSHA1_32 = "AES_CM_128_HMAC_SHA1_32"
	SuiteAEADAES128GCM     = "AEAD_AES_128_GCM"
)

// suiteInfo is what a suite needs: its pion profile and key sizes.
type suiteInfo struct {
	profile         srtp.ProtectionProfile
	keyLen, saltLen int
}

var suites = map[string]suiteInfo{
	SuiteAES128HMACSHA1_80: {srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	SuiteAES128HMACSHA1_32: {srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14},
	SuiteAEADAES128GCM:     {srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
}

// maxTag is the largest crypto tag: RFC 4568 allows at most 9 digits.
const maxTag = 999999999

// replayWindow is the SRTP and SRTCP replay window of Context, in
// packets (RFC 3711 section 3.3.2 requires at least 64).
const replayWindow = 64

// Crypto is one SDES-SRTP crypto attribute (RFC 4568): a=crypto:<Tag>
// <Suite> inline:<base64(Key||Salt)>. The zero value is not usable.
type Crypto struct {
	// Tag identifies the attribute within its m-line; an answer echoes
	// the tag of the offer's attribute it accepts.
	Tag int
	// Suite is one of the Suite constants.
	Suite string
	// Key and Salt are the master key and master salt, of the suite's
	// lengths (16 and 14 bytes, 12 for the salt of AEAD_AES_128_GCM).
	Key, Salt []byte
}

// ParseCrypto reads the value of an a=crypto attribute (RFC 4568 section
// 9.1), e.g. "1 AES_CM_128_HMAC_SHA1_80 inline:<base64>|2^20"; a leading
// "a=crypto:" or "crypto:" is skipped. The suite must be one of the Suite
// constants. The key parameter's lifetime is checked for form but not
// enforced; an MKI, more than one key, and session parameters other than
// WSH and FEC_ORDER are refused. Errors wrap ErrBadCrypto.
func ParseCrypto(attr string) (Crypto, error) {
	attr = strings.TrimSpace(attr)
	attr = strings.TrimPrefix(strings.TrimPrefix(attr, "a=crypto:"), "crypto:")
	f := strings.Fields(attr)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("crypto %q: %w: want tag, suite and key parameters", attr, ErrBadCrypto)
	}
	tag, err := parseTag(f[0])
	if err != nil {
		return Crypto{}, err
	}
	info, ok := suites[f[1]]
	if !ok {
		return Crypto{}, fmt.Errorf("crypto suite %q: %w: supported are %s, %s and %s",
			f[1], ErrBadCrypto, SuiteAES128HMACSHA1_80, SuiteAES128HMACSHA1_32, SuiteAEADAES128GCM)
	}
	if strings.Contains(f[2], ";") {
		return Crypto{}, fmt.Errorf("crypto tag %d: %w: more than one key (MKI) is not supported", tag, ErrBadCrypto)
	}
	key, salt, err := parseKeyParam(f[2], info)
	if err != nil {
		return Crypto{}, fmt.Errorf("crypto tag %d: %w", tag, err)
	}
	for _, p := range f[3:] {
		if err := checkSessionParam(p); err != nil {
			return Crypto{}, fmt.Errorf("crypto tag %d: %w", tag, err)
		}
	}
	return Crypto{Tag: tag, Suite: f[1], Key: key, Salt: salt}, nil
}

func parseTag(s string) (int, error) {
	if len(s) == 0 || len(s) > 9 || !allDigits(s) {
		return 0, fmt.Errorf("crypto tag %q: %w: want 1 to 9 digits", s, ErrBadCrypto)
	}
	return strconv.Atoi(s) // cannot fail: at most 9 digits
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseKeyParam reads "inline:<key||salt>[|lifetime][|MKI:length]".
func parseKeyParam(p string, info suiteInfo) (key, salt []byte, err error) {
	method, info64, ok := strings.Cut(p, ":")
	if !ok || method != "inline" {
		return nil, nil, fmt.Errorf("key parameter %q: %w: want inline:<key||salt>", p, ErrBadCrypto)
	}
	parts := strings.Split(info64, "|")
	if len(parts) > 3 {
		return nil, nil, fmt.Errorf("key parameter: %w: too many '|' fields", ErrBadCrypto)
	}
	for _, extra := range parts[1:] {
		if strings.Contains(extra, ":") {
			return nil, nil, fmt.Errorf("key parameter: %w: MKI %q is not supported", ErrBadCrypto, extra)
		}
		if !validLifetime(extra) {
			return nil, nil, fmt.Errorf("key parameter: %w: lifetime %q is not a number or 2^n", ErrBadCrypto, extra)
		}
	}
	raw, err := decodeBase64(parts[0])
	if err != nil {
		return nil, nil, fmt.Errorf("key parameter: %w: key is not base64", ErrBadCrypto)
	}
	if len(raw) != info.keyLen+info.saltLen {
		return nil, nil, fmt.Errorf("key parameter: %w: %d bytes of key and salt, want %d",
			ErrBadCrypto, len(raw), info.keyLen+info.saltLen)
	}
	return raw[:info.keyLen:info.keyLen], raw[info.keyLen:], nil
}

// decodeBase64 accepts the key with or without padding: RFC 4568 uses
// padded base64, some implementations omit it.
func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// validLifetime checks a key lifetime: decimal digits, or "2^" and digits.
func validLifetime(s string) bool {
	s = strings.TrimPrefix(s, "2^")
	return s != "" && len(s) <= 20 && allDigits(s)
}

// checkSessionParam accepts the session parameters that do not change the
// SRTP transform (RFC 4568 section 6.3): a window-size hint and the FEC
// order. The others (UNENCRYPTED_SRTP, KDR, FEC_KEY, ...) are refused.
func checkSessionParam(p string) error {
	if strings.HasPrefix(p, "WSH=") || strings.HasPrefix(p, "FEC_ORDER=") {
		return nil
	}
	return fmt.Errorf("session parameter %q: %w: not supported", p, ErrBadCrypto)
}

// NewCrypto returns a Crypto with a fresh random master key and salt (from
// crypto/rand) for suite. tag must be 0 to 999999999. Errors wrap
// ErrBadCrypto for a bad tag or suite.
func NewCrypto(tag int, suite string) (Crypto, error) {
	if tag < 0 || tag > maxTag {
		return Crypto{}, fmt.Errorf("new crypto: %w: tag %d is not 0-%d", ErrBadCrypto, tag, maxTag)
	}
	info, ok := suites[suite]
	if !ok {
		return Crypto{}, fmt.Errorf("new crypto: %w: unknown suite %q", ErrBadCrypto, suite)
	}
	raw := make([]byte, info.keyLen+info.saltLen)
	if _, err := rand.Read(raw); err != nil {
		return Crypto{}, fmt.Errorf("new crypto: read random key: %w", err)
	}
	return Crypto{Tag: tag, Suite: suite, Key: raw[:info.keyLen:info.keyLen], Salt: raw[info.keyLen:]}, nil
}

// String renders the attribute value: "<tag> <suite> inline:<base64>",
// without the "a=crypto:" prefix, a lifetime or an MKI.
func (c Crypto) String() string {
	raw := make([]byte, 0, len(c.Key)+len(c.Salt))
	raw = append(append(raw, c.Key...), c.Salt...)
	return strconv.Itoa(c.Tag) + " " + c.Suite + " inline:" + base64.StdEncoding.EncodeToString(raw)
}

// Profile returns the pion/srtp protection profile of the suite, or 0 for
// an unknown suite.
func (c Crypto) Profile() srtp.ProtectionProfile { return suites[c.Suite].profile }

// Context returns a pion/srtp context keyed with c, with replay
// protection (a 64-packet window) for SRTP and SRTCP. A context keeps
// per-SSRC rollover state for one direction: create one from the local
// attribute to encrypt and one from the remote attribute to decrypt.
func (c Crypto) Context() (*srtp.Context, error) {
	info, ok := suites[c.Suite]
	if !ok {
		return nil, fmt.Errorf("srtp context: %w: unknown suite %q", ErrBadCrypto, c.Suite)
	}
	if len(c.Key) != info.keyLen || len(c.Salt) != info.saltLen {
		return nil, fmt.Errorf("srtp context for %s: %w: key %d and salt %d bytes, want %d and %d",
			c.Suite, ErrBadCrypto, len(c.Key), len(c.Salt), info.keyLen, info.saltLen)
	}
	ctx, err := srtp.CreateContext(c.Key, c.Salt, info.profile,
		srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	if err != nil {
		return nil, fmt.Errorf("srtp context for %s: %w", c.Suite, err)
	}
	return ctx, nil
}
