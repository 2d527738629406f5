package config

import (
	"slices"
	"strconv"
	"strings"
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
	for i, r := range c.Routes {
		checkCodecs(ps, "routes["+strconv.Itoa(i)+"].webrtc_codecs", r.WebRTCCodecs, WebRTCCodecs)
	}
}
