package genserver_test

import (
	"errors"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

// replies is a CallReplier that hands each answer to a channel.
type replies chan reply

type reply struct {
	id  uint64
	v   any
	err error
}

func (r replies) CallReply(id uint64, v any, err error) { r <- reply{id, v, err} }

// A call delivered for another node (Relay.DeliverCall) is answered
// through its replier: once, whether the callee replies from HandleCall or
// later from elsewhere; the callee sees the caller's proxy and address.
func TestDeliverCall(t *testing.T) {
	sys := newSystem(t)
	proxy := spawn(t, sys, &fn{})
	held := make(chan genserver.From, 1)
	callee := spawn(t, sys, &fn{call: func(p *genserver.Process, from genserver.From, req any) (any, error) {
		if from.PID() != proxy || from.Address() != "far" || p.Sender() != proxy {
			return nil, errors.New("wrong caller")
		}
		if req == "later" {
			held <- from
			return genserver.NoReply, nil
		}
		return req, nil
	}})
	rs := make(replies, 4)
	relay := sys.Relay()
	deadline := time.Now().Add(time.Minute)
	f1 := relay.RemoteFrom(rs, 1, proxy, "far", deadline)
	if !f1.Pending() || !f1.Deadline().Equal(time.Unix(0, deadline.UnixNano())) {
		t.Fatalf("new From: pending %v, deadline %v", f1.Pending(), f1.Deadline())
	}
	if err := relay.DeliverCall(callee, f1, "now"); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, rs); r.id != 1 || r.v != "now" || r.err != nil {
		t.Fatalf("reply %+v", r)
	}
	if f1.Pending() || genserver.Reply(f1, "again", nil) {
		t.Fatal("a From answered twice")
	}
	f2 := relay.RemoteFrom(rs, 2, proxy, "far", deadline)
	if err := relay.DeliverCall(callee, f2, "later"); err != nil {
		t.Fatal(err)
	}
	from := recv(t, held)
	// Whoever ends the call first (the transport at a deadline) wins.
	if !genserver.Reply(f2, nil, genserver.ErrTimeout) || genserver.Reply(from, "late", nil) {
		t.Fatal("the first Reply did not win")
	}
	if r := recv(t, rs); r.id != 2 || !errors.Is(r.err, genserver.ErrTimeout) {
		t.Fatalf("reply %+v", r)
	}
	// A callee that is gone: an error, and the From is not answered.
	stopped := spawn(t, sys, &fn{})
	_ = sys.Kill(stopped)
	waitExit(t, stopped)
	f3 := relay.RemoteFrom(rs, 3, proxy, "far", deadline)
	if err := relay.DeliverCall(stopped, f3, "x"); !errors.Is(err, genserver.ErrNoProcess) || !f3.Pending() {
		t.Fatalf("to a gone process: %v (pending %v)", err, f3.Pending())
	}
	select {
	case r := <-rs:
		t.Fatalf("unexpected reply %+v", r)
	default:
	}
}

// directReplies is a DirectReplier: it tells direct answers apart.
type directReplies chan directReply

type directReply struct {
	id     uint64
	direct bool
}

func (r directReplies) CallReply(id uint64, _ any, _ error) { r <- directReply{id, false} }
func (r directReplies) CallReplyDirect(id uint64, _ any, _ error) {
	r <- directReply{id, true}
}

// A DirectReplier hears CallReplyDirect when the callee answers from
// HandleCall with nothing else left of what it took from its mailbox, and
// CallReply when more messages of that batch wait behind the call, or when
// the answer comes from elsewhere.
func TestDeliverCallDirect(t *testing.T) {
	sys := newSystem(t)
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	held := make(chan genserver.From, 1)
	callee := spawn(t, sys, &fn{
		call: func(_ *genserver.Process, from genserver.From, req any) (any, error) {
			if req == "hold" {
				held <- from
				return genserver.NoReply, nil
			}
			return req, nil
		},
		cast: func(*genserver.Process, any) { entered <- struct{}{}; <-gate },
	})
	rs := make(directReplies, 4)
	relay := sys.Relay()
	deadline := time.Now().Add(time.Minute)
	if err := relay.DeliverCall(callee, relay.RemoteFrom(rs, 1, genserver.PID{}, "far", deadline), "alone"); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, rs); r != (directReply{1, true}) {
		t.Fatalf("a lone call: %+v, want a direct reply", r)
	}
	// Two calls queued behind a cast that holds the callee: they are taken
	// in one batch; the first has the second behind it.
	if err := sys.Cast(callee, "wait"); err != nil {
		t.Fatal(err)
	}
	<-entered // the cast's batch is taken: the calls make the next one
	for id := uint64(2); id <= 3; id++ {
		if err := relay.DeliverCall(callee, relay.RemoteFrom(rs, id, genserver.PID{}, "far", deadline), "x"); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	if r := recv(t, rs); r != (directReply{2, false}) {
		t.Fatalf("a call with another behind it: %+v, want a plain reply", r)
	}
	if r := recv(t, rs); r != (directReply{3, true}) {
		t.Fatalf("the last call of the batch: %+v, want a direct reply", r)
	}
	// An answer given later, outside HandleCall's return, is a plain one.
	if err := relay.DeliverCall(callee, relay.RemoteFrom(rs, 4, genserver.PID{}, "far", deadline), "hold"); err != nil {
		t.Fatal(err)
	}
	genserver.Reply(recv(t, held), "late", nil)
	if r := recv(t, rs); r != (directReply{4, false}) {
		t.Fatalf("a later answer: %+v, want a plain reply", r)
	}
}
