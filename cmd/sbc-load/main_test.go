package main

import (
	"context"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

// TestLoadThroughSBC places two calls in each mode through an SBC running
// in this process and checks that packets flowed both ways, none was
// lost, and the report's figures agree with each other.
func TestLoadThroughSBC(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) }) // runs after the SBC's close
	uas := freeUDP(t)
	sbc := startSBC(t, uas)
	for _, mode := range []string{"rtp", "webrtc"} {
		t.Run(mode, func(t *testing.T) {
			o := &options{mode: mode, calls: 2, rate: 20, hold: 500 * time.Millisecond, settle: 100 * time.Millisecond,
				setupTimeout: 10 * time.Second, byeTimeout: 5 * time.Second, sbcUDP: sbc.udp, sbcWSS: sbc.wss,
				uasAddr: uas, srcs: []string{"127.0.0.1"}, echoes: 2, rtpSockets: 1, batch: 1, sbcPID: os.Getpid(),
				metricName: "sbc_media_packets_total", userPrefix: mode}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			rep.print(&out)
			t.Log("\n" + out.String())
			if rep.failed != 0 || rep.answered != 2 || rep.mediaUp != 2 || rep.byeFailed != 0 || rep.remoteBye != 0 {
				t.Errorf("calls: %d answered, %d up, %d failed, %d BYE failures, %d ended by the SBC; want 2 2 0 0 0",
					rep.answered, rep.mediaUp, rep.failed, rep.byeFailed, rep.remoteBye)
			}
			// 2 calls, 50 packets a second each, for at least the window.
			if min := int64(2 * 50 * o.hold.Seconds() / 2); rep.sentAB < min || rep.sentBA < min {
				t.Errorf("sent %d caller→echo and %d echo→caller, want at least %d each", rep.sentAB, rep.sentBA, min)
			}
			if rep.sentAB != rep.rxAB || rep.sentBA != rep.rxBA || rep.lossyCalls != 0 || rep.unknown != 0 || rep.lostAtStart != 0 {
				t.Errorf("loss: caller→echo %d/%d, echo→caller %d/%d, %d lossy calls, %d from unknown sources",
					rep.rxAB, rep.sentAB, rep.rxBA, rep.sentBA, rep.lossyCalls, rep.unknown)
			}
			secs, cpu, relayed, _ := rep.windowFigures()
			if secs < o.hold.Seconds() || relayed <= 0 || relayed > rep.rxAB+rep.rxBA || cpu < 0 || math.IsNaN(cpu) {
				t.Errorf("window %.2fs, %d relayed (of %d received), %.2f CPU-s", secs, relayed, rep.rxAB+rep.rxBA, cpu)
			}
			if len(rep.setup) != 2 || (mode == "webrtc" && (len(rep.dtls) != 2 || len(rep.ice) != 2)) {
				t.Errorf("timings: %d setups, %d ICE, %d DTLS", len(rep.setup), len(rep.ice), len(rep.dtls))
			}
			line := out.String()[strings.LastIndex(strings.TrimSpace(out.String()), "\n")+1:]
			for _, f := range []string{"sbc-load\t", "mode=" + mode, "answered=2", "lost_ab=0", "lost_ba=0",
				"sent_ab=" + strconv.FormatInt(rep.sentAB, 10), "relayed=" + strconv.FormatInt(relayed, 10)} {
				if !strings.Contains(line, f) {
					t.Errorf("machine line lacks %q: %s", f, line)
				}
			}
		})
	}
}

// checkGoroutines fails the test if more goroutines than before are
// still running after 10 s.
func checkGoroutines(t *testing.T, before int) {
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCancelHangsUp cancels a run during its window: the run returns at
// once and every call is hung up with BYE.
func TestCancelHangsUp(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) })
	uas := freeUDP(t)
	sbc := startSBC(t, uas)
	o := &options{mode: "rtp", calls: 3, rate: 50, hold: time.Hour, settle: 0, setupTimeout: 10 * time.Second,
		byeTimeout: 5 * time.Second, sbcUDP: sbc.udp, uasAddr: uas, srcs: []string{"127.0.0.1"}, echoes: 1,
		rtpSockets: 2, batch: 1, userPrefix: "cancel"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := callerRx.Load()
	go func() { // cancel once media flows on every call
		for ctx.Err() == nil && (sbc.app.Server().ActiveCalls() < 3 || callerRx.Load() < start+30) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	done := make(chan struct{})
	var rep *report
	var err error
	go func() {
		defer close(done)
		rep, err = run(ctx, o)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of its cancel")
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.answered != 3 || rep.byeFailed != 0 || rep.failed != 0 {
		t.Errorf("%d answered, %d BYE failures, %d failed; want 3 0 0", rep.answered, rep.byeFailed, rep.failed)
	}
	// The SBC ends a call once the UAS answered its BYE too, which may
	// take a retransmission on a loaded machine.
	for deadline := time.Now().Add(15 * time.Second); sbc.app.Server().ActiveCalls() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still up at the SBC after the run", sbc.app.Server().ActiveCalls())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testSBC struct {
	udp, wss string
	app      *app.App
}

// startSBC runs the SBC in this process, routing every call from loopback
// to a trunk at uas.
func startSBC(t *testing.T, uas string) testSBC {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.OverloadDelay = 0 // a loaded CI machine must not refuse the test's four calls
	cfg.SIP.Listeners = []config.Listener{
		{Name: "udp", Transport: "udp", Addr: "127.0.0.1:" + strconv.Itoa(udpPort(t, freeUDP(t))), Symmetric: true},
		{Name: "wss", Transport: "wss", Addr: "127.0.0.1:0"},
	}
	cfg.Media.RTPPorts = "40000-49999"
	cfg.Trunks = []config.Trunk{{Name: "uas", URI: "sip:" + uas, OptionsTimeout: time.Second, FailureThreshold: 1}}
	cfg.Routes = []config.Route{{Name: "all", Target: config.TargetTrunks, Trunks: []string{"uas"},
		TrustedSources: []string{"127.0.0.0/8"}}}
	cfg.Admin.Addr = ""
	dir := t.TempDir()
	cfg.CDRSpool = filepath.Join(dir, "spool")
	cfg.CDR = []config.CDRWriter{{Type: config.CDRJSONL, Dir: filepath.Join(dir, "cdr")}}
	cfg.Policy.Bans.File = filepath.Join(dir, "bans.json")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Short SIP timers, as test/e2e runs them: a lost datagram is
	// retransmitted within 100 ms.
	a, err := app.New(cfg, log, app.Options{Timers: txn.Timers{T1: 100 * time.Millisecond, T2: 400 * time.Millisecond, T4: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The last BYEs toward the UAS may still be in flight.
		for deadline := time.Now().Add(5 * time.Second); a.Server().ActiveCalls() > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if err := a.Close(); err != nil {
			t.Errorf("close the SBC: %v", err)
		}
	})
	udp, _ := a.Addr("udp")
	wss, _ := a.Addr("wss")
	return testSBC{udp: udp.String(), wss: wss.String(), app: a}
}

// freeUDP is a loopback UDP address free when asked.
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func udpPort(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("# HELP sbc_media_packets_total x\n# TYPE sbc_media_packets_total counter\n" +
			"sbc_media_packets_total{side=\"a\"} 10\nsbc_media_packets_total{side=\"b\"} 32\n" +
			"sbc_media_packets_total_other 1000\nsbc_relayed 7\n"))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, metric string
		want         float64
	}{
		{"labels summed", "sbc_media_packets_total", 42},
		{"no labels", "sbc_relayed", 7},
		{"absent", "sbc_nothing", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scrape(srv.URL, tc.metric)
			if nan := scrape(srv.URL+"/404", tc.metric); !math.IsNaN(nan) {
				t.Errorf("scrape of a 404 = %v, want NaN", nan)
			}
			if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
				t.Errorf("scrape(%s) = %v, want %v", tc.metric, got, tc.want)
			}
		})
	}
}

func TestCPUTicks(t *testing.T) {
	if cpuTicks(0) != -1 {
		t.Error("pid 0 should not be measured")
	}
	before := cpuTicks(os.Getpid())
	if before < 0 {
		t.Skip("no /proc")
	}
	deadline := time.Now().Add(5 * time.Second)
	for cpuTicks(os.Getpid()) == before && time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ { // burn CPU until a tick is accounted
			_ = strconv.Itoa(i)
		}
	}
	if cpuTicks(os.Getpid()) <= before {
		t.Errorf("CPU ticks did not grow past %d", before)
	}
}

func TestSDPAudio(t *testing.T) {
	for _, tc := range []struct {
		name, sdp, ip string
		port          int
	}{
		{"session c=", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n", "10.0.0.1", 4000},
		{"media c= wins", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n", "10.0.0.2", 4000},
		{"first audio", "v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\nm=audio 5000 RTP/AVP 0\r\nc=IN IP4 10.0.0.3\r\n", "10.0.0.2", 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, port, ok := sdpAudio(tc.sdp)
			if !ok || ip != tc.ip || port != tc.port {
				t.Errorf("got %s %d %v, want %s %d", ip, port, ok, tc.ip, tc.port)
			}
		})
	}
}

func TestPacketIndex(t *testing.T) {
	hdr := []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want uint32
		ok   bool
	}{
		{"plain", append(slices.Clone(hdr), 0, 0, 1, 2, 0xff), 258, true},
		{"one CSRC", append([]byte{0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9}, 0, 0, 0, 7), 7, true},
		{"extension", append([]byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 1, 2, 3, 4}, 0, 0, 0, 9), 9, true},
		{"short payload", append(slices.Clone(hdr), 0, 0), 0, false},
		{"truncated extension", []byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe}, 0, false},
		{"not RTP", append([]byte{0x40}, make([]byte, 20)...), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := packetIndex(tc.pkt)
			if got != tc.want || ok != tc.ok {
				t.Errorf("packetIndex = %d %v, want %d %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
