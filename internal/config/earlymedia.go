package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sbc-project/sbc/media/announce"
)

// Defaults and bounds of the SBC's own early media (media.ringback and
// announcements; README "Ringback and announcements").
const (
	DefaultRingbackTone        = "us"
	RingbackToneFile           = "file" // media.ringback.tone: play media.ringback.file
	DefaultAnnouncementsMax    = 50     // b2bua.DefaultMaxAnnouncements
	DefaultAnnouncementMaxTime = 30 * time.Second
	MaxAnnouncementTime        = 5 * time.Minute
	DefaultRawRate             = 8000
)

// Ringback is local ringback: a tone or file the SBC plays to a browser
// caller while the callee rings (180 without SDP).
type Ringback struct {
	// Enabled turns local ringback on. Default false.
	Enabled bool `mapstructure:"enabled"`
	// Tone is a national ringback tone (us, eu, uk, fr, jp) or "file" to
	// play File. Default DefaultRingbackTone.
	Tone string `mapstructure:"tone"`
	// File is a WAV file (16-bit PCM, mono or stereo, 8/16/32/44.1/48 kHz)
	// or headerless 16-bit mono at RawRate, played in a loop when Tone is
	// "file". Default: none.
	File string `mapstructure:"file"`
	// RawRate is the sample rate of a File that is not WAV (not ending in
	// .wav). Default DefaultRawRate.
	RawRate int `mapstructure:"raw_rate"`
	// SIPCallers plays it to plain SIP callers too (their phones ring by
	// themselves on 180). Default false.
	SIPCallers bool `mapstructure:"sip_callers"`
}

// Announcements are played before refusals of authenticated or trusted
// callers (never to strangers), in the caller's codec.
type Announcements struct {
	// MaxPlaying bounds the announcements playing at once; past it a
	// refusal is sent at once. Default DefaultAnnouncementsMax.
	MaxPlaying int `mapstructure:"max_playing"`
	// MaxDuration bounds one announcement, at most 5m. Default
	// DefaultAnnouncementMaxTime.
	MaxDuration time.Duration `mapstructure:"max_duration"`
	// Play lists the announcements, the first that matches a refusal
	// wins. Default: none.
	Play []Announcement `mapstructure:"play"`
}

// Announcement is one announcement and the refusals it is played before.
type Announcement struct {
	// Causes are policy causes (e.g. premium, international, denied,
	// not_allowed, max_calls_user) or call causes (no_binding,
	// all_trunks_down) that it is played before.
	Causes []string `mapstructure:"causes"`
	// Codes are SIP codes of refusals that it is played before.
	Codes []int `mapstructure:"codes"`
	// File is a WAV or raw file (as media.ringback.file), with RawRate
	// for a raw one (default DefaultRawRate); or Tone, a national tone
	// name. Exactly one of them.
	File    string `mapstructure:"file"`
	RawRate int    `mapstructure:"raw_rate"`
	Tone    string `mapstructure:"tone"`
	// Repeat is how many times the file or tone's cadence plays. Default 1.
	Repeat int `mapstructure:"repeat"`
	// Duration bounds it below announcements.max_duration. Default: that.
	Duration time.Duration `mapstructure:"duration"`
}

// validate checks media.ringback; with it enabled, the file is read.
func (r Ringback) validate(ps *Problems) {
	if !r.Enabled {
		return
	}
	if r.Tone == RingbackToneFile {
		if _, err := LoadAudio(r.File, r.RawRate); err != nil {
			ps.add("media.ringback.file", r.File, err.Error())
		}
		return
	}
	if _, err := announce.NamedTone(r.Tone); err != nil {
		ps.add("media.ringback.tone", r.Tone, "want one of "+strings.Join(announce.ToneNames(), ", ")+" or file")
	}
}

// validate checks the announcements section, reading every file.
func (a Announcements) validate(ps *Problems) {
	if a.MaxPlaying < 1 {
		ps.add("announcements.max_playing", strconv.Itoa(a.MaxPlaying), "want at least 1")
	}
	if a.MaxDuration <= 0 || a.MaxDuration > MaxAnnouncementTime {
		ps.add("announcements.max_duration", a.MaxDuration.String(), "want more than 0 and at most 5m")
	}
	for i, p := range a.Play {
		key := fmt.Sprintf("announcements.play[%d]", i)
		if len(p.Causes) == 0 && len(p.Codes) == 0 {
			ps.add(key+".causes", "", "want causes or codes the announcement is played before")
		}
		for j, c := range p.Codes {
			if c < 400 || c > 699 {
				ps.add(fmt.Sprintf("%s.codes[%d]", key, j), strconv.Itoa(c), "want a refusal code, 400..699")
			}
		}
		if slices.Contains(p.Causes, "") {
			ps.add(key+".causes", "", "an empty cause matches nothing")
		}
		switch {
		case (p.File == "") == (p.Tone == ""):
			ps.add(key+".file", p.File, "want exactly one of file and tone")
		case p.File != "":
			if _, err := LoadAudio(p.File, p.RawRate); err != nil {
				ps.add(key+".file", p.File, err.Error())
			}
		default:
			if _, err := announce.NamedTone(p.Tone); err != nil {
				ps.add(key+".tone", p.Tone, "want one of "+strings.Join(announce.ToneNames(), ", "))
			}
		}
		if p.Repeat < 0 {
			ps.add(key+".repeat", strconv.Itoa(p.Repeat), "want 0 (1) or more")
		}
		if p.Duration < 0 || p.Duration > a.MaxDuration && a.MaxDuration > 0 {
			ps.add(key+".duration", p.Duration.String(), "want 0 (max_duration) up to announcements.max_duration")
		}
	}
}

// LoadAudio reads an audio file for ringback or an announcement: WAV
// when its name ends in .wav, else headerless 16-bit mono at rawRate (0:
// DefaultRawRate).
func LoadAudio(path string, rawRate int) (*announce.Clip, error) {
	if path == "" {
		return nil, fmt.Errorf("want a file name")
	}
	if strings.HasSuffix(strings.ToLower(path), ".wav") {
		return announce.LoadWAV(path)
	}
	if rawRate == 0 {
		rawRate = DefaultRawRate
	}
	return announce.LoadRaw(path, rawRate)
}
