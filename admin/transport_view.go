package admin

import (
	"slices"
	"strings"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/transport"
)

// connectionView is what /api/connections shows of one connection.
func connectionView(c transport.Connection) Connection {
	return Connection{
		Peer:       c.Peer.String(),
		Remote:     c.Remote,
		Auth:       c.Auth.String(),
		UpSince:    c.UpSince,
		QueueBytes: c.QueueBytes,
		Stats:      counterFields(c.Stats),
	}
}

// learnedPeers lists the peers with live connections or learned engines,
// with the engines learned from each, sorted.
func learnedPeers(tr *transport.Transport) []Peer {
	byPeer := map[keyholder.Address][]keyholder.Address{}
	for _, c := range tr.Connections() {
		byPeer[c.Peer] = nil
	}
	for p, engines := range tr.Learned() {
		byPeer[p] = engines
	}
	peers := make([]Peer, 0, len(byPeer))
	for p, engines := range byPeer {
		v := Peer{Router: p.String(), Engines: make([]string, 0, len(engines))}
		for _, e := range engines {
			v.Engines = append(v.Engines, e.String())
		}
		slices.Sort(v.Engines)
		peers = append(peers, v)
	}
	slices.SortFunc(peers, func(a, b Peer) int { return strings.Compare(a.Router, b.Router) })
	return peers
}

// transportCounters splits the transport's Stats into its event counters
// (delivered, conn_downs, listen_errors, dialer_restarts) and its drops and
// refusals by cause (Stats.Drops, which has every cause; the named Dropped*
// fields repeat some of them and are not read).
func transportCounters(s transport.Stats) (counters, drops map[string]uint64) {
	counters = map[string]uint64{
		"delivered":       s.Delivered,
		"conn_downs":      s.ConnDowns,
		"listen_errors":   s.ListenErrors,
		"dialer_restarts": s.DialerRestarts,
	}
	drops = make(map[string]uint64, len(s.Drops))
	for cause, n := range s.Drops {
		drops[cause] = n
	}
	return counters, drops
}
