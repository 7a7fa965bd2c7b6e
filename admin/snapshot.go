package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/supervisor"
)

// MaxStateBytes bounds the reported state of one process as shown by
// /api/process/{pid}; longer states are cut and end with "…(cut)".
const MaxStateBytes = 64 << 10

// ErrNoSuchProcess: /api/process/{pid} names no live process.
var ErrNoSuchProcess = errors.New("admin: no such process")

func processView(pi genserver.ProcessInfo) Process {
	return Process{
		PID:         pi.PID.String(),
		Name:        pi.Name,
		Status:      pi.Status.String(),
		MailboxLen:  pi.MailboxLen,
		Handled:     pi.Handled,
		InCallback:  Duration(pi.InCallback),
		Links:       pidStrings(pi.Links),
		Monitors:    pidStrings(pi.Monitors),
		MonitoredBy: pidStrings(pi.MonitoredBy),
		TrapExits:   pi.TrapExits,
		Started:     pi.Started,
	}
}

func pidStrings(pids []genserver.PID) []string {
	if len(pids) == 0 {
		return nil
	}
	out := make([]string, len(pids))
	for i, p := range pids {
		out[i] = p.String()
	}
	return out
}

// processes returns the document of /api/processes.
func (src Source) processes() Processes {
	doc := Processes{Time: time.Now(), Processes: []Process{}}
	if src.System == nil {
		return doc
	}
	doc.System = src.System.Name()
	children, proxies := src.childIDs(), src.proxies()
	all := src.System.Processes()
	doc.Total = len(all)
	doc.Processes = make([]Process, 0, len(all))
	for _, pi := range all {
		p := processView(pi)
		p.Child = children[pi.PID]
		p.Proxy = proxies[pi.Name]
		doc.Processes = append(doc.Processes, p)
	}
	return doc
}

// ProcessQuery narrows /api/processes: ?q= keeps the processes whose PID,
// name, child path, proxied peer or status contains it; ?sort= orders them
// as SortProcesses does (by PID without it); ?limit= keeps the first N.
type ProcessQuery struct {
	Q     string
	Sort  string
	Limit int
}

// apply narrows doc as q says.
func (q ProcessQuery) apply(doc *Processes) error {
	if q.Q != "" {
		needle := strings.ToLower(q.Q)
		kept := doc.Processes[:0]
		for _, p := range doc.Processes {
			for _, f := range []string{p.PID, p.Name, p.Child, p.Proxy, p.Status} {
				if strings.Contains(strings.ToLower(f), needle) {
					kept = append(kept, p)
					break
				}
			}
		}
		doc.Processes = kept
	}
	if q.Sort != "" && !SortProcesses(doc.Processes, q.Sort) {
		return fmt.Errorf("%w: sort %q: want mailbox, handled, name or pid", ErrBadQuery, q.Sort)
	}
	if q.Limit < 0 {
		return fmt.Errorf("%w: negative limit", ErrBadQuery)
	}
	if q.Limit > 0 && q.Limit < len(doc.Processes) {
		doc.Processes = doc.Processes[:q.Limit]
	}
	return nil
}

// ErrBadQuery: a query parameter of /api/processes is not usable.
var ErrBadQuery = errors.New("admin: bad query")

// proxies maps the registered names of foreign engines' proxies (their
// addresses) to the peer router each was learned from.
func (src Source) proxies() map[string]string {
	out := map[string]string{}
	if src.Transport == nil {
		return out
	}
	for peer, engines := range src.Transport.Learned() {
		for _, e := range engines {
			out[e.String()] = peer.String()
		}
	}
	return out
}

// childIDs maps the PIDs of the genserver children of the Source's
// supervisors to "supervisor/child" paths, so a process shows which child it
// is (an engine's registered name is its address, which says little).
func (src Source) childIDs() map[genserver.PID]string {
	out := map[genserver.PID]string{}
	var walk func(t supervisor.Tree, path string)
	walk = func(t supervisor.Tree, path string) {
		for _, c := range t.Children {
			if !c.PID.IsZero() {
				out[c.PID] = path + "/" + c.ID
			}
			if c.Sub != nil {
				walk(*c.Sub, path+"/"+c.ID)
			}
		}
	}
	for _, s := range src.Supervisors {
		if s != nil {
			t := s.Tree()
			walk(t, t.Name)
		}
	}
	return out
}

// findProcess resolves what /api/process/{pid} was given: a PID as printed
// ("<node.5>"), without its brackets ("node.5"), its number ("5"), or a
// registered name.
func (src Source) findProcess(id string) (genserver.PID, error) {
	if src.System == nil {
		return genserver.PID{}, ErrNoSuchProcess
	}
	if pid, ok := src.System.Whereis(id); ok {
		return pid, nil
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	for _, pi := range src.System.Processes() {
		s := pi.PID.String()
		if s == id || s[1:len(s)-1] == bare || strings.HasSuffix(s, "."+bare+">") {
			return pi.PID, nil
		}
	}
	return genserver.PID{}, fmt.Errorf("%w: %q", ErrNoSuchProcess, id)
}

// process returns one process's info and reported state, asked with ask.
func (src Source) process(ctx context.Context, id string, ask *stateAsker) (Process, error) {
	pid, err := src.findProcess(id)
	if err != nil {
		return Process{}, err
	}
	pi, err := src.System.ProcessInfo(pid)
	if err != nil {
		return Process{}, fmt.Errorf("%w: %q: %v", ErrNoSuchProcess, id, err)
	}
	p := processView(pi)
	p.Child = src.childIDs()[pid]
	p.Proxy = src.proxies()[pi.Name]
	state, err := ask.state(ctx, src.System, pid)
	if err != nil {
		p.StateError = err.Error()
		return p, nil
	}
	if e, ok := state.(error); ok { // FormatStatus panicked
		p.StateError = e.Error()
		return p, nil
	}
	p.State = formatState(state)
	return p, nil
}

// statePatience is how long a state request may wait in a busy process's
// mailbox after the asker gave up (StateTimeout). Until it is answered or
// this passes, asking again joins it rather than queueing another: an
// observer refreshing its view of a stuck process adds one message to its
// mailbox per statePatience, not one per refresh.
const statePatience = time.Minute

// stateAsker asks processes for their state, at most one request in
// flight per process.
type stateAsker struct {
	timeout time.Duration
	ctx     context.Context // ends at Close: every request in flight ends
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	inFlight map[genserver.PID]*stateRequest
	closed   bool
}

type stateRequest struct {
	asked time.Time
	done  chan struct{}
	v     any
	err   error
}

func newStateAsker(timeout time.Duration) *stateAsker {
	a := &stateAsker{timeout: timeout, inFlight: map[genserver.PID]*stateRequest{}}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a
}

// state returns pid's reported state, waiting at most the asker's timeout
// (or until ctx ends).
func (a *stateAsker) state(ctx context.Context, sys *genserver.System, pid genserver.PID) (any, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrClosed
	}
	r := a.inFlight[pid]
	if r == nil {
		r = &stateRequest{asked: time.Now(), done: make(chan struct{})}
		a.inFlight[pid] = r
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			ctx, cancel := context.WithTimeout(a.ctx, statePatience)
			r.v, r.err = sys.GetState(ctx, pid)
			cancel()
			a.mu.Lock()
			delete(a.inFlight, pid)
			a.mu.Unlock()
			close(r.done)
		}()
	}
	a.mu.Unlock()
	t := time.NewTimer(a.timeout)
	defer t.Stop()
	select {
	case <-r.done:
		return r.v, r.err
	case <-t.C:
		return nil, fmt.Errorf("no state within %v: the process is busy or stuck in a callback (a state request has waited in its mailbox for %v)",
			a.timeout, time.Since(r.asked).Round(time.Millisecond))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close ends the requests in flight and waits for their goroutines.
func (a *stateAsker) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
}

// formatState renders a reported state: strings as they are, values that
// encode as JSON indented, anything else with %+v.
func formatState(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case fmt.Stringer:
		s = v.String()
	default:
		if b, err := json.MarshalIndent(v, "", "  "); err == nil && string(b) != "{}" {
			s = string(b)
		} else {
			s = fmt.Sprintf("%+v", v)
		}
	}
	if len(s) > MaxStateBytes {
		s = strings.ToValidUTF8(s[:MaxStateBytes], "") + "…(cut)" // not half a rune
	}
	return s
}

// trees returns the document of /api/tree.
func (src Source) trees() Trees {
	doc := Trees{Time: time.Now(), Trees: []Tree{}}
	for _, s := range src.Supervisors {
		if s != nil {
			doc.Trees = append(doc.Trees, treeView(s.Tree()))
		}
	}
	return doc
}

func treeView(t supervisor.Tree) Tree {
	v := Tree{
		Name:             t.Name,
		Strategy:         t.Strategy,
		MaxRestarts:      t.MaxRestarts,
		Period:           Duration(t.Period),
		RestartsInPeriod: t.RestartsInPeriod,
		Children:         make([]Child, 0, len(t.Children)),
	}
	for _, c := range t.Children {
		ch := Child{ID: c.ID, Restart: c.Restart, Running: c.Running, Restarts: c.Restarts}
		if !c.PID.IsZero() {
			ch.PID = c.PID.String()
		}
		if c.Sub != nil {
			sub := treeView(*c.Sub)
			ch.Sub = &sub
		}
		v.Children = append(v.Children, ch)
	}
	return v
}

// connections returns the document of /api/connections.
func (src Source) connections() Connections {
	doc := Connections{Time: time.Now(), Connections: []Connection{}, Peers: []Peer{}}
	tr := src.Transport
	if tr == nil {
		return doc
	}
	doc.Router = tr.Router().String()
	for _, c := range tr.Connections() {
		doc.Connections = append(doc.Connections, connectionView(c))
	}
	slices.SortFunc(doc.Connections, func(a, b Connection) int {
		return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.Remote, b.Remote))
	})
	doc.Peers = learnedPeers(tr)
	return doc
}

// stats returns the document of /api/stats.
func (src Source) stats() Stats {
	doc := Stats{Time: time.Now(), Processes: map[string]int{"total": 0}, Drops: map[string]uint64{}}
	if sys := src.System; sys != nil {
		doc.System = sys.Name()
		var maxPID genserver.PID
		for _, pi := range sys.Processes() {
			doc.Processes["total"]++
			doc.Processes[pi.Status.String()]++
			doc.Mailboxes.Total += pi.MailboxLen
			if pi.MailboxLen > doc.Mailboxes.Max || doc.Mailboxes.MaxPID == "" {
				doc.Mailboxes.Max = pi.MailboxLen
				doc.Mailboxes.MaxPID = pi.PID.String()
				doc.Mailboxes.MaxName = pi.Name
				maxPID = pi.PID
			}
		}
		if !maxPID.IsZero() {
			doc.Mailboxes.MaxChild = src.childIDs()[maxPID]
		}
	}
	for _, s := range src.Supervisors {
		if s != nil {
			doc.Restarts += treeRestarts(s.Tree())
		}
	}
	if tr := src.Transport; tr != nil {
		var drops map[string]uint64
		doc.Transport, drops = transportCounters(tr.Stats())
		for cause, n := range drops {
			doc.Drops["transport_"+cause] = n
		}
		doc.Network = map[string]uint64{}
		for _, c := range tr.Connections() {
			for k, v := range counterFields(c.Stats) {
				doc.Network[k] += v
			}
		}
		for k, v := range doc.Network {
			if cause, ok := strings.CutPrefix(k, "dropped_"); ok {
				doc.Drops["netconn_"+cause] = v
			}
		}
	}
	return doc
}

func treeRestarts(t supervisor.Tree) int {
	n := 0
	for _, c := range t.Children {
		n += c.Restarts
		if c.Sub != nil {
			n += treeRestarts(*c.Sub)
		}
	}
	return n
}

// counterFields flattens a struct of counters (transport.Stats,
// netconn.Stats) into snake_case names: FramesIn becomes "frames_in",
// DroppedAuth "dropped_auth", and each key k of a map field Drops
// "dropped_k". Reading the fields rather than naming them keeps every
// counter a layer adds visible here (and in /metrics) without an edit.
func counterFields(v any) map[string]uint64 {
	out := map[string]uint64{}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return out
	}
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		name := snake(f.Name)
		fv := rv.Field(i)
		switch fv.Kind() {
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			out[name] = fv.Uint()
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if fv.Type() == reflect.TypeFor[time.Duration]() {
				continue
			}
			if n := fv.Int(); n >= 0 {
				out[name] = uint64(n)
			}
		case reflect.Map:
			if fv.Type().Key().Kind() != reflect.String {
				continue
			}
			prefix := name + "_"
			if name == "drops" || name == "dropped" {
				prefix = "dropped_"
			}
			iter := fv.MapRange()
			for iter.Next() {
				val := iter.Value()
				switch val.Kind() {
				case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
					out[prefix+snake(iter.Key().String())] = val.Uint()
				case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
					if n := val.Int(); n >= 0 {
						out[prefix+snake(iter.Key().String())] = uint64(n)
					}
				}
			}
		}
	}
	return out
}

// snake turns "DroppedNotRouter" into "dropped_not_router" and "BytesIn"
// into "bytes_in"; already snake_case or lower-case names are kept.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && rs[i-1] != '_' && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
				(i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		if r == '-' || r == ' ' {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}
