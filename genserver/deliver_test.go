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
