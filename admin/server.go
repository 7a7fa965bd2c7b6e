package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Server is the admin HTTP server of a node. It serves, on its address only:
//
//	/metrics              Prometheus text exposition (the Collector)
//	/debug/pprof/         the runtime profiles of net/http/pprof
//	/healthz              200 "ok" while the server runs
//	/readyz               200 "ready", or 503 and why not (Config.Ready)
//	/observe              the observer page
//	/api/processes        JSON documents: Processes (?q=, ?sort=, ?limit=: ProcessQuery),
//	/api/process/{pid}    Process with its reported state,
//	/api/tree             Trees,
//	/api/connections      Connections,
//	/api/stats            Stats,
//	/api/members          Members (the cluster's, when the node is in one)
//
// It is read-only: nothing it serves changes the node.
type Server struct {
	cfg  Config
	log  zerolog.Logger
	ln   net.Listener
	http *http.Server
	ask  *stateAsker

	done      chan struct{} // closed when the serving goroutine has ended
	closeOnce sync.Once
}

// ErrClosed is what the state requests of a closing server end with.
var ErrClosed = errors.New("admin: server closed")

// New checks cfg, binds its address and serves until Close. The address is
// bound when New returns, so Addr and URL are final and a busy port is an
// error here.
func New(cfg Config) (*Server, error) {
	if err := cfg.Verify(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ln: ln, done: make(chan struct{}), ask: newStateAsker(cfg.StateTimeout)}
	s.http = &http.Server{
		Handler:           s.guard(s.handler()),
		ReadHeaderTimeout: cfg.ReadTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       2 * time.Minute, // a closed observer tab's connections do not stay for ever
		// No WriteTimeout: /debug/pprof/profile and trace write for as long
		// as asked (?seconds=30 by default).
		ErrorLog: log.New(cfg.Logger, "admin: ", 0), // not the global logger
	}
	go s.serve()
	s.log.Info().Str("event", "admin").Str("addr", ln.Addr().String()).Msg("admin server listening")
	return s, nil
}

func (s *Server) serve() {
	defer close(s.done)
	if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error().Err(err).Str("addr", s.ln.Addr().String()).Msg("admin server failed")
	}
}

// Addr returns the address the server listens on (with the real port when
// Config.Addr asked for port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns "http://HOST:PORT", the base of every endpoint.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server: it stops accepting, waits up to
// Config.ShutdownTimeout for requests in flight, cuts the rest, ends the
// state requests still waiting, and returns once its goroutines have ended.
// It is safe to call more than once and from several goroutines; calls
// after the first return nil.
func (s *Server) Close() (err error) {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if s.http.Shutdown(ctx) != nil { // requests still running: cut them
			err = s.http.Close()
		}
		<-s.done
		s.ask.close()
		s.log.Info().Str("event", "admin").Str("addr", s.ln.Addr().String()).Msg("admin server stopped")
	})
	return err
}

// Handler returns the server's routes, for mounting them elsewhere (under a
// prefix of your own server, with http.StripPrefix); with the loopback
// guard of its own address unless Config.AllowNonLoopback.
func (s *Server) Handler() http.Handler { return s.http.Handler }

func (s *Server) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(s.cfg.Source, s.cfg.MaxProcessSeries))
	if s.cfg.RuntimeMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))

	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.cfg.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})

	src := s.cfg.Source
	mux.HandleFunc("GET /api/processes", func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		q := ProcessQuery{Q: v.Get("q"), Sort: v.Get("sort")}
		if l := v.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("%v: limit %q is not a number", ErrBadQuery, l)})
				return
			}
			q.Limit = n
		}
		doc := src.processes()
		if err := q.apply(&doc); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, doc)
	})
	mux.HandleFunc("GET /api/process/{pid}", func(w http.ResponseWriter, r *http.Request) {
		p, err := src.process(r.Context(), r.PathValue("pid"), s.ask)
		if err != nil {
			writeJSON(w, http.StatusNotFound, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET /api/tree", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, src.trees())
	})
	mux.HandleFunc("GET /api/connections", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, src.connections())
	})
	mux.HandleFunc("GET /api/members", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, src.members())
	})
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, src.stats())
	})

	static, err := fs.Sub(observerFiles, "observer")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux.Handle("GET /observe/", http.StripPrefix("/observe/", http.FileServerFS(static)))
	mux.HandleFunc("GET /observe", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/observe/", http.StatusFound)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, indexPage)
	})
	return mux
}

// guard refuses requests whose Host is not this machine while the server
// is loopback-only. A loopback server is still reachable from a browser on
// the same machine, and a web page can point a name it controls at
// 127.0.0.1 (DNS rebinding) to read process state and profiles through the
// user's browser; such a request carries that name as its Host.
func (s *Server) guard(next http.Handler) http.Handler {
	if s.cfg.AllowNonLoopback {
		return next
	}
	cfgHost, _, _ := net.SplitHostPort(s.cfg.Addr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		ip := net.ParseIP(host)
		if host != "localhost" && host != cfgHost && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, fmt.Sprintf("admin: Host %q refused: this admin server answers only to loopback names (a guard against DNS rebinding)", r.Host), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

const indexPage = `<!doctype html><meta charset="utf-8"><title>enginekit admin</title>
<h1>enginekit admin</h1><ul>
<li><a href="/observe/">observer</a>
<li><a href="/metrics">metrics</a>
<li><a href="/debug/pprof/">pprof</a>
<li><a href="/healthz">healthz</a> · <a href="/readyz">readyz</a>
<li><a href="/api/processes">/api/processes</a> · <a href="/api/tree">/api/tree</a> · <a href="/api/connections">/api/connections</a> · <a href="/api/stats">/api/stats</a> · <a href="/api/members">/api/members</a>
</ul>`

type apiError struct {
	Error string `json:"error"`
}

// writeJSON writes v compact (a document of thousands of processes is a
// few hundred KB; indenting would double the scrape's cost): pipe it into
// jq to read it.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
