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

func (w *watcher) HandleCall(p *genserver.Process, _ genserver.From, req any) (any, error) {
	switch m := req.(type) {
	case watchProxy:
		w.proxies[p.Monitor(m.px.pid)] = m.px
	case watchEngine:
		w.engines[p.Monitor(m.e.pid)] = m.e
	}
	return nil, nil
}

func (w *watcher) HandleCast(*genserver.Process, any) {}

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
