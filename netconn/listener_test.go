package netconn

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// errAcceptBroken is the permanent accept failure the tests inject.
var errAcceptBroken = errors.New("test: accept broken for good")

// faultyListener wraps a real listener whose Accept the test can make fail
// for good: failWith closes the socket and has the blocked Accept return
// err, after running then (which may occupy the address).
type faultyListener struct {
	net.Listener
	mu    sync.Mutex
	fault error
	then  func()
}

func (f *faultyListener) failWith(err error, then func()) {
	f.mu.Lock()
	f.fault, f.then = err, then
	f.mu.Unlock()
	f.Listener.Close()
}

func (f *faultyListener) Accept() (net.Conn, error) {
	c, err := f.Listener.Accept()
	if err != nil {
		f.mu.Lock()
		fault, then := f.fault, f.then
		f.then = nil
		f.mu.Unlock()
		if fault != nil {
			if then != nil {
				then()
			}
			return nil, fault
		}
	}
	return c, err
}

type listenErr struct {
	addr string
	err  error
}

// occupy takes the address of a closed listener so that binding it fails,
// and returns the function that frees it again.
func occupy(t *testing.T, ct connType, addr string) func() {
	if ct.network == "unix" {
		if err := os.WriteFile(addr, nil, 0o600); err != nil {
			t.Error(err)
		}
		return func() { os.Remove(addr) }
	}
	ln, err := net.Listen(ct.network, addr)
	if err != nil {
		t.Error(err)
		return func() {}
	}
	return func() { ln.Close() }
}

// When accepting fails for good, the Listener reports it, binds the same
// address again (retrying while it is occupied) and its connections keep
// serving throughout.
func TestListenerRebindKeepsConns(t *testing.T) {
	forEachSocketType(t, func(t *testing.T, ct connType) {
		srv, cli, cli2 := newNode(t), newNode(t), newNode(t)
		errs := make(chan listenErr, 100)
		scfg := srv.config(MACs)
		scfg.OnListenError = func(addr string, err error) { errs <- listenErr{addr, err} }
		bound := make(chan *faultyListener, 10)
		listen := func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			f := &faultyListener{Listener: ln}
			bound <- f
			return f, nil
		}
		l, err := newListener(scfg, ct.network, ct.address(t), AcceptAny, listen)
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		fl := recv(t, bound, "first bind")
		runService(t, l.Serve)
		startDialer(t, ct, cli.config(MACs), l.Addr(), srv.router())
		srvConn := recv(t, srv.ups, "server up")
		cliConn := recv(t, cli.ups, "client up")

		var release func()
		occupied := make(chan struct{})
		fl.failWith(errAcceptBroken, func() { release = occupy(t, ct, addr); close(occupied) })
		e := recv(t, errs, "accept error")
		if !errors.Is(e.err, errAcceptBroken) || e.addr != addr {
			t.Fatalf("OnListenError(%q, %v)", e.addr, e.err)
		}
		recv(t, occupied, "address occupied")
		e = recv(t, errs, "bind error")
		if e.addr != addr || errors.Is(e.err, errAcceptBroken) {
			t.Fatalf("OnListenError(%q, %v), want a bind error", e.addr, e.err)
		}
		// The connection accepted before the failure still works both ways.
		mustSend(t, cliConn, cast(cli.engine, srv.engine, "during"))
		expectPayload(t, srv, "during")
		mustSend(t, srvConn, cast(srv.engine, cli.engine, "back"))
		expectPayload(t, cli, "back")
		if s := l.Stats(); s.Listening || s.BindErrors == 0 || s.AcceptErrors != 1 || s.Conns != 1 {
			t.Fatalf("while unbound: %+v", s)
		}

		release()
		recv(t, bound, "re-bind")
		startDialer(t, ct, cli2.config(MACs), l.Addr(), srv.router())
		recv(t, cli2.ups, "new client up")
		recv(t, srv.ups, "server up for the new client")
		mustSend(t, cliConn, cast(cli.engine, srv.engine, "after"))
		expectPayload(t, srv, "after")
		none(t, srv.downs, "server connection down")
		none(t, cli.downs, "client connection down")
		s := l.Stats()
		if !s.Listening || s.Rebinds != 1 || s.Accepted != 2 || s.Conns != 2 {
			t.Fatalf("after re-bind: %+v", s)
		}
		if l.Addr().String() != addr {
			t.Fatalf("address moved from %s to %s", addr, l.Addr())
		}
	})
}

// fakeListener is a net.Listener with no socket, whose Accept fails when
// told; for tests on synctest's clock.
type fakeListener struct {
	fail   chan error
	closed chan struct{}
	once   sync.Once
}

func newFakeListener() *fakeListener {
	return &fakeListener{fail: make(chan error), closed: make(chan struct{})}
}

func (f *fakeListener) Accept() (net.Conn, error) {
	select {
	case err := <-f.fail:
		return nil, err
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *fakeListener) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeListener) Addr() net.Addr { return pipeAddr("fake") }

// Binding again is paced by Config.Backoff: the n-th wait is within
// [d/2, d], d = min(Max, Min·2ⁿ); and a Serve that starts on an address it
// cannot bind keeps trying instead of returning.
func TestListenerRebindBackoff(t *testing.T) {
	n := newNode(t)
	synctest.Test(t, func(t *testing.T) {
		cfg := n.config(MACs)
		cfg.Backoff = Backoff{Min: 100 * time.Millisecond, Max: time.Second}
		var errs []error
		cfg.OnListenError = func(_ string, err error) { errs = append(errs, err) }
		const failing = 6
		var attempts []time.Time
		var current *fakeListener
		rebound := make(chan struct{}, 1)
		listen := func(string, string) (net.Listener, error) {
			attempts = append(attempts, time.Now())
			if len(attempts) > 1 && len(attempts) <= 1+failing {
				return nil, errors.New("test: address in use")
			}
			current = newFakeListener()
			if len(attempts) > 1 {
				rebound <- struct{}{}
			}
			return current, nil
		}
		l, err := newListener(cfg, "tcp", "127.0.0.1:9", AcceptAny, listen)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Serve(ctx) }()
		synctest.Wait()
		failed := time.Now()
		current.fail <- errAcceptBroken
		<-rebound       // the fake clock runs through every backoff wait
		synctest.Wait() // Serve accepts on the new socket
		if len(attempts) != 2+failing || len(errs) != 1+failing {
			t.Fatalf("%d attempts, %d errors", len(attempts), len(errs))
		}
		prev := failed
		for i, at := range attempts[1:] {
			d := min(cfg.Backoff.Max, cfg.Backoff.Min<<i)
			if gap := at.Sub(prev); gap < d/2 || gap > d {
				t.Errorf("wait %d: %v, want within [%v, %v]", i, gap, d/2, d)
			}
			prev = at
		}
		if s := l.Stats(); !s.Listening || s.Rebinds != 1 || s.BindErrors != failing || s.AcceptErrors != 1 {
			t.Fatalf("%+v", s)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		// Served again (a supervisor's restart) on an address still taken.
		attempts = attempts[:1]
		ctx, cancel = context.WithCancel(t.Context())
		go func() { done <- l.Serve(ctx) }()
		<-rebound
		synctest.Wait()
		if len(attempts) != 2+failing || !l.Stats().Listening {
			t.Fatalf("restart: %d attempts, %+v", len(attempts), l.Stats())
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned %v", err)
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A Listener's Close ends a Serve that is waiting to bind again.
func TestListenerCloseWhileUnbound(t *testing.T) {
	n := newNode(t)
	synctest.Test(t, func(t *testing.T) {
		cfg := n.config(MACs)
		cfg.Backoff = Backoff{Min: time.Hour, Max: time.Hour}
		first := newFakeListener()
		listen := func(string, string) (net.Listener, error) {
			if first != nil {
				ln := first
				first = nil
				return ln, nil
			}
			return nil, errors.New("test: address in use")
		}
		l, err := newListener(cfg, "tcp", "127.0.0.1:9", AcceptAny, listen)
		if err != nil {
			t.Fatal(err)
		}
		ln := l.bound().(*fakeListener)
		done := make(chan error, 1)
		go func() { done <- l.Serve(t.Context()) }()
		ln.fail <- errAcceptBroken
		synctest.Wait()
		l.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		expectErr(t, l.Serve(t.Context()), ErrClosed)
	})
}

// Over an in-memory listener (NewListenerOn, NewDialerFunc): connections
// work; a permanent accept failure stops accepting but the connections keep
// serving until Serve's ctx ends, and Serve then returns that failure.
func TestListenerOnPipe(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		srv, cli := newNode(t), newNode(t)
		errs := make(chan listenErr, 10)
		scfg := srv.config(auth)
		scfg.OnListenError = func(addr string, err error) { errs <- listenErr{addr, err} }
		pl := NewPipeListener("mem:srv")
		fl := &faultyListener{Listener: pl}
		l, err := NewListenerOn(scfg, fl, AllowOnly(cli.router()))
		if err != nil {
			t.Fatal(err)
		}
		if l.Addr().String() != "mem:srv" {
			t.Fatal(l.Addr())
		}
		lsvc := runService(t, l.Serve)
		d, err := NewDialerFunc(cli.config(auth), "mem:srv", pl.Dial, srv.router())
		if err != nil {
			t.Fatal(err)
		}
		if d.String() == "" {
			t.Fatal("no name")
		}
		runService(t, d.Serve)
		srvConn := recv(t, srv.ups, "server up")
		cliConn := recv(t, cli.ups, "client up")
		mustSend(t, cliConn, cast(cli.engine, srv.engine, "over a pipe"))
		expectPayload(t, srv, "over a pipe")

		fl.failWith(errAcceptBroken, nil)
		if e := recv(t, errs, "accept error"); !errors.Is(e.err, errAcceptBroken) || e.addr != "mem:srv" {
			t.Fatalf("OnListenError(%q, %v)", e.addr, e.err)
		}
		mustSend(t, srvConn, cast(srv.engine, cli.engine, "still here"))
		expectPayload(t, cli, "still here")
		select {
		case err := <-lsvc.done:
			t.Fatalf("Serve returned %v while its ctx lives", err)
		default:
		}
		if s := l.Stats(); s.Listening || s.Conns != 1 || s.AcceptErrors != 1 {
			t.Fatalf("%+v", s)
		}
		expectErr(t, lsvc.stop(t), errAcceptBroken)
		recv(t, srv.downs, "server down")
		expectErr(t, l.Serve(context.Background()), ErrClosed)

		// Stopped without a failure, it cannot serve again either.
		l2, err := NewListenerOn(scfg, NewPipeListener("mem:2"), AcceptAny)
		if err != nil {
			t.Fatal(err)
		}
		if err := runService(t, l2.Serve).stop(t); err != nil {
			t.Fatal(err)
		}
		expectErr(t, l2.Serve(context.Background()), ErrClosed)
	})
}

func TestConstructorErrors(t *testing.T) {
	n := newNode(t)
	cfg := n.config(MACs)
	if _, err := NewListenerOn(cfg, nil, AcceptAny); !errors.Is(err, ErrBadConfig) {
		t.Fatal(err)
	}
	pl := NewPipeListener("x")
	defer pl.Close()
	if _, err := NewListenerOn(cfg, pl, nil); !errors.Is(err, ErrBadConfig) {
		t.Fatal(err)
	}
	if _, err := NewDialerFunc(cfg, "x", nil, n.router()); !errors.Is(err, ErrBadConfig) {
		t.Fatal(err)
	}
	var zero [32]byte
	if _, err := NewDialerFunc(cfg, "x", pl.Dial, zero); !errors.Is(err, ErrBadConfig) {
		t.Fatal(err)
	}
}

// A temporary accept failure (out of descriptors) is retried on the same
// socket after a short wait: reported and counted, but no re-bind.
func TestListenerTemporaryAcceptError(t *testing.T) {
	n := newNode(t)
	synctest.Test(t, func(t *testing.T) {
		cfg := n.config(MACs)
		var errs []error
		cfg.OnListenError = func(_ string, err error) { errs = append(errs, err) }
		binds := 0
		ln := newFakeListener()
		l, err := newListener(cfg, "tcp", "127.0.0.1:9", AcceptAny, func(string, string) (net.Listener, error) {
			binds++
			return ln, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Serve(ctx) }()
		emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
		ln.fail <- emfile
		ln.fail <- emfile // received only after the retry wait
		synctest.Wait()
		if binds != 1 || len(errs) != 2 || !errors.Is(errs[0], syscall.EMFILE) {
			t.Fatalf("%d binds, errors %v", binds, errs)
		}
		if s := l.Stats(); !s.Listening || s.AcceptErrors != 2 || s.Rebinds != 0 {
			t.Fatalf("%+v", s)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A Dialer counts the attempts that brought no connection up.
func TestDialerCountsFailures(t *testing.T) {
	n, peer := newNode(t), newNode(t)
	calls := make(chan struct{}, 10)
	d, err := NewDialerFunc(n.config(MACs), "nowhere", func(ctx context.Context) (net.Conn, error) {
		select {
		case calls <- struct{}{}:
		default: // the test has seen enough
		}
		return nil, errors.New("test: no route")
	}, peer.router())
	if err != nil {
		t.Fatal(err)
	}
	runService(t, d.Serve)
	recv(t, calls, "first dial")
	recv(t, calls, "second dial")
	if s := d.Stats(); s.DialFailures < 1 || s.Reconnects != 0 {
		t.Fatalf("%+v", s)
	}
}
