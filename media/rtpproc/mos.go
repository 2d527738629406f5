package rtpproc

import (
	"math"
	"strings"
)

// codecModel holds what the E-model needs to know about a codec.
type codecModel struct {
	ie  float64 // equipment impairment factor Ie, error-free
	bpl float64 // packet-loss robustness factor Bpl (random loss)
	// delayMs is the codec's share of the one-way delay: one 20 ms
	// packet of packetization plus the encoder's look-ahead.
	delayMs float64
}

// The codec values, documented at MOS.
var (
	modelG711 = codecModel{ie: 0, bpl: 25.1, delayMs: 20}
	modelG722 = codecModel{ie: 0, bpl: 25.1, delayMs: 20}
	modelOpus = codecModel{ie: 0, bpl: 20, delayMs: 26.5}
)

func modelFor(codec string) codecModel {
	switch {
	case strings.EqualFold(codec, "G722"):
		return modelG722
	case strings.EqualFold(codec, "opus"):
		return modelOpus
	}
	return modelG711
}

// E-model constants (ITU-T G.107).
const (
	// rDefault is R with every impairment but delay and the codec at its
	// default: Ro - Is with the G.107 default parameters.
	rDefault = 93.2
	// idKnee is the one-way delay, in ms, past which delay impairment
	// grows faster (the simplified Id of Cole and Rosenbluth, "Voice over
	// IP performance monitoring", ACM CCR 2001, fitted to G.107).
	idKnee = 177.3
	// maxMOS is the best MOS the model yields.
	maxMOS = 4.5
)

// MOS estimates the listening quality of a call, from 1 (bad) to 4.5, with
// the simplified E-model of ITU-T G.107:
//
//	R = 93.2 - Id - Ie_eff
//	Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl)          (Ppl: lossPct)
//	Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)          (d in ms)
//	d = rttMs/2 + 2*jitterMs + codec delay
//	MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), 1 if R < 0, 4.5 if R > 100
//
// The jitter counts twice, as the jitter buffer it calls for. Negative or
// non-finite inputs count as 0; lossPct is capped at 100. It does not
// allocate.
//
// codec is an SDP encoding name, case-insensitive. The narrowband scale of
// G.107 (R up to 93.2) is used for every codec, so that the MOS of all
// calls compare on one scale:
//
//   - PCMU, PCMA (G.711): Ie = 0 and Bpl = 25.1, the ITU-T G.113
//     Appendix I values for G.711 with the packet-loss concealment of
//     G.711 Appendix I under random loss; codec delay 20 ms (one packet).
//   - G722: G.113 rates it only on the wideband scale of G.107.1 (Ie,wb
//     13 at 64 kbit/s, as we read it), where it beats G.711. The
//     narrowband scale cannot show that, so G722 gets G.711's Ie = 0
//     rather than a 13 that would score it below G.711. Its Bpl is
//     assumed equal to G.711's 25.1 (G.722 Appendix III/IV concealment);
//     we know of no ITU value for it on this scale. Codec delay 20 ms.
//   - opus: no ITU values exist. At the rates WebRTC uses (wideband, 20+
//     kbit/s) it is at least as clean as G.711, hence Ie = 0; Bpl = 20 is
//     a conservative assumption (less robust than G.711 with concealment,
//     in-band FEC not counted), to be tuned from field data. Codec delay
//     26.5 ms: a 20 ms frame plus 6.5 ms of look-ahead (RFC 6716 section
//     2).
//   - anything else is scored as PCMU.
func MOS(codec string, lossPct, jitterMs, rttMs float64) float64 {
	m := modelFor(codec)
	loss := min(sanitize(lossPct), 100)
	d := sanitize(rttMs)/2 + 2*sanitize(jitterMs) + m.delayMs
	id := 0.024 * d
	if d > idKnee {
		id += 0.11 * (d - idKnee)
	}
	ieEff := m.ie + (95-m.ie)*loss/(loss+m.bpl)
	return rToMOS(rDefault - id - ieEff)
}

// rToMOS converts an R factor to a MOS (ITU-T G.107 Annex B).
func rToMOS(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return maxMOS
	}
	return min(max(1+0.035*r+7e-6*r*(r-60)*(100-r), 1), maxMOS)
}

func sanitize(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}
