package b2bua

import (
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// answerUnparsable sends the 400 (or the code the parser names) for a
// request that could not be parsed, when it carries enough to be answered
// (sipmsg.BadRequest), to where a transaction's answer would go.
func (s *Server) answerUnparsable(data []byte, src transport.Target, err error) {
	res := sipmsg.BadRequest(data, sipmsg.CodeOf(err), sipmsg.ReasonOf(err), s.cfg.UserAgent)
	if res == nil {
		return
	}
	_ = s.tp.Send(s.unparsableTarget(res, src), res)
}

// unparsableTarget is where the answer to an unparsable request goes: the
// source, except on a UDP listener that is not symmetric, where RFC 3261
// 18.2.2 wants the top Via's sent-by port (unless the Via has rport). The
// answer copies the request's Via lines verbatim, so that Via is read from
// the answer itself, with txn.ReplyTarget as for every other response; when
// even the answer does not parse, the source is the one address known.
func (s *Server) unparsableTarget(res []byte, src transport.Target) transport.Target {
	if src.Kind.Reliable() || src.Symmetric {
		return src // the connection, or the source port
	}
	msg, err := s.parser.Parse(res)
	if err != nil {
		return src
	}
	if dst, ok := txn.ReplyTarget(msg, src); ok {
		return dst
	}
	return src
}
