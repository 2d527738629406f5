// Package registrar holds the building blocks of the SBC's SIP registrar:
// digest authentication of REGISTER (and other) requests with MD5 and
// SHA-256 (RFC 7616, RFC 8760), static and HMAC-minted ephemeral
// credentials, and the binding store of RFC 3261 section 10.3 that maps an
// address-of-record to the connections its user agents registered on.
//
// The package does no I/O on the network: the B2BUA runs the SIP
// transactions, builds the 401/407/423/200 responses from what Auth and
// Store return, relays registrations toward the PBX and routes calls to the
// Flow of each Binding.
package registrar
