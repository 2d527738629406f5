package e2e

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// ReadStreamMessage reads one SIP message from a stream, skipping CRLF
// keepalives.
func ReadStreamMessage(r *bufio.Reader) ([]byte, error) {
	var head bytes.Buffer
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		if n := strings.ToLower(strings.TrimSpace(name)); n == "content-length" || n == "l" {
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head.Bytes(), body...), nil
}

// NextMessage splits the first whole message (headers and Content-Length
// body) off a stream.
func NextMessage(stream []byte) (msg, rest []byte, ok bool) {
	end := bytes.Index(stream, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, stream, false
	}
	head := stream[:end+4]
	body := 0
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, found := strings.Cut(line, ":")
		if found && (strings.EqualFold(strings.TrimSpace(k), "Content-Length") || strings.TrimSpace(k) == "l") {
			body = atoiOr0(strings.TrimSpace(v))
		}
	}
	if len(stream) < len(head)+body {
		return nil, stream, false
	}
	return stream[:len(head)+body], stream[len(head)+body:], true
}

// StatusCode is the status code of a response (100-699), else 0.
func StatusCode(msg []byte) int {
	line, _, _ := bytes.Cut(msg, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0
	}
	if code := atoiOr0(f[1]); code >= 100 && code < 700 {
		return code
	}
	return 0
}

// FinalCode is the status code of a final response (200-699), else 0.
func FinalCode(msg []byte) int {
	if code := StatusCode(msg); code >= 200 {
		return code
	}
	return 0
}

func atoiOr0(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1e6 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
