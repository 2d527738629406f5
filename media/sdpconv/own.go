package sdpconv

import (
	"strconv"
	"strings"
)

// pion's lexer copies the strings it returns into one buffer per SDP,
// the rest of the body from the o= line on: a Description that kept any
// of them (an m-line's type, formats, direction, a codec's name or fmtp)
// kept the whole buffer, twice a call for the call's life (the SDP each
// side last sent; some 0.17 kB a call). own gives a Description strings
// of its own: the common ones from a table, allocating nothing, the
// others cloned.

// common are the tokens most SDPs carry: media types, protocols,
// directions, codec names, DTMF fmtp ranges, setup roles, and the
// payload type numbers.
var common = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		"audio", "video", "image", "application", "text",
		"RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udptl", "UDPTL", "t38",
		"sendrecv", "sendonly", "recvonly", "inactive",
		"PCMU", "PCMA", "G722", "G729", "GSM", "iLBC", "AMR", "AMR-WB", "opus", "telephone-event",
		"VP8", "VP9", "H264", "AV1", "rtx", "red", "ulpfec", "CN",
		"0-15", "0-16", "actpass", "active", "passive",
	} {
		m[s] = s
	}
	for pt := range 128 {
		s := strconv.Itoa(pt)
		m[s] = s
	}
	return m
}()

// ownString is s on memory of its own: the table's, or a clone.
func ownString(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := common[s]; ok {
		return c
	}
	return strings.Clone(s)
}

func ownStrings(ss []string) {
	for i, s := range ss {
		ss[i] = ownString(s)
	}
}

// own makes d share no string with the parse it was read from. The
// Formats slices stay pion's (the pass-through renders from them); their
// strings are replaced by equal ones.
func (d *Description) own() {
	ownStrings(d.Bundle)
	for i := range d.Media {
		m := &d.Media[i]
		m.Type, m.Proto, m.Dir, m.MID = ownString(m.Type), ownString(m.Proto), ownString(m.Dir), ownString(m.MID)
		ownStrings(m.Formats)
		ownStrings(m.Crypto)
		for j := range m.Codecs {
			c := &m.Codecs[j]
			c.Name, c.Fmtp = ownString(c.Name), ownString(c.Fmtp)
			ownStrings(c.FB)
		}
		if ice := m.ICE; ice != nil {
			ice.Ufrag, ice.Pwd, ice.Setup = ownString(ice.Ufrag), ownString(ice.Pwd), ownString(ice.Setup)
			ownStrings(ice.Candidates)
			ownStrings(ice.Fingerprints)
		}
	}
}
