package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/enginekit/enginekit/admin"
)

const statusSynopsis = `status --admin URL [--json]

Prints the state of a running node, read from its admin server
('enginekit node --admin 127.0.0.1:PORT' prints the URL): its processes and
mailboxes in sum, its supervision trees with their restarts, its
connections (peer router, remote endpoint, auth, age, frames and bytes each
way, queued bytes), the engines learned from each peer, the transport's
counters, and every drop by cause (the causes at zero on one line). A
node in a cluster also shows its members (node, router, gossip address,
endpoint, whether it is connected, when its certificate expires) and the
membership counters: certificates admitted and refused by reason, joins,
mesh connects and disconnects.

--json prints {"stats", "tree", "connections", "members"}: the /api/stats,
/api/tree, /api/connections and /api/members documents.`

// statusDoc is what status --json prints.
type statusDoc struct {
	Stats       admin.Stats       `json:"stats"`
	Tree        admin.Trees       `json:"tree"`
	Connections admin.Connections `json:"connections"`
	Members     admin.Members     `json:"members"`
}

func runStatus(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("status", statusSynopsis, stdout)
	var af adminFlags
	af.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := af.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	var doc statusDoc
	if doc.Stats, err = c.Stats(ctx); err != nil {
		return oneLineErr(err)
	}
	if doc.Tree, err = c.Tree(ctx); err != nil {
		return oneLineErr(err)
	}
	if doc.Connections, err = c.Connections(ctx); err != nil {
		return oneLineErr(err)
	}
	if doc.Members, err = c.Members(ctx); err != nil {
		return oneLineErr(err)
	}
	if af.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	printStatus(stdout, doc)
	return nil
}

func printStatus(w io.Writer, doc statusDoc) {
	st, cn := doc.Stats, doc.Connections
	now := st.Time
	if now.IsZero() {
		now = time.Now()
	}
	fmt.Fprintf(w, "node %s", st.System)
	if cn.Router != "" {
		fmt.Fprintf(w, ", router %s", cn.Router)
	}
	fmt.Fprintln(w)

	var statuses []string
	for _, k := range slices.Sorted(maps.Keys(st.Processes)) {
		if k != "total" && st.Processes[k] > 0 {
			statuses = append(statuses, fmt.Sprintf("%d %s", st.Processes[k], k))
		}
	}
	fmt.Fprintf(w, "processes %d (%s)\n", st.Processes["total"], strings.Join(statuses, ", "))
	mb := st.Mailboxes
	fmt.Fprintf(w, "mailboxes %d messages queued", mb.Total)
	if mb.Max > 0 {
		fmt.Fprintf(w, ", the longest %d at %s %s", mb.Max, mb.MaxPID, cmp.Or(mb.MaxChild, shortAddr(mb.MaxName)))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\nsupervisors (%d restarts)\n", st.Restarts)
	if len(doc.Tree.Trees) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, t := range doc.Tree.Trees {
		printTree(w, t, "  ")
	}

	fmt.Fprintf(w, "\nconnections %d\n", len(cn.Connections))
	if len(cn.Connections) > 0 {
		rows := [][]string{{"PEER", "REMOTE", "AUTH", "UP", "FRAMES IN", "FRAMES OUT", "BYTES IN", "BYTES OUT", "QUEUED"}}
		for _, c := range cn.Connections {
			rows = append(rows, []string{shortAddr(c.Peer), c.Remote, c.Auth, age(now, c.UpSince),
				strconv.FormatUint(c.Stats["frames_in"], 10), strconv.FormatUint(c.Stats["frames_out"], 10),
				bytesIEC(c.Stats["bytes_in"]), bytesIEC(c.Stats["bytes_out"]), bytesIEC(uint64(c.QueueBytes))})
		}
		table(indent(w, "  "), []bool{false, false, false, true, true, true, true, true, true}, rows)
	}
	fmt.Fprintf(w, "\npeers %d\n", len(cn.Peers))
	for _, p := range cn.Peers {
		engines := make([]string, len(p.Engines))
		for i, e := range p.Engines {
			engines[i] = shortAddr(e)
		}
		plural := "s"
		if len(p.Engines) == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "  %s  %d engine%s learned", p.Router, len(p.Engines), plural)
		if len(engines) > 0 {
			fmt.Fprintf(w, ": %s", strings.Join(engines, " "))
		}
		fmt.Fprintln(w)
	}

	if doc.Members.Cluster {
		printMembers(w, now, doc.Members)
	}

	if len(st.Transport) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(st.Transport)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, st.Transport[k]))
		}
		fmt.Fprintf(w, "\ntransport  %s\n", strings.Join(parts, ", "))
	}
	var dropped, zero []string
	var total uint64
	for _, k := range slices.Sorted(maps.Keys(st.Drops)) {
		if n := st.Drops[k]; n > 0 {
			dropped = append(dropped, fmt.Sprintf("  %-28s %d", k, n))
			total += n
		} else {
			zero = append(zero, k)
		}
	}
	fmt.Fprintf(w, "\ndrops %d\n", total)
	for _, d := range dropped {
		fmt.Fprintln(w, d)
	}
	if len(zero) > 0 {
		line := "  at 0:"
		for _, z := range zero { // wrapped at 100 columns
			if len(line)+1+len(z) > 100 {
				fmt.Fprintln(w, line)
				line = "       "
			}
			line += " " + z
		}
		fmt.Fprintln(w, line)
	}
}

// printMembers prints the members of the node's cluster and the
// membership counters.
func printMembers(w io.Writer, now time.Time, doc admin.Members) {
	connected := 0
	for _, m := range doc.Members {
		if m.Connected && !m.Self {
			connected++
		}
	}
	fmt.Fprintf(w, "\nmembers %d, %d of the others connected\n", len(doc.Members), connected)
	rows := [][]string{{"NODE", "ROUTER", "GOSSIP", "ENDPOINT", "CONNECTED", "CERT EXPIRES"}}
	for _, m := range doc.Members {
		ep := m.Remote // an accepted connection's remote is the peer's ephemeral port: show what it advertises
		if len(m.Endpoints) > 0 {
			ep = m.Endpoints[0]
		}
		conn := "no"
		switch {
		case m.Self:
			conn = "this node"
		case m.Connected:
			conn = "yes"
		}
		expires := "-"
		if !m.CertExpires.IsZero() {
			expires = m.CertExpires.Local().Format("2006-01-02 15:04")
			if d := m.CertExpires.Sub(now); d <= 0 {
				expires += " (expired)"
			} else {
				expires += " (in " + age(m.CertExpires, now) + ")"
			}
		}
		rows = append(rows, []string{m.Node, shortAddr(m.Router), cmp.Or(m.Gossip, "-"), cmp.Or(ep, "-"), conn, expires})
	}
	table(indent(w, "  "), []bool{false, false, false, false, false, false}, rows)

	s := doc.Stats
	fmt.Fprintf(w, "  admitted %d, joins %d, join errors %d, mesh connects %d, connect errors %d, disconnects %d\n",
		s.Admitted, s.Joins, s.JoinErrors, s.MeshConnects, s.MeshConnectErrors, s.MeshDisconnects)
	var refused, zero []string
	total := s.RefusedAlive
	for _, k := range slices.Sorted(maps.Keys(s.Refused)) {
		if n := s.Refused[k]; n > 0 {
			refused = append(refused, fmt.Sprintf("%s %d", k, n))
			total += n
		} else {
			zero = append(zero, k)
		}
	}
	if s.RefusedAlive > 0 {
		refused = append(refused, fmt.Sprintf("gossip announcements %d", s.RefusedAlive))
	}
	fmt.Fprintf(w, "  refused %d", total)
	if len(refused) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(refused, ", "))
	}
	if len(zero) > 0 {
		fmt.Fprintf(w, " (at 0: %s)", strings.Join(zero, " "))
	}
	fmt.Fprintln(w)
}

func printTree(w io.Writer, t admin.Tree, in string) {
	fmt.Fprintf(w, "%s%s  %s, %d/%d restarts in %v\n", in, t.Name, t.Strategy, t.RestartsInPeriod, t.MaxRestarts, time.Duration(t.Period))
	for _, c := range t.Children {
		state := "running"
		if !c.Running {
			state = "stopped"
		}
		line := fmt.Sprintf("%s  %-12s %-8s %-10s", in, c.ID, state, c.Restart)
		if c.PID != "" {
			line += " " + c.PID
		}
		if c.Restarts > 0 {
			line += fmt.Sprintf("  restarted %d×", c.Restarts)
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		if c.Sub != nil {
			printTree(w, *c.Sub, in+"    ")
		}
	}
}

// indent prefixes every line written to w.
func indent(w io.Writer, prefix string) io.Writer { return &indenter{w: w, prefix: prefix, bol: true} }

type indenter struct {
	w      io.Writer
	prefix string
	bol    bool
}

func (in *indenter) Write(p []byte) (int, error) {
	var b []byte
	for _, c := range p {
		if in.bol {
			b = append(b, in.prefix...)
		}
		b = append(b, c)
		in.bol = c == '\n'
	}
	if _, err := in.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}
