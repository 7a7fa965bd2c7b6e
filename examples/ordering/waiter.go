package ordering

import (
	"bytes"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
)

// waiter answers one deferred Read: a short-lived process that holds the
// caller's From, subscribes to the ordered event of its transaction,
// replies when it arrives and exits. It also exits, without replying,
// when its caller gave up, at the caller's deadline (replying ErrTimeout if
// the caller is still there), and when the engine exits. Its subscription
// ends with it: Terminate unsubscribes, and the broker, which monitors
// every subscriber, drops it anyway if the waiter is killed.
//
// It is a process rather than a goroutine because the broker delivers
// events to processes (and cleans up after the ones that exit), because
// its timer and monitor die with it, and because an idle process costs a
// few hundred bytes where a parked goroutine costs a stack.
type waiter struct {
	waiterArgs
	sub events.SubID
}

type waiterArgs struct {
	broker *events.Broker
	engine genserver.PID // the only publisher it listens to
	topic  string
	txID   string
	from   genserver.From
	check  time.Duration
}

// check is the waiter's timer: is the caller still there, is it past the
// deadline.
type check struct{}

func newWaiter(a waiterArgs) func() genserver.Server {
	return func() genserver.Server { return &waiter{waiterArgs: a} }
}

// Init subscribes before anything else can happen: it runs inside the
// engine's Read callback, before Spawn returns (see server.read).
//
//	def init({from, id, engine, deadline}) do
//	  :ok = Phoenix.PubSub.subscribe(Ordering.PubSub, "ordered:" <> id)
//	  Process.monitor(engine)
//	  Process.send_after(self(), :check, min(deadline - now(), @check))
//	  {:ok, %{from: from, id: id, deadline: deadline}}
//	end
func (w *waiter) Init(p *genserver.Process) error {
	sub, err := w.broker.Subscribe(p.Self(), events.And(
		events.Topic(w.topic),
		events.AttrEquals(TxIDAttr, w.txID),
	))
	if err != nil {
		return err
	}
	w.sub = sub
	p.Monitor(w.engine)
	w.arm(p)
	return nil
}

// arm sets the next check: at the caller's deadline, or sooner to notice a
// caller that gave up early. Past the deadline, the waiter ends.
func (w *waiter) arm(p *genserver.Process) {
	left := time.Until(w.from.Deadline())
	if left <= 0 {
		// The caller's own timer fires at this instant too; whichever
		// wins, the caller sees ErrTimeout.
		genserver.Reply(w.from, nil, genserver.ErrTimeout)
		p.Stop(nil)
		return
	}
	p.SendAfter(min(left, w.check), check{})
}

func (w *waiter) HandleInfo(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case events.Delivery:
		m.Done()
		tx, ok := m.Event.Payload.(Tx)
		if !ok || tx.TxID != w.txID || p.Sender() != w.engine {
			return // someone else publishing on the topic: not our answer
		}
		genserver.Reply(w.from, Tx{TxID: tx.TxID, Height: tx.Height, Data: bytes.Clone(tx.Data)}, nil)
		p.Stop(nil)
	case check:
		if !w.from.Pending() {
			p.Stop(nil) // the caller gave up
			return
		}
		w.arm(p)
	case genserver.Down:
		// The engine exited. Its callers were failed at once by their
		// calls' own monitors; nothing is left to answer.
		p.Stop(nil)
	}
}

func (w *waiter) Terminate(p *genserver.Process, reason error) {
	_ = w.broker.Unsubscribe(w.sub) // ErrClosed or ErrNoSubscription once the broker is gone: fine
}

func (w *waiter) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	return nil, fmt.Errorf("%w: %T", ErrUnknownRequest, req)
}

func (w *waiter) HandleCast(p *genserver.Process, msg any) {}
