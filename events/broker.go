package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/enginekit/enginekit/genserver"
	"github.com/rs/zerolog"
)

// DefaultMaxPending is the default bound on a subscription's deliveries not
// yet acknowledged with Delivery.Done.
const DefaultMaxPending = 1024

// Overflow is what happens when a delivery would exceed a subscription's
// bound (MaxPending unacknowledged deliveries), or when the subscriber's own
// bounded mailbox (genserver.WithMailboxLimit) refuses it. Publishing never
// waits in either case.
type Overflow uint8

const (
	// DropNewest drops the event for that subscription only; the
	// subscription stays, the drop is counted in Stats, and the next
	// Delivery it gets says how many it missed (Delivery.Dropped).
	DropNewest Overflow = iota
	// Cancel removes the subscription and sends the subscriber an
	// Overflowed info message: a subscriber that cannot keep up learns it
	// at once and can catch up another way before subscribing again.
	Cancel
)

func (o Overflow) String() string {
	switch o {
	case DropNewest:
		return "DropNewest"
	case Cancel:
		return "Cancel"
	}
	return fmt.Sprintf("Overflow(%d)", uint8(o))
}

// Config configures a Broker. The zero value is valid.
type Config struct {
	// Name, if set, registers the broker's process under it.
	Name string
	// MaxPending is the default bound of a subscription: how many
	// deliveries may wait for Delivery.Done. Default DefaultMaxPending;
	// negative means unbounded (Done is then unnecessary).
	MaxPending int
	// Overflow is the default policy at the bound. Default DropNewest.
	Overflow Overflow
	// Logger receives the broker's debug logs. Default: the zero
	// zerolog.Logger, which discards everything.
	Logger zerolog.Logger
}

// DefaultConfig returns the Config that a zero Config stands for, with the
// defaults written out.
func DefaultConfig() Config { return Config{MaxPending: DefaultMaxPending, Overflow: DropNewest} }

// Verify returns an error wrapping ErrBadConfig that names what is wrong
// with c, or nil. NewBroker calls it.
func (c Config) Verify() error {
	if c.Overflow > Cancel {
		return fmt.Errorf("%w: unknown overflow policy %v", ErrBadConfig, c.Overflow)
	}
	return nil
}

// SubOption overrides a Config default for one subscription.
type SubOption func(*subOpts)

type subOpts struct {
	max    int
	policy Overflow
}

// WithMaxPending sets the subscription's bound (see Config.MaxPending; 0
// takes DefaultMaxPending, negative is unbounded).
func WithMaxPending(n int) SubOption { return func(o *subOpts) { o.max = n } }

// WithOverflow sets the subscription's policy at its bound.
func WithOverflow(policy Overflow) SubOption { return func(o *subOpts) { o.policy = policy } }

// Stats are a broker's counters since it started. Dropped deliveries are
// counted per cause; every delivery a matching event did not produce is in
// exactly one of them.
type Stats struct {
	Subscriptions int // current subscriptions
	Subscribers   int // current distinct subscribers

	Published uint64 // events accepted by Publish
	Delivered uint64 // Delivery messages queued at subscribers

	DroppedPending     uint64 // the subscription was at its MaxPending bound
	DroppedMailboxFull uint64 // the subscriber's bounded mailbox refused it
	DroppedNoProcess   uint64 // the subscriber had exited (its subscriptions go once its Down arrives)

	Cancelled uint64 // subscriptions removed by the Cancel policy
	Downs     uint64 // subscriptions removed because their subscriber exited
}

// subscription is one Subscribe. Its counters are shared by publishers and
// the subscriber; its spec and index position are guarded by Broker.mu.
type subscription struct {
	id     SubID
	pid    genserver.PID
	max    int64 // 0: unbounded
	policy Overflow

	pending atomic.Int64  // deliveries not yet acknowledged
	dropped atomic.Uint64 // dropped since the last delivery (DropNewest)
	gone    atomic.Bool   // cancelled: publishers skip it until it is removed

	prog  *program
	idx   int
	keys  []indexKey
	multi bool
}

func (s *subscription) ack() {
	for {
		n := s.pending.Load()
		if n <= 0 || s.pending.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// Broker is the event broker of one System. Its methods are safe for
// concurrent use, from processes and plain goroutines alike.
type Broker struct {
	sys    *genserver.System
	pid    genserver.PID // the broker's process: monitors subscribers
	log    zerolog.Logger
	max    int
	policy Overflow
	ids    atomic.Uint64
	closed atomic.Bool

	// mu guards tab. Publish holds it for reading while it matches and
	// queues deliveries (which never block); Subscribe, Update,
	// Unsubscribe and the removal of dead or cancelled subscriptions hold
	// it for writing.
	mu      sync.RWMutex
	tab     table
	scratch sync.Pool // *scratch

	published, delivered                      atomic.Uint64
	droppedPending, droppedFull, droppedNoPrc atomic.Uint64
	cancelled, downs                          atomic.Uint64
}

// NewBroker starts a broker for sys. Its process (which watches
// subscribers) lives until Close or until sys stops; after that the broker
// refuses everything with ErrClosed.
func NewBroker(sys *genserver.System, cfg Config) (*Broker, error) {
	if sys == nil {
		return nil, fmt.Errorf("%w: nil System", ErrBadConfig)
	}
	if err := cfg.Verify(); err != nil {
		return nil, err
	}
	b := &Broker{sys: sys, log: cfg.Logger, max: cfg.MaxPending, policy: cfg.Overflow, tab: newTable()}
	if b.max == 0 {
		b.max = DefaultMaxPending
	}
	b.scratch.New = func() any { return new(scratch) }
	var opts []genserver.Option
	if cfg.Name != "" {
		opts = append(opts, genserver.WithName(cfg.Name))
	}
	pid, err := sys.Spawn(func() genserver.Server { return &brokerServer{b: b} }, opts...)
	if err != nil {
		return nil, fmt.Errorf("events: starting the broker process: %w", err)
	}
	b.pid = pid
	return b, nil
}

// PID returns the broker's process, the sender of Overflowed messages.
func (b *Broker) PID() genserver.PID { return b.pid }

// Close stops the broker's process and drops every subscription, and returns
// once the process has exited (it runs only this package's code, so that is
// prompt). Close is safe to call more than once and from several goroutines;
// once the broker is closed it returns nil. Publish, Subscribe and Update
// then fail with ErrClosed.
func (b *Broker) Close() error {
	err := b.sys.StopProcess(context.Background(), b.pid, nil)
	if errors.Is(err, genserver.ErrNoProcess) {
		// Stopped already, or stopping under another Close or its System's
		// Stop: wait for the exit all the same.
		<-b.pid.Done()
		return nil
	}
	return err
}

// isClosed reports whether the broker is closed: its process ran shutdown,
// or was killed (which skips Terminate).
func (b *Broker) isClosed() bool { return b.closed.Load() || !b.pid.Alive() }

// shutdown runs when the broker's process exits.
func (b *Broker) shutdown() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed.Store(true)
	for _, s := range b.tab.subs {
		s.gone.Store(true)
	}
	b.tab = newTable()
}

// Subscribe makes events that match f arrive at subscriber as Delivery info
// messages, until Unsubscribe, until the subscriber exits, or (policy
// Cancel) until it falls behind. A subscriber may hold many subscriptions;
// an event matching several of them arrives once per subscription.
//
// f must be valid (ErrBadFilter, ErrFilterTooLarge otherwise). The zero
// Filter is valid and matches nothing, which is what most transport
// proxies hold. A subscriber that is not alive is refused with an error
// matching genserver.ErrNoProcess.
func (b *Broker) Subscribe(subscriber genserver.PID, f Filter, opts ...SubOption) (SubID, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	o := subOpts{max: b.max, policy: b.policy}
	for _, opt := range opts {
		opt(&o)
	}
	if o.policy > Cancel {
		return 0, fmt.Errorf("%w: unknown overflow policy %v", ErrBadConfig, o.policy)
	}
	if o.max == 0 {
		o.max = DefaultMaxPending
	}
	s := &subscription{id: SubID(b.ids.Add(1)), pid: subscriber, policy: o.policy, prog: f.prog()}
	if o.max > 0 {
		s.max = int64(o.max)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return 0, ErrClosed
	}
	// Checked under mu: the removal of a dead subscriber's subscriptions
	// takes mu too, so none can be added after it.
	if !subscriber.Alive() {
		return 0, fmt.Errorf("events: subscriber %v: %w", subscriber, genserver.ErrNoProcess)
	}
	if b.tab.add(s) {
		b.watch(subscriber)
	}
	return s.id, nil
}

// watch asks the broker's process to monitor or demonitor pid according to
// whether it has subscriptions; called with mu held, so the requests reach
// the process in the order of the changes they follow.
func (b *Broker) watch(pid genserver.PID) { _ = b.sys.Cast(b.pid, watch{pid}) }

// Update replaces the spec of a subscription. Publishes that start after
// Update returns match the new spec; the subscription keeps its identity
// and its pending count.
func (b *Broker) Update(id SubID, f Filter) error {
	if err := f.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return ErrClosed
	}
	s, ok := b.tab.byID[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoSubscription, id)
	}
	s.prog = f.prog()
	b.tab.refile(s)
	return nil
}

// Unsubscribe ends a subscription. Publishes that start after it returns
// do not deliver to it; deliveries already queued (or queued by publishes
// running concurrently) still arrive.
func (b *Broker) Unsubscribe(id SubID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return ErrClosed
	}
	s, ok := b.tab.byID[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoSubscription, id)
	}
	b.removeLocked(s)
	return nil
}

func (b *Broker) removeLocked(s *subscription) {
	s.gone.Store(true)
	if b.tab.remove(s) {
		b.watch(s.pid)
	}
}

// Filter returns the spec of a subscription.
func (b *Broker) Filter(id SubID) (Filter, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	s, ok := b.tab.byID[id]
	if !ok {
		return Filter{}, false
	}
	return Filter{s.prog}, true
}

// removeSubscriber drops every subscription of a subscriber that exited.
func (b *Broker) removeSubscriber(pid genserver.PID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	subs := b.tab.byPID[pid]
	n := len(subs)
	for len(subs) > 0 {
		s := subs[len(subs)-1]
		s.gone.Store(true)
		b.tab.remove(s)
		subs = b.tab.byPID[pid]
	}
	b.downs.Add(uint64(n))
	if n > 0 {
		b.log.Debug().Stringer("subscriber", pid).Int("subscriptions", n).Msg("events: subscriber exited")
	}
}

// Publish delivers ev to every subscription whose spec matches it, as a
// Delivery info message sent on behalf of publisher (the zero PID when a
// plain goroutine publishes), and returns how many deliveries it queued.
//
// Deliveries from one publisher arrive at each subscriber in the order of
// its Publish calls. Publish never waits for a subscriber: a subscription
// at its bound gets its Overflow policy instead of the event. It fails
// only for a malformed event (ErrBadEvent) or a closed broker (ErrClosed).
func (b *Broker) Publish(publisher genserver.PID, ev Event) (int, error) {
	if err := ev.validate(); err != nil {
		return 0, err
	}
	if b.isClosed() {
		return 0, ErrClosed
	}
	var c counts
	var shared *Event // allocated at the first match: all deliveries point to it
	sc := b.scratch.Get().(*scratch)
	b.mu.RLock()
	b.tab.candidates(ev.Topic, sc)
	for _, s := range sc.cands {
		if s.prog.eval(0, &ev) {
			if shared == nil {
				shared = &Event{}
				*shared = ev
			}
			b.deliver(publisher, s, shared, &c)
		}
	}
	b.mu.RUnlock()
	clear(sc.cands)
	b.scratch.Put(sc)

	b.published.Add(1)
	if c.delivered > 0 {
		b.delivered.Add(c.delivered)
	}
	if c.pending|c.full|c.noProc != 0 {
		b.droppedPending.Add(c.pending)
		b.droppedFull.Add(c.full)
		b.droppedNoPrc.Add(c.noProc)
	}
	if len(c.cancel) > 0 {
		b.cancel(c.cancel)
	}
	return int(c.delivered), nil
}

// counts are one publish's outcomes, added to the Stats once.
type counts struct {
	delivered, pending, full, noProc uint64
	cancel                           []*subscription
}

func (b *Broker) deliver(pub genserver.PID, s *subscription, ev *Event, c *counts) {
	if s.gone.Load() {
		return
	}
	if s.max > 0 && s.pending.Add(1) > s.max {
		s.pending.Add(-1)
		c.pending++
		b.overflow(s, c)
		return
	}
	d := Delivery{Sub: s.id, Event: ev, sub: s}
	if s.dropped.Load() != 0 {
		d.Dropped = s.dropped.Swap(0)
	}
	err := b.sys.Relay().SendFrom(pub, s.pid, d)
	if err == nil {
		c.delivered++
		return
	}
	if s.max > 0 {
		s.pending.Add(-1)
	}
	if d.Dropped != 0 {
		s.dropped.Add(d.Dropped) // not told yet: tell with the next one
	}
	if errors.Is(err, genserver.ErrMailboxFull) {
		c.full++
		b.overflow(s, c)
		return
	}
	c.noProc++ // the subscriber exited; its Down will remove the subscription
}

func (b *Broker) overflow(s *subscription, c *counts) {
	if s.policy == Cancel {
		if s.gone.CompareAndSwap(false, true) {
			c.cancel = append(c.cancel, s)
			_ = b.sys.Relay().SendFrom(b.pid, s.pid, Overflowed{Sub: s.id})
		}
		return
	}
	s.dropped.Add(1)
}

// cancel removes subscriptions cancelled by a publish, before that publish
// returns, so that Stats and Unsubscribe agree with what it did.
func (b *Broker) cancel(subs []*subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range subs {
		if b.tab.byID[s.id] == s {
			b.removeLocked(s)
			b.cancelled.Add(1)
			b.log.Debug().Stringer("subscriber", s.pid).Uint64("sub", uint64(s.id)).Msg("events: subscription cancelled on overflow")
		}
	}
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.RLock()
	st := Stats{Subscriptions: len(b.tab.subs), Subscribers: len(b.tab.byPID)}
	b.mu.RUnlock()
	st.Published = b.published.Load()
	st.Delivered = b.delivered.Load()
	st.DroppedPending = b.droppedPending.Load()
	st.DroppedMailboxFull = b.droppedFull.Load()
	st.DroppedNoProcess = b.droppedNoPrc.Load()
	st.Cancelled = b.cancelled.Load()
	st.Downs = b.downs.Load()
	return st
}
