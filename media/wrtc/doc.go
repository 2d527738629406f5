// Package wrtc is the WebRTC transport of one side of one call: an ICE-lite
// responder, DTLS 1.2 (client or server by a=setup), SRTP/SRTCP, rtcp-mux and
// BUNDLE demultiplexing, all over one ICE path.
//
// A Manager creates one Mux (the shared UDP socket and optional passive
// ICE-TCP listener) and one certificate, then one Transport per WebRTC side
// of a call:
//
//	t, _ := wrtc.New(wrtc.Config{Mux: mux, PublicIP: ip, Certificate: cert})
//	local := t.Local()                  // ufrag, pwd, candidates, fingerprint for our SDP
//	setup, _ := t.SetRemote(remote, false) // the peer's offer: starts ICE, returns our a=setup
//	t.SetRoutes(routes)                 // one route per m-line of the BUNDLE group
//	t.WriteRTP(pkt)                     // plain RTP in, SRTP out
//
// Packets that arrive over the ICE path are demultiplexed by their first byte
// (RFC 7983): STUN stays inside the ICE agent, DTLS goes to the DTLS
// connection, SRTP/SRTCP is decrypted in place into a per-transport buffer and
// handed to the Sink of the matching Route. On UDP, the Mux's one reader
// (on Linux a process-wide epoll loop reading with recvmmsg, poll_linux.go)
// hands a datagram from an address a valid check came from straight to its
// transport (no copy, no goroutine hop), and SRTP leaves from the Mux's
// socket to the selected pair's address (a raw sendto on Linux). A Mux that
// serves several transports at once (a shared port) reads its port with a
// group of SO_REUSEPORT sockets, one reader each. pion's UDP mux and agent see only
// STUN and the datagrams of addresses not validated yet. The RTP receive
// and send paths do not allocate on UDP. Exceptions, all inside pion: ICE-TCP allocates in its
// framing, and with the AES-GCM profile SRTCP costs one allocation per packet.
//
// The DTLS handshake starts at the peer's first valid connectivity check,
// whose pair we select at once: browsers start DTLS as soon as one check
// succeeds, and Chromium may nominate (USE-CANDIDATE) a second later, so
// waiting for the nomination cost a second of audio. A DTLS record that
// arrives before the DTLS connection reads is queued, never dropped. We take
// the DTLS server role whenever the peer lets us (a=setup:actpass), since
// the server picks the SRTP profile: AES-256-GCM, AES-128-GCM, then
// AES-CM-80.
//
// # Pion pieces and their shortcomings
//
// pion/ice's Agent is used in Lite mode as the STUN responder and packet path.
// Its rough edges, and what this package does about them:
//
//   - Accept may be called once per agent and blocks; we call StartAccept once
//     and wait with AwaitConnect under our own HandshakeTimeout, because the
//     agent's own checking timeout is tied to its consent timers.
//   - Restart clears the remote credentials and the gathered candidates; an ICE
//     restart therefore runs Restart, SetRemoteCredentials and a new gathering
//     in that order. The ice.Conn (and with it the DTLS association and SRTP
//     contexts) survives a restart. Only peer-initiated restarts exist: this
//     package never restarts ICE on its own.
//   - An agent that reached Failed has released its candidates; our Failed
//     state is terminal too.
//
// pion/dtls's Conn keeps a read loop alive after the handshake that blocks
// once application data arrives and nobody reads it; a small drain goroutine
// reads and discards it (WebRTC media carries no DTLS application data).
package wrtc
