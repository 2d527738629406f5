package b2bua

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media"
)

type nopMedia struct{}

func (nopMedia) Offer(_ media.Side, sdp []byte) ([]byte, error)  { return sdp, nil }
func (nopMedia) Answer(_ media.Side, sdp []byte) ([]byte, error) { return sdp, nil }
func (nopMedia) Stats() media.Stats                              { return media.Stats{} }
func (nopMedia) Configure(media.Side, media.SideOptions)         {}
func (nopMedia) Notify(func(media.Event))                        {}
func (nopMedia) Absorb(media.Side, []byte) ([]byte, bool)        { return nil, false }
func (nopMedia) Stop()                                           {}
func (nopMedia) SendDTMF(media.Side, media.DTMF) error           { return media.ErrNoEvents }
func (nopMedia) Codecs() [2]string                               { return [2]string{} }
func (nopMedia) Transcoded() bool                                { return false }
func (nopMedia) Close()                                          {}

// FuzzServerPacket drives the whole inbound SIP path (parse, 400 answers,
// transactions, dialog lookup, new calls, routing) with arbitrary bytes as
// if they arrived on UDP: nothing may panic.
func FuzzServerPacket(f *testing.F) {
	table, err := routing.New(routing.TableSpec{Listeners: []string{"udp", "tcp", "ws", "wss"},
		Routes: []routing.RouteSpec{{Name: "echo", Match: routing.MatchSpec{RURIUser: "^echo$"}, Target: routing.TargetEcho}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{RingTimeout: time.Second, InviteTimeout: time.Second, MinSE: 90 * time.Second,
		SessionExpires: 1800 * time.Second, Timers: txn.Timers{T1: 10 * time.Millisecond, T2: 40 * time.Millisecond, T4: 50 * time.Millisecond}},
		Hooks{Routes: table, Media: func(string) (MediaSession, error) { return nopMedia{}, nil }}, slog.New(slog.DiscardHandler))
	local, err := s.Listen("udp", transport.UDP, "127.0.0.1:0", transport.ListenOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	src := netip.MustParseAddrPort("127.0.0.1:9") // discard: answers go nowhere
	f.Fuzz(func(t *testing.T, data []byte) {
		s.onPacket(transport.Packet{Data: data, Src: src, Local: local, Kind: transport.UDP, Listener: "udp"})
	})
}
