package ordering_test

// The examples in this file are the Go halves of docs/porting.md, compiled
// and run with their output checked: each section there quotes one of them.
// They use only genserver, supervisor and events; the ordering engine is the
// larger worked example.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/thejerf/suture/v4"
)

// Stack is the stack of Elixir's GenServer documentation, with the return
// tuples a port meets: {:reply, ...}, {:noreply, ...} + GenServer.reply,
// {:stop, ...}, {:continue, ...} and an idle timeout.
type Stack struct {
	elems   []string
	waiting []genserver.From // Pops of an empty stack, answered by the next Push
}

type (
	Pop      struct{}
	Push     struct{ Elem string }
	StopNow  struct{}
	loadSeed struct{}
)

// def init(seed), do: {:ok, [], {:continue, {:load, seed}}}
func (s *Stack) Init(p *genserver.Process) error {
	p.Continue(loadSeed{})
	p.SetIdleTimeout(time.Hour) // {:ok, state, 3_600_000}: a Timeout info when idle that long
	return nil
}

// def handle_continue({:load, seed}, _), do: {:noreply, seed}
func (s *Stack) HandleContinue(p *genserver.Process, arg any) {
	s.elems = append(s.elems, "seed")
}

func (s *Stack) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	switch req.(type) {
	case Pop:
		if len(s.elems) == 0 {
			s.waiting = append(s.waiting, from)
			return genserver.NoReply, nil // {:noreply, %{state | waiting: [from | waiting]}}
		}
		top := s.elems[len(s.elems)-1]
		s.elems = s.elems[:len(s.elems)-1]
		return top, nil // {:reply, top, rest}
	case StopNow:
		p.Stop(nil)      // {:stop, :normal, :ok, state}: the reply goes out,
		return "ok", nil // then Terminate runs and the process exits
	}
	return nil, fmt.Errorf("stack: unknown request %T", req) // {:reply, {:error, ...}, state}
}

func (s *Stack) HandleCast(p *genserver.Process, msg any) {
	push, ok := msg.(Push)
	if !ok {
		return
	}
	if len(s.waiting) > 0 {
		genserver.Reply(s.waiting[0], push.Elem, nil) // GenServer.reply(from, elem)
		s.waiting = s.waiting[1:]
		return
	}
	s.elems = append(s.elems, push.Elem) // {:noreply, [elem | state]}
}

// def handle_info(:timeout, state), do: {:stop, :normal, state}
func (s *Stack) HandleInfo(p *genserver.Process, msg any) {
	if _, ok := msg.(genserver.Timeout); ok {
		p.Stop(nil)
	}
}

func Example_genServer() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)

	// GenServer.start_link(Stack, :seed, name: :stack)
	pid, err := sys.Spawn(func() genserver.Server { return &Stack{} }, genserver.WithName("stack"))
	if err != nil {
		fmt.Println(err)
		return
	}
	stack := genserver.Name("stack")

	top, _ := genserver.Call[string](ctx, sys, stack, Pop{}) // GenServer.call(:stack, :pop)
	fmt.Println("popped:", top)

	popped := make(chan string)
	go func() {
		top, _ := genserver.Call[string](ctx, sys, stack, Pop{}) // empty: waits for a push
		popped <- top
	}()
	_ = sys.Cast(stack, Push{Elem: "pushed"}) // GenServer.cast(:stack, {:push, "pushed"})
	fmt.Println("the waiting pop got:", <-popped)

	_, err = sys.Call(ctx, stack, "peek")
	fmt.Println("error reply:", err)

	ok, _ := genserver.Call[string](ctx, sys, stack, StopNow{})
	<-pid.Done()
	fmt.Println("stop replied", ok, "then exited:", !pid.Alive(), pid.Reason())
	// Output:
	// popped: seed
	// the waiting pop got: pushed
	// error reply: stack: unknown request string
	// stop replied ok then exited: true <nil>
}

// Starter shows what init/1 may return.
type Starter struct{ mode string }

func (s *Starter) Init(p *genserver.Process) error {
	switch s.mode {
	case "stop":
		return errors.New("no config") // {:stop, :no_config}: Spawn returns the error
	case "ignore":
		return genserver.ErrIgnore // :ignore: Spawn returns it, no process, no crash
	}
	return nil // {:ok, state}
}

func (s *Starter) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (s *Starter) HandleCast(*genserver.Process, any)                              {}

func Example_init() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)

	for _, mode := range []string{"ok", "stop", "ignore"} {
		pid, err := sys.Spawn(func() genserver.Server { return &Starter{mode: mode} })
		fmt.Printf("%s: err=%v alive=%v\n", mode, err, pid.Alive())
	}
	// Output:
	// ok: err=<nil> alive=true
	// stop: err=no config alive=false
	// ignore: err=genserver: init ignored the start alive=false
}

// Ticker uses Process.send_after and Process.cancel_timer.
type Ticker struct {
	out   chan<- string
	never genserver.TimerRef
}

func (t *Ticker) Init(p *genserver.Process) error {
	p.SendAfter(10*time.Millisecond, "tick")     // Process.send_after(self(), :tick, 10)
	t.never = p.SendAfter(time.Hour, "too late") // ref = Process.send_after(self(), :too_late, 3_600_000)
	return nil
}

func (t *Ticker) HandleInfo(p *genserver.Process, msg any) {
	if msg == "tick" {
		cancelled := p.CancelTimer(t.never) // Process.cancel_timer(ref)
		t.out <- fmt.Sprintf("tick; the other timer cancelled: %v", cancelled)
	}
}

func (t *Ticker) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (t *Ticker) HandleCast(*genserver.Process, any)                              {}

func Example_timers() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)

	out := make(chan string)
	if _, err := sys.Spawn(func() genserver.Server { return &Ticker{out: out} }); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-out)
	// Output:
	// tick; the other timer cancelled: true
}

// Watcher monitors the processes it is told about and reports their Downs.
type Watcher struct{ out chan<- string }

type WatchPID struct{ PID genserver.PID }

func (w *Watcher) HandleCall(p *genserver.Process, _ genserver.From, req any) (any, error) {
	r := req.(WatchPID)
	return p.Monitor(r.PID), nil // ref = Process.monitor(pid)
}

// def handle_info({:DOWN, ref, :process, pid, reason}, state)
func (w *Watcher) HandleInfo(p *genserver.Process, msg any) {
	if d, ok := msg.(genserver.Down); ok {
		w.out <- fmt.Sprintf("DOWN: %v", d.Reason)
	}
}

func (w *Watcher) HandleCast(*genserver.Process, any) {}

func Example_monitor() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)

	out := make(chan string, 2)
	watcher, _ := sys.Spawn(func() genserver.Server { return &Watcher{out: out} })
	worker, _ := sys.Spawn(func() genserver.Server { return &Starter{} })

	_, _ = genserver.Call[genserver.Ref](ctx, sys, watcher, WatchPID{worker})
	_ = sys.StopProcess(ctx, worker, errors.New("boom")) // Process.exit(pid, :boom), sort of
	fmt.Println(<-out)
	// Monitoring a process that is already gone: an immediate DOWN, :noproc.
	_, _ = genserver.Call[genserver.Ref](ctx, sys, watcher, WatchPID{worker})
	fmt.Println(<-out)
	// Output:
	// DOWN: boom
	// DOWN: genserver: no such process
}

// Parent traps exits and links to a child it spawns.
type Parent struct {
	child genserver.PID
	out   chan<- string
}

func (s *Parent) Init(p *genserver.Process) error {
	p.TrapExits(true) // Process.flag(:trap_exit, true)
	child, err := p.SpawnLink(func() genserver.Server { return &Starter{} })
	s.child = child // {:ok, child} = GenServer.start_link(Worker, [])
	return err
}

func (s *Parent) HandleCall(*genserver.Process, genserver.From, any) (any, error) {
	return s.child, nil
}

// def handle_info({:EXIT, pid, reason}, state)
func (s *Parent) HandleInfo(p *genserver.Process, msg any) {
	if e, ok := msg.(genserver.Exit); ok {
		s.out <- fmt.Sprintf("EXIT from the child: %v", e.Reason)
	}
}

func (s *Parent) HandleCast(*genserver.Process, any) {}

// linked is a process that links to another and does not trap exits.
type linked struct{ to genserver.PID }

func (l *linked) Init(p *genserver.Process) error                                 { return p.Link(l.to) }
func (l *linked) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (l *linked) HandleCast(*genserver.Process, any)                              {}

func Example_links() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)

	out := make(chan string, 1)
	parent, _ := sys.Spawn(func() genserver.Server { return &Parent{out: out} })
	child, _ := genserver.Call[genserver.PID](ctx, sys, parent, "child?")
	// A second process linked to the child, not trapping exits.
	bystander, _ := sys.Spawn(func() genserver.Server { return &linked{to: child} })

	_ = sys.StopProcess(ctx, child, errors.New("crashed"))
	fmt.Println(<-out)
	<-bystander.Done()
	fmt.Println("the non-trapping linked process exited with:", bystander.Reason())
	fmt.Println("the trapping parent is alive:", parent.Alive())
	// Output:
	// EXIT from the child: crashed
	// the non-trapping linked process exited with: crashed
	// the trapping parent is alive: true
}

func Example_names() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)
	newStack := func() genserver.Server { return &Stack{} }

	// {:via, Registry, {Sessions, {:session, 42}}}: the key, as a string.
	name := fmt.Sprintf("session:%d", 42)
	pid, _ := sys.Spawn(newStack, genserver.WithName(name))
	_, err := sys.Spawn(newStack, genserver.WithName(name)) // {:error, {:already_started, pid}}
	fmt.Println("second start:", errors.Is(err, genserver.ErrNameTaken))

	found, ok := sys.Whereis(name) // GenServer.whereis / Registry.lookup
	fmt.Println("whereis:", ok && found == pid)

	_ = sys.StopProcess(ctx, genserver.Name(name), nil)
	_, ok = sys.Whereis(name)
	fmt.Println("registered after exit:", ok)
	_, err = sys.Call(ctx, genserver.Name(name), Pop{})
	fmt.Println("call after exit:", errors.Is(err, genserver.ErrNoProcess))
	// Output:
	// second start: true
	// whereis: true
	// registered after exit: false
	// call after exit: true
}

func Example_supervisor() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(context.Background())

	restarted := make(chan struct{})
	// children = [%{id: :stack, start: {Stack, :start_link, [[name: :stack]]}}]
	// Supervisor.start_link(children, strategy: :one_for_one, max_restarts: 3, max_seconds: 5)
	sup, err := supervisor.New(supervisor.Spec{
		Name:        "app",
		Strategy:    supervisor.OneForOne,
		MaxRestarts: 3,
		Period:      5 * time.Second,
		Children: []supervisor.ChildSpec{{
			ID:      "stack",
			Restart: supervisor.Permanent, // restart: :permanent (the default)
			Start: func() suture.Service {
				return sys.Service(func() genserver.Server { return &Stack{} }, genserver.WithName("stack"))
			},
		}},
		EventHook: func(e supervisor.Event) {
			if s, ok := e.(supervisor.ChildStarted); ok && s.Restarts == 1 {
				close(restarted)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A DynamicSupervisor: no static children.
	sessions, _ := supervisor.New(supervisor.Spec{Name: "sessions"})

	ready := make(chan struct{}, 2)
	done := make(chan error, 2)
	go func() { done <- sup.ServeReady(ctx, func() { ready <- struct{}{} }) }()
	go func() { done <- sessions.ServeReady(ctx, func() { ready <- struct{}{} }) }()
	<-ready
	<-ready

	first, _ := sys.Whereis("stack")
	_ = sys.Kill(genserver.Name("stack")) // Process.exit(pid, :kill)
	<-restarted
	second, _ := sys.Whereis("stack")
	fmt.Println("restarted under its name with a new PID:", second != first && second.Alive())

	// DynamicSupervisor.start_child(Sessions, {Stack, name: {:via, ...}})
	err = sessions.StartChild(ctx, supervisor.ChildSpec{
		ID:      "session:7",
		Restart: supervisor.Temporary,
		Start: func() suture.Service {
			return sys.Service(func() genserver.Server { return &Stack{} }, genserver.WithName("session:7"))
		},
	})
	n, _ := sessions.CountChildren(ctx)
	fmt.Println("dynamic child started:", err, n.Active)

	cancel()
	fmt.Println("supervisors stopped:", <-done, <-done)
	// Output:
	// restarted under its name with a new PID: true
	// dynamic child started: <nil> 1
	// supervisors stopped: <nil> <nil>
}

// Door is a state machine that, in Erlang, would use a selective receive:
// while locked it would `receive {:unlock, code}` and leave the :open
// requests in the mailbox. Here every message is taken in order, so the
// requests that cannot be served yet are kept in the state (deferred calls)
// and served at the transition.
type Door struct {
	locked    bool
	pending   []genserver.From // Opens that came while locked
	postponed chan<- struct{}  // told of each (for the example's output order)
}

type (
	Open   struct{}
	Unlock struct{}
)

func (d *Door) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	if d.locked {
		d.pending = append(d.pending, from) // gen_statem: {:keep_state_and_data, :postpone}
		d.postponed <- struct{}{}
		return genserver.NoReply, nil
	}
	return "opened", nil
}

func (d *Door) HandleCast(p *genserver.Process, msg any) {
	if _, ok := msg.(Unlock); ok && d.locked {
		d.locked = false
		for _, from := range d.pending {
			genserver.Reply(from, "opened after the unlock", nil)
		}
		d.pending = nil
	}
}

func Example_selectiveReceive() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)
	postponed := make(chan struct{}, 1)
	door, _ := sys.Spawn(func() genserver.Server { return &Door{locked: true, postponed: postponed} })

	opened := make(chan string)
	go func() { v, _ := genserver.Call[string](ctx, sys, door, Open{}); opened <- v }()
	<-postponed
	_ = sys.Cast(door, Unlock{})
	fmt.Println(<-opened)
	v, _ := genserver.Call[string](ctx, sys, door, Open{})
	fmt.Println(v)
	// Output:
	// opened after the unlock
	// opened
}

// Keeper shows the pitfalls of From: a deferred reply to a caller that gave
// up, a second reply, and a call from a handler to its own process.
type Keeper struct {
	kept genserver.From
	held chan<- struct{} // told each time a From is kept
}

type (
	Keep        struct{}
	ReplyToKept struct{}
	CallMyself  struct{}
)

func (k *Keeper) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	switch req.(type) {
	case Keep:
		k.kept = from
		k.held <- struct{}{}
		return genserver.NoReply, nil
	case ReplyToKept:
		pending := k.kept.Pending()
		first := genserver.Reply(k.kept, "late", nil)
		second := genserver.Reply(k.kept, "again", nil)
		return fmt.Sprintf("pending=%v first reply taken=%v second=%v", pending, first, second), nil
	case CallMyself:
		// Pass p, not the System, as the Caller: ErrCallingSelf at once
		// instead of a deadlock until the call times out.
		_, err := genserver.Call[string](context.Background(), p, genserver.Name("keeper"), ReplyToKept{})
		return fmt.Sprintf("calling myself: %v", err), nil
	}
	return nil, nil
}

func (k *Keeper) HandleCast(*genserver.Process, any) {}

func Example_pitfalls() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "porting"})
	defer sys.Stop(ctx)
	held := make(chan struct{}, 2)
	if _, err := sys.Spawn(func() genserver.Server { return &Keeper{held: held} }, genserver.WithName("keeper")); err != nil {
		fmt.Println(err)
		return
	}
	keeper := genserver.Name("keeper")

	// A deferred reply to a caller that gave up is dropped.
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	_, err := sys.Call(tctx, keeper, Keep{})
	cancel()
	<-held
	fmt.Println("the caller gave up:", err)
	s, _ := genserver.Call[string](ctx, sys, keeper, ReplyToKept{})
	fmt.Println(s)

	// A From is answered at most once, even while its caller waits.
	got := make(chan string)
	go func() { v, _ := genserver.Call[string](ctx, sys, keeper, Keep{}); got <- v }()
	<-held
	s, _ = genserver.Call[string](ctx, sys, keeper, ReplyToKept{})
	fmt.Println(s)
	fmt.Println("the caller got:", <-got)

	s, _ = genserver.Call[string](ctx, sys, keeper, CallMyself{})
	fmt.Println(s)
	// Output:
	// the caller gave up: genserver: call timed out
	// pending=false first reply taken=false second=false
	// pending=true first reply taken=true second=false
	// the caller got: late
	// calling myself: genserver: process called itself
}
