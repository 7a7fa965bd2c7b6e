package transport

import (
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
)

// watcher is the transport's own process: it monitors the engines started
// with SpawnEngine, to announce their exit, and the proxies, so that a
// proxy that dies on its own (killed, say) is forgotten rather than left
// behind in the core. It holds no routing state.
type watcher struct {
	t       *Transport
	engines map[genserver.Ref]*localEngine
	proxies map[genserver.Ref]keyholder.Address
}

type (
	watchEngine struct{ e *localEngine }
	watchProxy  struct {
		engine keyholder.Address
		pid    genserver.PID
	}
)

func (w *watcher) Init(*genserver.Process) error {
	w.engines = make(map[genserver.Ref]*localEngine)
	w.proxies = make(map[genserver.Ref]keyholder.Address)
	return nil
}

func (w *watcher) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }

// HandleCast registers a monitor; a process that died before its monitor is
// set still gives a Down, at once.
func (w *watcher) HandleCast(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case watchEngine:
		w.engines[p.Monitor(m.e.pid)] = m.e
	case watchProxy:
		w.proxies[p.Monitor(m.pid)] = m.engine
	}
}

func (w *watcher) HandleInfo(_ *genserver.Process, msg any) {
	d, ok := msg.(genserver.Down)
	if !ok {
		return
	}
	if e, ok := w.engines[d.Ref]; ok {
		delete(w.engines, d.Ref)
		w.t.engineDown(e, d.Reason)
	}
	if e, ok := w.proxies[d.Ref]; ok {
		delete(w.proxies, d.Ref)
		w.t.proxyDied(e, d.PID)
	}
}
