package config

import "testing"

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
	})
}
