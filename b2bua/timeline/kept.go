package timeline

// kept is a list of at most limit items (events, quality samples) that,
// once full, keeps its first limit/2 (a call's setup) and the newest in a
// ring over the rest. The caller passes limit each time and holds the
// timeline's lock.
type kept[T any] struct {
	items []T
	ring  int // once full: the index, past the kept head, of the oldest in the ring
}

// next returns where the next item goes: a new place, or the oldest
// past the head (replaced: that item is let go); nil when limit leaves no
// room for a ring.
func (k *kept[T]) next(limit int) (p *T, replaced bool) {
	if n := len(k.items); n < limit {
		if n == cap(k.items) {
			// Doubled, but never past limit: a full list holds limit items,
			// not the next power of two.
			grown := make([]T, n, min(max(2*n, firstCap), limit))
			copy(grown, k.items)
			k.items = grown
		}
		k.items = k.items[:n+1]
		return &k.items[n], false
	}
	head := limit / 2
	if limit-head == 0 {
		return nil, true
	}
	i := head + k.ring
	k.ring = (k.ring + 1) % (limit - head)
	return &k.items[i], true
}

// each calls f on the items in the order they were kept: the head, then
// the ring from its oldest.
func (k *kept[T]) each(limit int, f func(T)) {
	all := k.items
	if len(all) < limit {
		for _, v := range all {
			f(v)
		}
		return
	}
	head := limit / 2
	for _, part := range [][]T{all[:head], all[head+k.ring:], all[head : head+k.ring]} {
		for _, v := range part {
			f(v)
		}
	}
}
