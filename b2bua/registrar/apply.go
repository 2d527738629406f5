package registrar

import (
	"crypto/rand"
	"strconv"
	"time"

	"github.com/ghettovoice/gosip/sip"
)

// tokenLen is the length of a binding token: 20 characters of 62 give
// about 119 bits, unguessable for the PBX-facing Contact.
const tokenLen = 20

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Reason phrases of Apply's failures.
const (
	reasonBadWildcard = "Invalid Wildcard"
	reasonBadContact  = "Bad Contact"
	reasonNoAOR       = "Missing Address-of-Record"
	reasonForbidden   = "Forbidden Contact Address"
	reasonTooBrief    = "Interval Too Brief"
	reasonOutOfOrder  = "Out of Order CSeq"
	reasonFull        = "Too Many Registrations"
)

// change is what Apply will do for one Contact once every Contact passed.
type change struct {
	c       ContactParam
	key     string
	expires time.Duration // 0: remove
	old     *entry        // the binding it refreshes or removes, if any
}

// Apply carries out one REGISTER (RFC 3261 section 10.3 steps 6 to 8) and
// returns the AOR's live bindings afterwards, most recent first, with code
// 200 and reason "OK"; or nil with the failure's code and reason phrase,
// having changed nothing:
//
//   - 400: "Contact: *" with other Contacts or an Expires other than 0; a
//     Contact URI that does not parse; no AOR.
//   - 403: a Contact host in a forbidden range (Config.Forbidden,
//     unspecified, multicast, broadcast).
//   - 423: a non-zero expiry below MinExpires; answer with a Min-Expires
//     header of MinExpires().
//   - 500: a refresh or removal whose CSeq is not higher than the one that
//     set the binding with the same Call-ID (out of order or replayed).
//   - 503: the AOR's or the whole store's binding cap would be exceeded.
//
// Each Contact's expiry is its expires parameter, else the Expires header,
// else DefaultExpires, clamped to MaxExpires; 0 removes it. Contacts match
// existing bindings by +sip.instance and reg-id when both are given, else
// by Contact URI. A refresh keeps the binding's token and takes the new
// Flow. With no Contact, Apply only returns the bindings (a query).
// Expired bindings it comes across are removed and reported to the
// OnExpire callback after the store's lock is released.
func (s *Store) Apply(u Update) (current []Binding, code int, reason string) {
	if u.AOR == "" {
		return nil, 400, reasonNoAOR
	}
	if u.Wildcard && (len(u.Contacts) > 0 || u.Expires != 0) {
		return nil, 400, reasonBadWildcard
	}
	now := s.cfg.Now()
	s.mu.Lock()
	gone := s.expireAORLocked(u.AOR, now)
	code, reason = s.applyLocked(u, now, &gone)
	if code == 200 {
		current = live(s.byAOR[u.AOR], now)
	}
	f := s.onExpire
	s.mu.Unlock()
	report(f, gone)
	if code == 200 && len(u.Contacts)+len(gone) > 0 || u.Wildcard {
		s.changed(u.AOR, gone)
	} else {
		s.changed("", gone)
	}
	return current, code, reason
}

// Check reports what Apply would answer for u without changing anything:
// 200 "OK", or the failure's code and reason as Apply documents them. A
// relayed registration is checked before it goes upstream and applied
// only once the upstream registrar accepted it.
func (s *Store) Check(u Update) (code int, reason string) {
	if u.AOR == "" {
		return 400, reasonNoAOR
	}
	if u.Wildcard && (len(u.Contacts) > 0 || u.Expires != 0) {
		return 400, reasonBadWildcard
	}
	if u.Wildcard {
		return 200, "OK"
	}
	now := s.cfg.Now()
	s.mu.Lock()
	gone := s.expireAORLocked(u.AOR, now)
	changes, code, reason := s.plan(u)
	if code == 200 {
		code, reason = s.checkCaps(u.AOR, changes, now, &gone)
	}
	f := s.onExpire
	s.mu.Unlock()
	report(f, gone)
	s.changed("", gone)
	return code, reason
}

// applyLocked checks every Contact, then commits all or nothing. Bindings
// it finds expired are added to gone, for the OnExpire callback.
func (s *Store) applyLocked(u Update, now time.Time, gone *[]Binding) (int, string) {
	if u.Wildcard {
		return s.removeAllLocked(u)
	}
	changes, code, reason := s.plan(u)
	if code != 200 {
		return code, reason
	}
	if code, reason := s.checkCaps(u.AOR, changes, now, gone); code != 200 {
		return code, reason
	}
	for _, ch := range changes {
		s.commit(u, ch, now)
	}
	return 200, "OK"
}

// removeAllLocked handles "Contact: *" with Expires: 0.
func (s *Store) removeAllLocked(u Update) (int, string) {
	es := s.byAOR[u.AOR]
	for _, e := range es {
		if e.b.CallID == u.CallID && u.CSeq <= e.b.CSeq {
			return 500, reasonOutOfOrder
		}
	}
	for _, e := range append([]*entry(nil), es...) {
		s.removeLocked(e)
	}
	return 200, "OK"
}

// plan computes the change for each Contact, failing on the first one that
// may not be applied. A Contact repeated in the request overrides its
// earlier copy.
func (s *Store) plan(u Update) ([]change, int, string) {
	changes := make([]change, 0, len(u.Contacts))
	index := make(map[string]int, len(u.Contacts))
	for _, c := range u.Contacts {
		ch, code, reason := s.planOne(u, c)
		if code != 200 {
			return nil, code, reason
		}
		if i, dup := index[ch.key]; dup {
			changes[i] = ch
			continue
		}
		index[ch.key] = len(changes)
		changes = append(changes, ch)
	}
	return changes, 200, "OK"
}

// planOne checks one Contact and finds the binding it refers to.
func (s *Store) planOne(u Update, c ContactParam) (change, int, string) {
	uri, err := parseURI(c.URI)
	if err != nil || uri.Host() == "" {
		return change{}, 400, reasonBadContact
	}
	exp := s.expiry(c.Expires, u.Expires)
	if exp > 0 && exp < s.cfg.MinExpires && !u.Upstream {
		return change{}, 423, reasonTooBrief
	}
	if exp > 0 && s.forbidden(uri) {
		return change{}, 403, reasonForbidden
	}
	ch := change{c: c, key: contactKey(uri), expires: exp}
	if c.Instance != "" && c.RegID > 0 {
		ch.key = "instance " + c.Instance + " " + strconv.Itoa(c.RegID)
	}
	for _, e := range s.byAOR[u.AOR] {
		if e.key == ch.key {
			ch.old = e
		}
	}
	if ch.old != nil && ch.old.b.CallID == u.CallID && u.CSeq <= ch.old.b.CSeq {
		return change{}, 500, reasonOutOfOrder
	}
	return ch, 200, "OK"
}

// expiry picks the Contact's expiry (RFC 3261 section 10.3 step 7),
// clamped to MaxExpires.
func (s *Store) expiry(contact, header int) time.Duration {
	var exp time.Duration
	switch {
	case contact >= 0:
		exp = time.Duration(contact) * time.Second
	case header >= 0:
		exp = time.Duration(header) * time.Second
	default:
		exp = s.cfg.DefaultExpires
	}
	return min(exp, s.cfg.MaxExpires)
}

// forbidden checks the Contact host and its maddr parameter.
func (s *Store) forbidden(uri sip.Uri) bool {
	if forbiddenHost(uri.Host(), s.cfg.Forbidden) {
		return true
	}
	maddr, ok := param(uri.UriParams(), "maddr")
	return ok && forbiddenHost(maddr, s.cfg.Forbidden)
}

// checkCaps makes sure the changes keep the AOR and the store within
// their caps, sweeping expired bindings (into gone) once before giving up
// on the store's.
func (s *Store) checkCaps(aor string, changes []change, now time.Time, gone *[]Binding) (int, string) {
	added, removed := 0, 0
	for _, ch := range changes {
		switch {
		case ch.old == nil && ch.expires > 0:
			added++
		case ch.old != nil && ch.expires == 0:
			removed++
		}
	}
	if added == 0 {
		return 200, "OK"
	}
	if len(s.byAOR[aor])-removed+added > s.cfg.MaxBindingsPerAOR {
		return 503, reasonFull
	}
	if len(s.byToken)-removed+added > s.cfg.MaxBindings {
		*gone = append(*gone, s.sweepLocked(now)...)
		if len(s.byToken)-removed+added > s.cfg.MaxBindings {
			return 503, reasonFull
		}
	}
	return 200, "OK"
}

// commit applies one planned change.
func (s *Store) commit(u Update, ch change, now time.Time) {
	switch {
	case ch.expires == 0:
		if ch.old != nil {
			s.removeLocked(ch.old)
		}
		return
	case ch.old == nil:
		token := u.Token
		if token == "" {
			token = s.newToken()
		} else if e, taken := s.byToken[token]; taken {
			s.removeLocked(e) // the token's Contact changed: one Contact per token
		}
		e := &entry{key: ch.key, b: Binding{AOR: u.AOR, Token: token}}
		s.byToken[e.b.Token] = e
		s.byAOR[u.AOR] = append(s.byAOR[u.AOR], e)
		ch.old = e
	case u.Token != "" && ch.old.b.Token != u.Token:
		if e, taken := s.byToken[u.Token]; taken {
			s.removeLocked(e)
		}
		delete(s.byToken, ch.old.b.Token)
		ch.old.b.Token = u.Token
		s.byToken[u.Token] = ch.old
	}
	b := &ch.old.b
	b.Contact = ch.c.URI
	b.Flow = u.Flow
	b.Expires = now.Add(ch.expires)
	b.CallID, b.CSeq = u.CallID, u.CSeq
	b.Instance, b.RegID = ch.c.Instance, ch.c.RegID
	b.UserAgent = u.UserAgent
	b.Registered = now
}

// NewToken draws a random binding token (tokenLen letters and digits),
// for a relayed registration whose token must be known before the
// upstream registrar accepts it. 119 random bits do not collide with the
// store's tokens.
func NewToken() string { return randomToken() }

// newToken draws a token not in use. A collision of 119 random bits does
// not happen; the bounded retry and the longer fallback only keep the
// loop finite.
func (s *Store) newToken() string {
	for range 8 {
		t := randomToken()
		if _, taken := s.byToken[t]; !taken {
			return t
		}
	}
	return randomToken() + randomToken()
}

// randomToken returns tokenLen random letters and digits, unbiased.
func randomToken() string {
	out := make([]byte, 0, tokenLen)
	var buf [32]byte
	for len(out) < tokenLen {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails (Go 1.24+)
		for _, c := range buf {
			// 62*4 = 248: reject the top 8 values so each letter is equally likely.
			if c < 248 && len(out) < tokenLen {
				out = append(out, tokenAlphabet[c%62])
			}
		}
	}
	return string(out)
}
