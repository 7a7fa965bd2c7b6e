package ordering

import (
	"errors"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/payload"
)

// Height is a transaction's position in the order: 1 for the first
// transaction an incarnation orders, then consecutive. It is the reply to a
// Submit call.
type Height uint64

// Submit asks for a transaction to be ordered. As a call, the reply is its
// Height; as a cast, nothing is replied. It is idempotent on TxID: a second
// Submit of the same TxID with the same Data gets the height the first one
// got and orders nothing; with different Data it fails with ErrConflict
// (dropped and logged, for a cast).
type Submit struct {
	TxID string
	Data []byte
}

// Read asks for an ordered transaction (call). The reply is its Tx. For a
// transaction not ordered yet the reply is deferred until it is, within the
// caller's deadline; the engine does not block meanwhile (see the package
// documentation, "Deferred reads").
type Read struct {
	TxID string
}

// Tx is an ordered transaction: the reply to Read, and the payload of the
// event the engine publishes when it orders one.
type Tx struct {
	TxID   string
	Height Height
	Data   []byte
}

// Stats asks for a StatsReply (call).
type Stats struct{}

// StatsReply describes the engine's incarnation.
type StatsReply struct {
	Height     Height // the latest height given, 0 before the first Submit
	Waiting    int    // deferred Reads whose waiter is still running
	Duplicates uint64 // Submits of a TxID already ordered, with the same Data
}

// Errors of the ordering engine, matched with errors.Is. Across nodes, a
// handler's error arrives as its text only (callbridge.RemoteError).
var (
	// ErrInvalidTx: a TxID is empty, longer than MaxTxID bytes or not
	// valid UTF-8 (it travels as CBOR text and as an event attribute).
	ErrInvalidTx = errors.New("ordering: invalid transaction id")
	// ErrConflict: a Submit reuses an ordered TxID with different Data.
	ErrConflict = errors.New("ordering: transaction id already ordered with other data")
	// ErrTooManyWaiters: a Read would need a waiter while MaxWaiters are
	// already running.
	ErrTooManyWaiters = errors.New("ordering: too many waiting reads")
	// ErrWaiterExited: the waiter of a deferred Read exited without
	// replying (it crashed, or was killed).
	ErrWaiterExited = errors.New("ordering: waiter exited before replying")
	// ErrUnknownRequest: a call of a type the engine does not serve.
	ErrUnknownRequest = errors.New("ordering: unknown request")
	// ErrBadConfig: the Config is not usable (the engine fails to start).
	ErrBadConfig = errors.New("ordering: bad config")
)

// MaxTxID is the longest TxID, in bytes: the longest string an event
// filter may test (a waiter subscribes with AttrEquals("txid", id)).
const MaxTxID = events.MaxFilterString

// Defaults for the zero fields of Config.
const (
	// DefaultTopic is the topic of the events the engine publishes.
	DefaultTopic = "ordering.ordered"
	// DefaultMaxWaiters bounds the deferred Reads waiting at once.
	DefaultMaxWaiters = 10000
	// DefaultWaiterCheck is how often a waiter checks that its caller is
	// still waiting.
	DefaultWaiterCheck = time.Second
)

// TxIDAttr is the attribute of an ordered event that holds the TxID.
const TxIDAttr = "txid"

// Register registers every request, reply and event payload type of the
// engine in reg, under "ordering.<TypeName>". Every node that talks to an
// ordering engine, or subscribes to its events from afar, must register
// them.
func Register(reg *payload.Registry) error {
	return errors.Join(
		payload.Register[Submit](reg, "ordering.Submit"),
		payload.Register[Read](reg, "ordering.Read"),
		payload.Register[Tx](reg, "ordering.Tx"),
		payload.Register[Height](reg, "ordering.Height"),
		payload.Register[Stats](reg, "ordering.Stats"),
		payload.Register[StatsReply](reg, "ordering.StatsReply"),
	)
}

// Config configures an ordering engine. The zero value is valid.
type Config struct {
	// Broker is where the engine publishes an event per ordered
	// transaction (topic Topic, attribute TxIDAttr, payload its Tx), and
	// where the waiters of deferred Reads subscribe. Other engines, and
	// through the transport engines on other nodes, may subscribe too.
	// Default: each incarnation starts a private broker, linked to it, on
	// which nobody else can subscribe.
	Broker *events.Broker
	// Topic is the topic of the ordered events. Engines that share a
	// broker need distinct topics. Default DefaultTopic.
	Topic string
	// MaxWaiters bounds the deferred Reads waiting at once; one more fails
	// with ErrTooManyWaiters. Default DefaultMaxWaiters; negative: no bound.
	MaxWaiters int
	// WaiterCheck is how often a waiter checks that its caller has not
	// given up early (a waiter always ends at its caller's deadline).
	// Default DefaultWaiterCheck; negative is an error (ErrBadConfig, at Init).
	WaiterCheck time.Duration
}

// New returns the engine's factory: each call makes a fresh, empty
// incarnation whose heights start again at 1. Use it with System.Spawn,
// System.Service, or transport's Engine and SpawnEngine.
func New(cfg Config) func() genserver.Server {
	return func() genserver.Server { return newServer(cfg) }
}
