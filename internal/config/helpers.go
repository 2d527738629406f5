package config

// PortRange returns the bounds of RTPPorts, both inclusive. It is meaningful
// after Validate succeeded; on an invalid range it returns 0, 0.
func (m Media) PortRange() (lo, hi int) {
	lo, hi, err := parsePortRange(m.RTPPorts)
	if err != nil {
		return 0, 0
	}
	return lo, hi
}

// Transport returns the transport calls to the trunk use: tls for a sips:
// URI (whose transport=tcp means TLS over TCP, RFC 3261 section 26.2), else
// the URI's transport parameter (udp, tcp or tls), else udp. It is meaningful after Validate succeeded; on an invalid
// URI it returns "".
func (t Trunk) Transport() string {
	u, err := parseSIPURI(t.URI)
	switch {
	case err != nil:
		return ""
	case u.Scheme == "sips":
		return "tls"
	case u.Params["transport"] != "":
		return u.Params["transport"]
	default:
		return "udp"
	}
}
