// Package registration is the SBC's REGISTER handling: REGISTER requests
// are routed like calls. A route whose target is `registered` makes the SBC
// the registrar (digest with the configured users, bindings kept in a
// registrar.Store); a route whose target is `trunks` relays the
// registration to the route's first trunk that is up (the PBX), with a
// Contact of the SBC's own whose user part is the binding's token, so the
// PBX's calls come back here and reach the browser over the very
// connection it registered on. The calls side asks Bindings where a call
// to a registered user rings and UserOn who a connection is.
//
// A binding exists only once the registrar that checked the password (ours,
// or the PBX's for a relayed registration) said 2xx, and only for the
// address-of-record it accepted: a call on the binding's connection is
// authenticated as that user, and calls to the user ring it, so nothing may
// come of a REGISTER the registrar refused.
package registration
