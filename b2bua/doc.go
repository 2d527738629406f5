// Package b2bua is the SBC's back-to-back user agent: every call is two
// independent dialogs (leg A toward the caller, leg B toward the callee),
// and every request and response is re-originated on the other leg, never
// forwarded. Toward each side the SBC is the only peer: Call-ID, tags,
// branches, Via, Contact and routes are its own, headers not on the
// whitelist are dropped, and SDP passes through the per-call media session
// (the seam the media package owns) so only the SBC's addresses appear.
//
// The package wraps the SIP library (gosip's message model, through
// b2bua/sipmsg) with its own transport (b2bua/transport) and transaction
// (b2bua/txn) layers; no other package imports gosip.
//
// Concurrency: each Call is run by one goroutine at a time, which owns
// its state; requests, responses and timers reach it as events on its
// queue, and a goroutine runs it only while events wait. The Server only
// indexes calls and dialogs.
package b2bua
