package genserver_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

type tick struct{ n int }

func TestSendAfterAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		got := make(chan any, 4)
		start := time.Now()
		spawn(t, sys, &fn{
			init: func(p *genserver.Process) error {
				p.SendAfter(2*time.Second, tick{1})
				cancelled := p.SendAfter(time.Second, tick{0})
				if !p.CancelTimer(cancelled) || p.CancelTimer(cancelled) {
					t.Error("CancelTimer: want true once, then false")
				}
				return nil
			},
			info: func(_ *genserver.Process, msg any) { got <- msg },
		})
		if m := <-got; m != (tick{1}) || time.Since(start) != 2*time.Second {
			t.Fatalf("got %v after %v", m, time.Since(start))
		}
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("cancelled timer delivered %v", <-got)
		}
	})
}

// A timer that has fired but whose message still waits behind a slow
// callback is cancelled too.
func TestCancelFiredTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		got := make(chan any, 4)
		var ref genserver.TimerRef
		pid := spawn(t, sys, &fn{
			init: func(p *genserver.Process) error { ref = p.SendAfter(time.Second, tick{}); return nil },
			cast: func(p *genserver.Process, msg any) {
				time.Sleep(2 * time.Second) // fake time: the timer fires meanwhile
				got <- p.CancelTimer(ref)
			},
			info: func(_ *genserver.Process, msg any) { got <- msg },
		})
		_ = sys.Cast(pid, "slow")
		if ok := <-got; ok != true {
			t.Fatal("CancelTimer of a fired, undelivered timer reported false")
		}
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("delivered %v", <-got)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		timeouts := make(chan time.Time, 4)
		pid := spawn(t, sys, &fn{
			init: func(p *genserver.Process) error { p.SetIdleTimeout(time.Minute); return nil },
			info: func(_ *genserver.Process, msg any) {
				if msg == (genserver.Timeout{}) {
					timeouts <- time.Now()
				}
			},
		})
		start := time.Now()
		time.Sleep(50 * time.Second)
		_ = sys.Cast(pid, "activity") // restarts the wait
		if at := <-timeouts; at.Sub(start) != 110*time.Second {
			t.Fatalf("timeout after %v, want 110s", at.Sub(start))
		}
		// After firing it fires again only after another idle period.
		if at := <-timeouts; at.Sub(start) != 170*time.Second {
			t.Fatalf("second timeout after %v, want 170s", at.Sub(start))
		}
	})
}

func TestTimersDieWithProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		pid := spawn(t, sys, &fn{init: func(p *genserver.Process) error {
			p.SendAfter(time.Hour, tick{})
			return nil
		}})
		_ = sys.StopProcess(context.Background(), pid, nil)
		synctest.Wait() // a live timer would keep the bubble from finishing cleanly
	})
}
