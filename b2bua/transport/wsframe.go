package transport

import (
	"encoding/binary"
	"errors"
	"sync"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// WebSocket close codes we send (RFC 6455 section 7.4.1).
const (
	wsCloseNormal   = 1000
	wsCloseProtocol = 1002
	wsCloseTooBig   = 1009
)

// maxControlPayload is the largest control frame payload (section 5.5).
const maxControlPayload = 125

// wsMsgPrealloc bounds the buffer a message header makes us allocate before
// its payload arrives.
const wsMsgPrealloc = 4096

// Framing errors of a WebSocket. errWSProtocol closes with 1002, errOversize
// (shared with the stream framer) with 1009.
var errWSProtocol = errors.New("websocket protocol error")

// wsReader parses the frames a client sends (RFC 6455 section 5), pushed to
// it in chunks of any size, and hands out whole messages and control
// frames. Between messages it holds no buffer: an idle connection keeps
// only this struct. It checks what a server must: every frame masked, no
// RSV bits (no extension is negotiated), known opcodes, control frames
// unfragmented and at most 125 bytes, continuations only inside a
// fragmented message, and the message size limit before any payload is
// stored.
//
// A wsReader is used by one goroutine at a time.
type wsReader struct {
	max int // message size limit

	hdr  [14]byte // frame header being read
	hdrN int      // bytes of hdr read; 0 between frames

	inFrame bool    // reading a frame's payload
	op      byte    // opcode of the current frame
	fin     bool    // the current frame ends its message
	mask    [4]byte // the current frame's masking key
	maskAt  int     // payload bytes unmasked so far, mod 4
	left    int     // payload bytes of the current frame not yet read

	msgOp byte   // opcode of the fragmented message in progress; 0 if none
	msg   []byte // its payload so far
	ctrl  []byte // the control frame's payload so far
}

// wsEvents receives what a wsReader parsed.
type wsEvents interface {
	// message is a whole text or binary message; data is the caller's.
	message(data []byte)
	// control is a ping, pong or close frame with its (unmasked) payload,
	// valid only during the call. An error stops the parse.
	control(op byte, payload []byte) error
}

// idle reports whether no frame or message is partly read: the point at
// which a connection may stop reading until it is readable again.
func (r *wsReader) idle() bool { return r.hdrN == 0 && !r.inFrame && r.msgOp == 0 }

// feed parses p. It returns errWSProtocol, errOversize, or the error of
// ev.control; the reader is then unusable.
func (r *wsReader) feed(p []byte, ev wsEvents) error {
	for len(p) > 0 {
		if !r.inFrame {
			n, err := r.readHeader(p)
			if err != nil {
				return err
			}
			p = p[n:]
			if !r.inFrame {
				continue // header incomplete: p is used up
			}
		} else {
			n := min(len(p), r.left)
			r.payload(p[:n])
			p = p[n:]
			r.left -= n
		}
		if r.inFrame && r.left == 0 {
			r.inFrame = false
			if err := r.endFrame(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// readHeader consumes header bytes from p; once the header is whole it
// checks it and starts the frame (inFrame). It returns the bytes consumed.
func (r *wsReader) readHeader(p []byte) (int, error) {
	used := 0
	for {
		need := r.headerLen()
		if r.hdrN >= need {
			break
		}
		if used == len(p) {
			return used, nil
		}
		n := copy(r.hdr[r.hdrN:need], p[used:])
		r.hdrN += n
		used += n
	}
	if err := r.startFrame(); err != nil {
		return used, err
	}
	return used, nil
}

// headerLen is the length of the header being read, as far as its first
// two bytes tell (2 until they are read).
func (r *wsReader) headerLen() int {
	if r.hdrN < 2 {
		return 2
	}
	n := 2
	if r.hdr[1]&0x80 != 0 {
		n += 4 // the masking key; an unmasked frame fails in startFrame
	}
	switch r.hdr[1] & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	return n
}

// startFrame checks the header in r.hdr and sets up the payload's reading.
func (r *wsReader) startFrame() error {
	b0, b1 := r.hdr[0], r.hdr[1]
	r.hdrN = 0
	if b0&0x70 != 0 || b1&0x80 == 0 {
		return errWSProtocol // RSV bits, or an unmasked client frame
	}
	r.fin, r.op = b0&0x80 != 0, b0&0x0F
	var size uint64
	at := 2
	switch l := b1 & 0x7F; l {
	case 126:
		size, at = uint64(binary.BigEndian.Uint16(r.hdr[2:])), 4
	case 127:
		size, at = binary.BigEndian.Uint64(r.hdr[2:]), 10
	default:
		size = uint64(l)
	}
	copy(r.mask[:], r.hdr[at:at+4])
	r.maskAt = 0
	switch r.op {
	case wsClose, wsPing, wsPong:
		if !r.fin || size > maxControlPayload {
			return errWSProtocol
		}
		r.ctrl = make([]byte, 0, size)
	case wsText, wsBinary:
		if r.msgOp != 0 {
			return errWSProtocol // a new message inside a fragmented one
		}
		if size > uint64(r.max) {
			return errOversize
		}
		r.msgOp = r.op
		// Room for what the header announces only up to a small size: the
		// buffer grows with the bytes that actually come, so a header
		// alone does not make us hold a large one.
		r.msg = make([]byte, 0, min(size, wsMsgPrealloc))
	case wsContinuation:
		if r.msgOp == 0 {
			return errWSProtocol
		}
		if size > uint64(r.max-len(r.msg)) {
			return errOversize
		}
	default:
		return errWSProtocol
	}
	r.left = int(size)
	r.inFrame = true
	return nil
}

// payload unmasks p onto the message or control payload being assembled.
func (r *wsReader) payload(p []byte) {
	dst := &r.msg
	if r.op >= wsClose {
		dst = &r.ctrl
	}
	start := len(*dst)
	*dst = append(*dst, p...)
	b := (*dst)[start:]
	for i := range b {
		b[i] ^= r.mask[(r.maskAt+i)&3]
	}
	r.maskAt = (r.maskAt + len(b)) & 3
}

// endFrame hands out a finished control frame, or the message a final
// frame completes.
func (r *wsReader) endFrame(ev wsEvents) error {
	if r.op >= wsClose {
		ctrl := r.ctrl
		r.ctrl = nil
		return ev.control(r.op, ctrl)
	}
	if !r.fin {
		return nil
	}
	msg := r.msg
	r.msg, r.msgOp = nil, 0
	ev.message(msg)
	return nil
}

// wsFrame returns a server frame (final, unmasked) of op carrying payload,
// in a buffer from wsFrameBufs; the caller puts it back after writing.
func wsFrame(op byte, payload []byte) *[]byte {
	bp := wsFrameBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, payload...)
	*bp = b
	return bp
}

// wsFrameBufs lends writers a frame buffer only while a frame is written,
// so that an open connection owns none. One header and payload go out in
// one Write: on WSS, one TLS record.
var wsFrameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// putFrame returns a frame buffer to the pool, unless it grew for a large
// message: those are let go rather than kept by the pool.
func putFrame(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		wsFrameBufs.Put(bp)
	}
}

// closePayload is the payload of a close frame with code.
func closePayload(code uint16) []byte {
	return binary.BigEndian.AppendUint16(nil, code)
}
