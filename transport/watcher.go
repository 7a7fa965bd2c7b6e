package transport

import (
	"github.com/enginekit/enginekit/genserver"
)

// watcher is the transport's own process: it monitors the engines started
// with SpawnEngine, to announce their exit. It holds no routing state. A
// proxy is not monitored: it reports its own exit (proxy.Exited), so that
// one that dies on its own (killed, say) is forgotten rather than left
// behind in the core, at no cost per proxy for the watcher.
type watcher struct {
	t       *Transport
	engines map[genserver.Ref]*localEngine
}

type watchEngine struct{ e *localEngine }

func (w *watcher) Init(*genserver.Process) error {
	w.engines = make(map[genserver.Ref]*localEngine)
	return nil
}

func (w *watcher) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }

// HandleCast registers a monitor; a process that died before its monitor is
// set still gives a Down, at once.
func (w *watcher) HandleCast(p *genserver.Process, msg any) {
	if m, ok := msg.(watchEngine); ok {
		w.engines[p.Monitor(m.e.pid)] = m.e
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
}
