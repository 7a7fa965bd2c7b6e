package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/genserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		cfg  admin.Config
		want error
	}{
		{admin.Config{Addr: "127.0.0.1:0"}, nil},
		{admin.Config{Addr: "[::1]:9100"}, nil},
		{admin.Config{Addr: "localhost:0"}, nil},
		{admin.DefaultConfig(), nil},
		{admin.Config{}, admin.ErrBadConfig},
		{admin.Config{Addr: "127.0.0.1"}, admin.ErrBadConfig},
		{admin.Config{Addr: "127.0.0.1:0", StateTimeout: -1}, admin.ErrBadConfig},
		{admin.Config{Addr: ":9100"}, admin.ErrNotLoopback},
		{admin.Config{Addr: "0.0.0.0:9100"}, admin.ErrNotLoopback},
		{admin.Config{Addr: "[::]:9100"}, admin.ErrNotLoopback},
		{admin.Config{Addr: "192.0.2.7:9100"}, admin.ErrNotLoopback},
		{admin.Config{Addr: "0.0.0.0:9100", AllowNonLoopback: true}, nil},
	} {
		err := tc.cfg.Verify()
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) || (err != nil && !errors.Is(err, admin.ErrBadConfig)) {
			t.Errorf("Verify(%q) = %v, want %v (and ErrBadConfig)", tc.cfg.Addr, err, tc.want)
		}
	}
}

func TestNewRefusesNonLoopbackAndSaysWhy(t *testing.T) {
	_, err := admin.New(admin.Config{Addr: "0.0.0.0:0"})
	if !errors.Is(err, admin.ErrNotLoopback) {
		t.Fatalf("New(0.0.0.0:0) = %v, want ErrNotLoopback", err)
	}
	for _, why := range []string{"0.0.0.0:0", "loopback", "AllowNonLoopback", "no authentication"} {
		if !strings.Contains(err.Error(), why) {
			t.Errorf("error %q does not say %q", err, why)
		}
	}
}

func TestNewBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := admin.New(admin.Config{Addr: ln.Addr().String()}); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("New on a busy address = %v, want an error naming it", err)
	}
}

func TestCloseTwiceAndRefusesAfter(t *testing.T) {
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, srv.URL()+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		c.Close()
		t.Fatal("still accepting after Close")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t)
	var listenerDown atomic.Bool
	listenerDown.Store(true)
	srv := f.serve(t, admin.Config{Ready: admin.AllReady(
		admin.RequirePeers(f.a.Tr, f.b.Keys.Router()),
		func() error {
			if listenerDown.Load() {
				return errors.New("listener tcp://127.0.0.1:1 down")
			}
			return nil
		},
	)})
	if code, body, _ := get(t, srv.URL()+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body, _ := get(t, srv.URL()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "listener tcp://127.0.0.1:1 down") {
		t.Errorf("/readyz = %d %q, want 503 naming the listener", code, body)
	}
	listenerDown.Store(false)
	if code, body, _ := get(t, srv.URL()+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz = %d %q, want 200 ready", code, body)
	}

	// A peer nobody connected to is named.
	other := newFixture(t)
	check := admin.RequirePeers(f.a.Tr, f.b.Keys.Router(), other.b.Keys.Router())
	if err := check(); !errors.Is(err, admin.ErrNotReady) || !strings.Contains(err.Error(), other.b.Keys.Router().String()) {
		t.Errorf("RequirePeers with a missing peer = %v", err)
	}
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// scrape returns the samples of /metrics as "name{labels}" -> value, and
// fails the test on a line that is not Prometheus text.
func scrape(t *testing.T, url string) map[string]string {
	t.Helper()
	code, body, hdr := get(t, url+"/metrics")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics = %d %s", code, hdr.Get("Content-Type"))
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample: %q", line)
		}
		out[m[1]+m[2]] = m[3]
	}
	return out
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, admin.Config{})
	f.hold(t, 7)
	for i := range 3 {
		if err := f.a.Sys.Cast(genserver.Name("counter"), i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := genserver.Call[int](context.Background(), f.a.Sys, genserver.Name("counter"), "get"); err != nil {
		t.Fatal(err)
	}
	// A call to the engine on bob moves bytes both ways.
	if _, err := genserver.Call[int](context.Background(), f.a.Sys, genserver.Name(f.engine.String()), "get"); err != nil {
		t.Fatal(err)
	}

	m := scrape(t, srv.URL())
	for name := range m {
		if !strings.HasPrefix(name, "enginekit_") {
			t.Errorf("series %s is not named enginekit_*", name)
		}
	}
	peer := f.b.Keys.Router().String()
	want := map[string]string{
		`enginekit_process_mailbox_messages{process="app/blocker"}`:               "7",
		`enginekit_process_handled_messages_total{process="app/counter"}`:         "4",
		`enginekit_mailbox_max_messages`:                                          "7",
		`enginekit_connections`:                                                   "1",
		`enginekit_peer_connections{peer="` + peer + `"}`:                         "1",
		`enginekit_supervisor_max_restarts{supervisor="app"}`:                     "3",
		`enginekit_supervisor_children{state="running",supervisor="app"}`:         "3",
		`enginekit_supervisor_children{state="running",supervisor="app/workers"}`: "1",
		`enginekit_supervisor_restarts_total{supervisor="app"}`:                   "0",
		`enginekit_dropped_total{cause="replay",layer="netconn"}`:                 "0",
		`enginekit_dropped_total{cause="not_router",layer="transport"}`:           "0",
		`enginekit_dropped_total{cause="no_route_out",layer="transport"}`:         "0",
		`enginekit_peer_learned_engines{peer="` + peer + `"}`:                     "1",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	for _, k := range []string{
		`enginekit_peer_bytes_total{direction="out",peer="` + peer + `"}`,
		`enginekit_peer_frames_total{direction="in",peer="` + peer + `"}`,
	} {
		if v, ok := m[k]; !ok || v == "0" {
			t.Errorf("%s = %q, want > 0", k, v)
		}
	}
	// The blocker runs; another process may be between two messages.
	if running, _ := strconv.Atoi(m[`enginekit_processes{status="running"}`]); m[`enginekit_processes{status="idle"}`] == "" || running < 1 {
		t.Errorf("processes by status: idle %q running %q (the blocker runs)", m[`enginekit_processes{status="idle"}`], m[`enginekit_processes{status="running"}`])
	}

	// The mailbox drains: the scrape follows.
	for range 7 {
		f.gate.release <- struct{}{}
	}
	close(f.gate.release)
	if _, err := genserver.Call[int](context.Background(), f.a.Sys, genserver.Name("blocker"), "seen"); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, srv.URL())[`enginekit_process_mailbox_messages{process="app/blocker"}`]; got != "0" {
		t.Errorf("blocker mailbox after draining = %s, want 0", got)
	}
}

func TestMetricsRuntimeOptIn(t *testing.T) {
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", RuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := scrape(t, srv.URL())
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("RuntimeMetrics: no go_goroutines")
	}
}

func TestCollectorInOwnRegistry(t *testing.T) {
	f := newFixture(t)
	c := admin.NewCollector(f.src, 0)
	reg := prometheus.NewPedanticRegistry() // checks Collect against Describe
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "enginekit_process_mailbox_messages"); n != 5 { // the broker, the echo engine's proxy, counter, blocker, w1
		t.Errorf("per-process mailbox series = %d, want 5", n)
		for _, p := range f.a.Sys.Processes() {
			t.Log(p.PID, p.Name)
		}
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	// The per-process series are bounded; the longest mailboxes stay.
	f.hold(t, 2)
	capped := admin.NewCollector(f.src, 1)
	if n := testutil.CollectAndCount(capped, "enginekit_process_mailbox_messages"); n != 1 {
		t.Errorf("capped per-process series = %d, want 1", n)
	}
	want := "# HELP enginekit_process_mailbox_messages Messages waiting in a process's mailbox (supervisor children and named processes).\n" +
		"# TYPE enginekit_process_mailbox_messages gauge\n" +
		"enginekit_process_mailbox_messages{process=\"app/blocker\"} 2\n"
	if err := testutil.CollectAndCompare(capped, strings.NewReader(want), "enginekit_process_mailbox_messages"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(admin.NewCollector(f.src, -1), "enginekit_process_mailbox_messages"); n != 0 {
		t.Errorf("negative MaxProcessSeries: %d series, want 0", n)
	}
}

func TestAPIProcesses(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, admin.Config{StateTimeout: 100 * time.Millisecond})
	f.hold(t, 5)
	c := client(t, srv.URL())
	ctx := context.Background()

	doc, err := c.Processes(ctx, admin.ProcessQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if doc.System != "alice" || doc.Total != len(doc.Processes) {
		t.Errorf("system %q", doc.System)
	}
	byName := map[string]admin.Process{}
	for _, p := range doc.Processes {
		byName[p.Name] = p
	}
	b := byName["blocker"]
	if b.MailboxLen != 5 || b.Status != "running" || !strings.HasPrefix(b.PID, "<alice.") || b.Child != "app/blocker" {
		t.Errorf("blocker = %+v, want mailbox 5, running", b)
	}
	if _, ok := byName["counter"]; !ok {
		t.Errorf("no counter in %+v", doc.Processes)
	}
	if w := byName["w1"]; w.Child != "app/workers/w1" {
		t.Errorf("w1 = %+v, want child app/workers/w1", w)
	}

	if st, err := c.Stats(ctx); err != nil || st.Mailboxes.Max != 5 || st.Mailboxes.MaxChild != "app/blocker" || st.Mailboxes.MaxName != "blocker" {
		t.Errorf("stats mailboxes = %+v, %v", st.Mailboxes, err)
	}

	// Narrowed on the server: a filter, an order, a limit.
	top, err := c.Processes(ctx, admin.ProcessQuery{Sort: "mailbox", Limit: 1})
	if err != nil || len(top.Processes) != 1 || top.Processes[0].Name != "blocker" || top.Total != len(doc.Processes) {
		t.Errorf("sort=mailbox&limit=1: %+v, %v", top, err)
	}
	found, err := c.Processes(ctx, admin.ProcessQuery{Q: "WORKERS"})
	if err != nil || len(found.Processes) != 1 || found.Processes[0].Name != "w1" {
		t.Errorf("q=WORKERS: %+v, %v", found, err)
	}
	for _, bad := range []admin.ProcessQuery{{Sort: "size"}, {Limit: -1}} {
		if _, err := c.Processes(ctx, bad); err == nil || !strings.Contains(err.Error(), "bad query") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if code, body, _ := get(t, srv.URL()+"/api/processes?limit=ten"); code != 400 || !strings.Contains(body, "not a number") {
		t.Errorf("limit=ten: %d %s", code, body)
	}

	// One process, by name, by PID and by number: info and reported state.
	cn := byName["counter"]
	for _, id := range []string{"counter", cn.PID, strings.Trim(cn.PID, "<>"), fmt.Sprint(pidNum(cn.PID))} {
		p, err := c.Process(ctx, id)
		if err != nil {
			t.Fatalf("Process(%q): %v", id, err)
		}
		if p.PID != cn.PID || p.StateError != "" || !strings.Contains(p.State, `"count": 0`) {
			t.Errorf("Process(%q) = %+v", id, p)
		}
	}
	// A stuck process cannot hang the asker.
	start := time.Now()
	p, err := c.Process(ctx, "blocker")
	if err != nil {
		t.Fatal(err)
	}
	if p.State != "" || !strings.Contains(p.StateError, "busy or stuck") || p.MailboxLen != 5 {
		t.Errorf("stuck blocker = %+v", p)
	}
	if d := time.Since(start); d > wait/2 {
		t.Errorf("asking a stuck process took %v", d)
	}
	// Asking again does not queue more state requests: one waits in its
	// mailbox, behind the 5 casts.
	for range 3 {
		p, err = c.Process(ctx, "blocker")
		if err != nil {
			t.Fatal(err)
		}
		if p.MailboxLen != 6 || !strings.Contains(p.StateError, "busy or stuck") {
			t.Errorf("stuck blocker asked again = mailbox %d (want 6), %q", p.MailboxLen, p.StateError)
		}
	}
	if _, err := c.Process(ctx, "nobody"); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Errorf("Process(nobody) = %v", err)
	}
}

func pidNum(pid string) int {
	var n int
	fmt.Sscanf(pid[strings.LastIndexByte(pid, '.')+1:], "%d", &n)
	return n
}

func TestAPITreeConnectionsStats(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, admin.Config{})
	c := client(t, srv.URL())
	ctx := context.Background()

	trees, err := c.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(trees.Trees) != 1 || trees.Trees[0].Name != "app" || len(trees.Trees[0].Children) != 3 {
		t.Fatalf("trees = %+v", trees)
	}
	app := trees.Trees[0]
	if ch := app.Children[0]; ch.ID != "counter" || !ch.Running || !strings.HasPrefix(ch.PID, "<alice.") || ch.Restart != "permanent" {
		t.Errorf("counter child = %+v", ch)
	}
	if sub := app.Children[2].Sub; sub == nil || sub.Name != "workers" || len(sub.Children) != 1 || sub.Children[0].ID != "w1" {
		t.Errorf("workers child = %+v", app.Children[2])
	}

	conns, err := c.Connections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if conns.Router != f.a.Keys.Router().String() || len(conns.Connections) != 1 || conns.Connections[0].Peer != f.b.Keys.Router().String() {
		t.Fatalf("connections = %+v", conns)
	}
	if conns.Connections[0].Stats["frames_in"] == 0 {
		t.Errorf("no frames in: %+v", conns.Connections[0].Stats)
	}

	stats, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Processes["total"] < 3 || stats.Transport == nil || stats.Network["frames_in"] == 0 || stats.Mailboxes.Max != 0 {
		t.Errorf("stats = %+v", stats)
	}
	for _, cause := range []string{"transport_not_router", "transport_bad_proof", "transport_queue_full", "netconn_auth", "netconn_replay"} {
		if _, ok := stats.Drops[cause]; !ok {
			t.Errorf("drop cause %s missing from %v", cause, stats.Drops)
		}
	}
}

func TestObservePageAndPprof(t *testing.T) {
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for path, want := range map[string]string{
		"/observe/":          "<title>enginekit observer</title>",
		"/observe/app.js":    "refresh",
		"/observe/style.css": "--accent",
		"/debug/pprof/":      "goroutine",
		"/":                  "/observe/",
	} {
		code, body, _ := get(t, srv.URL()+path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s = %d, body without %q", path, code, want)
		}
	}
	if code, _, _ := get(t, srv.URL()+"/observe/nothing.js"); code != 404 {
		t.Errorf("/observe/nothing.js = %d", code)
	}
	// An empty Source gives empty documents, not errors.
	code, body, _ := get(t, srv.URL()+"/api/processes")
	var doc admin.Processes
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc.Processes == nil {
		t.Errorf("/api/processes on an empty source = %d %s", code, body)
	}
}

func TestClientErrors(t *testing.T) {
	for _, bad := range []string{"ftp://x", "http://", ":::"} {
		if _, err := admin.NewClient(bad, nil); !errors.Is(err, admin.ErrBadURL) {
			t.Errorf("NewClient(%q) = %v", bad, err)
		}
	}
	// Something that is not an admin server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html>") })}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	defer func() { hs.Close(); <-done }()
	c := client(t, ln.Addr().String())
	if _, err := c.Processes(context.Background(), admin.ProcessQuery{}); err == nil || !strings.Contains(err.Error(), "not an admin server") {
		t.Errorf("Processes from a non-admin server = %v", err)
	}
}

func TestSortProcesses(t *testing.T) {
	ps := []admin.Process{
		{PID: "<n.10>", Name: "b", MailboxLen: 1, Handled: 50},
		{PID: "<n.2>", MailboxLen: 9, Handled: 1},
		{PID: "<n.3>", Name: "a", MailboxLen: 1, Handled: 70},
	}
	order := func() string {
		var s []string
		for _, p := range ps {
			s = append(s, p.PID)
		}
		return strings.Join(s, " ")
	}
	for key, want := range map[string]string{
		"mailbox": "<n.2> <n.3> <n.10>",
		"handled": "<n.3> <n.10> <n.2>",
		"name":    "<n.3> <n.10> <n.2>",
		"pid":     "<n.2> <n.3> <n.10>",
	} {
		if !admin.SortProcesses(ps, key) || order() != want {
			t.Errorf("sort by %s = %s, want %s", key, order(), want)
		}
	}
	if admin.SortProcesses(ps, "size") {
		t.Error("unknown key accepted")
	}
}

func TestHostGuard(t *testing.T) {
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	for host, want := range map[string]int{
		"127.0.0.1:" + port:          200,
		"localhost:" + port:          200,
		"[::1]:" + port:              200,
		"localhost":                  200,
		"rebound.example:" + port:    403,
		"attacker.example":           403,
		"192.168.1.20:" + port:       403,
		"127.0.0.1.nip.example:9100": 403,
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL()+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Close = true
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// A crash and a restart show in the metrics and the tree.
func TestRestartsShow(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, admin.Config{})
	if err := f.a.Sys.Cast(genserver.Name("counter"), "not an int"); err != nil { // counter panics on it
		t.Fatal(err)
	}
	select {
	case id := <-f.restarted:
		if id != "counter" {
			t.Fatalf("restarted %s", id)
		}
	case <-time.After(wait):
		t.Fatal("counter never restarted")
	}
	m := scrape(t, srv.URL())
	for k, v := range map[string]string{
		`enginekit_supervisor_restarts_total{supervisor="app"}`:         "1",
		`enginekit_supervisor_restarts_in_period{supervisor="app"}`:     "1",
		`enginekit_supervisor_restarts_total{supervisor="app/workers"}`: "0",
	} {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	trees, err := client(t, srv.URL()).Tree(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c := trees.Trees[0].Children[0]; c.ID != "counter" || c.Restarts != 1 || trees.Trees[0].RestartsInPeriod != 1 {
		t.Errorf("tree after the restart: %+v", trees.Trees[0])
	}
}

// Names are any bytes; a scrape still succeeds, with them made valid UTF-8.
func TestMetricsOddNames(t *testing.T) {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "odd"})
	defer sys.Stop(ctx)
	for _, name := range []string{"bad\xffname", "bad\xfename", `quote"and\back`} {
		if _, err := sys.Spawn(func() genserver.Server { return &counter{} }, genserver.WithName(name)); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: admin.Source{System: sys}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, body, _ := get(t, srv.URL()+"/metrics")
	if code != 200 || !strings.Contains(body, "enginekit_process_mailbox_messages{process=\"bad\uFFFDname\"} 0") ||
		!strings.Contains(body, `enginekit_process_mailbox_messages{process="quote\"and\\back"} 0`) {
		t.Errorf("/metrics = %d:\n%s", code, body)
	}
}

type bigState struct{}

func (bigState) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (bigState) HandleCast(*genserver.Process, any)                              {}
func (bigState) FormatStatus() any                                               { return strings.Repeat("é", admin.MaxStateBytes) }

// A reported state is cut at MaxStateBytes, on a rune boundary.
func TestStateCut(t *testing.T) {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "big"})
	defer sys.Stop(ctx)
	if _, err := sys.Spawn(func() genserver.Server { return bigState{} }, genserver.WithName("big")); err != nil {
		t.Fatal(err)
	}
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: admin.Source{System: sys}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := client(t, srv.URL()).Process(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.State, "…(cut)") || len(p.State) > admin.MaxStateBytes+len("…(cut)") || !utf8.ValidString(p.State) ||
		strings.Contains(p.State, "\uFFFD") {
		t.Errorf("state of %d bytes, suffix %q", len(p.State), p.State[len(p.State)-12:])
	}
}
