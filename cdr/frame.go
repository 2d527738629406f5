package cdr

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// A journal frame is an 8-byte header, then the payload: a kind byte and
// the record as JSON.
//
//	length uint32 LE   bytes of payload
//	crc    uint32 LE   CRC-32C of payload
//	kind   byte        frameKind
//	record JSON        Record
const (
	frameHeader = 8
	maxPayload  = 1 << 20 // a record is a few hundred bytes; more is corruption
)

// frameKind says what a frame holds.
type frameKind byte

const (
	kindStart  frameKind = 'S' // a call in progress, as first known (also checkpoints)
	kindAnswer frameKind = 'A' // a call in progress, answered
	kindEnd    frameKind = 'E' // a finished call's record: what writers deliver
	kindGone   frameKind = 'G' // a call in progress another node continued and recorded: no record here
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn reports a frame that is incomplete or fails its checksum: the end
// of the valid part of a segment.
var errTorn = errors.New("torn or corrupt frame")

// appendFrame appends the frame of r to dst.
func appendFrame(dst []byte, kind frameKind, r *Record) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, byte(kind))
	dst, err := r.appendJSON(dst)
	if err != nil {
		return dst[:start], err
	}
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst, nil
}

// position is a place in the journal: a segment and a byte offset in it.
// The zero position is before everything.
type position struct {
	seg uint64
	off int64
}

// before reports whether p comes before q.
func (p position) before(q position) bool {
	return p.seg < q.seg || p.seg == q.seg && p.off < q.off
}

func (p position) String() string { return fmt.Sprintf("%d:%d", p.seg, p.off) }

// frameReader reads the frames of one segment file in order.
type frameReader struct {
	src     *limitedFile
	br      *bufio.Reader
	off     int64 // offset of the next frame
	payload []byte
}

// limitedFile reads a file from an offset up to a limit that may grow. The
// bytes past the limit may be a frame still being written: they must not
// even be buffered.
type limitedFile struct {
	f          *os.File
	pos, limit int64
}

func (l *limitedFile) Read(p []byte) (int, error) {
	if l.pos >= l.limit {
		return 0, io.EOF
	}
	if int64(len(p)) > l.limit-l.pos {
		p = p[:l.limit-l.pos]
	}
	n, err := l.f.ReadAt(p, l.pos)
	l.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// openFrames opens a segment file at offset off.
func openFrames(path string, off int64) (*frameReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src := &limitedFile{f: f, pos: off, limit: off}
	return &frameReader{src: src, br: bufio.NewReaderSize(src, 64<<10), off: off}, nil
}

// next reads the frame at the reader's offset, which must end at or before
// limit. It returns io.EOF at limit, errTorn for a frame that is cut off or
// damaged (nothing after it in the segment can be read), and the payload
// without its kind byte, valid until the next call.
func (fr *frameReader) next(limit int64) (frameKind, []byte, error) {
	if fr.off >= limit {
		return 0, nil, io.EOF
	}
	fr.src.limit = limit
	var hdr [frameHeader]byte
	if limit-fr.off < frameHeader {
		return 0, nil, errTorn
	}
	if _, err := io.ReadFull(fr.br, hdr[:]); err != nil {
		return 0, nil, tornOr(err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:4]))
	if n < 1 || n > maxPayload || fr.off+frameHeader+n > limit {
		return 0, nil, errTorn
	}
	if int64(cap(fr.payload)) < n {
		fr.payload = make([]byte, n)
	}
	p := fr.payload[:n]
	if _, err := io.ReadFull(fr.br, p); err != nil {
		return 0, nil, tornOr(err)
	}
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
		return 0, nil, errTorn
	}
	fr.off += frameHeader + n
	return frameKind(p[0]), p[1:], nil
}

// tornOr maps a short read to errTorn and passes other errors through.
func tornOr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTorn
	}
	return err
}

func (fr *frameReader) close() error { return fr.src.f.Close() }

// decode reads a record from its JSON: through decodeJSON when it is as
// appendJSON wrote it, else through encoding/json.
func (r *Record) decode(b []byte) error {
	var fast Record
	if fast.decodeJSON(b) {
		*r = fast
		return nil
	}
	if err := json.Unmarshal(b, r); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	return nil
}
