package config

import (
	"strconv"
	"strings"

	"github.com/sbc-project/sbc/b2bua/routing"
)

// validate checks admin.addr, admin.token and admin.hosts: the admin
// server listens beyond loopback only with a token, since whoever reaches
// it can ban, drain and hang up. (admin.drain_timeout is checked with the
// other operations keys.)
func (a Admin) validate(ps *Problems) {
	if a.Addr != "" {
		ap, err := parseBindAddr(a.Addr)
		switch {
		case err != nil:
			ps.add("admin.addr", a.Addr, err.Error())
		case !ap.Addr().Unmap().IsLoopback() && a.Token == "":
			ps.add("admin.token", "", "required when admin.addr ("+a.Addr+") is not a loopback address: "+
				"anyone who reaches it could ban, drain and hang up calls; set a long random token (SBC_ADMIN_TOKEN) "+
				"or keep admin.addr on 127.0.0.1")
		}
	}
	if hasControl(a.Token) || strings.ContainsAny(a.Token, " \t") {
		ps.add("admin.token", "(redacted)", "must not contain spaces or control characters")
	}
	for i, h := range a.Hosts {
		if !routing.ValidHost(strings.Trim(h, "[]")) {
			ps.add("admin.hosts["+strconv.Itoa(i)+"]", h, "want a host name or IP address without scheme or port, such as sbc-admin.example.com")
		}
	}
}
