package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuthHeader is the header a node's requests to another node carry:
// node=<id>;ts=<unix seconds>;mac=<base64url HMAC-SHA256 of the secret
// over id, ts, the Call-ID and the request-URI>.
const AuthHeader = "X-SBC-Cluster"

// authSkew is how far a proof's time may be from the receiver's clock.
const authSkew = 30 * time.Second

// Signer proves and checks node-to-node requests with the cluster secret.
type Signer struct {
	node   string
	secret []byte
	now    func() time.Time
}

// NewSigner signs as node with secret.
func NewSigner(node, secret string) *Signer {
	return &Signer{node: node, secret: []byte(secret), now: time.Now}
}

func (s *Signer) mac(node, ts, callID, ruri string) string {
	m := hmac.New(sha256.New, s.secret)
	for _, part := range []string{node, ts, callID, ruri} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the AuthHeader value for a request with callID and ruri.
func (s *Signer) Sign(callID, ruri string) string {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	return "node=" + s.node + ";ts=" + ts + ";mac=" + s.mac(s.node, ts, callID, ruri)
}

// Verify checks an AuthHeader value (empty: missing) for a request with
// callID and ruri, and returns the node that signed it.
func (s *Signer) Verify(value, callID, ruri string) (string, error) {
	if value == "" {
		return "", errors.New("no " + AuthHeader + " header")
	}
	f := map[string]string{}
	for part := range strings.SplitSeq(value, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", fmt.Errorf("%s: %q is not key=value", AuthHeader, part)
		}
		f[k] = v
	}
	node, ts, mac := f["node"], f["ts"], f["mac"]
	if node == "" || ts == "" || mac == "" {
		return "", fmt.Errorf("%s: want node, ts and mac", AuthHeader)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%s: ts %q is not a time", AuthHeader, ts)
	}
	if d := s.now().Sub(time.Unix(secs, 0)); d > authSkew || d < -authSkew {
		return "", fmt.Errorf("%s: signed %s from now, more than %s", AuthHeader, d.Round(time.Second), authSkew)
	}
	if !hmac.Equal([]byte(mac), []byte(s.mac(node, ts, callID, ruri))) {
		return "", fmt.Errorf("%s: the mac does not match (another secret, or the request was changed)", AuthHeader)
	}
	return node, nil
}
