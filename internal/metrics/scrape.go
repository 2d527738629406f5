package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources are the counters the SBC's parts keep, read at every scrape. A
// nil field leaves its metrics out. Each function must be safe to call
// from the scraping goroutine and fast (no I/O).
type Sources struct {
	ActiveCalls   func() int            // sbc_calls_active
	Transactions  func() int            // sbc_sip_transactions
	MediaSessions func() int            // sbc_media_sessions
	MediaRelayed  func() MediaRelayed   // sbc_media_relayed_packets_total
	Registrations func() int            // sbc_registrations
	Server        func() ServerStats    // B2BUA counters
	Overload      func() OverloadStats  // the overload control
	Transport     func() TransportStats // SIP transport counters
	Trunks        func() []TrunkState   // sbc_trunk_up
	CDR           func() CDRStats       // spool and writers
	HEP           func() HEPStats       // HEP export
	// WebRTC counts the WebRTC transports' packets by kind (rtp_in,
	// not_ready, early, unrouted, ...), closed ones included:
	// sbc_webrtc_packets_total.
	WebRTC func() map[string]uint64
	// Cluster is the node's view of the shared state in Redis; nil on a
	// single node.
	Cluster func() ClusterStats
	// Bans are the ban store's counters: sbc_bans, sbc_bans_added_total.
	Bans func() BanStats
	// Transcoding counts the calls the media transcodes:
	// sbc_transcoded_calls, sbc_transcoded_calls_total.
	Transcoding func() TranscodingStats
}

// TranscodingStats are the media's transcoding counters.
type TranscodingStats struct {
	Active int    // calls transcoded now
	Total  uint64 // calls transcoded since start
}

// BanStats are the ban store's counters.
type BanStats struct {
	Active int // bans in force
	// Policy counts the bans the policy chain made (fail2ban thresholds,
	// scanners), Admin those the admin API made, since start.
	Policy, Admin uint64
}

// ClusterStats are a cluster node's alarm and counters.
type ClusterStats struct {
	RedisUp  bool   // sbc_cluster_redis_up
	Failures uint64 // sbc_cluster_redis_failures_total
	// PeerCalls is the calls in progress on the other nodes, as this node
	// last read them from Redis: sbc_cluster_peer_calls.
	PeerCalls int
}

// ServerStats are the B2BUA's counters.
type ServerStats struct {
	BadMessages uint64 // unparsable SIP messages
	NoDialog    uint64 // in-dialog requests for no dialog (481)
}

// MediaRelayed counts the packets the media relay forwarded since start,
// live calls included.
type MediaRelayed struct {
	RTP, RTCP uint64
}

// OverloadStats are the overload control's state and measures.
type OverloadStats struct {
	Overloaded    bool          // new calls are being refused
	Shed          float64       // share of new calls refused now, 0 to 1
	StandingDelay time.Duration // the smallest queueing delay of the last 100 ms
	Refused       uint64        // new calls refused with 503
	// The histogram of queueing delays: WaitCounts[i] messages waited at
	// most WaitBounds[i] seconds (and more than the bound before it); the
	// one more count, longer than every bound. WaitSum is their total.
	WaitBounds []float64
	WaitCounts []uint64
	WaitSum    time.Duration
}

// TransportStats are the SIP transport's counters.
type TransportStats struct {
	SendErrors uint64
	// Dropped counts messages dropped and connections closed by reason:
	// oversize, line_too_long, bad_framing, handshake, conn_limit,
	// idle_closed, queue_full, socket_overflow.
	Dropped map[string]uint64
	// Open is the number of open connections by transport (tcp, tls, ws,
	// wss): the WebSocket connections are ws and wss.
	Open map[string]int
}

// TrunkState is one trunk's health.
type TrunkState struct {
	Name string
	Up   bool
}

// CDRStats are the CDR recorder's counters.
type CDRStats struct {
	Recorded     uint64 // records made durable in the spool
	SpoolErrors  uint64
	SpoolFailing bool
	Backlog      int    // records held in memory, the spool refusing them
	Dropped      uint64 // records lost
	Writers      []CDRWriterStats
}

// CDRWriterStats are one CDR writer's counters.
type CDRWriterStats struct {
	Name      string
	Delivered uint64
	Pending   uint64 // queue depth: records in the spool not yet delivered
	Failures  uint64 // failed delivery attempts (write errors)
	Failing   bool
	// Quarantined counts records the destination refused for good (bad
	// data), set aside in the spool's quarantine file.
	Quarantined uint64
}

// HEPStats are the HEP sender's counters.
type HEPStats struct {
	Sent, Dropped, Errors uint64
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

var (
	descActive        = desc("calls_active", "Calls in progress (ringing or answered).")
	descTransactions  = desc("sip_transactions", "Live SIP transactions.")
	descMedia         = desc("media_sessions", "Open media sessions.")
	descRegistrations = desc("registrations", "Registered contacts (bindings).")
	descMediaRelayed  = desc("media_relayed_packets_total", "Packets the media relay forwarded, by kind (rtp, rtcp), live calls included: read at any time, unlike sbc_media_packets_total.", "kind")
	descBadMessages   = desc("sip_bad_messages_total", "Unparsable SIP messages, answered 400 or dropped.")
	descNoDialog      = desc("sip_no_dialog_total", "In-dialog requests for a dialog that does not exist (481).")
	descSendErrors    = desc("sip_send_errors_total", "SIP messages the transport failed to send.")
	descDropped       = desc("sip_transport_dropped_total", "SIP messages dropped and connections closed by the transport, by reason.", "reason")
	descConnections   = desc("sip_connections", "Open SIP stream connections by transport (tcp, tls, ws, wss): ws and wss are the WebSocket clients.", "transport")
	descTrunkUp       = desc("trunk_up", "1 when the trunk takes calls, 0 when OPTIONS probing marked it down.", "trunk")
	descCDRRecorded   = desc("cdr_records_total", "Call records made durable in the CDR spool.")
	descCDRSpoolErr   = desc("cdr_spool_errors_total", "Failed CDR spool writes and fsyncs.")
	descCDRSpoolFail  = desc("cdr_spool_failing", "1 while the CDR spool cannot be written (records wait in memory).")
	descCDRBacklog    = desc("cdr_backlog", "Finished call records held in memory because the spool refused them.")
	descCDRDropped    = desc("cdr_dropped_total", "Call records lost (memory backlog overflowed). Anything but 0 needs an operator.")
	descCDRDelivered  = desc("cdr_writer_delivered_total", "Call records a CDR writer delivered.", "writer")
	descCDRPending    = desc("cdr_writer_queue_depth", "Call records in the spool a CDR writer has yet to deliver.", "writer")
	descCDRFailures   = desc("cdr_writer_errors_total", "Failed delivery attempts (write errors) of a CDR writer; each is retried.", "writer")
	descCDRFailing    = desc("cdr_writer_failing", "1 while a CDR writer's last attempt failed (its alarm).", "writer")
	descCDRQuarantine = desc("cdr_quarantined_total", "Call records a CDR writer's destination refused for good (bad data), set aside in its quarantine file in the spool. Anything but 0 needs an operator.", "writer")
	descOverloaded    = desc("overloaded", "1 while the overload control refuses new calls with 503.")
	descShed          = desc("overload_shed_ratio", "Share of new calls the overload control refuses now (0 to 1).")
	descStanding      = desc("sip_standing_delay_seconds", "Smallest queueing delay of received SIP messages over the last 100 ms (the standing queue).")
	descRefused       = desc("overload_refused_total", "New calls refused with 503 and Retry-After by the overload control (each copy of a retransmitted INVITE counts).")
	descQueueDelay    = desc("sip_queue_delay_seconds", "Queueing delay of received UDP SIP messages: from the kernel's arrival to the start of handling.")
	descWebRTC        = desc("webrtc_packets_total", "Packets of the WebRTC transports by kind (rtp_in, rtp_out, rtcp_in, rtcp_out, dtls, srtp_auth_fail, srtp_replay, malformed, unknown, unrouted, not_ready, early, mux_direct, mux_to_ice, mux_dropped), calls live and ended.", "kind")
	descRedisUp       = desc("cluster_redis_up", "1 while Redis answers this cluster node; 0 is the alarm: the node serves with its local state.")
	descRedisFailures = desc("cluster_redis_failures_total", "Heartbeats Redis did not take.")
	descPeerCalls     = desc("cluster_peer_calls", "Calls in progress on the other nodes, as this node last read them from Redis; its admission limits count them with its own.")
	descHEP           = desc("hep_packets_total", "HEP packets toward the collector, by result (sent, dropped, error).", "result")
	descBans          = desc("bans", "Source bans in force (dynamic, admin and from other cluster nodes).")
	descTranscoded    = desc("transcoded_calls", "Calls whose audio the SBC transcodes now (their sides share no codec); each costs CPU, see media.transcoding.max_calls.")
	descTranscodedAll = desc("transcoded_calls_total", "Calls whose audio the SBC transcoded, since start.")
	descBansAdded     = desc("bans_added_total", "Source bans this node made, by origin: policy (fail2ban thresholds, scanners), admin (the admin API).", "origin")
)

// scrape reads Sources at each collection.
type scrape struct{ src Sources }

// Describe sends nothing: the metrics present depend on which Sources are
// set, so the collector is unchecked.
func (s *scrape) Describe(chan<- *prometheus.Desc) {}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, f func() int) {
		if f != nil {
			emit(ch, d, prometheus.GaugeValue, float64(f()))
		}
	}
	gauge(descActive, s.src.ActiveCalls)
	gauge(descTransactions, s.src.Transactions)
	gauge(descMedia, s.src.MediaSessions)
	gauge(descRegistrations, s.src.Registrations)
	if s.src.MediaRelayed != nil {
		r := s.src.MediaRelayed()
		emit(ch, descMediaRelayed, prometheus.CounterValue, float64(r.RTP), "rtp")
		emit(ch, descMediaRelayed, prometheus.CounterValue, float64(r.RTCP), "rtcp")
	}
	if s.src.Transcoding != nil {
		t := s.src.Transcoding()
		emit(ch, descTranscoded, prometheus.GaugeValue, float64(t.Active))
		emit(ch, descTranscodedAll, prometheus.CounterValue, float64(t.Total))
	}
	if s.src.Server != nil {
		st := s.src.Server()
		emit(ch, descBadMessages, prometheus.CounterValue, float64(st.BadMessages))
		emit(ch, descNoDialog, prometheus.CounterValue, float64(st.NoDialog))
	}
	if s.src.Overload != nil {
		s.overload(ch, s.src.Overload())
	}
	if s.src.Transport != nil {
		s.transport(ch, s.src.Transport())
	}
	if s.src.Trunks != nil {
		for _, tr := range s.src.Trunks() {
			emit(ch, descTrunkUp, prometheus.GaugeValue, boolValue(tr.Up), tr.Name)
		}
	}
	if s.src.CDR != nil {
		s.cdr(ch, s.src.CDR())
	}
	if s.src.WebRTC != nil {
		for kind, n := range s.src.WebRTC() {
			emit(ch, descWebRTC, prometheus.CounterValue, float64(n), kind)
		}
	}
	if s.src.Cluster != nil {
		st := s.src.Cluster()
		up := 0.0
		if st.RedisUp {
			up = 1
		}
		emit(ch, descRedisUp, prometheus.GaugeValue, up)
		emit(ch, descRedisFailures, prometheus.CounterValue, float64(st.Failures))
		emit(ch, descPeerCalls, prometheus.GaugeValue, float64(st.PeerCalls))
	}
	if s.src.Bans != nil {
		st := s.src.Bans()
		emit(ch, descBans, prometheus.GaugeValue, float64(st.Active))
		emit(ch, descBansAdded, prometheus.CounterValue, float64(st.Policy), "policy")
		emit(ch, descBansAdded, prometheus.CounterValue, float64(st.Admin), "admin")
	}
	if s.src.HEP != nil {
		st := s.src.HEP()
		emit(ch, descHEP, prometheus.CounterValue, float64(st.Sent), "sent")
		emit(ch, descHEP, prometheus.CounterValue, float64(st.Dropped), "dropped")
		emit(ch, descHEP, prometheus.CounterValue, float64(st.Errors), "error")
	}
}

func (s *scrape) transport(ch chan<- prometheus.Metric, st TransportStats) {
	emit(ch, descSendErrors, prometheus.CounterValue, float64(st.SendErrors))
	for reason, n := range st.Dropped {
		emit(ch, descDropped, prometheus.CounterValue, float64(n), reason)
	}
	for kind, n := range st.Open {
		emit(ch, descConnections, prometheus.GaugeValue, float64(n), kind)
	}
}

func (s *scrape) overload(ch chan<- prometheus.Metric, st OverloadStats) {
	emit(ch, descOverloaded, prometheus.GaugeValue, boolValue(st.Overloaded))
	emit(ch, descShed, prometheus.GaugeValue, st.Shed)
	emit(ch, descStanding, prometheus.GaugeValue, st.StandingDelay.Seconds())
	emit(ch, descRefused, prometheus.CounterValue, float64(st.Refused))
	if len(st.WaitCounts) != len(st.WaitBounds)+1 {
		return
	}
	buckets := make(map[float64]uint64, len(st.WaitBounds))
	var n uint64
	for i, b := range st.WaitBounds {
		n += st.WaitCounts[i]
		buckets[b] = n
	}
	n += st.WaitCounts[len(st.WaitBounds)]
	if m, err := prometheus.NewConstHistogram(descQueueDelay, n, st.WaitSum.Seconds(), buckets); err == nil {
		ch <- m
	}
}

func (s *scrape) cdr(ch chan<- prometheus.Metric, st CDRStats) {
	emit(ch, descCDRRecorded, prometheus.CounterValue, float64(st.Recorded))
	emit(ch, descCDRSpoolErr, prometheus.CounterValue, float64(st.SpoolErrors))
	emit(ch, descCDRSpoolFail, prometheus.GaugeValue, boolValue(st.SpoolFailing))
	emit(ch, descCDRBacklog, prometheus.GaugeValue, float64(st.Backlog))
	emit(ch, descCDRDropped, prometheus.CounterValue, float64(st.Dropped))
	for _, w := range st.Writers {
		emit(ch, descCDRDelivered, prometheus.CounterValue, float64(w.Delivered), w.Name)
		emit(ch, descCDRPending, prometheus.GaugeValue, float64(w.Pending), w.Name)
		emit(ch, descCDRFailures, prometheus.CounterValue, float64(w.Failures), w.Name)
		emit(ch, descCDRFailing, prometheus.GaugeValue, boolValue(w.Failing), w.Name)
		emit(ch, descCDRQuarantine, prometheus.CounterValue, float64(w.Quarantined), w.Name)
	}
}

// emit sends one sample; a label value the exposition format refuses
// (invalid UTF-8 in a configured name) leaves the sample out.
func emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	if m, err := prometheus.NewConstMetric(d, t, v, labels...); err == nil {
		ch <- m
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
