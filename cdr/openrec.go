package cdr

import "time"

// openCalls are the records of the calls in progress the journal keeps,
// to write them again in each new segment's checkpoint. Most are kept as
// an openRecord: the fields a record has before its call ends, some 250
// bytes instead of a Record's 500 (in the 256 and 512 size classes), for
// every call in progress. A record with anything an openRecord leaves
// out is kept whole. Not safe for concurrent use (the journal's mu).
type openCalls struct {
	short map[string]openRecord
	whole map[string]Record // made when first needed
}

// openRecord is a Record less what only an ended call has (its end, media
// counters, hang-up, the record after a transfer) and what derive
// computes again.
// Its times are Unix milliseconds (a Timestamp is a UTC time.Time of
// whole milliseconds; 0: none), 8 bytes each instead of 24.
type openRecord struct {
	ID, NodeID, ACallID, BCallID, FromURI, ToURI, SrcAddr, ATransport, Trunk string
	StartTime, RingTime, AnswerTime                                          int64
	SIPCode                                                                  int
	ACodec, BCodec, TransferredFrom, TakenOverFrom                           string
	Transcoded                                                               bool
}

// unixMilli is ts in Unix milliseconds, 0 for none.
func unixMilli(ts Timestamp) int64 {
	if ts.t.IsZero() {
		return 0
	}
	return ts.t.UnixMilli()
}

// stampOf undoes unixMilli.
func stampOf(ms int64) Timestamp {
	if ms == 0 {
		return Timestamp{}
	}
	return At(time.UnixMilli(ms))
}

func newOpenCalls() openCalls { return openCalls{short: map[string]openRecord{}} }

// shorten is r as an openRecord, and whether that gives r back exactly.
func shorten(r *Record) (openRecord, bool) {
	o := openRecord{ID: r.ID, NodeID: r.NodeID, ACallID: r.ACallID, BCallID: r.BCallID, FromURI: r.FromURI,
		ToURI: r.ToURI, SrcAddr: r.SrcAddr, ATransport: r.ATransport, Trunk: r.Trunk,
		StartTime: unixMilli(r.StartTime), RingTime: unixMilli(r.RingTime), AnswerTime: unixMilli(r.AnswerTime), SIPCode: r.SIPCode,
		ACodec: r.ACodec, BCodec: r.BCodec, TransferredFrom: r.TransferredFrom, TakenOverFrom: r.TakenOverFrom,
		Transcoded: r.Transcoded}
	return o, o.record() == *r
}

// record is the Record o stands for, its derived fields computed.
func (o *openRecord) record() Record {
	r := Record{ID: o.ID, NodeID: o.NodeID, ACallID: o.ACallID, BCallID: o.BCallID, FromURI: o.FromURI,
		ToURI: o.ToURI, SrcAddr: o.SrcAddr, ATransport: o.ATransport, Trunk: o.Trunk,
		StartTime: stampOf(o.StartTime), RingTime: stampOf(o.RingTime), AnswerTime: stampOf(o.AnswerTime), SIPCode: o.SIPCode,
		ACodec: o.ACodec, BCodec: o.BCodec, TransferredFrom: o.TransferredFrom, TakenOverFrom: o.TakenOverFrom,
		Transcoded: o.Transcoded}
	r.derive()
	return r
}

// set keeps r as the latest state of its call.
func (c *openCalls) set(r *Record) {
	if o, ok := shorten(r); ok {
		c.short[r.ID] = o
		delete(c.whole, r.ID)
		return
	}
	if c.whole == nil {
		c.whole = map[string]Record{}
	}
	c.whole[r.ID] = *r
	delete(c.short, r.ID)
}

// remove forgets the call of record id.
func (c *openCalls) remove(id string) {
	delete(c.short, id)
	delete(c.whole, id)
}

// each calls f on every record kept, until f fails.
func (c *openCalls) each(f func(*Record) error) error {
	for _, o := range c.short {
		r := o.record()
		if err := f(&r); err != nil {
			return err
		}
	}
	for _, r := range c.whole {
		if err := f(&r); err != nil {
			return err
		}
	}
	return nil
}
