package config

import "github.com/sbc-project/sbc/b2bua/routing"

// PortRange returns the bounds of RTPPorts, both inclusive. It is meaningful
// after Validate succeeded; on an invalid range it returns 0, 0.
func (m Media) PortRange() (lo, hi int) {
	lo, hi, err := parsePortRange(m.RTPPorts)
	if err != nil {
		return 0, 0
	}
	return lo, hi
}

// Transport returns the transport calls to the trunk use (see
// routing.URI.Transport). It is meaningful after Validate succeeded; on an
// invalid URI it returns "".
func (t Trunk) Transport() string {
	u, err := routing.ParseURI(t.URI)
	if err != nil {
		return ""
	}
	return u.Transport()
}
