package genserver_test

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/genserver"
)

// Counter is a server whose state is its own fields.
type Counter struct {
	n       int
	waiters []genserver.From // calls deferred until n reaches 10
}

type Get struct{}
type WaitForTen struct{}

func (c *Counter) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	switch req.(type) {
	case Get:
		return c.n, nil
	case WaitForTen:
		if c.n >= 10 {
			return c.n, nil
		}
		c.waiters = append(c.waiters, from)
		return genserver.NoReply, nil // answered later, by HandleCast
	}
	return nil, fmt.Errorf("unknown request %T", req)
}

func (c *Counter) HandleCast(p *genserver.Process, msg any) {
	c.n += msg.(int)
	if c.n >= 10 {
		for _, w := range c.waiters {
			genserver.Reply(w, c.n, nil)
		}
		c.waiters = nil
	}
}

func Example() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "example"})
	defer sys.Stop(ctx)

	_, err := sys.Spawn(func() genserver.Server { return &Counter{} }, genserver.WithName("counter"))
	if err != nil {
		panic(err)
	}
	counter := genserver.Name("counter")

	done := make(chan int)
	go func() {
		n, _ := genserver.Call[int](ctx, sys, counter, WaitForTen{})
		done <- n
	}()
	_ = sys.Cast(counter, 4)
	n, _ := genserver.Call[int](ctx, sys, counter, Get{})
	fmt.Println("after one cast:", n)
	_ = sys.Cast(counter, 6)
	fmt.Println("the waiter got:", <-done)
	// Output:
	// after one cast: 4
	// the waiter got: 10
}
