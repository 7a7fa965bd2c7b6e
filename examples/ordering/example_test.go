package ordering_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/genserver"
)

func Example() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "example"})
	defer sys.Stop(ctx)

	// The broker is shared: the engine's waiters use it, and so may anyone
	// who wants to follow the order.
	broker, err := events.NewBroker(sys, events.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := sys.Spawn(ordering.New(ordering.Config{Broker: broker}), genserver.WithName("ordering")); err != nil {
		fmt.Println(err)
		return
	}
	eng := genserver.Name("ordering")

	h, _ := genserver.Call[ordering.Height](ctx, sys, eng, ordering.Submit{TxID: "tx-a", Data: []byte("pay 5")})
	fmt.Println("tx-a ordered at height", h)
	tx, _ := genserver.Call[ordering.Tx](ctx, sys, eng, ordering.Read{TxID: "tx-a"})
	fmt.Printf("read at once: %s at height %d: %s\n", tx.TxID, tx.Height, tx.Data)

	// A reader of a transaction not ordered yet waits for it, in a waiter
	// process; the engine goes on meanwhile. (Should the Submit below come
	// first, the reader is answered at once, with the same Tx.)
	waited := make(chan ordering.Tx)
	go func() {
		tx, _ := genserver.Call[ordering.Tx](ctx, sys, eng, ordering.Read{TxID: "tx-b"})
		waited <- tx
	}()
	_ = sys.Cast(eng, ordering.Submit{TxID: "tx-b", Data: []byte("pay 7")})
	tx = <-waited
	fmt.Printf("the waiting reader got: %s at height %d: %s\n", tx.TxID, tx.Height, tx.Data)

	// Submit is idempotent on TxID.
	h, _ = genserver.Call[ordering.Height](ctx, sys, eng, ordering.Submit{TxID: "tx-a", Data: []byte("pay 5")})
	fmt.Println("tx-a again: height", h)
	_, err = sys.Call(ctx, eng, ordering.Submit{TxID: "tx-a", Data: []byte("pay 500")})
	fmt.Println("tx-a with other data:", errors.Is(err, ordering.ErrConflict))
	// Output:
	// tx-a ordered at height 1
	// read at once: tx-a at height 1: pay 5
	// the waiting reader got: tx-b at height 2: pay 7
	// tx-a again: height 1
	// tx-a with other data: true
}
