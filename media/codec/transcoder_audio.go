package codec

// The audio path of the Transcoder: loss and silence, decoding,
// resampling, packetizing.

// audio handles one audio packet of the From side, lost packets before it
// counted in lost.
func (t *Transcoder) audio(lost int, ts uint32, marker bool, payload []byte, emit func([]byte)) error {
	in := &t.in
	decRate := t.dec.SampleRate()
	if marker {
		t.marker = true
	}
	if in.timed {
		if gap := int32(ts - in.nextTS); gap > 0 {
			missing := int(int64(gap) * int64(decRate) / int64(t.dir.From.ClockRate))
			t.fill(lost, missing, payload, emit)
		}
	}
	var err error
	t.dpcm, err = t.dec.Decode(t.dpcm[:0], payload)
	if err != nil {
		// Undecodable: conceal it as if lost, keep the timing.
		t.dpcm = t.dec.Conceal(t.dpcm[:0], in.lastDur)
	} else if len(t.dpcm) > 0 {
		in.lastDur = len(t.dpcm)
	}
	in.nextTS = ts + uint32(int64(len(t.dpcm))*int64(t.dir.From.ClockRate)/int64(decRate))
	in.timed = true
	if perr := t.push(t.dpcm, emit); perr != nil && err == nil {
		err = perr
	}
	return err
}

// fill stands in for missing decoder samples before the packet payload:
// up to lost packets' worth concealed (Opus FEC from payload when exactly
// one was lost), the rest sent as silence or a jump in time.
func (t *Transcoder) fill(lost, missing int, payload []byte, emit func([]byte)) {
	decRate := t.dec.SampleRate()
	conceal := 0
	if lost > 0 {
		conceal = min(missing, lost*t.in.lastDur, decRate*maxConcealMs/1000)
	}
	if conceal > 0 {
		recovered := false
		if fec, ok := t.dec.(FECDecoder); ok && lost == 1 {
			var err error
			t.dpcm, err = fec.DecodeFEC(t.dpcm[:0], payload, conceal)
			recovered = err == nil
		}
		if !recovered {
			t.dpcm = t.dec.Conceal(t.dpcm[:0], conceal)
		}
		_ = t.push(t.dpcm, emit)
	}
	if rest := missing - conceal; rest > 0 {
		t.silence(rest*t.enc.SampleRate()/decRate, emit)
	}
}

// silence covers n samples (encoder rate) the sender did not send: zeros
// finishing the packet under way, then a jump of the timestamp with the
// marker bit on the next packet. Less than a packet (a sender's clock
// slipping) is zeros only: no jump, no marker.
func (t *Transcoder) silence(n int, emit func([]byte)) {
	if n < t.frame {
		for range n {
			t.buf = append(t.buf, 0)
		}
		_ = t.flush(emit)
		return
	}
	if len(t.buf) > 0 {
		z := min(n, t.frame-len(t.buf)%t.frame)
		for range z {
			t.buf = append(t.buf, 0)
		}
		n -= z
		_ = t.flush(emit)
	}
	if n > 0 {
		t.ts += t.toTS(n)
		t.marker = true
	}
}

// toTS converts n samples at the encoder's rate to To clock ticks.
func (t *Transcoder) toTS(n int) uint32 {
	return uint32(int64(n) * int64(t.dir.To.ClockRate) / int64(t.enc.SampleRate()))
}

// push resamples decoded audio into the send buffer and sends every full
// packet.
func (t *Transcoder) push(pcm []int16, emit func([]byte)) error {
	t.buf = t.rs.Resample(t.buf, pcm)
	return t.flush(emit)
}

// flush encodes and sends the full packets in the send buffer.
func (t *Transcoder) flush(emit func([]byte)) error {
	var err error
	sent := 0
	for len(t.buf)-sent >= t.frame {
		t.header(t.dir.To.PT, t.marker, t.ts)
		t.marker = false
		var e error
		t.out, e = t.enc.Encode(t.out, t.buf[sent:sent+t.frame])
		sent += t.frame
		t.ts += t.toTS(t.frame)
		if e != nil {
			err = e
			t.seq-- // nothing was sent
			continue
		}
		emit(t.out)
	}
	if sent > 0 {
		n := copy(t.buf, t.buf[sent:])
		t.buf = t.buf[:n]
	}
	return err
}
