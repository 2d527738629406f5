package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/sbc-project/sbc/media/codec"
)

// Transcoding defaults (media.transcoding).
const (
	DefaultTranscodingEnabled  = true
	DefaultTranscodingMaxCalls = 0 // no cap
)

// Transcoding configures the transcoding of calls whose sides share no
// codec (README "Transcoding").
type Transcoding struct {
	// Enabled lets the SBC transcode when trunks[].codecs or
	// routes[].webrtc_codecs leave the two sides of a call no common
	// codec; off, such a call gets 488. Default DefaultTranscodingEnabled.
	Enabled bool `mapstructure:"enabled"`
	// MaxCalls caps the calls transcoded at once; a call that could only
	// be carried by transcoding past it gets 488 with a Warning (calls
	// that need no transcoding are still admitted). 0: no cap. Default
	// DefaultTranscodingMaxCalls.
	MaxCalls int `mapstructure:"max_calls"`
}

// Codecs trunks[].codecs may name (any case): the ones the SBC can
// transcode (whether this build can is media/codec.Supported: opus needs
// the build tag opus) and G.729, which only passes through.
var Codecs = []string{"pcmu", "pcma", "g722", "opus", "g729"}

// WebRTCCodecs are the audio codecs routes[].webrtc_codecs may name:
// those browsers speak.
var WebRTCCodecs = []string{"opus", "g722", "pcmu", "pcma"}

// checkCodecs reports a problem for each name of list (the value of key)
// that is not in known, and for repeats.
func checkCodecs(ps *Problems, key string, list, known []string) {
	seen := map[string]bool{}
	for i, name := range list {
		k := key + "[" + strconv.Itoa(i) + "]"
		n := strings.ToLower(strings.TrimSpace(name))
		switch {
		case !slices.Contains(known, n):
			ps.add(k, name, "unknown codec; want one of "+strings.Join(known, ", "))
		case seen[n]:
			ps.add(k, name, "named twice")
		}
		seen[n] = true
	}
}

// LowerCodecs returns list in lower case, the form media.SideOptions
// takes.
func LowerCodecs(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, n := range list {
		out[i] = strings.ToLower(strings.TrimSpace(n))
	}
	return out
}

func (c *Config) validateTranscoding(ps *Problems) {
	if c.Media.Transcoding.MaxCalls < 0 {
		ps.add("media.transcoding.max_calls", strconv.Itoa(c.Media.Transcoding.MaxCalls), "want 0 (no cap) or a positive number of calls")
	}
	for i, t := range c.Trunks {
		checkCodecs(ps, "trunks["+strconv.Itoa(i)+"].codecs", t.Codecs, Codecs)
	}
	trunks := map[string]Trunk{}
	for _, t := range c.Trunks {
		trunks[t.Name] = t
	}
	for i, r := range c.Routes {
		key := "routes[" + strconv.Itoa(i) + "].webrtc_codecs"
		checkCodecs(ps, key, r.WebRTCCodecs, WebRTCCodecs)
		if len(r.WebRTCCodecs) == 0 || r.Target != TargetTrunks {
			continue
		}
		for _, name := range r.Trunks {
			if t, ok := trunks[name]; ok && len(t.Codecs) > 0 {
				c.checkReachable(ps, key, r.WebRTCCodecs, name, t.Codecs)
			}
		}
	}
}

// checkReachable reports a route's browser codecs (the value of key) that
// can never meet trunk name's: the lists share none, and this build
// cannot transcode between them (transcoding off, or each side's codecs
// need what the build lacks, e.g. opus without the build tag opus). A
// codec the build cannot transcode is fine where it passes through.
func (c *Config) checkReachable(ps *Problems, key string, web []string, name string, trunk []string) {
	for _, w := range web {
		if slices.Contains(LowerCodecs(trunk), strings.ToLower(w)) {
			return
		}
	}
	can := func(list []string) bool { return slices.ContainsFunc(list, codec.Supported) }
	switch {
	case !c.Media.Transcoding.Enabled:
		ps.add(key, strings.Join(web, ","), "shares no codec with trunks "+name+" ("+strings.Join(trunk, ",")+") and media.transcoding.enabled is false")
	case !can(web) || !can(trunk):
		ps.add(key, strings.Join(web, ","), "shares no codec with trunks "+name+" ("+strings.Join(trunk, ",")+") and this build cannot transcode between them (opus needs the build tag opus)")
	}
}
