package registrar

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"
)

// EphemeralUsername returns the username of an HMAC-minted credential for
// user valid until expiry: "<unix-expiry>:<user>", as TURN REST credentials
// (draft-uberti-behave-turn-rest) are. The web application that mints it
// shares AuthConfig.HMACSecret with the SBC.
func EphemeralUsername(user string, expiry time.Time) string {
	return strconv.FormatInt(expiry.Unix(), 10) + ":" + user
}

// EphemeralPassword returns the password of the HMAC-minted credential
// with the given username: base64(HMAC-SHA1(secret, username)).
func EphemeralPassword(secret []byte, username string) string {
	h := hmac.New(sha1.New, secret)
	h.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
