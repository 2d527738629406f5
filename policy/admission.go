package policy

import (
	"context"
	"maps"
	"net/netip"
	"sync"
	"time"
)

// Retry-After of the admission stage's 503s: a full system frees up as
// calls end (tens of seconds), a call rate refills within a second.
const (
	admissionRetryAfter = 10 * time.Second
	cpsRetryAfter       = time.Second
)

// maxCPSKeys bounds the per-user and per-trunk call-rate buckets each.
// Users are authenticated, but HMAC-minted users are as many as the web
// application mints, so the map needs a bound of its own.
const maxCPSKeys = 65536

// Admission is the admission stage: it counts concurrent calls in total,
// per trunk, per user and per source (an IPv4 address or an IPv6 /64, as
// rate limits count), calls to the echo destination in total and per
// source, and new calls per second per user and per trunk, and answers
// 503 Service Unavailable with Retry-After once a limit is reached. The
// echo destination has limits of its own because it needs no
// authentication: anyone could otherwise hold every RTP port with echo
// calls. Every refusal is a 503, including per-user and per-IP
// ones: the caller is not wrong, the SBC is just full for it for now, and
// a 503 tells a well-behaved client to retry later rather than to give up
// or ask its user for other credentials.
//
// A call counts from the moment Check lets it go on until the Admitted
// function it set on the Request is called; the b2bua calls it once when
// the call ends, whatever the outcome. Counters never go negative, and
// memory is bounded by the calls in progress plus maxCPSKeys buckets per
// kind. An Admission is safe for concurrent use.
type Admission struct {
	mu      sync.Mutex
	cfg     AdmissionSpec
	total   int
	trunks  map[string]int
	users   map[string]int
	ips     map[netip.Addr]int
	echo    int                // calls to the echo destination
	echoIPs map[netip.Addr]int // the same per source
	userCPS *cpsBuckets
	trkCPS  *cpsBuckets
	now     func() time.Time
	sharedCounts
	cps cpsShare // call-rate tokens taken, for a cluster (cps_shared.go)
}

// NewAdmission returns the admission stage for cfg (0 limits are off).
func NewAdmission(cfg AdmissionSpec) *Admission {
	return &Admission{
		cfg:     cfg,
		trunks:  make(map[string]int),
		users:   make(map[string]int),
		ips:     make(map[netip.Addr]int),
		echoIPs: make(map[netip.Addr]int),
		userCPS: newCPSBuckets(cfg.UserCPS, maxCPSKeys),
		trkCPS:  newCPSBuckets(cfg.TrunkCPS, maxCPSKeys),
		now:     time.Now,
	}
}

// MaxDuration is how long an answered call may last before the b2bua ends
// it; 0 means no limit.
func (a *Admission) MaxDuration() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.MaxDuration
}

// Update applies new limits (on reload) and keeps the calls in progress
// counted, so their release still balances. Call-rate buckets restart full.
func (a *Admission) Update(cfg AdmissionSpec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg = cfg
	a.userCPS = newCPSBuckets(cfg.UserCPS, maxCPSKeys)
	a.trkCPS = newCPSBuckets(cfg.TrunkCPS, maxCPSKeys)
}

// Counts returns the calls in progress in total and per trunk (a fresh
// map, for the admin API and metrics).
func (a *Admission) Counts() (total int, perTrunk map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total, maps.Clone(a.trunks)
}

// admissionKeys are what one call counts against; empty ones do not count.
type admissionKeys struct {
	trunk, user string
	ip          netip.Addr // the source's key (sourceKey)
	echo        bool       // a call to the echo destination
}

func keysOf(r *Request) admissionKeys {
	k := admissionKeys{user: r.User, echo: r.Target == TargetEcho}
	if src := r.Src.Addr(); src.IsValid() {
		k.ip = sourceKey(src)
	}
	if r.Target == TargetTrunks {
		k.trunk = r.Trunk
	}
	return k
}

// Check implements Stage. On success it sets r.Admitted; see Admission.
func (a *Admission) Check(_ context.Context, r *Request) Decision {
	k := keysOf(r)
	a.mu.Lock()
	d := a.admit(k)
	a.mu.Unlock()
	if d.Action != Continue {
		return d
	}
	var once sync.Once
	r.Admitted = func() { once.Do(func() { a.release(k) }) }
	return Pass
}

// admit checks every limit and, when all hold, takes the call-rate tokens
// and counts the call. Nothing is taken when a limit refuses it. a.mu held.
func (a *Admission) admit(k admissionKeys) Decision {
	c := a.cfg
	total, trunk, user, ip := a.othersOf(k)
	switch {
	case atLimit(a.total+total, c.MaxCalls):
		return admissionBusy("max_calls", admissionRetryAfter)
	case k.trunk != "" && atLimit(a.trunks[k.trunk]+trunk, c.MaxCallsPerTrunk):
		return admissionBusy("max_calls_trunk", admissionRetryAfter)
	case k.user != "" && atLimit(a.users[k.user]+user, c.MaxCallsPerUser):
		return admissionBusy("max_calls_user", admissionRetryAfter)
	case k.ip.IsValid() && atLimit(a.ips[k.ip]+ip, c.MaxCallsPerIP):
		return admissionBusy("max_calls_ip", admissionRetryAfter)
	case k.echo && atLimit(a.echo, c.Echo.MaxCalls):
		return admissionBusy("echo_calls", admissionRetryAfter)
	case k.echo && k.ip.IsValid() && atLimit(a.echoIPs[k.ip], c.Echo.MaxCallsPerIP):
		return admissionBusy("echo_calls_ip", admissionRetryAfter)
	}
	now := a.now()
	userTok := k.user != "" && a.userCPS.enabled()
	trunkTok := k.trunk != "" && a.trkCPS.enabled()
	switch {
	case userTok && !a.userCPS.has(k.user, now):
		return admissionBusy("cps_user", cpsRetryAfter)
	case trunkTok && !a.trkCPS.has(k.trunk, now):
		return admissionBusy("cps_trunk", cpsRetryAfter)
	}
	if userTok {
		a.userCPS.take(k.user)
		a.cps.record(false, k.user)
	}
	if trunkTok {
		a.trkCPS.take(k.trunk)
		a.cps.record(true, k.trunk)
	}
	a.total++
	a.version++
	if k.trunk != "" {
		a.trunks[k.trunk]++
	}
	if k.user != "" {
		a.users[k.user]++
	}
	if k.ip.IsValid() {
		a.ips[k.ip]++
	}
	if k.echo {
		a.echo++
		if k.ip.IsValid() {
			a.echoIPs[k.ip]++
		}
	}
	return Pass
}

// release gives back what admit counted for k. Entries that reach 0 are
// deleted, so the maps hold only calls in progress.
func (a *Admission) release(k admissionKeys) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total > 0 {
		a.total--
	}
	a.version++
	if k.trunk != "" {
		decrementKey(a.trunks, k.trunk)
	}
	if k.user != "" {
		decrementKey(a.users, k.user)
	}
	if k.ip.IsValid() {
		decrementKey(a.ips, k.ip)
	}
	if k.echo {
		if a.echo > 0 {
			a.echo--
		}
		if k.ip.IsValid() {
			decrementKey(a.echoIPs, k.ip)
		}
	}
}

func decrementKey[K comparable](m map[K]int, k K) {
	if n := m[k]; n > 1 {
		m[k] = n - 1
	} else {
		delete(m, k)
	}
}

// atLimit reports whether n calls already reach limit (0: no limit).
func atLimit(n, limit int) bool { return limit > 0 && n >= limit }

// admissionBusy is the admission stage's refusal.
func admissionBusy(cause string, retry time.Duration) Decision {
	return Decision{
		Action: Answer, Code: 503, Reason: "Service Unavailable", RetryAfter: retry,
		Stage: StageAdmission, Cause: cause,
	}
}
