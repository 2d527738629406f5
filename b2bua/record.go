package b2bua

import (
	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/media"
)

// recordMedia is what a call's record keeps of its media session's
// counters.
func recordMedia(s media.Stats) outcome.Media {
	flow := func(f media.Flow) outcome.Flow {
		return outcome.Flow{Packets: f.Packets, Bytes: f.Bytes, Lost: f.Lost, JitterMs: f.JitterMs, MOS: f.MOS,
			SRTPFailed: f.SRTPFailed, RefusedJunk: f.RefusedJunk, RefusedPT: f.RefusedPT, RefusedAuth: f.RefusedAuth,
			RefusedSource: f.RefusedSource}
	}
	return outcome.Media{AtoB: flow(s.AtoB), BtoA: flow(s.BtoA)}
}
