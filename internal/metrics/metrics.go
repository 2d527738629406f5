// Package metrics holds the SBC's Prometheus metrics: one registry, the
// counters and histograms the SBC's parts increment as things happen
// (calls, SIP messages, policy rejections, trunk transitions, reloads), and
// gauges and counters read at scrape time from the counters the parts keep
// anyway (active calls, transactions, media sessions, registrations,
// transport, CDR spool and writers, HEP export).
//
// Every metric is named sbc_*; the README lists them. Labels only take
// values from bounded sets (configured trunk and writer names, SIP methods
// the SBC knows, B2BUA hangup causes), so a peer cannot grow the series.
//
// A nil *Metrics is valid and records nothing, so parts can be wired
// without metrics in tests.
package metrics

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

const namespace = "sbc"

// Metrics is the SBC's registry and the metrics parts increment. Create it
// with New. Its methods are safe for concurrent use and do nothing on a
// nil receiver.
type Metrics struct {
	reg *prometheus.Registry
	err error // the first registration error, for New
	sip sipCounters

	callsStarted  *prometheus.CounterVec
	callsAnswered *prometheus.CounterVec
	callsFailed   *prometheus.CounterVec
	callsEnded    *prometheus.CounterVec
	setupTime     *prometheus.HistogramVec
	callDuration  *prometheus.HistogramVec

	sipRequests  *prometheus.CounterVec
	sipResponses *prometheus.CounterVec

	// PolicyRejections counts requests the policy chain stopped, by stage
	// (blacklist, ratelimit, sanity, auth, admission, dialplan) and
	// reason. The policy chain increments it with PolicyRejected.
	policyRejections *prometheus.CounterVec

	mediaPackets *prometheus.CounterVec
	mediaBytes   *prometheus.CounterVec
	mediaLost    *prometheus.CounterVec
	mediaJitter  *prometheus.HistogramVec
	mediaMOS     *prometheus.HistogramVec
	mediaRefused *prometheus.CounterVec
	srtpFailures *prometheus.CounterVec
	dtlsFailures *prometheus.CounterVec

	trunkTransitions *prometheus.CounterVec
	trunkRegState    *prometheus.GaugeVec
	trunkRegChanges  *prometheus.CounterVec
	reloads          *prometheus.CounterVec
	lastReload       prometheus.Gauge
	draining         prometheus.Gauge
}

// New builds the registry with the Go runtime and process collectors, the
// SBC's event metrics, and a collector reading src at every scrape (nil
// fields of src are left out). It fails only if two metrics clash, which
// is a bug.
func New(src Sources) (*Metrics, error) {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.register(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registerCalls()
	m.registerSIP()
	m.registerMedia()
	m.registerOps()
	m.register(&scrape{src: src})
	if m.err != nil {
		return nil, fmt.Errorf("metrics: %w", m.err)
	}
	return m, nil
}

// register adds collectors, keeping the first error for New.
func (m *Metrics) register(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil && m.err == nil {
			m.err = err
		}
	}
}

func (m *Metrics) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	m.register(c)
	return c
}

func (m *Metrics) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
	m.register(h)
	return h
}

// add adds v to the counter with the given label values. Values the
// exposition format refuses (invalid UTF-8) are not counted rather than
// panicking as WithLabelValues would.
func add(c *prometheus.CounterVec, v float64, labels ...string) {
	if ctr, err := c.GetMetricWithLabelValues(labels...); err == nil {
		ctr.Add(v)
	}
}

// observe is add for histograms.
func observe(h *prometheus.HistogramVec, v float64, labels ...string) {
	if o, err := h.GetMetricWithLabelValues(labels...); err == nil {
		o.Observe(v)
	}
}

func (m *Metrics) registerCalls() {
	m.callsStarted = m.counter("calls_started_total", "Calls (new INVITEs accepted as calls), by the caller's transport.", "transport")
	m.callsAnswered = m.counter("calls_answered_total", "Calls answered, by trunk (\"echo\" for the echo destination).", "trunk")
	m.callsFailed = m.counter("calls_failed_total", "Calls that ended without an answer, by hangup cause and last trunk tried (\"\" if none).", "cause", "trunk")
	m.callsEnded = m.counter("calls_ended_total", "Calls ended, answered or not, by hangup cause, hangup side (a, b, sbc) and trunk.", "cause", "side", "trunk")
	m.setupTime = m.histogram("call_setup_seconds", "Post-dial delay of calls that rang or were answered: INVITE received to first 18x relayed, or to the answer.",
		[]float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60}, "trunk")
	m.callDuration = m.histogram("call_billsec_seconds", "Answered time of answered calls, at their end.",
		[]float64{5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200}, "trunk")
	m.policyRejections = m.counter("policy_rejections_total", "Requests the policy chain stopped, by stage and reason.", "stage", "reason")
}

func (m *Metrics) registerSIP() {
	m.sipRequests = m.counter("sip_requests_total", "SIP requests received (in) and sent (out), by method; retransmissions included.", "direction", "method")
	m.sipResponses = m.counter("sip_responses_total", "SIP responses received (in) and sent (out), by the CSeq method and status class (1xx..6xx).", "direction", "method", "class")
}

func (m *Metrics) registerMedia() {
	m.mediaPackets = m.counter("media_packets_total", "RTP packets relayed, by the side they came from (a: caller, b: callee); counted when the call ends.", "side")
	m.mediaBytes = m.counter("media_bytes_total", "RTP bytes (UDP payload) relayed, by the side they came from; counted when the call ends.", "side")
	m.mediaLost = m.counter("media_lost_packets_total", "RTP packets lost on the way from a side to the SBC (RFC 3550); counted when the call ends.", "side")
	m.mediaJitter = m.histogram("media_jitter_milliseconds", "Interarrival jitter of the RTP from a side, per call with media, at its end.",
		[]float64{1, 2, 5, 10, 20, 30, 50, 100, 200}, "side")
	m.mediaMOS = m.histogram("media_mos", "E-model MOS estimate of the RTP from a side, per call with media, at its end.",
		[]float64{1, 2, 2.5, 3, 3.5, 3.8, 4, 4.2, 4.4}, "side")
	m.mediaRefused = m.counter("media_refused_packets_total", "Packets a call's media ports refused, by the side whose port got them and why: "+
		"junk (not RTP/RTCP), payload_type (not negotiated), auth (SDES-SRTP that did not authenticate), source (valid media from a source the latch rules keep out); counted when the call ends.", "side", "reason")
	m.srtpFailures = m.counter("media_srtp_failures_total", "SRTP packets from a side that failed authentication or were replays; counted when the call ends.", "side")
	m.dtlsFailures = m.counter("media_dtls_failures_total", "Calls ended because a browser's ICE or DTLS did not complete, by hangup cause.", "cause")
	// Listed at 0 from the start, so a rate or an alert sees the first
	// failure, and a dashboard has the series before any.
	for _, c := range []outcome.Cause{outcome.CauseICETimeout, outcome.CauseDTLSTimeout, outcome.CauseDTLSFailed, outcome.CauseFingerprintMismatch} {
		add(m.dtlsFailures, 0, outcome.Classify(c, 0, false).Label)
	}
}

func (m *Metrics) registerOps() {
	m.trunkTransitions = m.counter("trunk_transitions_total", "Trunk state changes by OPTIONS probing, by trunk and new state (up, down).", "trunk", "state")
	m.reloads = m.counter("config_reloads_total", "Configuration reloads (SIGHUP, admin API), by result (ok, error).", "result")
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load (start or reload)."})
	m.draining = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "draining",
		Help: "1 while the SBC drains: new calls are refused with 503, active calls continue."})
	m.trunkRegState = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "trunk_registration_state",
		Help: "1 while the SBC is registered at the trunk (trunks[].register), 0 while it is registering, failing or stopped."}, []string{"trunk"})
	m.trunkRegChanges = m.counter("trunk_registration_changes_total", "Trunk registration state changes, by trunk and new state (registering, registered, failed, unregistered).", "trunk", "state")
	m.register(m.lastReload, m.draining, m.trunkRegState)
	m.lastReload.SetToCurrentTime()
}

// Registry returns the registry, for parts that add their own metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// CallStarted counts a new call arriving on transport (udp, tcp, tls, ws,
// wss).
func (m *Metrics) CallStarted(transport string) {
	if m == nil {
		return
	}
	add(m.callsStarted, 1, transport)
}

// CallAnswered counts a call answered through trunk.
func (m *Metrics) CallAnswered(trunk string) {
	if m == nil {
		return
	}
	add(m.callsAnswered, 1, trunk)
}

// Call is what CallEnded needs to know about a call that ended.
type Call struct {
	Trunk    string        // last trunk tried; "echo" for the echo destination; "" if none
	Cause    outcome.Cause // hangup cause (the CDR's hangup_cause)
	Side     outcome.Side  // who ended it (hangup_side)
	Answered bool
	// Start, Ring and Answer are the INVITE, the first 18x and the answer
	// (zero when they did not happen); End is when the call ended.
	Start, Ring, Answer, End time.Time
	// FromA and FromB are the media received from the caller and from the
	// callee.
	FromA, FromB outcome.Flow
}

// CallEnded counts a call's outcome, setup time and media.
func (m *Metrics) CallEnded(c Call) {
	if m == nil {
		return
	}
	o := outcome.Classify(c.Cause, 0, c.Answered)
	add(m.callsEnded, 1, o.Label, string(c.Side), c.Trunk)
	if !c.Answered {
		add(m.callsFailed, 1, o.Label, c.Trunk)
	}
	switch {
	case !c.Ring.IsZero():
		observe(m.setupTime, c.Ring.Sub(c.Start).Seconds(), c.Trunk)
	case !c.Answer.IsZero():
		observe(m.setupTime, c.Answer.Sub(c.Start).Seconds(), c.Trunk)
	}
	if c.Answered && !c.Answer.IsZero() && !c.End.IsZero() {
		observe(m.callDuration, c.End.Sub(c.Answer).Seconds(), c.Trunk)
	}
	if o.HandshakeFailed {
		add(m.dtlsFailures, 1, o.Label)
	}
	m.flow("a", c.FromA)
	m.flow("b", c.FromB)
}

func (m *Metrics) flow(side string, f outcome.Flow) {
	add(m.mediaPackets, float64(f.Packets), side)
	add(m.mediaBytes, float64(f.Bytes), side)
	// Added even when 0, so the series exists from the first call with
	// media and a loss ratio has a denominator (the dashboard's); the
	// RFC 3550 count goes negative with duplicates, which a counter
	// cannot.
	add(m.mediaLost, float64(max(f.Lost, 0)), side)
	add(m.srtpFailures, float64(f.SRTPFailed), side)
	for reason, n := range map[string]uint64{"junk": f.RefusedJunk, "payload_type": f.RefusedPT, "auth": f.RefusedAuth, "source": f.RefusedSource} {
		if n > 0 {
			add(m.mediaRefused, float64(n), side, reason)
		}
	}
	if f.Packets > 0 {
		observe(m.mediaJitter, f.JitterMs, side)
		if f.MOS > 0 {
			observe(m.mediaMOS, f.MOS, side)
		}
	}
}

// Direction of a SIP message, for SIPMessage.
const (
	In  = "in"
	Out = "out"
)

// methods are the method label values; anything else is "other", the
// last index.
var methods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "UPDATE", "INFO",
	"PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH", "other"}

// sipCounters caches the counters of SIPMessage, which runs for every
// message in and out: a label lookup (hashing, a slice of labels, the
// status class formatted) per message showed in profiles under load.
// Indexed by direction (0 in, 1 out), method and status class (0 for a
// request, 1..6 for 1xx..6xx, 7 other); filled on first use, so /metrics
// lists only what was counted.
type sipCounters [2][15][8]atomic.Pointer[prometheus.Counter]

func methodIndex(method string) int {
	for i, m := range methods[:len(methods)-1] {
		if m == method || strings.EqualFold(m, method) {
			return i
		}
	}
	return len(methods) - 1
}

var classes = [8]string{"", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "other"}

// SIPMessage counts one SIP message going direction (In or Out): a
// request when code is 0, else a response to method.
func (m *Metrics) SIPMessage(direction, method string, code int) {
	if m == nil {
		return
	}
	d, mi, class := 0, methodIndex(method), 0
	if direction == Out {
		d = 1
	}
	if code != 0 {
		class = 7
		if code >= 100 && code < 700 {
			class = code / 100
		}
	}
	slot := &m.sip[d][mi][class]
	if c := slot.Load(); c != nil {
		(*c).Inc()
		return
	}
	var c prometheus.Counter
	var err error
	if class == 0 {
		c, err = m.sipRequests.GetMetricWithLabelValues(direction, methods[mi])
	} else {
		c, err = m.sipResponses.GetMetricWithLabelValues(direction, methods[mi], classes[class])
	}
	if err != nil {
		return
	}
	slot.Store(&c)
	c.Inc()
}

// PolicyRejected counts a request the policy chain stopped at stage for
// reason. Both must come from small fixed sets.
func (m *Metrics) PolicyRejected(stage, reason string) {
	if m == nil {
		return
	}
	add(m.policyRejections, 1, stage, reason)
}

// TrunkChanged counts a trunk going up or down.
func (m *Metrics) TrunkChanged(trunk string, up bool) {
	if m == nil {
		return
	}
	state := "down"
	if up {
		state = "up"
	}
	add(m.trunkTransitions, 1, trunk, state)
}

// TrunkRegistration records a trunk registration's new state: the state
// gauge (1 registered, else 0) and the count of changes. trunk and state
// come from the configured trunks and trunkreg's fixed states.
func (m *Metrics) TrunkRegistration(trunk, state string) {
	if m == nil {
		return
	}
	v := 0.0
	if state == "registered" {
		v = 1
	}
	if g, err := m.trunkRegState.GetMetricWithLabelValues(trunk); err == nil {
		g.Set(v)
	}
	add(m.trunkRegChanges, 1, trunk, state)
}

// Reloaded counts a configuration reload; a good one also sets the
// last-success time.
func (m *Metrics) Reloaded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		add(m.reloads, 1, "ok")
		m.lastReload.SetToCurrentTime()
		return
	}
	add(m.reloads, 1, "error")
}

// SetDraining sets the draining gauge.
func (m *Metrics) SetDraining(on bool) {
	if m == nil {
		return
	}
	if on {
		m.draining.Set(1)
	} else {
		m.draining.Set(0)
	}
}
