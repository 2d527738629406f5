package timeline

import "strings"

// whats are the names events have (Event.What): the SIP methods and what
// the SBC records. A slot keeps a name of this table as its index (2
// bytes instead of a string's 16, on every event of every call); any
// other name lives in the event's details (oddWhat).
var whats = [...]string{
	"",
	"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "PRACK", "INFO",
	"REFER", "NOTIFY", "MESSAGE", "SUBSCRIBE", "REGISTER", "PUBLISH",
	"admit", "reject", "attempt", "failover", "end", "transfer", "ringback", "announcement",
	"ice-check", "ice-nominated", "dtls-start", "dtls-connected", "dtls-failed",
	"first-rtp", "latched", "relatched", "ssrc-switch", "seq-jump", "hold", "resume", "dtmf",
}

// whatIndex finds a name's index in whats.
var whatIndex = func() map[string]uint16 {
	m := make(map[string]uint16, len(whats))
	for i, w := range whats {
		m[w] = uint16(i)
	}
	return m
}()

// oddSep ends an odd name in its extra's Text, before the text of a
// traced message: no SIP method (a token) nor name of ours holds a NUL.
const oddSep = "\x00"

// oddText is what an extra's Text holds for an event with a name outside
// whats: the name, oddSep, then the event's own Text.
func oddText(what, text string) string { return what + oddSep + text }

// splitOdd undoes oddText.
func splitOdd(s string) (what, text string) {
	what, text, _ = strings.Cut(s, oddSep)
	return what, text
}
