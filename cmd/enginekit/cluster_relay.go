package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
)

// The relay engine makes a call from its node: 'enginekit call --via RELAY
// --to ENGINE' asks the relay engine of the node it connects to to call
// ENGINE, which may be any engine that node knows, its own or one a cluster
// member (or a --peer) announced, and hands back the reply. It is how a
// one-shot client shows that one node calls another's engines across the
// mesh, through that node's transport.

// relayCall asks the relay to call To with Req, a request as the payload
// registry marshals it (so the relay needs to know nothing of its type).
type relayCall struct {
	To  string
	Req []byte
}

// relayReply carries the reply, marshalled the same way.
type relayReply struct {
	Reply []byte
}

// relayTimeout bounds one relayed call (the client's --timeout usually
// ends it sooner).
const relayTimeout = 30 * time.Second

// maxRelayed bounds the relayed calls in flight in one relay engine; more
// are refused with errRelayBusy.
const maxRelayed = 1024

var errRelayBusy = errors.New("relay: too many calls in flight")

func registerRelay(reg *payload.Registry) error {
	return errors.Join(
		payload.Register[relayCall](reg, "enginekit.relay.Call"),
		payload.Register[relayReply](reg, "enginekit.relay.Reply"),
	)
}

func relayEngine() node.Engine {
	return node.Engine{Name: "relay", NewFactory: func(n *node.Node) (func() genserver.Server, error) {
		return func() genserver.Server { return &relayServer{sys: n.System(), reg: n.Registry()} }, nil
	}}
}

// relayServer is the engine. Each relayed call runs in a goroutine of its own
// and is answered with genserver.Reply, so a slow engine does not hold up
// the others; Terminate cancels those in flight and waits for them.
type relayServer struct {
	sys *genserver.System
	reg *payload.Registry

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	n      int // in flight
	mu     sync.Mutex
}

func (r *relayServer) Init(*genserver.Process) error {
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return nil
}

func (r *relayServer) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	rc, ok := req.(relayCall)
	if !ok {
		return nil, fmt.Errorf("relay: unknown request %T", req)
	}
	to, err := keyholder.ParseAddress(rc.To)
	if err != nil {
		return nil, fmt.Errorf("relay: To: %w", err)
	}
	inner, err := r.reg.Unmarshal(rc.Req)
	if err != nil {
		return nil, fmt.Errorf("relay: request: %w", err)
	}
	r.mu.Lock()
	if r.n >= maxRelayed {
		r.mu.Unlock()
		return nil, errRelayBusy
	}
	r.n++
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(r.ctx, relayTimeout)
		defer cancel()
		v, err := r.sys.Call(ctx, genserver.Name(to.String()), inner)
		var out relayReply
		if err == nil {
			out.Reply, err = r.reg.Marshal(v)
		}
		switch {
		case errors.Is(err, genserver.ErrNoProcess):
			err = errors.New("relay: calling " + to.String() + " from its node: the node knows no such engine (not its own, nor learned from a peer or cluster member)")
		case err != nil:
			// Not wrapped: the client would take the inner call's
			// sentinels (no connection, timeout) for the relay's own.
			err = errors.New("relay: calling " + to.String() + " from its node: " + err.Error())
		}
		r.mu.Lock()
		r.n--
		r.mu.Unlock()
		genserver.Reply(from, out, err)
	}()
	return genserver.NoReply, nil
}

func (r *relayServer) HandleCast(*genserver.Process, any) {}

func (r *relayServer) Terminate(*genserver.Process, error) {
	r.cancel()
	r.wg.Wait()
}

// relayed wraps req for the relay engine, to call to.
func relayed(reg *payload.Registry, to keyholder.Address, req any) (relayCall, error) {
	b, err := reg.Marshal(req)
	if err != nil {
		return relayCall{}, err
	}
	return relayCall{To: to.String(), Req: b}, nil
}

// unrelayed unwraps the relay's reply.
func unrelayed(reg *payload.Registry, reply any) (any, error) {
	rr, ok := reply.(relayReply)
	if !ok {
		return nil, fmt.Errorf("--via: the engine answered %T, not a relay reply: is it a relay engine?", reply)
	}
	return reg.Unmarshal(rr.Reply)
}
