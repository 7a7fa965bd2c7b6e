package transport

import "sync/atomic"

// drop causes counted by the transport (netconn counts its own: bad
// signatures or MACs, replays, malformed frames).
const (
	dropNoRoute    = iota // envelope on a connection the transport does not know (a race at close)
	dropKind              // kind the transport does not handle
	dropNotRouter         // learn or forget not signed by the connection's router
	dropBadProof          // learn without a valid engine proof, or for an address we own
	dropUnknownSrc        // message from an engine not learned on that connection
	dropNoEngine          // message for an engine that is not ours (or not running)
	dropMalformed         // payload that does not decode
	dropLateReply         // reply for no pending call (late, repeated, or from the wrong engine)
	numDrops
)

type counters struct {
	delivered     atomic.Uint64
	drops         [numDrops]atomic.Uint64
	noRoute       atomic.Uint64
	unencodable   atomic.Uint64
	sendFailed    atomic.Uint64
	learnRefused  atomic.Uint64
	filterRefused atomic.Uint64
	connDown      atomic.Uint64
}

func (c *counters) dropped(cause int) { c.drops[cause].Add(1) }

// Stats are the transport's counters since it was created.
type Stats struct {
	Delivered uint64 // messages delivered to local engines
	// Dropped incoming envelopes, by cause.
	DroppedNotRouter  uint64 // learn/forget not from the connection's router
	DroppedBadProof   uint64 // learn whose engine proof failed
	DroppedUnknownSrc uint64 // source not learned on that connection
	DroppedNoEngine   uint64 // destination not one of our running engines
	DroppedMalformed  uint64 // undecodable payload
	DroppedLateReply  uint64 // reply that answered no pending call
	DroppedOther      uint64
	// Outgoing.
	NoRoute      uint64 // casts/sends to a foreign engine with no live route
	Unencodable  uint64 // casts/sends whose type is not registered
	SendFailed   uint64 // envelopes a closing connection did not take
	LearnRefused uint64 // learns refused because the name was taken
	// FiltersRefused counts event filter specs in learn messages that were
	// malformed or over the limits: the engine is learned, without events.
	FiltersRefused uint64
	ConnDowns      uint64 // connections that went down
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	return Stats{
		Delivered:         c.delivered.Load(),
		DroppedNotRouter:  c.drops[dropNotRouter].Load(),
		DroppedBadProof:   c.drops[dropBadProof].Load(),
		DroppedUnknownSrc: c.drops[dropUnknownSrc].Load(),
		DroppedNoEngine:   c.drops[dropNoEngine].Load(),
		DroppedMalformed:  c.drops[dropMalformed].Load(),
		DroppedLateReply:  c.drops[dropLateReply].Load(),
		DroppedOther:      c.drops[dropNoRoute].Load() + c.drops[dropKind].Load(),
		NoRoute:           c.noRoute.Load(),
		Unencodable:       c.unencodable.Load(),
		SendFailed:        c.sendFailed.Load(),
		LearnRefused:      c.learnRefused.Load(),
		FiltersRefused:    c.filterRefused.Load(),
		ConnDowns:         c.connDown.Load(),
	}
}
