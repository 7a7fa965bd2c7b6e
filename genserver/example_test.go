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

// Account reports its state itself, hiding the secret (OTP's format_status).
type Account struct {
	balance int
	apiKey  string
}

func (a *Account) HandleCall(*genserver.Process, genserver.From, any) (any, error) {
	return a.balance, nil
}
func (a *Account) HandleCast(_ *genserver.Process, msg any) { a.balance += msg.(int) }
func (a *Account) FormatStatus() any                        { return fmt.Sprintf("balance=%d", a.balance) }

// Introspection: the processes of a System, one process's info, and its
// state read inside the process.
func Example_introspection() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "bank"})
	defer sys.Stop(ctx)
	acct, _ := sys.Spawn(func() genserver.Server { return &Account{apiKey: "s3cret"} }, genserver.WithName("acct"))
	_, _ = sys.Spawn(func() genserver.Server { return &Counter{} })
	_ = sys.Cast(acct, 40)
	_ = sys.Cast(acct, 2)

	state, err := sys.GetState(ctx, genserver.Name("acct")) // after the two casts: same sender, in order
	fmt.Println(state, err)
	for _, p := range sys.Processes() {
		fmt.Printf("%v %q handled=%d mailbox=%d\n", p.PID, p.Name, p.Handled, p.MailboxLen)
	}
	// Output:
	// balance=42 <nil>
	// <bank.1> "acct" handled=3 mailbox=0
	// <bank.2> "" handled=0 mailbox=0
}
