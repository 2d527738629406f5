package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/media/announce"
)

func TestValidateEarlyMedia(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "prompt.wav")
	tone, _ := announce.Tone{Freqs: []float64{440}}.Clip(16000)
	if err := os.WriteFile(good, announce.WAV(tone), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.wav")
	if err := os.WriteFile(bad, []byte("definitely not RIFF"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.wav")
	tests := []struct {
		name string
		set  func(*Config)
		key  string // the key the problem names; "" for none
		text string // and what else it says
	}{
		{"defaults", func(*Config) {}, "", ""},
		{"ringback us", func(c *Config) { c.Media.Ringback.Enabled = true }, "", ""},
		{"ringback file", func(c *Config) {
			c.Media.Ringback = Ringback{Enabled: true, Tone: "file", File: good}
		}, "", ""},
		{"ringback unknown tone", func(c *Config) { c.Media.Ringback = Ringback{Enabled: true, Tone: "mars"} },
			"media.ringback.tone", "want one of eu, fr, jp, uk, us or file"},
		{"ringback missing file", func(c *Config) {
			c.Media.Ringback = Ringback{Enabled: true, Tone: "file", File: missing}
		}, "media.ringback.file", "missing.wav"},
		{"ringback bad file", func(c *Config) { c.Media.Ringback = Ringback{Enabled: true, Tone: "file", File: bad} },
			"media.ringback.file", "not a RIFF WAVE file"},
		{"disabled ringback is not read", func(c *Config) { c.Media.Ringback = Ringback{Tone: "file", File: missing} }, "", ""},
		{"announcement", func(c *Config) {
			c.Announcements.Play = []Announcement{{Causes: []string{"premium"}, File: good}, {Codes: []int{480}, Tone: "eu", Repeat: 2}}
		}, "", ""},
		{"announcement bad file", func(c *Config) {
			c.Announcements.Play = []Announcement{{Codes: []int{403}, Tone: "eu"}, {Codes: []int{403}, File: bad}}
		}, "announcements.play[1].file", "bad.wav"},
		{"announcement matches nothing", func(c *Config) { c.Announcements.Play = []Announcement{{Tone: "eu"}} },
			"announcements.play[0].causes", "want causes or codes"},
		{"announcement on a 200", func(c *Config) { c.Announcements.Play = []Announcement{{Codes: []int{200}, Tone: "eu"}} },
			"announcements.play[0].codes[0]", "400..699"},
		{"file and tone", func(c *Config) {
			c.Announcements.Play = []Announcement{{Codes: []int{403}, Tone: "eu", File: good}}
		}, "announcements.play[0].file", "exactly one of file and tone"},
		{"too long", func(c *Config) {
			c.Announcements.Play = []Announcement{{Codes: []int{403}, Tone: "eu", Duration: DefaultAnnouncementMaxTime + 1}}
		}, "announcements.play[0].duration", ""},
		{"no slot", func(c *Config) { c.Announcements.MaxPlaying = 0 }, "announcements.max_playing", ""},
		{"max duration", func(c *Config) { c.Announcements.MaxDuration = MaxAnnouncementTime + 1 }, "announcements.max_duration", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(c)
			err := c.Validate()
			switch {
			case tt.key == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.key != "" && (err == nil || !strings.Contains(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.text)):
				t.Fatalf("Validate = %v, want a problem naming %s saying %q", err, tt.key, tt.text)
			}
		})
	}
}

func TestLoadEarlyMediaYAML(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sbc.yaml")
	yaml := `
media:
  ringback: {enabled: true, tone: uk, sip_callers: true}
announcements:
  max_playing: 3
  play:
    - {causes: [premium], codes: [403], tone: eu, repeat: 2, duration: 10s}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Media.Ringback; !r.Enabled || r.Tone != "uk" || !r.SIPCallers {
		t.Errorf("ringback %+v", r)
	}
	if a := c.Announcements; a.MaxPlaying != 3 || len(a.Play) != 1 || a.Play[0].Repeat != 2 || a.Play[0].Codes[0] != 403 {
		t.Errorf("announcements %+v", a)
	}
}
