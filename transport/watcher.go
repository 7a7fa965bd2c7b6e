package transport

import (
	"github.com/enginekit/enginekit/genserver"
)

// watcher is the transport's own process: it monitors the proxies (to tell
// OnForget once a proxy's name is really gone) and the engines started with
// SpawnEngine (to announce their exit).
type watcher struct {
	t       *Transport
	proxies map[genserver.Ref]*proxy
	engines map[genserver.Ref]*localEngine
}

type (
	watchProxy  struct{ px *proxy }
	watchEngine struct{ e *localEngine }
)

func (w *watcher) Init(*genserver.Process) error {
	w.proxies = make(map[genserver.Ref]*proxy)
	w.engines = make(map[genserver.Ref]*localEngine)
	return nil
}

func (w *watcher) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }

// HandleCast registers a monitor. Requests are casts so that no connection
// reader ever waits on the watcher (which may itself wait on a full
// connection queue while announcing a forget); a process that died before
// its monitor is set still gives a Down, at once.
func (w *watcher) HandleCast(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case watchProxy:
		w.proxies[p.Monitor(m.px.pid)] = m.px
	case watchEngine:
		w.engines[p.Monitor(m.e.pid)] = m.e
	}
}

func (w *watcher) HandleInfo(_ *genserver.Process, msg any) {
	d, ok := msg.(genserver.Down)
	if !ok {
		return
	}
	if px, ok := w.proxies[d.Ref]; ok {
		delete(w.proxies, d.Ref)
		w.t.dropProxy(px)
		w.t.log.Info().Stringer("engine", px.addr).Msg("forgot engine")
		if w.t.cfg.OnForget != nil {
			w.t.cfg.OnForget(px.addr)
		}
	}
	if e, ok := w.engines[d.Ref]; ok {
		delete(w.engines, d.Ref)
		w.t.engineDown(e)
	}
}
