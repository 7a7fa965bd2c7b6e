// Package admin lets an operator watch a running node the way OTP teams
// watch theirs with observer: an HTTP admin server with Prometheus metrics,
// pprof, health and readiness endpoints, JSON documents of the processes,
// the supervision trees, the connections and, for a node in a cluster, its
// members (Source.Members), and an observer page that
// shows them live. The enginekit ps and status commands read the same
// documents with Client.
//
// A node starts one with its System, its root supervisors and its
// transport:
//
//	srv, err := admin.New(admin.Config{
//		Addr:   "127.0.0.1:9100", // port 0 picks one: srv.URL() tells
//		Source: admin.Source{System: sys, Supervisors: []*supervisor.Supervisor{root}, Transport: tr},
//		Ready:  admin.RequirePeers(tr, peerRouter),
//	})
//	defer srv.Close()
//
// and serves, on that address only (see Server for the list):
// /metrics, /debug/pprof/, /healthz, /readyz, /observe, and /api/*.
//
// The server refuses an address other than loopback unless
// Config.AllowNonLoopback is set: it has no authentication, and it shows
// process state, profiles and peer addresses to whoever reaches it.
//
// A program that embeds a node and has its own Prometheus registry
// registers NewCollector(source, 0) there instead and gets the same
// enginekit_* series (listed on Collector).
//
// # Reported state
//
// /api/process/{pid} shows what genserver.System.GetState returns: the
// server's FormatStatus (genserver.StatusReporter), else its fields. The
// admin server formats that value (as JSON when it can) on its own
// goroutine, after the process has moved on, so a FormatStatus must return
// a value the process will not change afterwards: a copy, not its own maps
// or slices.
//
// # Cost
//
// Nothing here touches the message paths: every scrape or page refresh takes
// a snapshot (genserver's System.Processes reads each process briefly under
// its own lock; the transport's counters are atomics). A scrape costs time
// proportional to the number of processes and connections, on the scraper's
// goroutine.
package admin
