package b2bua

import (
	"time"

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

// callRecord is the record a call fills as it goes: an
// outcome.CallRecord without the media counters, which only the ended
// record has (full and Media added when it is handed over). They were
// 160 of every Call's bytes for its whole life (a Call is in the
// 1,024-byte size class without them, 1,152 with). Its fields are
// CallRecord's, in order (TestCallRecordMirrorsOutcome).
type callRecord struct {
	ID, ACallID, BCallID, FromURI, ToURI, SrcAddr, ATransport, Trunk string
	Start, Ring, Answer, End                                         time.Time
	SIPCode                                                          int
	Cause                                                            outcome.Cause
	Side                                                             outcome.Side
	ACodec, BCodec                                                   string
	TransferredFrom, TransferredTo, TakenOverFrom                    string
	Transcoded                                                       bool
}

// full is r as the outcome's record, without media counters.
func (r *callRecord) full() outcome.CallRecord {
	return outcome.CallRecord{ID: r.ID, ACallID: r.ACallID, BCallID: r.BCallID, FromURI: r.FromURI, ToURI: r.ToURI,
		SrcAddr: r.SrcAddr, ATransport: r.ATransport, Trunk: r.Trunk, Start: r.Start, Ring: r.Ring, Answer: r.Answer,
		End: r.End, SIPCode: r.SIPCode, Cause: r.Cause, Side: r.Side, ACodec: r.ACodec, BCodec: r.BCodec,
		TransferredFrom: r.TransferredFrom, TransferredTo: r.TransferredTo, TakenOverFrom: r.TakenOverFrom,
		Transcoded: r.Transcoded}
}

// withMedia is r as the outcome's record with the media counters m.
func (r *callRecord) withMedia(m outcome.Media) outcome.CallRecord {
	rec := r.full()
	rec.Media = m
	return rec
}

// ownRecord is rec as a call keeps it: its media counters left out (a
// restored call's are the new node's from zero).
func ownRecord(rec outcome.CallRecord) callRecord {
	return callRecord{ID: rec.ID, ACallID: rec.ACallID, BCallID: rec.BCallID, FromURI: rec.FromURI, ToURI: rec.ToURI,
		SrcAddr: rec.SrcAddr, ATransport: rec.ATransport, Trunk: rec.Trunk, Start: rec.Start, Ring: rec.Ring,
		Answer: rec.Answer, End: rec.End, SIPCode: rec.SIPCode, Cause: rec.Cause, Side: rec.Side, ACodec: rec.ACodec,
		BCodec: rec.BCodec, TransferredFrom: rec.TransferredFrom, TransferredTo: rec.TransferredTo,
		TakenOverFrom: rec.TakenOverFrom, Transcoded: rec.Transcoded}
}
