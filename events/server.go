package events

import (
	"errors"

	"github.com/enginekit/enginekit/genserver"
)

// watch asks the broker's process to reconcile its monitor of a subscriber
// with the table: monitor it if it has subscriptions, else demonitor it.
// Reconciling with the table, rather than acting on the request, makes the
// outcome independent of how requests and Downs interleave.
type watch struct{ pid genserver.PID }

// brokerServer is the broker's process. It only watches subscribers, so
// that a subscriber's exit removes its subscriptions without polling;
// publishing never goes through it.
type brokerServer struct {
	b    *Broker
	mons map[genserver.PID]genserver.Ref
	pids map[genserver.Ref]genserver.PID
}

func (s *brokerServer) Init(p *genserver.Process) error {
	s.mons = make(map[genserver.PID]genserver.Ref)
	s.pids = make(map[genserver.Ref]genserver.PID)
	return nil
}

var errNoCalls = errors.New("events: the broker process takes no calls")

func (s *brokerServer) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	return nil, errNoCalls
}

func (s *brokerServer) HandleCast(p *genserver.Process, msg any) {
	w, ok := msg.(watch)
	if !ok {
		return
	}
	s.b.mu.RLock()
	has := len(s.b.tab.byPID[w.pid]) > 0
	s.b.mu.RUnlock()
	ref, watching := s.mons[w.pid]
	switch {
	case has && !watching:
		// A subscriber that is already gone (or belongs to another System)
		// gets an immediate Down, which removes its subscriptions.
		ref = p.Monitor(w.pid)
		s.mons[w.pid], s.pids[ref] = ref, w.pid
	case !has && watching:
		p.Demonitor(ref)
		delete(s.mons, w.pid)
		delete(s.pids, ref)
	}
}

func (s *brokerServer) HandleInfo(p *genserver.Process, msg any) {
	d, ok := msg.(genserver.Down)
	if !ok {
		return
	}
	pid, ok := s.pids[d.Ref]
	if !ok {
		return
	}
	delete(s.pids, d.Ref)
	delete(s.mons, pid)
	s.b.removeSubscriber(pid)
}

func (s *brokerServer) Terminate(p *genserver.Process, reason error) { s.b.shutdown() }
