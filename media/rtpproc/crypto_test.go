package rtpproc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/pion/srtp/v3"
)

// rfcKey is the key||salt of the RFC 4568 section 8 examples (30 bytes).
const rfcKey = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"

func TestParseCrypto(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(rfcKey)
	gcm := base64.StdEncoding.EncodeToString(raw[:28])
	tests := []struct {
		name    string
		attr    string
		tag     int
		suite   string
		saltLen int
	}{
		{"80", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey, 1, SuiteAES128HMACSHA1_80, 14},
		{"32 with lifetime", "2 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey + "|2^20", 2, SuiteAES128HMACSHA1_32, 14},
		{"decimal lifetime", "3 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|1048576", 3, SuiteAES128HMACSHA1_80, 14},
		{"gcm", "7 AEAD_AES_128_GCM inline:" + gcm, 7, SuiteAEADAES128GCM, 12},
		{"gcm unpadded", "7 AEAD_AES_128_GCM inline:" + strings.TrimRight(gcm, "="), 7, SuiteAEADAES128GCM, 12},
		{"with prefix", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey, 1, SuiteAES128HMACSHA1_80, 14},
		{"harmless session parameter", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + " WSH=128", 1, SuiteAES128HMACSHA1_80, 14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCrypto(tc.attr)
			if err != nil {
				t.Fatalf("ParseCrypto: %v", err)
			}
			if c.Tag != tc.tag || c.Suite != tc.suite || len(c.Key) != 16 || len(c.Salt) != tc.saltLen ||
				!bytes.Equal(append(append([]byte(nil), c.Key...), c.Salt...), raw[:16+tc.saltLen]) {
				t.Fatalf("got %+v", c)
			}
			again, err := ParseCrypto(c.String())
			if err != nil || again.String() != c.String() {
				t.Fatalf("String %q does not round-trip: %+v, %v", c.String(), again, err)
			}
		})
	}
}

func TestParseCryptoErrors(t *testing.T) {
	tests := []struct{ name, attr string }{
		{"empty", ""},
		{"no key", "1 AES_CM_128_HMAC_SHA1_80"},
		{"bad tag", "x AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey},
		{"signed tag", "+1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey},
		{"long tag", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey},
		{"unknown suite", "1 AES_256_CM_HMAC_SHA1_80 inline:" + rfcKey},
		{"F8 suite", "1 F8_128_HMAC_SHA1_80 inline:" + rfcKey},
		{"MKI", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:4"},
		{"MKI without lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|1:4"},
		{"two keys", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:4;inline:" + rfcKey + "|2^20|2:4"},
		{"not inline", "1 AES_CM_128_HMAC_SHA1_80 uri:" + rfcKey},
		{"not base64", "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!"},
		{"short key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey[:20]},
		{"gcm length for cm suite", "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(make([]byte, 28))},
		{"bad lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^x"},
		{"too many fields", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|3|4"},
		{"unencrypted", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + " UNENCRYPTED_SRTP"},
		{"kdr", "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + " KDR=23"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := ParseCrypto(tc.attr); !errors.Is(err, ErrBadCrypto) {
				t.Fatalf("ParseCrypto = %+v, %v; want an ErrBadCrypto", c, err)
			}
		})
	}
}

func TestNewCrypto(t *testing.T) {
	for _, suite := range []string{SuiteAES128HMACSHA1_80, SuiteAES128HMACSHA1_32, SuiteAEADAES128GCM} {
		a, err := NewCrypto(1, suite)
		if err != nil {
			t.Fatalf("NewCrypto(%s): %v", suite, err)
		}
		b, _ := NewCrypto(1, suite)
		if bytes.Equal(a.Key, b.Key) || bytes.Equal(a.Salt, b.Salt) {
			t.Fatalf("%s: two keys are equal", suite)
		}
		if back, err := ParseCrypto(a.String()); err != nil || !bytes.Equal(back.Key, a.Key) || !bytes.Equal(back.Salt, a.Salt) {
			t.Fatalf("%s: %q does not parse back: %v", suite, a.String(), err)
		}
	}
	if _, err := NewCrypto(1, "NULL"); !errors.Is(err, ErrBadCrypto) {
		t.Fatalf("unknown suite: %v", err)
	}
	if _, err := NewCrypto(-1, SuiteAES128HMACSHA1_80); !errors.Is(err, ErrBadCrypto) {
		t.Fatalf("negative tag: %v", err)
	}
}

func TestCryptoProfile(t *testing.T) {
	tests := map[string]srtp.ProtectionProfile{
		SuiteAES128HMACSHA1_80: srtp.ProtectionProfileAes128CmHmacSha1_80,
		SuiteAES128HMACSHA1_32: srtp.ProtectionProfileAes128CmHmacSha1_32,
		SuiteAEADAES128GCM:     srtp.ProtectionProfileAeadAes128Gcm,
		"unknown":              0,
	}
	for suite, want := range tests {
		if got := (Crypto{Suite: suite}).Profile(); got != want {
			t.Errorf("%s: profile %v, want %v", suite, got, want)
		}
	}
}

// TestCryptoContext encrypts with a context from one side's attribute and
// decrypts with another context from the same attribute, as the far end
// would; a replayed packet is refused.
func TestCryptoContext(t *testing.T) {
	for _, suite := range []string{SuiteAES128HMACSHA1_80, SuiteAES128HMACSHA1_32, SuiteAEADAES128GCM} {
		t.Run(suite, func(t *testing.T) {
			c, err := NewCrypto(1, suite)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := c.Context()
			if err != nil {
				t.Fatalf("Context: %v", err)
			}
			dec, err := c.Context()
			if err != nil {
				t.Fatalf("Context: %v", err)
			}
			plain := pkt(0x1234, 1, 160)
			sealed, err := enc.EncryptRTP(nil, plain, nil)
			if err != nil {
				t.Fatalf("EncryptRTP: %v", err)
			}
			if bytes.Equal(sealed[12:len(plain)], plain[12:]) {
				t.Fatal("payload not encrypted")
			}
			opened, err := dec.DecryptRTP(nil, sealed, nil)
			if err != nil || !bytes.Equal(opened, plain) {
				t.Fatalf("DecryptRTP: %v", err)
			}
			if _, err := dec.DecryptRTP(nil, sealed, nil); err == nil {
				t.Fatal("a replayed packet was accepted")
			}
			srtcp, err := enc.EncryptRTCP(nil, marshalRTCP(t, receiverSide(0x1234)...), nil)
			if err != nil {
				t.Fatalf("EncryptRTCP: %v", err)
			}
			if _, err := dec.DecryptRTCP(nil, srtcp, nil); err != nil {
				t.Fatalf("DecryptRTCP: %v", err)
			}
		})
	}
	if _, err := (Crypto{Suite: SuiteAES128HMACSHA1_80, Key: make([]byte, 3), Salt: make([]byte, 14)}).Context(); !errors.Is(err, ErrBadCrypto) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := (Crypto{}).Context(); !errors.Is(err, ErrBadCrypto) {
		t.Fatalf("zero Crypto: %v", err)
	}
}
