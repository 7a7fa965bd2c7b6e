package ordering

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
)

// spy is an engine that reports the waiter of each Read it defers.
type spy struct {
	*server
	spawned chan genserver.PID
}

func (s *spy) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	v, err := s.server.HandleCall(p, from, req)
	if v == genserver.NoReply {
		for _, w := range s.waiters {
			if w.from == from {
				s.spawned <- w.pid
			}
		}
	}
	return v, err
}

// A waiter that dies without replying fails its caller at once, through
// the engine's monitor, with ErrWaiterExited and the waiter's exit reason,
// instead of leaving it to its deadline.
func TestWaiterCrashFailsCaller(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{Name: "crash"})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	b, err := events.NewBroker(sys, events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	spawned := make(chan genserver.PID, 1)
	eng, err := sys.Spawn(func() genserver.Server {
		return &spy{server: newServer(Config{Broker: b}), spawned: spawned}
	})
	if err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, 1)
	go func() {
		_, err := sys.Call(context.Background(), eng, Read{TxID: "a"})
		errs <- err
	}()
	w := <-spawned
	if err := sys.Kill(w); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrWaiterExited) || !errors.Is(err, genserver.ErrKilled) {
		t.Fatalf("read whose waiter was killed: %v", err)
	}
	// The engine forgot the waiter (it replied from the waiter's Down), and
	// orders as before.
	if _, err := sys.Call(context.Background(), eng, Submit{TxID: "a"}); err != nil {
		t.Fatal(err)
	}
	if st, err := sys.Call(context.Background(), eng, Stats{}); err != nil || st.(StatsReply).Waiting != 0 {
		t.Fatalf("stats: %+v %v", st, err)
	}
}
