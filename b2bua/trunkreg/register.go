package trunkreg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// lookupTimeout bounds finding the registrar's addresses.
const lookupTimeout = 2 * time.Second

// maxChallenges is how many challenges one REGISTER answers: a proxy's
// (407), the registrar's (401), and one of them again with stale=true.
const maxChallenges = 3

// result is the outcome of one registration attempt.
type result struct {
	granted    time.Duration // the registrar's grant (success)
	contact    string
	retryAfter time.Duration // Retry-After of a failure
	err        error
}

// errRefused marks a final answer that is no target's fault: the next
// target is not tried.
var errRefused = errors.New("refused")

// register sends a REGISTER asking for expires (0: unregister) to each of
// the registrar's targets in turn, until one answers other than 408 or
// 503 or a transport failure.
func (c *client) register(ctx context.Context, expires time.Duration) result {
	reg := c.trunk().Register
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	targets, err := reg.Targets(lctx)
	cancel()
	if err != nil {
		return result{err: err}
	}
	var last result
	for _, dst := range targets {
		last = c.registerAt(ctx, dst, expires)
		if last.err == nil || errors.Is(last.err, errRefused) || ctx.Err() != nil {
			return last
		}
	}
	return last
}

// registerAt runs one REGISTER transaction with dst, answering up to
// maxChallenges digest challenges, and a 423 once.
func (c *client) registerAt(ctx context.Context, dst transport.Target, expires time.Duration) result {
	tr := c.trunk()
	host, port, err := c.m.deps.Host(dst.Kind, dst.Addr.Addr())
	if err != nil {
		return result{err: err}
	}
	contact := contactURI(tr.Register.ContactUser, host, port, dst.Kind)
	auth := map[string]sip.Header{} // by header name: a proxy's and the registrar's
	challenges, briefRetried := 0, false
	for {
		req := c.build(tr, dst, host, port, contact, expires, auth)
		res, err := c.send(ctx, req, dst)
		if err != nil {
			return result{err: fmt.Errorf("REGISTER to %s: %w", dst, err)}
		}
		code := int(res.StatusCode())
		switch {
		case code >= 200 && code < 300:
			return result{granted: granted(res, tr.Register.ContactUser, expires), contact: contact}
		case (code == 401 || code == 407) && challenges < maxChallenges:
			challenges++
			name, h, err := c.authorize(tr.Register, req, res, auth)
			if err != nil {
				return result{err: fmt.Errorf("%w: %d %s: %w", errRefused, code, res.Reason(), err)}
			}
			auth[name] = h
			continue
		case code == 423 && !briefRetried:
			if n, ok := sipmsg.HeaderInt(res, "Min-Expires"); ok && n > 0 && expires > 0 {
				briefRetried, expires = true, time.Duration(n)*time.Second
				continue
			}
		}
		return failure(res, code)
	}
}

// failure is the result of a final failure: 408 and 503 let the next
// target be tried, anything else is the registrar's answer.
func failure(res sip.Response, code int) result {
	r := result{err: fmt.Errorf("%d %s", code, res.Reason())}
	if code != 408 && code != 503 && code < 500 {
		r.err = fmt.Errorf("%w: %d %s", errRefused, code, res.Reason())
	}
	if n, ok := sipmsg.HeaderInt(res, "Retry-After"); ok && n > 0 {
		r.retryAfter = time.Duration(n) * time.Second
	}
	return r
}

// send starts the transaction and waits for its final response.
func (c *client) send(ctx context.Context, req sip.Request, dst transport.Target) (sip.Response, error) {
	ct, err := c.m.deps.Tx.Request(req, dst)
	if err != nil {
		return nil, err
	}
	for {
		select {
		case res, ok := <-ct.Responses():
			if !ok {
				return nil, errors.New("no answer")
			}
			if res.StatusCode() >= 200 {
				return res, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// build writes the REGISTER: the registration's Call-ID and From tag,
// the next CSeq, our Contact with the expiry asked for.
func (c *client) build(tr *routing.Trunk, dst transport.Target, host string, port uint16, contact string, expires time.Duration, auth map[string]sip.Header) sip.Request {
	reg := tr.Register
	ruri, _ := sipmsg.ParseURI(reg.RequestURI().String())
	aorUser := reg.AOR
	if aorUser == "" {
		aorUser = reg.Username
	}
	aor := routing.URI{Scheme: "sip", User: aorUser, Host: reg.Domain(tr)}
	if tr.Scheme == "sips" {
		aor.Scheme = "sips"
	}
	aorURI, _ := sipmsg.ParseURI(aor.String())
	p := sip.Port(port)
	via := sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: dst.Kind.String(), Host: host, Port: &p,
		Params: sipmsg.NewParams().Add("branch", sip.String{Str: txn.NewBranch()}).Add("rport", nil)}}
	mf := sip.MaxForwards(70)
	cid := sip.CallID(c.callID)
	c.cseq++
	secs := int(expires / time.Second)
	hdrs := []sip.Header{via, &mf,
		&sip.FromHeader{Address: aorURI, Params: sipmsg.NewParams().Add("tag", sip.String{Str: c.fromTag})},
		&sip.ToHeader{Address: aorURI.Clone(), Params: sipmsg.NewParams()},
		&cid, &sip.CSeq{SeqNo: c.cseq, MethodName: sip.REGISTER},
		sipmsg.Generic("Contact", "<"+contact+">"),
		sipmsg.Generic("Expires", strconv.Itoa(secs)),
		sipmsg.Generic("User-Agent", c.m.cfg.UserAgent),
	}
	for _, name := range []string{"Proxy-Authorization", "Authorization"} {
		if h, ok := auth[name]; ok {
			hdrs = append(hdrs, h)
		}
	}
	return sipmsg.NewRequest(sip.REGISTER, ruri, hdrs, "", "")
}

// authorize answers the challenge of res to req with the registration's
// credentials (Answer). It returns the header to send and its name. A
// challenge of a kind already answered (sent) is answered again only when
// it says stale=true: otherwise the credentials were refused.
func (c *client) authorize(reg *routing.Registration, req sip.Request, res sip.Response, sent map[string]sip.Header) (string, sip.Header, error) {
	answer := "Authorization"
	if res.StatusCode() == 407 {
		answer = "Proxy-Authorization"
	}
	h, err := Answer(res, Credentials{User: reg.Username, Password: reg.Password, Realm: reg.Realm,
		Method: "REGISTER", URI: req.Recipient().String()}, sent[answer] != nil)
	if err != nil {
		return "", nil, err
	}
	return answer, h, nil
}

// Credentials are what the SBC answers a peer's digest challenge with, on a
// trunk's behalf: for its REGISTER and for the calls it sends the trunk.
type Credentials struct {
	User, Password string
	// Realm, when set, is the only realm the password is given to.
	Realm string
	// Method and URI are the request's method and Request-URI.
	Method, URI string
}

// Answer answers the challenge of a 401 (WWW-Authenticate) or 407
// (Proxy-Authenticate) with cr: the Authorization or Proxy-Authorization
// header for the first Digest challenge it can answer (MD5 or SHA-256,
// RFC 8760; qop=auth when offered) in a realm it may give the password to.
// answered says the request already carried an answer of this kind: then
// only a challenge saying stale=true is answered again, any other means the
// credentials were refused.
func Answer(res sip.Response, cr Credentials, answered bool) (sip.Header, error) {
	name, answer := "WWW-Authenticate", "Authorization"
	if res.StatusCode() == 407 {
		name, answer = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var errs []error
	for _, v := range sipmsg.Values(res, name) {
		ch, err := parseChallenge(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cr.Realm != "" && ch.realm != cr.Realm {
			errs = append(errs, fmt.Errorf("realm %q is not %q", ch.realm, cr.Realm))
			continue
		}
		if answered && !ch.stale {
			return nil, errors.New("credentials refused")
		}
		// Each challenge brings a new nonce, used once: nc is 1.
		value, err := credentials{user: cr.User, password: cr.Password, method: cr.Method,
			uri: cr.URI, cnonce: sipmsg.NewToken(12), nc: 1}.answer(ch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return sipmsg.Generic(answer, value), nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no %s challenge", name)
	}
	return nil, errors.Join(errs...)
}

// contactURI is the Contact the SBC registers for the trunk.
func contactURI(user, host string, port uint16, kind transport.Kind) string {
	u := "sip:" + user + "@" + host + ":" + strconv.Itoa(int(port))
	if kind != transport.UDP {
		u += ";transport=" + kind.Param()
	}
	return u
}

// granted is the time the registrar granted our Contact: the expires
// parameter of our Contact in the 2xx, else its Expires header, else what
// was asked; never more than was asked (a registrar may only shorten it,
// RFC 3261 section 10.3).
func granted(res sip.Response, user string, asked time.Duration) time.Duration {
	g := grantedRaw(res, user, asked)
	if g > asked || g < 0 {
		return asked
	}
	return g
}

func grantedRaw(res sip.Response, user string, asked time.Duration) time.Duration {
	for _, v := range sipmsg.Values(res, "Contact") {
		if !strings.Contains(v, "sip:"+user+"@") && !strings.Contains(v, "sips:"+user+"@") {
			continue
		}
		for p := range strings.SplitSeq(v, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(name, "expires") {
				if n, err := strconv.Atoi(strings.Trim(value, `" >`)); err == nil && n >= 0 && n < 1<<31 {
					return time.Duration(n) * time.Second
				}
			}
		}
	}
	if n, ok := sipmsg.HeaderInt(res, "Expires"); ok && n >= 0 && n < 1<<31 {
		return time.Duration(n) * time.Second
	}
	return asked
}
