package config

import (
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Defaults of the operations keys (admin.drain_timeout, hep).
const (
	// DefaultDrainTimeout bounds a graceful drain (SIGTERM, POST
	// /api/v1/drain): calls still up then are ended with BYE.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultHEPCaptureID identifies this node to a Homer collector.
	DefaultHEPCaptureID = 2001
)

// HEP configures the export of every SIP message (both legs) and RTCP
// report to a Homer collector in HEP version 3 over UDP.
type HEP struct {
	// Addr is the collector's host:port (UDP); empty turns the export off.
	// Default: empty.
	Addr string `mapstructure:"addr"`
	// CaptureID is the capture agent id sent with every packet,
	// 0..4294967295. Default DefaultHEPCaptureID.
	CaptureID int64 `mapstructure:"capture_id"`
	// Password is the collector's authentication key; empty sends none.
	// Default: empty.
	Password string `mapstructure:"password"`
}

// validateOps checks log.trace, admin.drain_timeout and hep.
func (c *Config) validateOps(ps *Problems) {
	for i, t := range c.Log.Trace {
		if strings.TrimSpace(t) == "" || hasControl(t) || strings.ContainsAny(t, "@: \t") {
			ps.add("log.trace["+strconv.Itoa(i)+"]", t, "want a user name or number (the user part of a SIP URI)")
		}
	}
	checkPositive(ps, "admin.drain_timeout", c.Admin.DrainTimeout)
	if c.HEP.Addr != "" {
		host, port, err := net.SplitHostPort(c.HEP.Addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || host == "" {
			ps.add("hep.addr", c.HEP.Addr, "want host:port of the collector, such as 10.0.0.5:9060")
		}
	}
	if c.HEP.CaptureID < 0 || c.HEP.CaptureID > 1<<32-1 {
		ps.add("hep.capture_id", strconv.FormatInt(c.HEP.CaptureID, 10), "want 0..4294967295")
	}
	if hasControl(c.HEP.Password) {
		ps.add("hep.password", "(redacted)", "must not contain control characters")
	}
}

// secretKeys are the keys Redacted hides.
var secretKeys = map[string]bool{"password": true, "token": true, "hmac_secret": true, "secret": true}

// Redacted returns the configuration as a tree of maps and lists keyed by
// the YAML names, ready for JSON, with every secret (passwords, tokens,
// the HMAC secret) replaced by "(redacted)" and the password in a
// PostgreSQL DSN by "xxxxx" (RedactDSN). Durations are written as in the file (30s, 1m0s).
func (c *Config) Redacted() map[string]any {
	out, _ := redact(reflect.ValueOf(*c), "").(map[string]any)
	return out
}

func redact(v reflect.Value, key string) any {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Struct:
		m := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			tag := v.Type().Field(i).Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			m[tag] = redact(v.Field(i), tag)
		}
		return m
	case v.Kind() == reflect.Slice:
		list := make([]any, v.Len())
		for i := range v.Len() {
			list[i] = redact(v.Index(i), key)
		}
		return list
	case v.Kind() == reflect.String:
		s := v.String()
		switch {
		case s == "":
			return s
		case secretKeys[key]:
			return "(redacted)"
		case key == "dsn":
			return RedactDSN(s)
		}
		return s
	}
	return v.Interface()
}

// Diff returns the keys whose values differ between a and b, as key paths
// (sip.listeners, media.rtp_ports, trunks, admin.token...): a section's
// fields one by one, a list as a whole. It names keys, never values, so it
// is safe to log.
func Diff(a, b *Config) []string {
	var keys []string
	diff(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &keys)
	return keys
}

func diff(a, b reflect.Value, prefix string, keys *[]string) {
	if a.Kind() != reflect.Struct {
		empty := a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 // nil and [] alike
		if !empty && !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*keys = append(*keys, prefix)
		}
		return
	}
	for i := range a.NumField() {
		tag := a.Type().Field(i).Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		diff(a.Field(i), b.Field(i), joinKey(prefix, tag), keys)
	}
}
