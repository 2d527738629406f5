package config

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing"
)

// Trunk registration and DNS defaults.
const (
	DefaultRegisterExpires = time.Hour        // trunks[].register.expires
	MinRegisterExpires     = 10 * time.Second // below this a registrar would be hammered
	DefaultDNSMinTTL       = 5 * time.Second  // dns.min_ttl
	DefaultDNSMaxTTL       = time.Hour        // dns.max_ttl
	DefaultDNSTimeout      = 2 * time.Second  // dns.timeout
)

// TrunkRegister makes the SBC register to a trunk (a carrier that wants
// its customers registered): it REGISTERs on the trunk's behalf, answers
// the digest challenge, refreshes at half the granted time, retries
// failures with backoff and unregisters at shutdown. Calls the carrier
// sends to the registered Contact (request-URI user ContactUser) count as
// the trunk's: routes with match.trunk naming it take them. All empty: no
// registration.
type TrunkRegister struct {
	// Username and Password answer the registrar's challenges (MD5 or
	// SHA-256 digest). Required.
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// Realm, when set, is the only realm the credentials are given to.
	// Default: any.
	Realm string `mapstructure:"realm"`
	// Expires is the registration lifetime asked for; the registrar
	// decides. Default DefaultRegisterExpires, at least MinRegisterExpires.
	Expires time.Duration `mapstructure:"expires"`
	// ContactUser is the user part of the Contact registered, e.g. the
	// account number the carrier calls. Default: Username.
	ContactUser string `mapstructure:"contact_user"`
	// AOR is the user of the address of record (From and To) at the
	// trunk's from_domain, else the registrar's host. Default: Username.
	AOR string `mapstructure:"aor"`
	// Registrar is the registrar's URI when it is not the trunk's, e.g.
	// sip:reg.carrier.example;transport=tcp. Default: the trunk's URI.
	Registrar string `mapstructure:"registrar"`
}

// IsZero reports whether no key is set: no registration.
func (r TrunkRegister) IsZero() bool { return r == TrunkRegister{} }

// DNS configures the resolution of trunk host names (RFC 3263: NAPTR,
// SRV, A/AAAA), with a cache that keeps answers for their TTL within
// [MinTTL, MaxTTL]. The zero value uses /etc/resolv.conf and the defaults.
type DNS struct {
	// Servers are ip:port addresses of the DNS servers asked, in order.
	// Default: the nameservers of /etc/resolv.conf (A/AAAA then through
	// the system resolver, so /etc/hosts counts).
	Servers []string `mapstructure:"servers"`
	// MinTTL and MaxTTL bound how long an answer is cached, whatever its
	// TTL says. Default DefaultDNSMinTTL and DefaultDNSMaxTTL.
	MinTTL time.Duration `mapstructure:"min_ttl"`
	MaxTTL time.Duration `mapstructure:"max_ttl"`
	// Timeout bounds one query to one server. Default DefaultDNSTimeout.
	Timeout time.Duration `mapstructure:"timeout"`
}

// validateTrunkRegister checks trunks[i].register.
func (c *Config) validateTrunkRegister(ps *Problems) {
	for i, t := range c.Trunks {
		r := t.Register
		if r.IsZero() {
			continue
		}
		key := "trunks[" + strconv.Itoa(i) + "].register"
		if r.Username == "" {
			ps.add(key+".username", "", "required to register")
		}
		if r.Password == "" {
			ps.add(key+".password", "", "required to register")
		}
		if r.Expires != 0 && r.Expires < MinRegisterExpires {
			ps.add(key+".expires", r.Expires.String(), "want at least "+MinRegisterExpires.String())
		}
		for _, k := range []struct{ name, value string }{{"contact_user", r.ContactUser}, {"aor", r.AOR}, {"username", r.Username}} {
			if k.value != "" && !validUser(k.value) {
				ps.add(key+"."+k.name, k.value, "want a SIP user of letters, digits and -_.!~*'()&=+$,/ (no @, :, space or control characters)")
			}
		}
		if r.Registrar != "" {
			if _, err := routing.ParseURI(r.Registrar); err != nil {
				ps.add(key+".registrar", r.Registrar, err.Error())
			}
		}
	}
}

// validUser reports whether s may stand unescaped as a SIP user part.
func validUser(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !containsByte("-_.!~*'()&=+$,/", c) {
			return false
		}
	}
	return s != ""
}

func containsByte(set string, c byte) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == c {
			return true
		}
	}
	return false
}

// validate checks the dns section.
func (d DNS) validate(ps *Problems) {
	for i, s := range d.Servers {
		if _, err := netip.ParseAddrPort(s); err != nil {
			ps.add("dns.servers["+strconv.Itoa(i)+"]", s, "want ip:port, e.g. 127.0.0.53:53")
		}
	}
	for _, k := range []struct {
		name string
		d    time.Duration
	}{{"min_ttl", d.MinTTL}, {"max_ttl", d.MaxTTL}, {"timeout", d.Timeout}} {
		if k.d < 0 {
			ps.add("dns."+k.name, k.d.String(), "want a positive duration (0: the default)")
		}
	}
	if d.MinTTL > 0 && d.MaxTTL > 0 && d.MaxTTL < d.MinTTL {
		ps.add("dns.max_ttl", d.MaxTTL.String(), "below min_ttl "+d.MinTTL.String())
	}
}
