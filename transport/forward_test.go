package transport_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/transport"
)

// tally counts the casts it gets; a call returns the count so far.
type tally struct{ n int }

func (c *tally) HandleCall(*genserver.Process, genserver.From, any) (any, error) {
	return Ping{strconv.Itoa(c.n)}, nil
}
func (c *tally) HandleCast(*genserver.Process, any) { c.n++ }

// Casts and calls of one sender to a foreign engine keep their order: the
// proxy forwards both in the sender's goroutine, on the engine's route, so
// every call sees exactly the casts made before it.
func TestSenderOrderCastsAndCalls(t *testing.T) {
	a, b := newTNode(t, "a"), newTNode(t, "b")
	e, _, err := b.tr.SpawnEngine("tally", func() genserver.Server { return &tally{} })
	if err != nil {
		t.Fatal(err)
	}
	a.connect(t, b, b.listen(t))
	a.waitSynced(t, b)
	dest := genserver.Name(e.String())
	ctx := ctxT(t)
	casts := 0
	for round := range 50 {
		for range round % 7 {
			if err := a.sys.Cast(dest, Ping{"+1"}); err != nil {
				t.Fatal(err)
			}
			casts++
		}
		v, err := a.sys.Call(ctx, dest, Ping{"count?"})
		if err != nil {
			t.Fatal(err)
		}
		if v != (Ping{strconv.Itoa(casts)}) {
			t.Fatalf("round %d: the callee had seen %v casts, want %d", round, v, casts)
		}
	}
}

// A cast, send, call or link to a foreign engine whose route is down (its
// proxy waits out ForgetGrace) fails at once with ErrNoConnection.
func TestNoRouteFailsSenderAtOnce(t *testing.T) {
	downs := make(chan keyholder.Address, 4)
	a := newTNode(t, "a", func(c *transport.Config) {
		c.ForgetGrace = time.Hour
		c.OnConnection = func(peer keyholder.Address, up bool, _ error) {
			if !up {
				downs <- peer
			}
		}
	})
	b := newTNode(t, "b")
	e, _, err := b.tr.SpawnEngine("srv", func() genserver.Server { return server{} })
	if err != nil {
		t.Fatal(err)
	}
	_, address, _ := transport.ParseEndpoint(b.listen(t))
	var cab cable
	if err := a.tr.ConnectWith(context.Background(), "b-cable", cab.dial(address), b.kh.Router()); err != nil {
		t.Fatal(err)
	}
	a.waitSynced(t, b)
	_, near, err := a.tr.SpawnEngine("near", func() genserver.Server { return &linker{} })
	if err != nil {
		t.Fatal(err)
	}
	cab.pull()
	within(t, downs)
	dest := genserver.Name(e.String())
	if _, ok := a.sys.Whereis(e.String()); !ok {
		t.Fatal("the proxy is gone within its grace period")
	}
	for name, err := range map[string]error{
		"cast": a.sys.Cast(dest, Ping{"x"}),
		"send": a.sys.Send(dest, Ping{"x"}),
	} {
		if !errors.Is(err, transport.ErrNoConnection) {
			t.Fatalf("%s without a route: %v", name, err)
		}
	}
	if _, err := a.sys.Call(ctxT(t), dest, Ping{"x"}); !errors.Is(err, transport.ErrNoConnection) {
		t.Fatalf("call without a route: %v", err)
	}
	px, _ := a.sys.Whereis(e.String())
	done := make(chan error, 1)
	if err := a.sys.Cast(near, linkTo{dest: px, done: done}); err != nil {
		t.Fatal(err)
	}
	if err := within(t, done); !errors.Is(err, transport.ErrNoConnection) {
		t.Fatalf("link without a route: %v", err)
	}
}
