package cdr

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// fileFormat is how a file writer lays records out.
type fileFormat interface {
	// ext is the file name extension, without the dot.
	ext() string
	// header is what a file starts with (nil for none).
	header() []byte
	// appendRecord appends one record, ending with a newline.
	appendRecord(dst []byte, r *Record) ([]byte, error)
	// scan reads a file's content as this format wrote it: the id and start
	// offset of every whole record, in order, and the length of the
	// well-formed prefix (where a torn or damaged tail begins).
	scan(data []byte) (recs []idAt, valid int64)
	// current reports whether a file's content is in this version's layout,
	// so that records can be appended to it; scan also reads files of an
	// older layout, which are finished as they are.
	current(data []byte) bool
}

// idAt is a record found in a file.
type idAt struct {
	id    string
	start int64
}

// jsonLines writes one JSON object per line.
type jsonLines struct{}

func (jsonLines) ext() string    { return "jsonl" }
func (jsonLines) header() []byte { return nil }

func (jsonLines) appendRecord(dst []byte, r *Record) ([]byte, error) {
	n := len(dst)
	dst, err := r.appendJSON(dst)
	if err != nil {
		return dst[:n], err
	}
	return append(dst, '\n'), nil
}

// current: JSON objects name their fields; every version's lines mix.
func (jsonLines) current([]byte) bool { return true }

func (jsonLines) scan(data []byte) ([]idAt, int64) {
	var recs []idAt
	var off int64
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return recs, off // a line without its newline is torn
		}
		var r struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data[off:off+int64(i)], &r); err != nil || r.ID == "" {
			return recs, off
		}
		recs = append(recs, idAt{r.ID, off})
		off += int64(i) + 1
	}
}

// csvFormat writes a header line with the column names, then one row per
// record (RFC 4180 quoting, LF line ends).
type csvFormat struct{ head []byte }

func newCSV() *csvFormat {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(Columns()) // a bytes.Buffer does not fail
	w.Flush()
	return &csvFormat{head: b.Bytes()}
}

func (*csvFormat) ext() string      { return "csv" }
func (f *csvFormat) header() []byte { return f.head }

// appendRecord refuses a record with a NUL in a field: CSV has no way to
// write one that its readers (PostgreSQL's COPY among them) accept.
func (*csvFormat) appendRecord(dst []byte, r *Record) ([]byte, error) {
	b := bytes.NewBuffer(dst)
	w := csv.NewWriter(b)
	fields := make([]string, len(columns))
	for i, c := range columns {
		fields[i] = c.text(r)
		if strings.IndexByte(fields[i], 0) >= 0 {
			return dst, fmt.Errorf("encode record %s: csv cannot carry the NUL in field %s", r.ID, c.name)
		}
	}
	if err := w.Write(fields); err != nil {
		return dst, fmt.Errorf("encode record %s: %w", r.ID, err)
	}
	w.Flush()
	return b.Bytes(), nil
}

// current: a file of an older version has fewer columns (a version adds
// columns at the end only).
func (f *csvFormat) current(data []byte) bool { return bytes.HasPrefix(data, f.head) }

// oldestColumns is how many columns the first version's files have.
const oldestColumns = 32

func (f *csvFormat) scan(data []byte) ([]idAt, int64) {
	line, _, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return nil, 0 // not even a whole header
	}
	rd := csv.NewReader(bytes.NewReader(data))
	rd.ReuseRecord = true
	head, err := rd.Read()
	if err != nil || len(head) < oldestColumns || !slices.Equal(head, Columns()[:min(len(head), len(columns))]) ||
		rd.InputOffset() != int64(len(line)+1) {
		return nil, 0 // a header this writer never wrote
	}
	rd.FieldsPerRecord = len(head)
	var recs []idAt
	valid := rd.InputOffset()
	for {
		start := rd.InputOffset()
		row, err := rd.Read()
		if errors.Is(err, io.EOF) || err != nil {
			return recs, valid
		}
		end := rd.InputOffset()
		if data[end-1] != '\n' || row[0] == "" {
			return recs, valid // the last row lost its newline: torn
		}
		recs = append(recs, idAt{row[0], start})
		valid = end
	}
}
