package netconn

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// ReplayConfig configures a ReplayGuard. Zero fields take the defaults.
type ReplayConfig struct {
	// Window is how far back, in sequence numbers, an envelope from a peer
	// engine may arrive out of order and still be accepted once. Rounded up
	// to a power of two; default 2048, range [64, 1<<20]. Memory per peer
	// engine is Window/8 bytes.
	Window int
	// MaxSources bounds the number of engines whose state is kept, each way.
	// Default 16384.
	MaxSources int
	// Now is the wall clock that starts our sequence numbers. Default
	// time.Now.
	Now func() time.Time
}

// ReplayGuard is the replay protection state of one node, shared by all its
// connections (Config.Replay). It holds both sides:
//
// Sending: every envelope from one of our engines gets the next number of
// that engine's sequence, whichever connection carries it. A sequence starts
// at the wall clock in Unix nanoseconds (or above anything this guard issued
// before, if that is higher) and then counts envelopes. Since no engine sends
// a billion envelopes a second, a restarted node starts above every number
// it issued before, provided its clock has not gone back by more than the
// restart took.
//
// Receiving: for every peer engine the guard keeps a sliding window (as in
// IPsec, RFC 4303 §3.4.3): the highest sequence number accepted and a bitmap
// of the Window numbers below it. A number is accepted at most once; numbers
// below the window are refused. The window is updated only for envelopes whose
// batch passed authentication, so a forger cannot move it.
//
// Memory is bounded by MaxSources per side. A new peer engine beyond it
// evicts one not used recently (second-chance clock); an evicted engine's
// window starts afresh when it comes back, so an envelope it sent before its
// eviction would be accepted again by this node. Only the two routers on the
// connection ever see envelopes in clear (TLS), and batches are bound to the
// receiving router, so this matters only against a peer router replaying its
// own traffic to us. On the sending side, dropping an engine's counter is
// harmless: it restarts from the clock, above everything issued.
//
// State is in memory only: after a restart of this node, envelopes from
// before the restart are not recognised as replays (see above for why that
// is acceptable for the TLS-protected connections of this package).
type ReplayGuard struct {
	window  uint64 // bits, a power of two
	words   int
	maxSrcs int
	now     func() time.Time

	sendMu sync.RWMutex
	send   map[keyholder.Address]*atomic.Uint64 // last number issued per engine
	high   atomic.Uint64                        // highest number ever issued

	recvMu sync.RWMutex
	recv   map[keyholder.Address]*replayWindow
	ring   []keyholder.Address // keys of recv, for the eviction clock
	hand   int
}

type replayWindow struct {
	mu   sync.Mutex
	init bool
	top  uint64   // highest accepted
	bits []uint64 // bit (seq mod window) set: seq accepted
	used atomic.Bool
}

// NewReplayGuard returns an empty ReplayGuard.
func NewReplayGuard(cfg ReplayConfig) (*ReplayGuard, error) {
	if cfg.Window == 0 {
		cfg.Window = 2048
	}
	if cfg.MaxSources == 0 {
		cfg.MaxSources = 16384
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Window < 64 || cfg.Window > 1<<20 || cfg.MaxSources < 1 {
		return nil, fmt.Errorf("%w: replay window %d, max sources %d", ErrBadConfig, cfg.Window, cfg.MaxSources)
	}
	w := uint64(1) << bits.Len(uint(cfg.Window-1))
	return &ReplayGuard{
		window:  w,
		words:   int(w / 64),
		maxSrcs: cfg.MaxSources,
		now:     cfg.Now,
		send:    make(map[keyholder.Address]*atomic.Uint64),
		recv:    make(map[keyholder.Address]*replayWindow),
	}, nil
}

func mustReplayGuard() *ReplayGuard {
	g, err := NewReplayGuard(ReplayConfig{})
	if err != nil {
		panic(err) // the defaults are valid
	}
	return g
}

// nextSeq reserves n consecutive sequence numbers for src and returns the
// first.
func (g *ReplayGuard) nextSeq(src keyholder.Address, n int) uint64 {
	g.sendMu.RLock()
	ctr := g.send[src]
	g.sendMu.RUnlock()
	if ctr == nil {
		ctr = g.newCounter(src)
	}
	last := ctr.Add(uint64(n))
	for { // g.high = max(g.high, last)
		h := g.high.Load()
		if h >= last || g.high.CompareAndSwap(h, last) {
			break
		}
	}
	return last - uint64(n) + 1
}

func (g *ReplayGuard) newCounter(src keyholder.Address) *atomic.Uint64 {
	g.sendMu.Lock()
	defer g.sendMu.Unlock()
	if ctr := g.send[src]; ctr != nil {
		return ctr
	}
	if len(g.send) >= g.maxSrcs {
		clear(g.send) // safe: counters restart above g.high
	}
	start := uint64(max(g.now().UnixNano(), 1))
	start = max(start, g.high.Load()+1)
	ctr := new(atomic.Uint64)
	ctr.Store(start - 1)
	g.send[src] = ctr
	return ctr
}

// accept checks the n sequence numbers first, first+1, … of src against
// its window and records them. Bit i of mask is set if first+i is accepted.
// It returns the number accepted. mask must have room for n bits.
func (g *ReplayGuard) accept(src keyholder.Address, first uint64, n int, mask []uint64) int {
	w := g.windowFor(src)
	w.used.Store(true)
	accepted := 0
	w.mu.Lock()
	for i := range n {
		if g.check(w, first+uint64(i)) {
			mask[i/64] |= 1 << (i % 64)
			accepted++
		} else {
			mask[i/64] &^= 1 << (i % 64)
		}
	}
	w.mu.Unlock()
	return accepted
}

// check accepts seq once. w.mu must be held.
func (g *ReplayGuard) check(w *replayWindow, seq uint64) bool {
	pos := seq & (g.window - 1)
	if !w.init || seq > w.top {
		switch {
		case !w.init || seq-w.top >= g.window:
			clear(w.bits)
		default:
			// Forget the numbers between the old top and seq: their slots
			// now stand for numbers one window later.
			for s := w.top + 1; s < seq; {
				p := s & (g.window - 1)
				if p%64 == 0 && seq-s >= 64 {
					w.bits[p/64] = 0
					s += 64
					continue
				}
				w.bits[p/64] &^= 1 << (p % 64)
				s++
			}
		}
		w.init = true
		w.top = seq
		w.bits[pos/64] |= 1 << (pos % 64)
		return true
	}
	if w.top-seq >= g.window {
		return false
	}
	bit := uint64(1) << (pos % 64)
	if w.bits[pos/64]&bit != 0 {
		return false
	}
	w.bits[pos/64] |= bit
	return true
}

func (g *ReplayGuard) windowFor(src keyholder.Address) *replayWindow {
	g.recvMu.RLock()
	w := g.recv[src]
	g.recvMu.RUnlock()
	if w != nil {
		return w
	}
	g.recvMu.Lock()
	defer g.recvMu.Unlock()
	if w := g.recv[src]; w != nil {
		return w
	}
	w = &replayWindow{bits: make([]uint64, g.words)}
	if len(g.ring) < g.maxSrcs {
		g.ring = append(g.ring, src)
	} else {
		// Second-chance clock: skip (and clear) windows used since the hand
		// last passed; evict the first one that was not.
		for {
			old := g.recv[g.ring[g.hand]]
			if old != nil && old.used.Swap(false) {
				g.hand = (g.hand + 1) % len(g.ring)
				continue
			}
			delete(g.recv, g.ring[g.hand])
			g.ring[g.hand] = src
			g.hand = (g.hand + 1) % len(g.ring)
			break
		}
	}
	g.recv[src] = w
	return w
}

// Sources returns how many peer engines the guard keeps windows for.
func (g *ReplayGuard) Sources() int {
	g.recvMu.RLock()
	defer g.recvMu.RUnlock()
	return len(g.recv)
}
