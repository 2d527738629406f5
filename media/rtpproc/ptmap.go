package rtpproc

// PTMap rewrites RTP payload types between the numbering one side
// negotiated and the other's: m[pt] is the payload type sent for an
// incoming pt, or -1 to drop packets of that type. Values outside 0-127
// also drop. The zero value maps every payload type to 0; start from
// IdentityPTMap, or fill every entry. A PTMap is read-only once in use, so
// any number of goroutines may Apply it.
type PTMap [128]int16

// IdentityPTMap returns the map that keeps every payload type.
func IdentityPTMap() PTMap {
	var m PTMap
	for i := range m {
		m[i] = int16(i)
	}
	return m
}

// Apply rewrites the payload type of the RTP packet pkt in place, keeping
// the marker bit. It reports false, leaving pkt unchanged, when pkt is
// shorter than an RTP header or not version 2, or when the map drops its
// payload type; the caller drops those. It does not allocate.
func (m *PTMap) Apply(pkt []byte) bool {
	if len(pkt) < rtpFixedLen || pkt[0]>>6 != 2 {
		return false
	}
	to := m[pkt[1]&0x7f]
	if to < 0 || to > 127 {
		return false
	}
	pkt[1] = pkt[1]&0x80 | byte(to)
	return true
}
