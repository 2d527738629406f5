package cluster

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sbc-project/sbc/b2bua/registrar"
)

// BindingStore is the node's registrar (registrar.Store).
type BindingStore interface {
	OnChange(func(aor string))
	Lookup(aor string) []registrar.Binding
	List() []registrar.Binding
}

// Registration keys: reg:<aor>:<node> holds a node's bindings of one AOR
// (JSON, expiring with the last of them); regu:<user> is the set of AORs
// of a user part, for calls that name the user at another domain (the
// SBC's address), as a single node matches them.
const (
	regQueue = 4096 // AORs waiting to be written
)

// sharedBinding is one binding as peers see it.
type sharedBinding struct {
	Token   string `json:"token"`
	AOR     string `json:"aor"`
	Expires int64  `json:"expires"` // Unix ms
	// Contact and Registered (Unix ms) tell the same phone's binding on
	// two nodes (its REGISTERs reached each through a load balancer) from
	// two phones: the one registered last wins.
	Contact    string `json:"contact,omitempty"`
	Registered int64  `json:"registered,omitempty"`
}

// RegShare puts the node's registrations in Redis, so a call for a user
// arriving at any node is sent to the node holding the user's connection.
// A binding's entry expires with the binding; a node that dies is left
// out of lookups as soon as its heartbeat entry expires (node_ttl), and
// its users' re-REGISTERs on other nodes take over.
type RegShare struct {
	n     *Node
	store BindingStore

	mu      sync.Mutex
	pending map[string]bool // AORs changed, not written yet
	wake    chan struct{}
	all     bool // rewrite every AOR (after Redis returned)
}

// ShareRegistrations wires the registrar to the cluster; Run does the
// work.
func ShareRegistrations(n *Node, store BindingStore) *RegShare {
	s := &RegShare{n: n, store: store, pending: map[string]bool{}, wake: make(chan struct{}, 1)}
	store.OnChange(s.changed)
	n.OnResync(func(context.Context) {
		s.mu.Lock()
		s.all = true
		s.mu.Unlock()
		s.poke()
	})
	return s
}

func (s *RegShare) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// changed queues aor without blocking the registrar.
func (s *RegShare) changed(aor string) {
	s.mu.Lock()
	if len(s.pending) < regQueue {
		s.pending[aor] = true
	} else {
		s.all = true
	}
	s.mu.Unlock()
	s.poke()
}

// Run writes changed AORs until ctx ends, then deletes this node's
// entries (its users must register elsewhere).
func (s *RegShare) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			s.leave()
			return
		case <-s.wake:
		}
		s.mu.Lock()
		pending, all := s.pending, s.all
		s.pending, s.all = map[string]bool{}, false
		s.mu.Unlock()
		if all {
			for _, b := range s.store.List() {
				pending[b.AOR] = true
			}
		}
		if err := s.write(ctx, pending); err != nil {
			s.mu.Lock()
			s.all = true // written again when Redis answers (OnResync)
			s.mu.Unlock()
		}
	}
}

func (s *RegShare) key(aor, node string) string { return s.n.Key("reg:" + aor + ":" + node) }
func (s *RegShare) userKey(user string) string  { return s.n.Key("regu:" + strings.ToLower(user)) }

// write replaces this node's entries of the AORs.
func (s *RegShare) write(ctx context.Context, aors map[string]bool) error {
	if len(aors) == 0 {
		return nil
	}
	now := time.Now()
	_, err := s.n.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for aor := range aors {
			key := s.key(aor, s.n.ID())
			bs := s.store.Lookup(aor)
			if len(bs) == 0 {
				p.Del(ctx, key)
				continue
			}
			list := make([]sharedBinding, 0, len(bs))
			last := now
			for _, b := range bs {
				list = append(list, sharedBinding{Token: b.Token, AOR: b.AOR, Expires: b.Expires.UnixMilli(),
					Contact: b.Contact, Registered: b.Registered.UnixMilli()})
				if b.Expires.After(last) {
					last = b.Expires
				}
			}
			data, _ := json.Marshal(list)
			p.Set(ctx, key, data, last.Sub(now)+time.Second)
			user, _, _ := strings.Cut(aor, "@")
			uk := s.userKey(user)
			p.SAdd(ctx, uk, aor)
			ms := last.Sub(now).Milliseconds() + 1000
			p.Do(ctx, "PEXPIRE", uk, ms, "NX")
			p.Do(ctx, "PEXPIRE", uk, ms, "GT")
		}
		return nil
	})
	if err != nil && !isWrongType(err) {
		s.n.observe(ctx, err)
		return err
	}
	if err != nil {
		s.n.log.Error("cluster: registrations not shared: a Redis key holds the wrong type", "err", err)
	}
	return nil
}

// Bindings returns the bindings active peers hold for aor, else for the
// user part at any domain.
func (s *RegShare) Bindings(ctx context.Context, aor, user string) []Remote {
	peers := s.n.activePeers()
	if len(peers) == 0 {
		return nil
	}
	out := s.lookup(ctx, peers, []string{aor})
	if len(out) > 0 || user == "" {
		return out
	}
	aors, err := s.n.Client().SMembers(ctx, s.userKey(user)).Result()
	if err != nil {
		if isWrongType(err) {
			s.n.log.Error("cluster: Redis key holds the wrong type; ignored", "key", s.userKey(user))
		}
		return nil
	}
	if len(aors) > 16 {
		aors = aors[:16]
	}
	return s.lookup(ctx, peers, aors)
}

// Remote is a binding held by another node.
type Remote struct {
	Node       string
	Addr       netip.AddrPort // the node's internal SIP address
	Token      string
	AOR        string
	Contact    string    // as the UA registered it; "" from a node that did not say
	Registered time.Time // when the binding was last set; zero when not said
}

func (s *RegShare) lookup(ctx context.Context, peers []Peer, aors []string) []Remote {
	type q struct {
		peer Peer
		key  string
	}
	var qs []q
	for _, p := range peers {
		for _, aor := range aors {
			if aor != "" {
				qs = append(qs, q{p, s.key(aor, p.ID)})
			}
		}
	}
	cmds, err := s.n.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, x := range qs {
			p.Get(ctx, x.key)
		}
		return nil
	})
	if err != nil && err != redis.Nil && !isWrongType(err) {
		return nil
	}
	now := time.Now().UnixMilli()
	var out []Remote
	for i, x := range qs {
		data, err := cmds[i].(*redis.StringCmd).Result()
		if err != nil {
			if err != redis.Nil {
				s.n.log.Error("cluster: unreadable bindings; ignored", "key", x.key, "err", err)
			}
			continue
		}
		var list []sharedBinding
		if err := json.Unmarshal([]byte(data), &list); err != nil {
			s.n.log.Error("cluster: bindings do not parse; ignored", "key", x.key, "err", err)
			continue
		}
		addr, err := netip.ParseAddrPort(x.peer.InternalAddr)
		if err != nil {
			continue
		}
		for _, b := range list {
			if b.Expires > now && b.Token != "" {
				r := Remote{Node: x.peer.ID, Addr: addr, Token: b.Token, AOR: b.AOR, Contact: b.Contact}
				if b.Registered > 0 {
					r.Registered = time.UnixMilli(b.Registered)
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// leave deletes this node's registrations at exit.
func (s *RegShare) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), s.n.spec.WriteTimeout)
	defer cancel()
	var keys []string
	for _, b := range s.store.List() {
		keys = append(keys, s.key(b.AOR, s.n.ID()))
	}
	if len(keys) > 0 {
		_ = s.n.Client().Del(ctx, keys...).Err()
	}
}
