package callbridge

import (
	"errors"
	"sync"

	"github.com/enginekit/enginekit/genserver"
)

// ErrNoConnection fails the calls pending on a route that went down, and
// calls to a foreign engine that has no live route.
var ErrNoConnection = errors.New("callbridge: no connection to the engine")

// Pending holds the call repliers of one route: the calls sent on it that
// wait for a reply. It is safe for concurrent use.
type Pending struct {
	mu     sync.Mutex
	next   uint64
	calls  map[uint64]call
	sweep  int // size at which the next Add sweeps out abandoned calls
	closed error
}

// call is one call replier: the caller's From and the engine called, the
// only one whose reply may answer it.
type call struct {
	from   genserver.From
	callee [32]byte
}

// NewPending returns an empty table.
func NewPending() *Pending {
	return &Pending{calls: make(map[uint64]call), sweep: 64}
}

// Add registers a call to the engine callee and returns the reference that
// its call envelope carries. It fails with the table's close error once the
// route is down.
func (t *Pending) Add(from genserver.From, callee [32]byte) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed != nil {
		return 0, t.closed
	}
	if len(t.calls) >= t.sweep {
		// Callers that gave up leave their entries behind; drop them here,
		// amortised, instead of running a timer per call.
		for ref, c := range t.calls {
			if !c.from.Pending() {
				delete(t.calls, ref)
			}
		}
		t.sweep = max(64, 2*len(t.calls))
	}
	t.next++
	t.calls[t.next] = call{from, callee}
	return t.next, nil
}

// Resolve answers the call ref with the reply that came back from the
// engine replier, and reports whether a call was waiting for it. Unknown or
// repeated refs, and replies from an engine other than the one called
// (which a hostile or confused peer may send), answer nothing.
func (t *Pending) Resolve(ref uint64, replier [32]byte, v any, err error) bool {
	t.mu.Lock()
	c, ok := t.calls[ref]
	if ok && c.callee == replier {
		delete(t.calls, ref)
	}
	t.mu.Unlock()
	return ok && c.callee == replier && genserver.Reply(c.from, v, err)
}

// Fail answers the call ref with err, whoever it was for: the send of its
// call envelope failed.
func (t *Pending) Fail(ref uint64, err error) {
	t.mu.Lock()
	c, ok := t.calls[ref]
	delete(t.calls, ref)
	t.mu.Unlock()
	if ok {
		genserver.Reply(c.from, nil, err)
	}
}

// FailAll fails every pending call with err (ErrNoConnection when nil), and
// makes later Adds fail with it: what a route's loss does to the calls on
// it. It returns how many calls it failed.
func (t *Pending) FailAll(err error) int {
	if err == nil {
		err = ErrNoConnection
	}
	t.mu.Lock()
	calls := t.calls
	if t.closed == nil {
		t.closed = err
	}
	t.calls = make(map[uint64]call)
	t.mu.Unlock()
	n := 0
	for _, c := range calls {
		if genserver.Reply(c.from, nil, err) {
			n++
		}
	}
	return n
}

// Len returns the number of registered calls, abandoned ones included until
// they are swept.
func (t *Pending) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}
