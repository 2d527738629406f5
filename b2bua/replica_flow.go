package b2bua

import "strings"

// registeredBefore moves a restored call's WebSocket leg waiting for its
// party o to the connection o already registered on at this node: a
// browser whose node died may connect and register again at the
// survivor before the survivor takes the dead node's calls over (its
// next heartbeat), and then sends nothing the call would hear of
// (flowRegistered found no call waiting for it). Only an RFC 5626
// instance counts, as in flowRegistered.
func (c *Call) registeredBefore(o flowOwner) {
	if o.instance == "" || c.s.hooks.Bindings == nil {
		return
	}
	for _, b := range c.s.hooks.Bindings.List() { // most recent first within an AOR
		user, _, _ := strings.Cut(b.AOR, "@")
		if b.Instance == o.instance && strings.EqualFold(user, o.user) && b.Flow.Target.Conn != nil {
			c.reRegistered(o, b.Flow.Target)
			return
		}
	}
}
