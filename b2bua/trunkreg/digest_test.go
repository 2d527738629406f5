package trunkreg

import (
	"strings"
	"testing"
)

// TestAnswerVectors checks the responses against the examples of RFC 2617
// (MD5) and RFC 7616 section 3.9.1 (SHA-256).
func TestAnswerVectors(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		cr        credentials
		want      string
	}{
		{"RFC 2617 MD5", `Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			credentials{user: "Mufasa", password: "Circle Of Life", method: "GET", uri: "/dir/index.html", cnonce: "0a4f113b", nc: 1},
			`response="6629fae49393a05397450978507c4ef1"`},
		{"RFC 7616 SHA-256", `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			credentials{user: "Mufasa", password: "Circle of Life", method: "GET", uri: "/dir/index.html", cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc: 1},
			`response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := parseChallenge(tc.challenge)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.cr.answer(ch)
			if err != nil {
				t.Fatal(err)
			}
			for _, part := range []string{tc.want, "qop=auth", "nc=00000001", `opaque="`, `uri="/dir/index.html"`} {
				if !strings.Contains(got, part) {
					t.Errorf("answer %s lacks %s", got, part)
				}
			}
		})
	}
}

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		name, in string
		want     challenge
		err      string
	}{
		{"plain", `Digest realm="r", nonce="n"`, challenge{realm: "r", nonce: "n", algorithm: "MD5"}, ""},
		{"tokens, case, stale", `digest REALM=r,NONCE=n , algorithm=sha-256,stale=TRUE,qop="auth-int, auth"`,
			challenge{realm: "r", nonce: "n", algorithm: "SHA-256", stale: true, qopAuth: true}, ""},
		{"escaped quote", `Digest realm="a \"b\"", nonce="n,1"`, challenge{realm: `a "b"`, nonce: "n,1", algorithm: "MD5"}, ""},
		{"only auth-int", `Digest realm="r", nonce="n", qop="auth-int"`, challenge{realm: "r", nonce: "n", algorithm: "MD5"}, ""},
		{"basic", `Basic realm="r"`, challenge{}, "not Digest"},
		{"no nonce", `Digest realm="r"`, challenge{}, "no nonce"},
		{"unterminated", `Digest realm="r, nonce=n`, challenge{}, "unterminated"},
		{"repeated", `Digest nonce="a", nonce="b"`, challenge{}, "twice"},
		{"no value", `Digest realm`, challenge{}, "no value"},
		{"control character", "Digest realm=\"a\x00b\", nonce=n", challenge{}, "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseChallenge(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseChallenge = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestUnsupportedAlgorithm(t *testing.T) {
	ch, err := parseChallenge(`Digest realm="r", nonce="n", algorithm=SHA-512-256`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (credentials{user: "u", password: "p"}).answer(ch); err == nil {
		t.Error("an unsupported algorithm was answered")
	}
}

// FuzzParseChallenge: any text parses or fails without panicking, and a
// parsed challenge can be answered, the answer free of control characters
// (no header injection).
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256, opaque="o"`,
		`Digest realm="a \"b\"", nonce="n,1", stale=true`,
		`Digest nonce=`, `Digest "`, `Digest a="\`, "Digest realm=\"\r\n\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ch, err := parseChallenge(s)
		if err != nil {
			return
		}
		out, err := (credentials{user: "u", password: "p", method: "REGISTER", uri: "sip:x", cnonce: "c", nc: 1}).answer(ch)
		if err == nil && strings.ContainsFunc(out, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Fatalf("answer %q has a control character", out)
		}
	})
}
