// Package hep exports captured signaling to a Homer collector
// (heplify-server, homer-app) in HEP version 3, the Homer Encapsulation
// Protocol: every SIP message the SBC sends or receives, on both legs of a
// call, and RTCP reports, each wrapped with its addresses, a timestamp, the
// capture agent's id and a correlation id that ties the legs of one call
// together.
//
// Packet is one HEP3 message; Append encodes it and Decode reads one back
// (collectors, tests, fuzzing). Sender queues packets to one collector over
// UDP without ever blocking its callers.
package hep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ProtoType is what a packet's payload carries (HEP chunk 0x000b).
type ProtoType uint8

// Payload types the SBC sends.
const (
	ProtoSIP  ProtoType = 1 // a SIP message, as sent or received
	ProtoRTCP ProtoType = 5 // an RTCP report, as JSON (see RTCPReport)
)

// IP protocol numbers for Packet.Transport (HEP chunk 0x0002).
const (
	TransportUDP uint8 = 17 // SIP over UDP, RTCP
	TransportTCP uint8 = 6  // SIP over TCP, TLS, WS and WSS
)

// Chunk type ids of the generic vendor (0x0000), from the HEP3 draft.
const (
	chunkFamily     = 0x0001 // uint8: 2 IPv4, 10 IPv6
	chunkProto      = 0x0002 // uint8: IP protocol number
	chunkSrcIPv4    = 0x0003
	chunkDstIPv4    = 0x0004
	chunkSrcIPv6    = 0x0005
	chunkDstIPv6    = 0x0006
	chunkSrcPort    = 0x0007 // uint16
	chunkDstPort    = 0x0008 // uint16
	chunkTimeSec    = 0x0009 // uint32, Unix seconds
	chunkTimeUsec   = 0x000a // uint32, microseconds within the second
	chunkProtoType  = 0x000b // uint8
	chunkCaptureID  = 0x000c // uint32
	chunkAuthKey    = 0x000e // octets
	chunkPayload    = 0x000f // octets
	chunkCorrelate  = 0x0011 // octets
	chunkHeaderSize = 6      // vendor, type, length
	headerSize      = 6      // "HEP3", total length
	familyIPv4      = 2
	familyIPv6      = 10
)

// MaxPacketSize is the largest HEP3 packet: its length field is 16 bits.
const MaxPacketSize = 65535

var magic = [4]byte{'H', 'E', 'P', '3'}

// Errors of Append and Decode.
var (
	// ErrTooLarge means the encoded packet would exceed MaxPacketSize.
	ErrTooLarge = errors.New("hep: packet larger than 65535 bytes")
	// ErrMalformed means Decode found no valid HEP3 packet.
	ErrMalformed = errors.New("hep: malformed packet")
)

// Packet is one captured message with what HEP3 says about it. The zero
// value encodes as an empty IPv4 capture.
type Packet struct {
	Src, Dst  netip.AddrPort // where the message came from and went to
	Transport uint8          // TransportUDP or TransportTCP
	Time      time.Time      // when it was captured
	Type      ProtoType      // ProtoSIP or ProtoRTCP
	CaptureID uint32         // the capture agent (this SBC node)
	AuthKey   string         // the collector's password; "" sends no chunk
	// Correlation links packets of one call; for SIP, collectors group by
	// the Call-ID and use this to join the other leg's Call-ID.
	Correlation string // "" sends no chunk
	Payload     []byte
}

// Append encodes p as one HEP3 packet appended to dst. Addresses of
// different families are both sent as IPv6 (IPv4-mapped). It fails only
// when the result would exceed MaxPacketSize.
func (p *Packet) Append(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, magic[:]...)
	dst = append(dst, 0, 0) // total length, filled in below
	src, dstIP := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	v6 := src.Is6() || dstIP.Is6()
	if v6 {
		dst = appendUint8(dst, chunkFamily, familyIPv6)
	} else {
		dst = appendUint8(dst, chunkFamily, familyIPv4)
	}
	dst = appendUint8(dst, chunkProto, p.Transport)
	dst = appendAddrs(dst, src, dstIP, v6)
	dst = appendUint16(dst, chunkSrcPort, p.Src.Port())
	dst = appendUint16(dst, chunkDstPort, p.Dst.Port())
	var sec, usec uint32
	if !p.Time.IsZero() {
		sec, usec = uint32(p.Time.Unix()), uint32(p.Time.Nanosecond()/1000)
	}
	dst = appendUint32(dst, chunkTimeSec, sec)
	dst = appendUint32(dst, chunkTimeUsec, usec)
	dst = appendUint8(dst, chunkProtoType, uint8(p.Type))
	dst = appendUint32(dst, chunkCaptureID, p.CaptureID)
	if p.AuthKey != "" {
		dst = appendBytes(dst, chunkAuthKey, []byte(p.AuthKey))
	}
	if p.Correlation != "" {
		dst = appendBytes(dst, chunkCorrelate, []byte(p.Correlation))
	}
	dst = appendBytes(dst, chunkPayload, p.Payload)
	n := len(dst) - start
	if n > MaxPacketSize {
		return dst[:start], ErrTooLarge
	}
	binary.BigEndian.PutUint16(dst[start+4:], uint16(n))
	return dst, nil
}

func appendAddrs(dst []byte, src, dstIP netip.Addr, v6 bool) []byte {
	if v6 {
		s, d := src.As16(), dstIP.As16()
		dst = appendBytes(dst, chunkSrcIPv6, s[:])
		return appendBytes(dst, chunkDstIPv6, d[:])
	}
	s, d := as4(src), as4(dstIP)
	dst = appendBytes(dst, chunkSrcIPv4, s[:])
	return appendBytes(dst, chunkDstIPv4, d[:])
}

// as4 returns the 4 bytes of an IPv4 address; the invalid address is
// 0.0.0.0.
func as4(a netip.Addr) [4]byte {
	if !a.Is4() {
		return [4]byte{}
	}
	return a.As4()
}

func chunkHeader(dst []byte, typ uint16, payload int) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 0) // generic vendor
	dst = binary.BigEndian.AppendUint16(dst, typ)
	return binary.BigEndian.AppendUint16(dst, uint16(chunkHeaderSize+payload))
}

func appendUint8(dst []byte, typ uint16, v uint8) []byte {
	return append(chunkHeader(dst, typ, 1), v)
}

func appendUint16(dst []byte, typ uint16, v uint16) []byte {
	return binary.BigEndian.AppendUint16(chunkHeader(dst, typ, 2), v)
}

func appendUint32(dst []byte, typ uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(chunkHeader(dst, typ, 4), v)
}

// appendBytes writes an octet chunk; a payload too long for the 16-bit
// chunk length makes the whole packet too long, which Append reports.
func appendBytes(dst []byte, typ uint16, v []byte) []byte {
	n := len(v)
	if n > MaxPacketSize-chunkHeaderSize {
		n = MaxPacketSize - chunkHeaderSize
	}
	dst = chunkHeader(dst, typ, n)
	return append(dst, v...)
}

// Decode reads one HEP3 packet from b. Chunks of other vendors and unknown
// types are skipped; the payload aliases b. It fails with ErrMalformed
// (wrapped with the reason) when b is not a whole, well-formed packet.
func Decode(b []byte) (Packet, error) {
	var p Packet
	if len(b) < headerSize || [4]byte(b[:4]) != magic {
		return p, fmt.Errorf("%w: no HEP3 header", ErrMalformed)
	}
	total := int(binary.BigEndian.Uint16(b[4:]))
	if total < headerSize || total > len(b) {
		return p, fmt.Errorf("%w: length %d of %d bytes", ErrMalformed, total, len(b))
	}
	var d decoder
	for rest := b[headerSize:total]; len(rest) > 0; {
		if len(rest) < chunkHeaderSize {
			return p, fmt.Errorf("%w: truncated chunk header", ErrMalformed)
		}
		vendor, typ := binary.BigEndian.Uint16(rest), binary.BigEndian.Uint16(rest[2:])
		n := int(binary.BigEndian.Uint16(rest[4:]))
		if n < chunkHeaderSize || n > len(rest) {
			return p, fmt.Errorf("%w: chunk 0x%04x length %d", ErrMalformed, typ, n)
		}
		if vendor == 0 {
			if err := d.chunk(&p, typ, rest[chunkHeaderSize:n]); err != nil {
				return p, err
			}
		}
		rest = rest[n:]
	}
	p.Src = netip.AddrPortFrom(d.src, d.srcPort)
	p.Dst = netip.AddrPortFrom(d.dst, d.dstPort)
	if d.sec != 0 || d.usec != 0 {
		p.Time = time.Unix(int64(d.sec), int64(d.usec)*1000)
	}
	return p, nil
}

// decoder holds the chunks that make up one field of Packet.
type decoder struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
	sec, usec        uint32
}

func (d *decoder) chunk(p *Packet, typ uint16, v []byte) error {
	if n := fixedSize(typ); n > 0 && len(v) != n {
		return fmt.Errorf("%w: chunk 0x%04x has %d bytes, want %d", ErrMalformed, typ, len(v), n)
	}
	switch typ {
	case chunkProto:
		p.Transport = v[0]
	case chunkProtoType:
		p.Type = ProtoType(v[0])
	case chunkSrcIPv4, chunkSrcIPv6:
		d.src, _ = netip.AddrFromSlice(v)
	case chunkDstIPv4, chunkDstIPv6:
		d.dst, _ = netip.AddrFromSlice(v)
	case chunkSrcPort:
		d.srcPort = binary.BigEndian.Uint16(v)
	case chunkDstPort:
		d.dstPort = binary.BigEndian.Uint16(v)
	case chunkTimeSec:
		d.sec = binary.BigEndian.Uint32(v)
	case chunkTimeUsec:
		d.usec = binary.BigEndian.Uint32(v)
	case chunkCaptureID:
		p.CaptureID = binary.BigEndian.Uint32(v)
	case chunkAuthKey:
		p.AuthKey = string(v)
	case chunkCorrelate:
		p.Correlation = string(v)
	case chunkPayload:
		p.Payload = v
	}
	return nil
}

// fixedSize is the payload size of a fixed-size chunk type; 0 for octet
// strings and unknown types.
func fixedSize(typ uint16) int {
	switch typ {
	case chunkFamily, chunkProto, chunkProtoType:
		return 1
	case chunkSrcPort, chunkDstPort:
		return 2
	case chunkTimeSec, chunkTimeUsec, chunkCaptureID, chunkSrcIPv4, chunkDstIPv4:
		return 4
	case chunkSrcIPv6, chunkDstIPv6:
		return 16
	}
	return 0
}
