package ordering

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
)

// server is one incarnation of the ordering engine. Its fields are the
// Elixir state map; each incarnation starts empty, at height 0.
type server struct {
	cfg     Config
	broker  *events.Broker
	private bool // the broker was started by this incarnation, linked to it

	height Height
	txs    map[string]record
	dups   uint64

	// The waiters of deferred Reads, by the engine's monitor on each: the
	// From is kept so that a waiter that dies without replying fails its
	// caller at once instead of leaving it to its deadline.
	waiters map[genserver.Ref]waiting
}

type record struct {
	height Height
	data   []byte
}

type waiting struct {
	pid  genserver.PID
	from genserver.From
}

func newServer(cfg Config) *server {
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.MaxWaiters == 0 {
		cfg.MaxWaiters = DefaultMaxWaiters
	}
	if cfg.WaiterCheck == 0 {
		cfg.WaiterCheck = DefaultWaiterCheck
	}
	return &server{
		cfg:     cfg,
		broker:  cfg.Broker,
		txs:     make(map[string]record),
		waiters: make(map[genserver.Ref]waiting),
	}
}

// Init checks the config and, without a shared broker, starts a private
// one linked to this incarnation: if either dies abnormally, so does the
// other (a Kill of the engine, which skips Terminate, takes the broker along).
func (s *server) Init(p *genserver.Process) error {
	if s.cfg.WaiterCheck < 0 {
		return fmt.Errorf("%w: negative WaiterCheck %v", ErrBadConfig, s.cfg.WaiterCheck)
	}
	if events.Topic(s.cfg.Topic).Validate() != nil {
		return fmt.Errorf("%w: topic %q", ErrBadConfig, s.cfg.Topic)
	}
	if s.broker != nil {
		return nil
	}
	b, err := events.NewBroker(p.System(), events.Config{})
	if err != nil {
		return fmt.Errorf("ordering: starting a private broker: %w", err)
	}
	if err := p.Link(b.PID()); err != nil {
		_ = b.Close()
		return fmt.Errorf("ordering: linking the private broker: %w", err)
	}
	s.broker, s.private = b, true
	return nil
}

// HandleCall serves Submit, Read and Stats. A Read of a transaction not
// ordered yet is deferred ({:noreply, state}) and answered by its waiter.
func (s *server) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	switch r := req.(type) {
	case Submit:
		return s.submit(p, r)
	case Read:
		return s.read(p, from, r.TxID)
	case Stats:
		return StatsReply{Height: s.height, Waiting: len(s.waiters), Duplicates: s.dups}, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnknownRequest, req)
}

// HandleCast takes Submit casts: fire and forget, so a refused one is only
// logged.
func (s *server) HandleCast(p *genserver.Process, msg any) {
	log := p.Logger()
	r, ok := msg.(Submit)
	if !ok {
		log.Debug().Str("type", fmt.Sprintf("%T", msg)).Msg("ordering: cast ignored")
		return
	}
	if _, err := s.submit(p, r); err != nil {
		log.Warn().Err(err).Msg("ordering: cast Submit refused")
	}
}

// HandleInfo takes the Down of a waiter:
//
//	def handle_info({:DOWN, ref, :process, _pid, reason}, state) do
//	  {from, waiters} = Map.pop(state.waiters, ref)
//	  if reason != :normal, do: GenServer.reply(from, {:error, {:waiter_exited, reason}})
//	  {:noreply, %{state | waiters: waiters}}
//	end
//
// Here the reply is sent whatever the reason: a waiter that answered, or
// whose caller gave up, exited normally with its From already answered or
// abandoned, so this Reply is dropped (it returns false).
func (s *server) HandleInfo(p *genserver.Process, msg any) {
	d, ok := msg.(genserver.Down)
	if !ok {
		return
	}
	w, ok := s.waiters[d.Ref]
	if !ok {
		return
	}
	delete(s.waiters, d.Ref)
	err := ErrWaiterExited
	if d.Reason != nil {
		err = fmt.Errorf("%w: %w", ErrWaiterExited, d.Reason)
	}
	genserver.Reply(w.from, nil, err)
}

// Terminate closes a private broker. Waiters need nothing: each monitors
// the engine and exits on its Down, and their callers, who monitor the
// engine during their calls, have failed already.
func (s *server) Terminate(p *genserver.Process, reason error) {
	if s.private {
		p.Unlink(s.broker.PID())
		_ = s.broker.Close()
	}
}

func (s *server) submit(p *genserver.Process, r Submit) (Height, error) {
	if err := checkTxID(r.TxID); err != nil {
		return 0, err
	}
	if rec, ok := s.txs[r.TxID]; ok {
		if !bytes.Equal(rec.data, r.Data) {
			return 0, fmt.Errorf("%w: %q is at height %d", ErrConflict, r.TxID, rec.height)
		}
		s.dups++
		return rec.height, nil
	}
	s.height++
	// Copied in: a caller in this OS process must not change an ordered
	// transaction through a slice it still holds (Elixir's binaries are
	// immutable; Go's slices are not).
	rec := record{height: s.height, data: bytes.Clone(r.Data)}
	s.txs[r.TxID] = rec
	// One event per ordered transaction. Its subscribers share it; the
	// waiters copy Data again for each reply.
	_, err := s.broker.Publish(p.Self(), events.Event{
		Topic:   s.cfg.Topic,
		Attrs:   []events.Attr{{Key: TxIDAttr, Value: r.TxID}},
		Payload: s.tx(r.TxID, rec),
	})
	if err != nil {
		log := p.Logger()
		log.Error().Err(err).Str("txid", r.TxID).Msg("ordering: ordered event not published")
	}
	return rec.height, nil
}

// read answers at once for an ordered transaction, else spawns a waiter
// and defers the reply:
//
//	def handle_call({:read, id}, from, state) do
//	  case Map.fetch(state.txs, id) do
//	    {:ok, tx} -> {:reply, {:ok, tx}, state}
//	    :error ->
//	      {:ok, pid} = Waiter.start(from, id, self())  # subscribes in init/1
//	      ref = Process.monitor(pid)
//	      {:noreply, put_in(state.waiters[ref], from)}
//	  end
//	end
//
// The check and the waiter's subscription happen within this one callback:
// the waiter's Init, which subscribes, runs before Spawn returns, and only
// this process publishes ordered events, from its own callbacks. So no
// transaction can be ordered between "not ordered yet" and "subscribed".
func (s *server) read(p *genserver.Process, from genserver.From, id string) (any, error) {
	if err := checkTxID(id); err != nil {
		return nil, err
	}
	if rec, ok := s.txs[id]; ok {
		return s.tx(id, rec), nil
	}
	if s.cfg.MaxWaiters > 0 && len(s.waiters) >= s.cfg.MaxWaiters {
		return nil, fmt.Errorf("%w: %d", ErrTooManyWaiters, len(s.waiters))
	}
	pid, err := p.System().Spawn(newWaiter(waiterArgs{
		broker: s.broker,
		engine: p.Self(),
		topic:  s.cfg.Topic,
		txID:   id,
		from:   from,
		check:  s.cfg.WaiterCheck,
	}))
	if err != nil {
		return nil, fmt.Errorf("ordering: starting a waiter: %w", err)
	}
	s.waiters[p.Monitor(pid)] = waiting{pid: pid, from: from}
	return genserver.NoReply, nil
}

func (s *server) tx(id string, rec record) Tx {
	return Tx{TxID: id, Height: rec.height, Data: bytes.Clone(rec.data)}
}

func checkTxID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidTx)
	case len(id) > MaxTxID:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidTx, len(id), MaxTxID)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %q is not UTF-8", ErrInvalidTx, id)
	}
	return nil
}
