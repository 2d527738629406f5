package config

import (
	"fmt"
	"strconv"
)

// validateWebPhone checks webphone.addr: an ip:port literal on no stream
// listener's or the admin server's port. An empty addr is always valid:
// without ws or wss listeners the page is then served nowhere (the app
// logs it), which keeps SIP-only configurations valid with the default on.
func (c *Config) validateWebPhone(ps *Problems) {
	w := c.WebPhone
	if !w.Enabled || w.Addr == "" {
		return
	}
	ap, err := parseBindAddr(w.Addr)
	if err != nil {
		ps.add("webphone.addr", w.Addr, err.Error())
		return
	}
	if ap.Port() == 0 {
		return // a free port, for tests: cannot collide
	}
	for i, l := range c.SIP.Listeners {
		if l.Transport == "udp" {
			continue
		}
		if la, err := parseBindAddr(l.Addr); err == nil && la.Port() == ap.Port() && overlap(la.Addr(), ap.Addr()) {
			ps.add("webphone.addr", w.Addr, fmt.Sprintf("tcp port already bound by sip.listeners[%s] (%s)", strconv.Itoa(i), la))
			return
		}
	}
	if aa, err := parseBindAddr(c.Admin.Addr); err == nil && aa.Port() == ap.Port() && overlap(aa.Addr(), ap.Addr()) {
		ps.add("webphone.addr", w.Addr, fmt.Sprintf("tcp port already bound by admin (%s)", aa))
	}
}
