package b2bua

// newestPerContact keeps, of the bindings several cluster nodes hold for
// one Contact of one user, the one registered last: a phone whose
// REGISTERs reach the nodes through a load balancer registers on another
// node when its own dies, and again on its own when it comes back, while
// the binding it left lives on until it expires. It is one phone, rung
// once, where it registered last (ties: the first, this node's own).
// Destinations without a Contact (a node that does not share it) are all
// kept; the order is kept.
func newestPerContact(dests []dest) []dest {
	if len(dests) < 2 {
		return dests
	}
	newest := make(map[string]int, len(dests))
	for i, d := range dests {
		if k := destContactKey(d); k != "" {
			if j, ok := newest[k]; !ok || d.registered.After(dests[j].registered) {
				newest[k] = i
			}
		}
	}
	if len(newest) == len(dests) {
		return dests
	}
	out := make([]dest, 0, len(newest))
	for i, d := range dests {
		if k := destContactKey(d); k == "" || newest[k] == i {
			out = append(out, d)
		}
	}
	return out
}

// destContactKey is the user and Contact of a registered user's destination,
// "" when it has no Contact.
func destContactKey(d dest) string {
	if d.contact == "" || d.aor == nil {
		return ""
	}
	return d.aor.String() + " " + d.contact
}
