package routing

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const waitLimit = 5 * time.Second

// syncBuffer is a log sink safe for the monitor's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type change struct {
	trunk string
	up    bool
}

// startMonitor runs Monitor on tab in the background and returns a stop
// function that cancels it and fails the test unless it returns in time.
func startMonitor(t *testing.T, tab *Table, probe Prober) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tab.Monitor(ctx, probe)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(waitLimit):
				t.Fatal("Monitor did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func probedConfig(threshold int, timeout time.Duration) TableSpec {
	return TableSpec{Trunks: []TrunkSpec{
		{Name: "pbx", URI: "sip:10.0.0.5", OptionsInterval: 10 * time.Millisecond,
			OptionsTimeout: timeout, FailureThreshold: threshold},
		{Name: "static", URI: "sip:10.0.0.6"},
	}}
}

// TestMonitorDownAndUp runs probes in lock step: the fake prober announces
// each probe, then waits for its result. A probe starting proves every
// earlier result was recorded (one trunk's probes run in sequence) and
// that this one was not.
func TestMonitorDownAndUp(t *testing.T) {
	var logs syncBuffer
	tab, err := New(probedConfig(3, waitLimit), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	changes := make(chan change, 10)
	tab.OnChange(func(tr *Trunk, up bool) { changes <- change{tr.Name, up} })
	started := make(chan struct{})
	results := make(chan error)
	stop := startMonitor(t, tab, func(ctx context.Context, tr *Trunk) error {
		if tr.Name != "pbx" {
			t.Errorf("probed %q, which has probing off", tr.Name)
		}
		select {
		case started <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-results:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	pbx, _ := tab.Trunk("pbx")
	expectChange := func(want change) {
		t.Helper()
		select {
		case got := <-changes:
			if got != want {
				t.Fatalf("OnChange(%+v), want %+v", got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("no OnChange, want %+v", want)
		}
	}
	steps := []struct {
		name      string
		wantUp    bool // state when this probe starts
		wantFails int
		result    error
	}{
		{"first failure", true, 0, errProbe},
		{"second failure", true, 1, errProbe},
		{"third failure", true, 2, errProbe},
		{"down after threshold, success", false, 3, nil},
		{"up again, success", true, 0, nil},
		{"stays up", true, 0, errProbe},
	}
	for i, s := range steps {
		select {
		case <-started:
		case <-time.After(waitLimit):
			t.Fatalf("%s: probe %d did not start", s.name, i)
		}
		if st := pbx.State(); st.Up != s.wantUp || pbx.Up() != s.wantUp || st.ConsecutiveFailures != s.wantFails {
			t.Fatalf("%s: State %+v, want up %v with %d failures", s.name, st, s.wantUp, s.wantFails)
		}
		switch i {
		case 3:
			expectChange(change{"pbx", false})
			if st := pbx.State(); st.LastError != errProbe.Error() || st.LastProbe.IsZero() {
				t.Fatalf("%s: State %+v", s.name, st)
			}
		case 4:
			expectChange(change{"pbx", true})
		}
		results <- s.result // the prober is waiting for it
	}
	stop()
	if st := tab.Trunks()[1].State(); !st.Up || !st.LastProbe.IsZero() {
		t.Errorf("unprobed trunk state %+v", st)
	}
	out := logs.String()
	if n := strings.Count(out, `msg="trunk down"`); n != 1 {
		t.Errorf("%d trunk down logs, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="trunk up"`); n != 1 {
		t.Errorf("%d trunk up logs, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `msg="trunk down" trunk=pbx reason="options timed out"`) {
		t.Errorf("trunk down log lacks trunk and reason:\n%s", out)
	}
	select {
	case c := <-changes:
		t.Errorf("extra OnChange %+v", c)
	default:
	}
}

func TestMonitorProbeTimeout(t *testing.T) {
	tab := mustNew(t, probedConfig(2, 10*time.Millisecond))
	pbx, _ := tab.Trunk("pbx")
	startMonitor(t, tab, func(ctx context.Context, _ *Trunk) error {
		<-ctx.Done() // never answers: the trunk's OptionsTimeout must end it
		return ctx.Err()
	})
	deadline := time.Now().Add(waitLimit)
	for pbx.Up() {
		if time.Now().After(deadline) {
			t.Fatalf("trunk still up after %s of unanswered probes: %+v", waitLimit, pbx.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := pbx.State(); st.ConsecutiveFailures < 2 || !strings.Contains(st.LastError, "deadline") {
		t.Errorf("State %+v, want >= 2 failures from the deadline", st)
	}
}

func TestMonitorStopsCleanly(t *testing.T) {
	cfg := probedConfig(1, waitLimit)
	cfg.Trunks = append(cfg.Trunks, TrunkSpec{Name: "dns", URI: "sip:pbx.invalid"})
	tab := mustNew(t, cfg)
	dns, _ := tab.Trunk("dns")
	dns.lookup = func(ctx context.Context, _ string) ([]netip.Addr, error) {
		<-ctx.Done() // a resolver stuck until shutdown
		return nil, ctx.Err()
	}
	probing := make(chan struct{}, 1)
	stop := startMonitor(t, tab, func(ctx context.Context, _ *Trunk) error {
		select {
		case probing <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	select {
	case <-probing:
	case <-time.After(waitLimit):
		t.Fatal("no probe started")
	}
	stop()
	if st, _ := tab.Trunk("pbx"); !st.Up() || st.State().ConsecutiveFailures != 0 {
		t.Errorf("probe cut by shutdown was counted: %+v", st.State())
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"routing.(*Table).probeLoop", "routing.(*Table).refreshLoop", "routing.(*Table).Monitor"} {
		if strings.Contains(stacks, fn) {
			t.Errorf("goroutine still in %s after Monitor returned:\n%s", fn, stacks)
		}
	}
}

func TestMonitorRefreshesDNS(t *testing.T) {
	var logs syncBuffer
	tab, err := New(TableSpec{Trunks: []TrunkSpec{{Name: "carrier", URI: "sip:sbc.carrier.example"}}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tab.refresh = 10 * time.Millisecond
	tr, _ := tab.Trunk("carrier")
	answers := make(chan []netip.Addr)
	tr.lookup = func(ctx context.Context, _ string) ([]netip.Addr, error) {
		select {
		case a := <-answers:
			if a == nil {
				return nil, errProbe
			}
			return a, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	startMonitor(t, tab, func(context.Context, *Trunk) error { return errors.New("no trunk is probed") })
	first, second := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	steps := []struct {
		name   string
		answer []netip.Addr
		want   netip.Addr // matched by TrunkBySource after the answer is stored
	}{
		{"resolved at start", []netip.Addr{first}, first},
		{"refreshed", []netip.Addr{second}, second},
		{"failure keeps last answer", nil, second},
		{"recovers", []netip.Addr{first}, first},
	}
	for _, s := range steps {
		select {
		case answers <- s.answer:
		case <-time.After(waitLimit):
			t.Fatalf("%s: no lookup", s.name)
		}
		// The next lookup starting proves this answer was stored.
		select {
		case answers <- s.answer:
		case <-time.After(waitLimit):
			t.Fatalf("%s: no second lookup", s.name)
		}
		if got, ok := tab.TrunkBySource(s.want); !ok || got != tr {
			t.Errorf("%s: TrunkBySource(%s) = %v, %v", s.name, s.want, got, ok)
		}
	}
	out := logs.String()
	if strings.Count(out, "trunk name not resolving") != 1 || strings.Count(out, "trunk name resolving again") != 1 {
		t.Errorf("want one warning and one recovery log:\n%s", out)
	}
}

func TestMonitorRefusals(t *testing.T) {
	tests := []struct {
		name  string
		probe Prober
		setup func(tab *Table) (cleanup func())
		want  string
	}{
		{"nil prober", nil, func(*Table) func() { return func() {} }, "nil prober"},
		{"already running", func(context.Context, *Trunk) error { return nil }, func(tab *Table) func() {
			tab.running.Lock() // as if another Monitor were running
			return tab.running.Unlock
		}, "already running"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			tab, err := New(probedConfig(1, time.Second), slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer tc.setup(tab)()
			done := make(chan struct{})
			go func() {
				defer close(done)
				tab.Monitor(t.Context(), tc.probe) // t.Context is live: Monitor must return by itself
			}()
			select {
			case <-done:
			case <-time.After(waitLimit):
				t.Fatal("Monitor did not return")
			}
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("log %q lacks %q", logs.String(), tc.want)
			}
		})
	}
}
