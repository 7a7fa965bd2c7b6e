package genserver_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/fxamacker/cbor/v2"
)

// stand is a Forwarder that records what it is handed, in the sender's
// goroutine, and answers per kind with err (nil, ErrNotForwarded...).
type stand struct {
	fn
	mu   sync.Mutex
	got  []genserver.Forwarded
	errs map[genserver.ForwardKind]error
}

func (s *stand) Forward(m genserver.Forwarded) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, m)
	err := s.errs[m.Kind]
	if m.Kind == genserver.ForwardCall && err == nil {
		genserver.Reply(m.From, []any{"forwarded", m.Msg}, nil)
	}
	return err
}

func (s *stand) taken() []genserver.Forwarded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]genserver.Forwarded(nil), s.got...)
}

// Cast, Send, Call, CastFrom and SendFrom to a Forwarder reach Forward
// before they return, in order, with its error; ErrNotForwarded queues the
// message as without Forward.
func TestForwarderIsSynchronous(t *testing.T) {
	sys := newSystem(t)
	refused := errors.New("too large, say")
	casts := make(chan any, 1)
	s := &stand{errs: map[genserver.ForwardKind]error{}}
	s.cast = func(_ *genserver.Process, msg any) { casts <- msg }
	pid, err := sys.Spawn(func() genserver.Server { return s })
	if err != nil {
		t.Fatal(err)
	}
	sender := spawn(t, sys, &fn{})
	if err := sys.Cast(pid, 1); err != nil {
		t.Fatal(err)
	}
	if err := sys.Send(pid, 2); err != nil {
		t.Fatal(err)
	}
	if err := sys.Relay().CastFrom(sender, pid, 3); err != nil {
		t.Fatal(err)
	}
	if err := sys.Relay().SendFrom(sender, pid, 4); err != nil {
		t.Fatal(err)
	}
	v, err := sys.Call(context.Background(), pid, 5)
	if err != nil || len(v.([]any)) != 2 || v.([]any)[1] != 5 {
		t.Fatalf("forwarded call: %v, %v", v, err)
	}
	got := s.taken() // no waiting: each was handed over before its sender returned
	want := []struct {
		kind   genserver.ForwardKind
		sender genserver.PID
		msg    any
	}{
		{genserver.ForwardCast, genserver.PID{}, 1},
		{genserver.ForwardInfo, genserver.PID{}, 2},
		{genserver.ForwardCast, sender, 3},
		{genserver.ForwardInfo, sender, 4},
		{genserver.ForwardCall, genserver.PID{}, 5},
	}
	if len(got) != len(want) {
		t.Fatalf("forwarded %d, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].Sender != w.sender || got[i].Msg != w.msg {
			t.Fatalf("#%d: %+v, want %+v", i, got[i], w)
		}
	}

	s.errs[genserver.ForwardCast] = refused
	s.errs[genserver.ForwardCall] = refused
	if err := sys.Cast(pid, 6); err != refused {
		t.Fatalf("cast: %v, want Forward's error", err)
	}
	if _, err := sys.Call(context.Background(), pid, 7); err != refused {
		t.Fatalf("call: %v, want Forward's error", err)
	}
	s.errs[genserver.ForwardCast] = genserver.ErrNotForwarded
	if err := sys.Cast(pid, 8); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, casts); got != 8 {
		t.Fatalf("queued cast %v", got)
	}
	if err := sys.StopProcess(context.Background(), pid, nil); err != nil {
		t.Fatal(err)
	}
	n := len(s.taken())
	if err := sys.Cast(pid, 9); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("cast to an exited stand-in: %v", err)
	}
	if len(s.taken()) != n {
		t.Fatal("an exited stand-in was handed a message")
	}
}

// Link and Unlink with a Forwarder are handed on; an error undoes the
// link. Relay.Link links without telling the Forwarder.
func TestForwarderLinks(t *testing.T) {
	sys := newSystem(t)
	s := &stand{errs: map[genserver.ForwardKind]error{}}
	pid, err := sys.Spawn(func() genserver.Server { return s })
	if err != nil {
		t.Fatal(err)
	}
	linkErr := make(chan error, 3)
	exits := make(chan genserver.Exit, 1)
	f := &fn{
		init: func(p *genserver.Process) error { p.TrapExits(true); return nil },
		cast: func(p *genserver.Process, msg any) {
			switch msg {
			case "link":
				linkErr <- p.Link(pid)
			case "unlink":
				p.Unlink(pid)
				linkErr <- nil
			}
		},
		info: func(_ *genserver.Process, msg any) {
			if e, ok := msg.(genserver.Exit); ok {
				exits <- e
			}
		},
	}
	w := spawn(t, sys, f)
	for _, step := range []string{"link", "unlink"} {
		if err := sys.Cast(w, step); err != nil {
			t.Fatal(err)
		}
		if err := recv(t, linkErr); err != nil {
			t.Fatal(err)
		}
	}
	got := s.taken()
	if len(got) != 2 || got[0].Kind != genserver.ForwardLink || got[0].Sender != w || got[1].Kind != genserver.ForwardUnlink {
		t.Fatalf("forwarded %+v", got)
	}
	refused := errors.New("no link across")
	s.errs[genserver.ForwardLink] = refused
	if err := sys.Cast(w, "link"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, linkErr); err != refused {
		t.Fatalf("link: %v, want Forward's error", err)
	}
	// The refused link was undone: the stand-in's exit reaches nobody.
	info, err := sys.ProcessInfo(pid)
	if err != nil || len(info.Links) != 0 {
		t.Fatalf("links of the stand-in after a refused link: %v, %v", info.Links, err)
	}
	if err := sys.Relay().Link(w, pid); err != nil {
		t.Fatal(err)
	}
	if len(s.taken()) != 3 {
		t.Fatal("Relay.Link was handed to the Forwarder")
	}
	if err := sys.StopProcess(context.Background(), pid, errors.New("gone")); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, exits); e.PID != pid || e.Reason == nil || e.Reason.Error() != "gone" {
		t.Fatalf("exit %+v", e)
	}
	if err := sys.Relay().Link(w, pid); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("Relay.Link with an exited process: %v", err)
	}
}

// Without a FromCodec on its System a From refuses to be encoded (it would
// arrive empty); the zero From encodes as null and decodes back; a From
// decoded but never bound answers nothing.
func TestFromNotPortable(t *testing.T) {
	sys := newSystem(t)
	type carry struct {
		From genserver.From
		Text string
	}
	errs := make(chan error, 1)
	pid := spawn(t, sys, &fn{call: func(_ *genserver.Process, from genserver.From, _ any) (any, error) {
		_, err := cbor.Marshal(carry{From: from, Text: "x"})
		errs <- err
		return nil, nil
	}})
	if _, err := sys.Call(context.Background(), pid, nil); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errs); !errors.Is(err, genserver.ErrFromNotPortable) {
		t.Fatalf("encoding a From: %v", err)
	}
	b, err := cbor.Marshal(carry{Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var back carry
	if err := cbor.Unmarshal(b, &back); err != nil || back.Text != "x" || back.From.Pending() {
		t.Fatalf("zero From: %v, %+v", err, back)
	}
	if err := cbor.Unmarshal([]byte{0xa1, 0x64, 'F', 'r', 'o', 'm', 0x01}, &back); err != nil {
		t.Fatal(err)
	}
	if back.From.Pending() || genserver.Reply(back.From, 1, nil) {
		t.Fatal("an unbound From decoded from another node answered")
	}
}

// wireCodec stands in for a transport between two Systems: a From's wire
// form is a number, and answering it answers the From kept under it.
type wireCodec struct {
	mu    sync.Mutex
	held  map[uint64]genserver.From
	next  uint64
	leave time.Time
}

func (c *wireCodec) EncodeFrom(from genserver.From) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.held[c.next] = from
	return cbor.Marshal(c.next)
}

func (c *wireCodec) DecodeFrom(data []byte) (time.Time, bool) {
	var n uint64
	return c.leave, cbor.Unmarshal(data, &n) == nil
}

func (c *wireCodec) ReplyFrom(data []byte, v any, err error) bool {
	var n uint64
	if cbor.Unmarshal(data, &n) != nil {
		return false
	}
	c.mu.Lock()
	from, ok := c.held[n]
	delete(c.held, n)
	c.mu.Unlock()
	return ok && genserver.Reply(from, v, err)
}

// A From crosses Systems through their FromCodecs: encoded on the holder's,
// decoded and bound on the other (Relay.BindFroms finds it inside the
// value: here a struct's slice behind a pointer), where Reply answers the
// caller once.
func TestFromCrossesThroughCodec(t *testing.T) {
	holder, other := newSystem(t), newSystem(t)
	c := &wireCodec{held: map[uint64]genserver.From{}, leave: time.Unix(1e9, 0)}
	holder.Relay().SetFromCodec(c)
	other.Relay().SetFromCodec(c)
	type carry struct {
		Froms []genserver.From
		Text  string
	}
	wire := make(chan []byte, 1)
	pid := spawn(t, holder, &fn{call: func(_ *genserver.Process, from genserver.From, _ any) (any, error) {
		b, err := cbor.Marshal(carry{Froms: []genserver.From{from}})
		if err != nil {
			return nil, err
		}
		wire <- b
		return genserver.NoReply, nil
	}})
	replies := make(chan any, 1)
	go func() {
		v, err := holder.Call(context.Background(), pid, nil)
		if err != nil {
			v = err
		}
		replies <- v
	}()
	var got carry
	if err := cbor.Unmarshal(recv(t, wire), &got); err != nil || len(got.Froms) != 1 {
		t.Fatalf("decoding: %v, %+v", err, got)
	}
	from := got.Froms[0]
	if genserver.Reply(from, "too soon", nil) {
		t.Fatal("an unbound From answered")
	}
	// Reply consumed nothing: bind it and answer.
	other.Relay().BindFroms(&got)
	if !from.Pending() || !from.Deadline().Equal(c.leave) {
		t.Fatalf("bound From: pending %v, deadline %v", from.Pending(), from.Deadline())
	}
	if !genserver.Reply(from, "from the other side", nil) {
		t.Fatal("Reply through the codec returned false")
	}
	if genserver.Reply(from, "twice", nil) {
		t.Fatal("a second Reply counted")
	}
	if v := recv(t, replies); v != "from the other side" {
		t.Fatalf("caller got %v", v)
	}
}

// A forwarded call hands the stand-in the caller's deadline at once: the
// ctx's, or DefaultCallTimeout from the call without one.
func TestForwardedCallDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		s := &stand{errs: map[genserver.ForwardKind]error{}}
		pid, err := sys.Spawn(func() genserver.Server { return s })
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		want, _ := ctx.Deadline()
		if _, err := sys.Call(ctx, pid, "with deadline"); err != nil {
			t.Fatal(err)
		}
		if _, err := sys.Call(context.Background(), pid, "without"); err != nil {
			t.Fatal(err)
		}
		got := s.taken()
		if len(got) != 2 {
			t.Fatalf("forwarded %d calls, want 2", len(got))
		}
		if d := got[0].From.Deadline(); !d.Equal(want) {
			t.Fatalf("ctx deadline: stand-in saw %v, want %v", d, want)
		}
		if d, w := got[1].From.Deadline(), time.Now().Add(genserver.DefaultCallTimeout); !d.Equal(w) {
			t.Fatalf("no deadline: stand-in saw %v, want %v", d, w)
		}
	})
}

// holder is a Forwarder that holds the calls it is handed, and keeps
// them (CallKeeper) if keeps is set.
type holder struct {
	fn
	froms chan genserver.From
}

func (h *holder) Forward(m genserver.Forwarded) error {
	if m.Kind != genserver.ForwardCall {
		return genserver.ErrNotForwarded
	}
	h.froms <- m.From
	return nil
}

type keeper struct{ holder }

func (*keeper) KeepsCalls() {}

// A call forwarded to a stand-in that exits fails at once with the exit,
// unless the Forwarder keeps its calls (CallKeeper): then the call waits
// for the answer the Forwarder gives it.
func TestForwardedCallStandInExits(t *testing.T) {
	for _, keeps := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "keeper"}[keeps], func(t *testing.T) {
			sys := newSystem(t)
			h := holder{froms: make(chan genserver.From, 1)}
			var srv genserver.Server = &h
			if keeps {
				srv = &keeper{h}
			}
			pid, err := sys.Spawn(func() genserver.Server { return srv })
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				v   any
				err error
			}
			done := make(chan result, 1)
			go func() {
				v, err := sys.Call(context.Background(), pid, "q")
				done <- result{v, err}
			}()
			from := recv(t, h.froms)
			if err := sys.StopProcess(context.Background(), pid, nil); err != nil {
				t.Fatal(err)
			}
			if !keeps {
				r := recv(t, done)
				var exit *genserver.ExitError
				if !errors.As(r.err, &exit) || exit.PID != pid {
					t.Fatalf("call to an exited stand-in: %v, %v; want its ExitError", r.v, r.err)
				}
				return
			}
			select {
			case r := <-done:
				t.Fatalf("a kept call ended with its stand-in: %v, %v", r.v, r.err)
			default:
			}
			if !genserver.Reply(from, "kept", nil) {
				t.Fatal("the kept call did not take its answer")
			}
			if r := recv(t, done); r.v != "kept" || r.err != nil {
				t.Fatalf("kept call: %v, %v", r.v, r.err)
			}
		})
	}
}
