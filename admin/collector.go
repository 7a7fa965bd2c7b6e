package admin

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/enginekit/enginekit/supervisor"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Source as Prometheus metrics, all named enginekit_*.
// Register it in your own prometheus.Registry to expose an embedded node's
// metrics next to your program's; the admin server registers one in its own
// registry. Every Collect takes a fresh snapshot: nothing is sampled or
// counted on the message paths.
//
// Series, with their labels:
//
//	enginekit_processes{status}                         gauge: live processes by status (idle, running, exiting)
//	enginekit_mailbox_messages                          gauge: messages waiting in all mailboxes
//	enginekit_mailbox_max_messages                      gauge: the longest mailbox
//	enginekit_process_mailbox_messages{process}         gauge: per process (at most MaxProcessSeries, longest mailboxes first)
//	enginekit_process_handled_messages_total{process}   counter: per process, messages handled by its current incarnation
//	enginekit_supervisor_restarts_total{supervisor}     counter: child restarts in the supervisor's current run
//	enginekit_supervisor_restarts_in_period{supervisor} gauge: restarts counted against the intensity
//	enginekit_supervisor_max_restarts{supervisor}       gauge: the intensity limit
//	enginekit_supervisor_children{supervisor,state}     gauge: children running or not
//	enginekit_connections                               gauge: live connections
//	enginekit_peer_connections{peer}                    gauge: live connections per peer router
//	enginekit_peer_bytes_total{peer,direction}          counter: bytes in/out over the peer's live connections
//	enginekit_peer_frames_total{peer,direction}         counter: frames in/out
//	enginekit_peer_envelopes_total{peer,direction}      counter: envelopes in/out
//	enginekit_peer_queue_bytes{peer}                    gauge: bytes waiting to be written to the peer
//	enginekit_peer_learned_engines{peer}                gauge: engines learned from the peer
//	enginekit_delivered_total                           counter: messages the transport delivered to local engines
//	enginekit_connection_downs_total                    counter: connections that went down
//	enginekit_listen_errors_total                       counter: listener failures (each followed by a re-bind)
//	enginekit_dialer_restarts_total                     counter: dialers restarted after they failed
//	enginekit_dropped_total{layer,cause}                counter: messages dropped or refused, by layer and cause:
//	                                                    netconn (auth, replay, malformed, send) and every cause of
//	                                                    transport.Stats.Drops (no_route_out, queue_full, late_reply, ...)
//
// and, only when Source.Members is set (the node is in a cluster):
//
//	enginekit_cluster_members{state}                    gauge: other members, connected or not_connected
//	enginekit_cluster_admitted_total                    counter: cluster certificates found valid
//	enginekit_cluster_refused_total{reason}             counter: certificates refused, by reason (ClusterStats.Refused)
//	enginekit_cluster_refused_alive_total               counter: gossip announcements of a member refused
//	enginekit_cluster_mesh_total{event}                 counter: mesh connect, connect_error, disconnect
//
// The per-process series cover the children of the Source's supervisors,
// labelled by their path ("engines/echo"), and the other named processes,
// labelled by name (the proxy of a foreign engine is named by the engine's
// address); unnamed processes count in the aggregates only.
//
// Per-connection counters live as long as the connection, so a peer's
// counters fall back when one of its connections goes; Prometheus' rate()
// treats that as a counter reset.
type Collector struct {
	src       Source
	maxSeries int
}

// NewCollector returns a Collector of src. maxProcessSeries bounds the
// per-process series as Config.MaxProcessSeries does (0 means
// DefaultMaxProcessSeries, negative none).
func NewCollector(src Source, maxProcessSeries int) *Collector {
	if maxProcessSeries == 0 {
		maxProcessSeries = DefaultMaxProcessSeries
	}
	return &Collector{src: src, maxSeries: max(maxProcessSeries, 0)}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("enginekit_"+name, help, labels, nil)
}

var (
	descProcesses      = desc("processes", "Live processes by status.", "status")
	descMailbox        = desc("mailbox_messages", "Messages waiting in all mailboxes.")
	descMailboxMax     = desc("mailbox_max_messages", "Messages waiting in the longest mailbox.")
	descProcMailbox    = desc("process_mailbox_messages", "Messages waiting in a process's mailbox (supervisor children and named processes).", "process")
	descProcHandled    = desc("process_handled_messages_total", "Messages handled by a process's current incarnation (supervisor children and named processes).", "process")
	descSupRestarts    = desc("supervisor_restarts_total", "Child restarts in the supervisor's current run.", "supervisor")
	descSupInPeriod    = desc("supervisor_restarts_in_period", "Restarts counted against the supervisor's restart intensity.", "supervisor")
	descSupMax         = desc("supervisor_max_restarts", "The supervisor's restart intensity: restarts allowed within its period.", "supervisor")
	descSupChildren    = desc("supervisor_children", "Children of the supervisor, running or not.", "supervisor", "state")
	descConnections    = desc("connections", "Live connections of the transport.")
	descPeerConns      = desc("peer_connections", "Live connections per peer router.", "peer")
	descPeerBytes      = desc("peer_bytes_total", "Bytes over the peer's live connections, framing included, TLS excluded.", "peer", "direction")
	descPeerFrames     = desc("peer_frames_total", "Frames over the peer's live connections.", "peer", "direction")
	descPeerEnvelopes  = desc("peer_envelopes_total", "Envelopes over the peer's live connections (in: delivered; out: written).", "peer", "direction")
	descPeerQueue      = desc("peer_queue_bytes", "Bytes queued to be written to the peer.", "peer")
	descPeerLearned    = desc("peer_learned_engines", "Engines learned from the peer.", "peer")
	descDelivered      = desc("delivered_total", "Messages the transport delivered to local engines.")
	descConnDowns      = desc("connection_downs_total", "Connections that went down.")
	descDropped        = desc("dropped_total", "Messages dropped or refused, by layer and cause.", "layer", "cause")
	descListenErrors   = desc("listen_errors_total", "Listener failures, each followed by a re-bind with backoff.")
	descDialerRestarts = desc("dialer_restarts_total", "Dialers restarted after they failed.")
	allDescs           = []*prometheus.Desc{descProcesses, descMailbox, descMailboxMax, descProcMailbox, descProcHandled, descSupRestarts, descSupInPeriod, descSupMax, descSupChildren, descConnections, descPeerConns, descPeerBytes, descPeerFrames, descPeerEnvelopes, descPeerQueue, descPeerLearned, descDelivered, descConnDowns, descDropped, descListenErrors, descDialerRestarts}
	processStatuses    = []string{"idle", "running", "exiting"}
)

// Describe sends the descriptors of every series the Collector may export.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	for _, d := range clusterDescs {
		ch <- d
	}
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		send(ch, d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		send(ch, d, prometheus.CounterValue, v, labels...)
	}
	c.collectCluster(ch)
	if sys := c.src.System; sys != nil {
		byStatus := map[string]int{}
		for _, s := range processStatuses {
			byStatus[s] = 0
		}
		total, longest := 0, 0
		type named struct {
			name    string
			mailbox int
			handled uint64
		}
		var names []named
		children := c.src.childIDs()
		seen := map[string]bool{}
		for _, pi := range sys.Processes() {
			byStatus[pi.Status.String()]++
			total += pi.MailboxLen
			longest = max(longest, pi.MailboxLen)
			// A supervisor's child is known by its path ("engines/echo"),
			// which says more than an engine's registered name (its
			// address); other named processes by their name.
			label := strings.ToValidUTF8(cmp.Or(children[pi.PID], pi.Name), "\uFFFD")
			if label != "" && !seen[label] {
				seen[label] = true
				names = append(names, named{label, pi.MailboxLen, pi.Handled})
			}
		}
		for s, n := range byStatus {
			gauge(descProcesses, float64(n), s)
		}
		gauge(descMailbox, float64(total))
		gauge(descMailboxMax, float64(longest))
		if len(names) > c.maxSeries {
			slices.SortFunc(names, func(a, b named) int {
				return cmp.Or(cmp.Compare(b.mailbox, a.mailbox), strings.Compare(a.name, b.name))
			})
			names = names[:c.maxSeries]
		}
		for _, n := range names {
			gauge(descProcMailbox, float64(n.mailbox), n.name)
			counter(descProcHandled, float64(n.handled), n.name)
		}
	}
	seen := map[string]int{}
	for _, s := range c.src.Supervisors {
		if s != nil {
			t := s.Tree()
			c.collectTree(ch, t, uniqueName(seen, strings.ToValidUTF8(t.Name, "\uFFFD")))
		}
	}
	if tr := c.src.Transport; tr != nil {
		conns := tr.Connections()
		gauge(descConnections, float64(len(conns)))
		type peerSums struct {
			conns int
			net   map[string]uint64
			queue int
		}
		peers := map[string]*peerSums{}
		netDrops := map[string]uint64{}
		for _, cn := range conns {
			v := connectionView(cn)
			p := peers[v.Peer]
			if p == nil {
				p = &peerSums{net: map[string]uint64{}}
				peers[v.Peer] = p
			}
			p.conns++
			p.queue += v.QueueBytes
			for k, n := range v.Stats {
				p.net[k] += n
				if cause, ok := strings.CutPrefix(k, "dropped_"); ok {
					netDrops[cause] += n
				}
			}
		}
		for peer, p := range peers {
			gauge(descPeerConns, float64(p.conns), peer)
			gauge(descPeerQueue, float64(p.queue), peer)
			for _, dir := range []string{"in", "out"} {
				counter(descPeerBytes, float64(p.net["bytes_"+dir]), peer, dir)
				counter(descPeerFrames, float64(p.net["frames_"+dir]), peer, dir)
				counter(descPeerEnvelopes, float64(p.net["envelopes_"+dir]), peer, dir)
			}
		}
		for _, lp := range learnedPeers(tr) {
			gauge(descPeerLearned, float64(len(lp.Engines)), lp.Router)
		}
		for cause, n := range netDrops {
			counter(descDropped, float64(n), "netconn", cause)
		}
		counters, drops := transportCounters(tr.Stats())
		for cause, n := range drops {
			counter(descDropped, float64(n), "transport", cause)
		}
		counter(descDelivered, float64(counters["delivered"]))
		counter(descConnDowns, float64(counters["conn_downs"]))
		counter(descListenErrors, float64(counters["listen_errors"]))
		counter(descDialerRestarts, float64(counters["dialer_restarts"]))
	}
}

// send sends one sample. Label values come from names a program chose
// (process and supervisor names), which may be any bytes: they are made
// valid UTF-8 first, as Prometheus requires, so that no name can make a
// scrape fail (or, with the Must constructors, panic the scraper).
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	for i, l := range labels {
		labels[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err) // reported by the registry, not a panic
	}
	ch <- m
}

// uniqueName keeps two root supervisors of one name from making duplicate
// series (which would fail the whole scrape): the second is "name#2".
func uniqueName(seen map[string]int, name string) string {
	seen[name]++
	if n := seen[name]; n > 1 {
		return name + "#" + strconv.Itoa(n)
	}
	return name
}

// collectTree exports one supervisor under name and the supervisors below it
// as "name/childID" (child IDs are unique within a supervisor).
func (c *Collector) collectTree(ch chan<- prometheus.Metric, t supervisor.Tree, name string) {
	running, stopped := 0, 0
	restarts := 0
	for _, child := range t.Children {
		restarts += child.Restarts
		if child.Running {
			running++
		} else {
			stopped++
		}
	}
	send(ch, descSupRestarts, prometheus.CounterValue, float64(restarts), name)
	send(ch, descSupInPeriod, prometheus.GaugeValue, float64(t.RestartsInPeriod), name)
	send(ch, descSupMax, prometheus.GaugeValue, float64(t.MaxRestarts), name)
	send(ch, descSupChildren, prometheus.GaugeValue, float64(running), name, "running")
	send(ch, descSupChildren, prometheus.GaugeValue, float64(stopped), name, "stopped")
	for _, child := range t.Children {
		if child.Sub != nil {
			c.collectTree(ch, *child.Sub, name+"/"+child.ID)
		}
	}
}
