package sipptest

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// scenarioDir is test/sipp relative to the module root.
const scenarioDir = "test/sipp"

var moduleRoot = sync.OnceValue(func() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
})

// ScenarioPath returns the path of the named scenario in test/sipp at the
// module root, found by walking up from the working directory to go.mod.
// ".xml" is appended when name has no extension. Outside a module the path
// is relative to the working directory; Start reports a missing file.
func ScenarioPath(name string) string {
	if filepath.Ext(name) == "" {
		name += ".xml"
	}
	return filepath.Join(moduleRoot(), scenarioDir, name)
}

// bound reports whether a socket is bound to addr: a TCP listener when tcp
// is true, else a UDP socket. It reads /proc/net instead of probing, since
// a probe bind could steal the port from SIPp. An error means /proc/net is
// unreadable (not Linux, or hidden).
func bound(tcp bool, addr netip.AddrPort) (bool, error) {
	name := "/proc/net/udp"
	if tcp {
		name = "/proc/net/tcp"
	}
	if addr.Addr().Is6() {
		name += "6"
	}
	f, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("read socket table: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 4 {
			continue
		}
		local, err := parseProcAddr(fields[1])
		if err != nil || local != addr {
			continue
		}
		const listen = "0A"
		if !tcp || fields[3] == listen {
			return true, nil
		}
	}
	if err := s.Err(); err != nil {
		return false, fmt.Errorf("read socket table: %w", err)
	}
	return false, nil
}

// parseProcAddr parses a /proc/net local_address such as "0300007F:13C4":
// the IP as 32-bit words in host byte order, the port big-endian, in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("socket address %q: no port", s)
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("socket address %q: bad ip", s)
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("socket address %q: bad port: %w", s, err)
	}
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
