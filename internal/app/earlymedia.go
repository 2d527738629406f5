package app

import (
	"fmt"

	"github.com/sbc-project/sbc/b2bua"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/media/announce"
	"github.com/sbc-project/sbc/media/codec"
)

// toneRate is the rate tones are made at: every codec's rate divides it,
// so a tone is only ever resampled down.
const toneRate = 48000

// earlyMedia translates media.ringback and announcements into the
// b2bua's EarlyMedia, reading every file once (Validate read them too,
// so an error here means a file changed in between); nil when neither is
// configured.
func earlyMedia(cfg *config.Config) (*b2bua.EarlyMedia, error) {
	r, an := cfg.Media.Ringback, cfg.Announcements
	if !r.Enabled && len(an.Play) == 0 {
		return nil, nil
	}
	e := &b2bua.EarlyMedia{RingbackSIP: r.SIPCallers, MaxAnnouncements: an.MaxPlaying}
	if r.Enabled {
		clip, err := loadClip(r.Tone, r.File, r.RawRate)
		if err != nil {
			return nil, fmt.Errorf("media.ringback: %w", err)
		}
		e.Ringback = announce.Player{Clip: clip} // until the callee's media or the call's end
	}
	for i, p := range an.Play {
		clip, err := loadClip(p.Tone, p.File, p.RawRate)
		if err != nil {
			return nil, fmt.Errorf("announcements.play[%d]: %w", i, err)
		}
		limit := an.MaxDuration
		if p.Duration > 0 && p.Duration < limit {
			limit = p.Duration
		}
		e.Announcements = append(e.Announcements, b2bua.Announcement{
			Causes: p.Causes, Codes: p.Codes,
			Player: announce.Player{Clip: clip, Repeat: max(p.Repeat, 1), Max: limit},
		})
	}
	return e, nil
}

// loadClip makes the clip of a tone name, or reads file when tone is
// empty or "file", and encodes it in every codec of the build, so that no
// call waits for an encoding.
func loadClip(tone, file string, rawRate int) (*announce.Clip, error) {
	var clip *announce.Clip
	if tone == "" || tone == config.RingbackToneFile {
		c, err := config.LoadAudio(file, rawRate)
		if err != nil {
			return nil, err
		}
		clip = c
	} else {
		t, err := announce.NamedTone(tone)
		if err != nil {
			return nil, err
		}
		if clip, err = t.Clip(toneRate); err != nil {
			return nil, err
		}
	}
	for _, f := range playFormats {
		if !codec.Supported(f.Name) {
			continue
		}
		if _, err := clip.Packets(f); err != nil {
			return nil, fmt.Errorf("encode as %s: %w", f.Name, err)
		}
	}
	return clip, nil
}

// playFormats are the codecs a clip may be played in.
var playFormats = []codec.Format{
	{Name: "PCMU", ClockRate: 8000}, {Name: "PCMA", ClockRate: 8000},
	{Name: "G722", ClockRate: 8000}, {Name: "opus", ClockRate: 48000, Channels: 2},
}
