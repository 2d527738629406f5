package config

import (
	"testing"

	"github.com/sbc-project/sbc/media/codec"
)

func TestValidateTranscoding(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"trunk codecs in any case", func(c *Config) {
			withTrunks(c)
			c.Trunks[0].Codecs = []string{"PCMA", "g722", "opus", "G729"}
		}, nil},
		{"route webrtc codecs", func(c *Config) { c.Routes[0].WebRTCCodecs = []string{"opus"} }, nil},
		{"unknown trunk codec", func(c *Config) {
			withTrunks(c)
			c.Trunks[1].Codecs = []string{"pcma", "speex"}
		}, []string{"trunks[1].codecs[1]: unknown codec"}},
		{"g729 toward a browser", func(c *Config) { c.Routes[0].WebRTCCodecs = []string{"opus", "g729"} },
			[]string{"routes[0].webrtc_codecs[1]: unknown codec"}},
		{"codec named twice", func(c *Config) { c.Routes[0].WebRTCCodecs = []string{"opus", "OPUS"} },
			[]string{"routes[0].webrtc_codecs[1]: named twice"}},
		{"negative cap", func(c *Config) { c.Media.Transcoding.MaxCalls = -1 },
			[]string{"media.transcoding.max_calls: want 0 (no cap)"}},
		{"browser and trunk share none, transcoding off", func(c *Config) {
			withWebRoute(c, []string{"pcmu"}, []string{"pcma"})
			c.Media.Transcoding.Enabled = false
		}, []string{"routes[2].webrtc_codecs: shares no codec with trunks pbx (pcma) and media.transcoding.enabled is false"}},
		{"browser and trunk share none, transcoded", func(c *Config) { withWebRoute(c, []string{"pcmu"}, []string{"pcma"}) }, nil},
		{"browser and trunk share one", func(c *Config) { withWebRoute(c, []string{"opus", "pcma"}, []string{"pcma"}) }, nil},
	})
	opus := []string{"routes[2].webrtc_codecs: shares no codec with trunks pbx (pcma) and this build cannot transcode"}
	if codec.Supported("opus") {
		opus = nil
	}
	runValidateCases(t, []validateCase{
		{"opus browser, pcma trunk", func(c *Config) { withWebRoute(c, []string{"opus"}, []string{"pcma"}) }, opus},
		{"opus passed through", func(c *Config) { withWebRoute(c, []string{"opus"}, []string{"opus", "pcma"}) }, nil},
	})
}

// withWebRoute adds trunks (withTrunks) with trunk codecs on the first,
// pbx, and a route to it whose browsers use web.
func withWebRoute(c *Config, web, trunk []string) {
	withTrunks(c)
	c.Trunks[0].Codecs = trunk
	c.Routes = append(c.Routes, Route{Name: "web", Target: TargetTrunks, Trunks: []string{c.Trunks[0].Name}, WebRTCCodecs: web})
}
