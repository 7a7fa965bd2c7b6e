package transport

// dropCause is why the transport dropped or refused something. netconn
// counts its own causes (bad signatures or MACs, replays, malformed frames)
// in each connection's Stats.
type dropCause int

const (
	dropNoRoute       dropCause = iota // envelope on a connection the transport does not know (a race at close)
	dropKind                           // kind the transport does not handle
	dropNotRouter                      // learn, forget or marker not from the connection's router
	dropBadProof                       // learn without a valid engine proof, or for an address we own
	dropUnknownSrc                     // message from an engine not learned on that connection
	dropNoEngine                       // message for an engine that is not ours (or not running)
	dropMalformed                      // payload that does not decode
	dropLateReply                      // reply for no pending call (late, repeated, or from the wrong engine)
	dropForgetUnknown                  // forget for an engine not learned on that connection
	dropLearnLimit                     // learn past MaxLearnedPerPeer
	dropLearnRefused                   // learn whose name is taken here
	dropCallsInLimit                   // call past MaxCallsInPerPeer (answered with an error)
	dropCallsOutLimit                  // our call past MaxCallsOutPerPeer (failed at once)
	dropPeerConns                      // connection past MaxConnsPerPeer (closed)
	dropReplyNoRoute                   // reply to a peer with no live connection left
	dropNoRouteOut                     // cast, send or event to a foreign engine without a live route
	dropTooLarge                       // envelope over the frame limit (replaced by a size error where someone waits)
	dropQueueFull                      // reader-path send with no room in the queue
	dropUnencodable                    // outgoing message whose type is not registered
	dropSendFailed                     // send on a connection going down
	dropFilter                         // event filter spec refused: the engine is learned without events
	numDrops
)

var dropNames = [numDrops]string{
	"no_route", "kind", "not_router", "bad_proof", "unknown_src", "no_engine", "malformed",
	"late_reply", "forget_unknown", "learn_limit", "learn_refused", "calls_in_limit",
	"calls_out_limit", "peer_conns_limit", "reply_no_route", "no_route_out", "too_large",
	"queue_full", "unencodable", "send_failed", "filter_refused",
}

func (d dropCause) String() string { return dropNames[d] }

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
	DroppedOther      uint64 // envelopes on a closing connection, unknown kinds
	// Outgoing.
	NoRoute      uint64 // casts/sends to a foreign engine with no live route
	Unencodable  uint64 // casts/sends whose type is not registered
	SendFailed   uint64 // envelopes a closing connection did not take
	LearnRefused uint64 // learns refused because the name was taken
	// FiltersRefused counts event filter specs in learn messages that were
	// malformed or over the limits: the engine is learned, without events.
	FiltersRefused uint64
	ConnDowns      uint64 // connections that went down
	// ListenErrors counts listener failures (each is followed by a re-bind
	// with backoff); DialerRestarts dialers restarted after they failed.
	ListenErrors   uint64
	DialerRestarts uint64
	// ProofsVerified counts engine proofs checked with ed25519; a proof
	// verified before (a reconnect's burst) is remembered, not checked.
	ProofsVerified uint64
	// Drops has every drop and refusal counter by cause name: the fields
	// above and no_route, kind, forget_unknown, learn_limit,
	// learn_refused, calls_in_limit, calls_out_limit, peer_conns_limit,
	// reply_no_route, no_route_out, too_large, queue_full, unencodable,
	// send_failed, filter_refused.
	Drops map[string]uint64
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	d := t.core.drops
	t.mu.Unlock()
	s := Stats{
		Delivered:         t.delivered.Load(),
		DroppedNotRouter:  d[dropNotRouter],
		DroppedBadProof:   d[dropBadProof],
		DroppedUnknownSrc: d[dropUnknownSrc],
		DroppedNoEngine:   d[dropNoEngine],
		DroppedMalformed:  d[dropMalformed],
		DroppedLateReply:  d[dropLateReply],
		DroppedOther:      d[dropNoRoute] + d[dropKind],
		NoRoute:           d[dropNoRouteOut],
		Unencodable:       d[dropUnencodable],
		SendFailed:        d[dropSendFailed],
		LearnRefused:      d[dropLearnRefused],
		FiltersRefused:    d[dropFilter],
		ConnDowns:         t.connDowns.Load(),
		ListenErrors:      t.listenErrors.Load(),
		DialerRestarts:    t.dialerRestarts.Load(),
		ProofsVerified:    t.proofChecks.Load(),
		Drops:             make(map[string]uint64, numDrops),
	}
	for i, n := range d {
		s.Drops[dropNames[i]] = n
	}
	return s
}
