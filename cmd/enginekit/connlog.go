package main

import (
	"time"

	"github.com/enginekit/enginekit/transport"
	"github.com/rs/zerolog"
)

// briefConnection is how long an inbound connection that taught the node
// no engine may live and still count as a one-shot client's (enginekit
// call or cast, a readiness probe that speaks the protocol).
const briefConnection = 10 * time.Second

// logConnection writes the node's line for a connection going up or down;
// each names the peer's remote endpoint. So that one-shot clients do not
// flood the info log (docs/operations.md, "Connection logs"):
//   - a connection the node made (--peer, cluster members) is logged at
//     info, up and down;
//   - one a peer made to the node is logged at debug when it comes up (a
//     peer node that stays announces its engines: the "learned engine"
//     lines are at info), and when it goes down at info only if it taught
//     the node an engine or lived at least briefConnection, else at debug.
func logConnection(log zerolog.Logger, e transport.ConnectionEvent) {
	quiet := e.Inbound && (e.Up || (e.Learned == 0 && e.Lived < briefConnection))
	ev := log.Info()
	if quiet {
		ev = log.Debug()
	}
	dir, event := "out", "down"
	if e.Inbound {
		dir = "in"
	}
	if e.Up {
		event = "up"
	}
	ev = ev.Str("event", event).Str("remote", e.Remote).Stringer("peer", e.Peer).Str("dir", dir)
	if !e.Up {
		ev = ev.Dur("lived", e.Lived.Round(time.Millisecond)).Int("engines", e.Learned)
	}
	switch {
	case e.Up:
		ev.Msg("connection up")
	case e.Err == nil:
		ev.Msg("connection closed")
	case closedByPeer(e.Err):
		ev.Msg("connection closed by the peer")
	default:
		ev.AnErr("error", e.Err).Msg("connection down")
	}
}
