package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Framing errors. Each one makes the reader close the stream connection, and
// is counted under its own reason in Stats.
var (
	errOversize    = errors.New("message larger than the size limit")
	errLineTooLong = errors.New("header line longer than the line limit")
	errBadFraming  = errors.New("bad Content-Length")
)

// framer cuts a SIP byte stream (TCP, TLS) into messages as RFC 3261 §18.3
// says: the header block ends at the first empty line and the body is
// Content-Length (or compact "l") bytes long; a missing Content-Length means
// an empty body. CR and LF bytes before a message are skipped (RFC 5626
// keepalives). Memory is bounded: the bufio buffer holds one line of at most
// maxLine bytes, and one message of at most maxMsg bytes is assembled.
//
// A framer is used by one goroutine.
type framer struct {
	r       *bufio.Reader
	maxMsg  int
	maxLine int
	hdr     []byte // header block being assembled; reused between messages
	clVal   []byte // Content-Length value being assembled (it may be folded)
}

// newFramer reads from r. maxMsg and maxLine must be positive.
func newFramer(r io.Reader, maxMsg, maxLine int) *framer {
	// Room for the longest allowed line plus CRLF, so that a longer line
	// fills the buffer and is detected by ReadSlice without ever growing.
	return &framer{r: bufio.NewReaderSize(r, maxLine+2), maxMsg: maxMsg, maxLine: maxLine}
}

// next returns the next message, or ping=true when the peer sent a
// "\r\n\r\n" keepalive ping (RFC 5626 §4.4.1), which the caller answers with
// "\r\n". The returned message is freshly allocated, never longer than
// maxMsg, and owned by the caller. err is io.EOF when the stream ended
// cleanly between messages, one of the framing errors above, or the reader's
// error.
func (f *framer) next() (msg []byte, ping bool, err error) {
	if ping, err := f.skipKeepalive(); ping || err != nil {
		return nil, ping, err
	}
	cl, err := f.readHeader()
	if err != nil {
		return nil, false, err
	}
	if cl > f.maxMsg-len(f.hdr) {
		return nil, false, errOversize
	}
	msg = make([]byte, len(f.hdr)+cl)
	n := copy(msg, f.hdr)
	if _, err := io.ReadFull(f.r, msg[n:]); err != nil {
		return nil, false, unexpectedEOF(err)
	}
	return msg, false, nil
}

// skipKeepalive consumes CR and LF bytes before a message. Two line feeds in
// a row are a ping; a lone CRLF (some stacks end each message with one more)
// is just skipped.
func (f *framer) skipKeepalive() (ping bool, err error) {
	lf := 0
	for {
		b, err := f.r.ReadByte()
		if err != nil {
			return false, err
		}
		switch b {
		case '\n':
			lf++
			if lf == 2 {
				return true, nil
			}
		case '\r':
		default:
			return false, f.r.UnreadByte()
		}
	}
}

// readHeader reads the header block into f.hdr and returns the body length.
func (f *framer) readHeader() (int, error) {
	f.hdr = f.hdr[:0]
	cl := -1      // Content-Length seen so far, -1 if none
	inCL := false // the header being read is Content-Length (for folding)
	first := true // the start line is not a header
	for {
		line, err := f.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(trimEOL(line)) > f.maxLine {
			return 0, errLineTooLong
		}
		if err != nil {
			return 0, unexpectedEOF(err)
		}
		if len(f.hdr)+len(line) > f.maxMsg {
			return 0, errOversize
		}
		f.hdr = append(f.hdr, line...)
		text := trimEOL(line)
		folded := len(text) > 0 && (text[0] == ' ' || text[0] == '\t')
		if inCL && folded {
			f.clVal = append(f.clVal, ' ')
			f.clVal = append(f.clVal, text...)
			continue
		}
		if inCL {
			if cl, err = f.commitCL(cl); err != nil {
				return 0, err
			}
			inCL = false
		}
		if len(text) == 0 {
			return max(cl, 0), nil
		}
		if first || folded {
			first = false
			continue
		}
		if name, value, ok := bytes.Cut(text, []byte{':'}); ok && isContentLength(trimWS(name)) {
			inCL = true
			f.clVal = append(f.clVal[:0], value...)
		}
	}
}

// commitCL parses the Content-Length value in f.clVal. Several
// Content-Length headers must agree: a stream whose message length is
// ambiguous cannot be framed safely.
func (f *framer) commitCL(prev int) (int, error) {
	n, err := parseContentLength(trimWS(f.clVal), f.maxMsg)
	if err != nil {
		return 0, err
	}
	if prev >= 0 && prev != n {
		return 0, errBadFraming
	}
	return n, nil
}

// parseContentLength parses a decimal length. A value that is empty or not
// all digits is errBadFraming; one above maxMsg is errOversize.
func parseContentLength(v []byte, maxMsg int) (int, error) {
	if len(v) == 0 {
		return 0, errBadFraming
	}
	n := 0
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, errBadFraming
		}
		n = n*10 + int(b-'0')
		if n > maxMsg {
			return 0, errOversize
		}
	}
	return n, nil
}

func isContentLength(name []byte) bool {
	return bytes.EqualFold(name, []byte("content-length")) || bytes.EqualFold(name, []byte("l"))
}

// trimEOL removes the line terminator: CRLF, or a bare LF, which lenient
// peers send.
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'})
}

func trimWS(b []byte) []byte { return bytes.Trim(b, " \t") }

// unexpectedEOF turns an EOF inside a message into io.ErrUnexpectedEOF, so
// that only io.EOF between messages means a clean end.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// isKeepalive reports whether a datagram or WebSocket message holds only CR
// and LF bytes (or nothing): a keepalive, never a SIP message.
func isKeepalive(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
