package media

import (
	"encoding/binary"
	"errors"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// rocGuess is a restored SDES endpoint's receive rollover counter, taken
// from the replicated state (issue 19): the peer's sequence number may
// have wrapped between the state and the restore (at 50 packets/s every
// 22 minutes, the state being up to a minute old), and then it uses
// roc+1. Until a packet of ssrc authenticates in ctx, one that fails is
// tried at roc+1, as media/wrtc does for WebRTC sides. Only an
// authenticated packet moves the counter, and only by one. Set before
// the endpoint's readers start; then only the RTP reader uses it.
type rocGuess struct {
	ctx       *srtp.Context // the restored decrypt context; nil: nothing to confirm
	ssrc, roc uint32
}

// decrypt is ctx.DecryptRTP, with the second try while the guess is
// pending for ctx.
func (g *rocGuess) decrypt(ctx *srtp.Context, dst, pkt []byte, hdr *rtp.Header) ([]byte, error) {
	out, err := ctx.DecryptRTP(dst, pkt, hdr)
	if g.ctx == nil || ctx != g.ctx || len(pkt) < 12 || binary.BigEndian.Uint32(pkt[8:]) != g.ssrc {
		return out, err
	}
	switch {
	case err == nil:
		g.ctx = nil
		return out, nil
	case !errors.Is(err, srtp.ErrFailedToVerifyAuthTag) || g.roc == 1<<32-1:
		return out, err
	}
	ctx.SetROC(g.ssrc, g.roc+1)
	if out2, err2 := ctx.DecryptRTP(dst, pkt, hdr); err2 == nil {
		g.ctx = nil
		return out2, nil
	}
	ctx.SetROC(g.ssrc, g.roc)
	return out, err
}
