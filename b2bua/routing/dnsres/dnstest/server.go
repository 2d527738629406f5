// Package dnstest runs a small authoritative DNS server for tests: the
// records it serves can be changed while it runs, and it counts the
// queries it answers by name and type.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers from its records over UDP and TCP on one address.
type Server struct {
	Addr string // ip:port

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case fqdn + "/" + type
	queries map[string]int
	udp     *dns.Server
	tcp     *dns.Server
}

// Start listens on ip at a free port (UDP and TCP share it) and stops at
// the end of the test.
func Start(t testing.TB, ip string) *Server {
	t.Helper()
	s := &Server{records: map[string][]dns.RR{}, queries: map[string]int{}}
	var pc net.PacketConn
	var l net.Listener
	for attempt := 0; ; attempt++ {
		var err error
		pc, err = net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("dns server: %v", err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if attempt == 5 {
			t.Fatalf("dns server: %v", err)
		}
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	<-started
	<-started
	t.Cleanup(func() {
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
	})
	return s
}

// Set replaces the records of their names and types with rrs, given in
// zone file syntax, e.g. "_sip._udp.example.test. 60 IN SRV 10 0 5060 a.example.test.".
func (s *Server) Set(t testing.TB, rrs ...string) {
	t.Helper()
	byKey := map[string][]dns.RR{}
	for _, text := range rrs {
		rr, err := dns.NewRR(text)
		if err != nil {
			t.Fatalf("record %q: %v", text, err)
		}
		k := key(rr.Header().Name, rr.Header().Rrtype)
		byKey[k] = append(byKey[k], rr)
	}
	s.mu.Lock()
	for k, v := range byKey {
		s.records[k] = v
	}
	s.mu.Unlock()
}

// Queries is how many queries for name (any case, with or without the
// final dot) of type qtype were answered.
func (s *Server) Queries(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[key(name, qtype)]
}

func key(name string, qtype uint16) string {
	return strings.ToLower(dns.Fqdn(name)) + "/" + dns.TypeToString[qtype]
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		k := key(q.Name, q.Qtype)
		s.mu.Lock()
		s.queries[k]++
		m.Answer = append(m.Answer, s.records[k]...)
		s.mu.Unlock()
		if len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}
