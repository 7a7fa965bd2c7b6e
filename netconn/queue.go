package netconn

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// sendQueue holds envelopes between Send and the writer goroutine, already
// encoded as batch frames: Send appends a record to the open batch when it
// has the same source (and room), or finishes that batch and starts another.
// The writer takes the whole buffer at once, swapping in its spare, then
// numbers, authenticates and writes the batches while Sends fill the other
// buffer. So under load batches grow by themselves, and no envelope costs an
// allocation.
type sendQueue struct {
	mu       sync.Mutex
	buf      []byte
	batches  []queuedBatch
	open     bool // the last batch may take more records
	limit    int  // soft bound on len(buf)
	frameMax int  // longest frame the peer accepts
	batchMax int  // longest batch frame with more than one record (batchLimit)
	tagSize  int
	closed   bool
	held     bool // the reader is delivering a batch: wake the writer after it
	// framesIn is the connection's count of frames read, and heldAt one
	// more than its value when the reader last held the queue (0: never):
	// equal, the last frame in was a batch of several envelopes, so their
	// answers come as a burst (see leaveToWriter).
	framesIn *atomic.Uint64
	heldAt   uint64
	space    chan struct{} // closed when take makes room; nil if nobody waits
	kick     chan struct{} // wakes the writer; capacity 1

	pong     bool // answer a ping
	pongData uint64
}

// queuedBatch is a batch frame in the queue's buffer.
type queuedBatch struct {
	off   int
	count int
	src   keyholder.Address
}

func (q *sendQueue) init(limit, frameMax, tagSize int) {
	q.limit = limit
	q.frameMax = frameMax
	q.batchMax = batchLimit(frameMax, tagSize)
	q.tagSize = tagSize
	q.kick = make(chan struct{}, 1)
}

func (q *sendQueue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// maxRecord returns the largest record one frame to the peer can hold.
func (q *sendQueue) maxRecord() int {
	return maxRecord(q.frameMax, q.tagSize)
}

// maxRecord returns the largest record a batch frame of at most frameMax
// bytes (the length field excluded, spec.md) can hold under tagSize.
func maxRecord(frameMax, tagSize int) int {
	return frameMax + 4 - (wire.FrameHeaderSize + wire.BatchHeaderSize + tagSize)
}

// maxPayload returns the largest payload such a frame can hold.
func maxPayload(frameMax, tagSize int) int {
	return maxRecord(frameMax, tagSize) - wire.RecordHeaderSize
}

// maxPayload returns the largest payload one frame to the peer can hold.
func (q *sendQueue) maxPayload() int { return q.maxRecord() - wire.RecordHeaderSize }

// push appends env. While the queue is full it waits for room until ctx
// ends if wait is set, else fails with ErrQueueFull at once. close ends the
// wait when the connection goes down.
func (q *sendQueue) push(ctx context.Context, env *wire.Envelope, owns func(keyholder.Address) bool, wait bool) error {
	_, err := q.pushOpt(ctx, env, owns, wait, false)
	return err
}

// pushOpt is push. With direct set it never wakes the writer: it reports
// instead, as flush, that env went into an empty queue that the reader does
// not hold, where it would have woken the writer; the caller must then call
// Conn.flush, which writes or wakes. (Later pushes find the queue not empty
// and leave it to that flush; a held queue is woken by release.)
func (q *sendQueue) pushOpt(ctx context.Context, env *wire.Envelope, owns func(keyholder.Address) bool, wait, direct bool) (flush bool, _ error) {
	return q.pushTail(ctx, env, nil, owns, wait, direct)
}

// pushTail is pushOpt for an envelope whose payload is env.Payload
// followed by tail (Conn.SendTail).
func (q *sendQueue) pushTail(ctx context.Context, env *wire.Envelope, tail []byte, owns func(keyholder.Address) bool, wait, direct bool) (flush bool, _ error) {
	size := len(env.Payload) + len(tail)
	need := wire.RecordSize(size)
	if need > q.maxRecord() {
		return false, &SizeError{Size: size, Limit: q.maxPayload()}
	}
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return false, ErrClosed
		}
		var add int
		if q.extends(env.Src, need) {
			add = need
		} else {
			add = wire.FrameHeaderSize + wire.BatchHeaderSize + need
			if q.open {
				add += q.tagSize
			}
		}
		if len(q.buf) == 0 || len(q.buf)+add <= q.limit {
			break
		}
		if !wait {
			q.mu.Unlock()
			q.wake() // a full queue must drain, held or not
			return false, ErrQueueFull
		}
		if q.space == nil {
			q.space = make(chan struct{})
		}
		space := q.space
		q.mu.Unlock()
		q.wake()
		select {
		case <-space:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		q.mu.Lock()
	}
	if !q.extends(env.Src, need) {
		if q.open && q.batches[len(q.batches)-1].src == env.Src {
			// Same source, frame full: no need to ask the keyholder again.
		} else if !owns(env.Src) {
			q.mu.Unlock()
			return false, fmt.Errorf("%w: source %v is not one of our engines", keyholder.ErrNotOurs, env.Src)
		}
		q.finishOpen()
		q.batches = append(q.batches, queuedBatch{off: len(q.buf), src: env.Src})
		q.buf = wire.AppendBatchStart(q.buf, &env.Src)
		q.open = true
	}
	wake := len(q.batches) == 1 && q.batches[0].count == 0 && !q.held
	if tail == nil {
		q.buf = wire.AppendRecord(q.buf, env)
	} else {
		q.buf = wire.AppendRecordTail(q.buf, env, tail)
	}
	q.batches[len(q.batches)-1].count++
	q.mu.Unlock()
	if direct {
		return wake, nil
	}
	if wake {
		q.wake()
	}
	return false, nil
}

// extends reports whether a record of need bytes from src can join the open
// batch. q.mu must be held.
func (q *sendQueue) extends(src keyholder.Address, need int) bool {
	if !q.open {
		return false
	}
	b := &q.batches[len(q.batches)-1]
	if q.tagSize == wire.AuthMACs.TagSize() && (need >= aloneRecord ||
		b.count == 1 && len(q.buf)-b.off-wire.FrameHeaderSize-wire.BatchHeaderSize >= aloneRecord) {
		// In MAC mode a large envelope goes alone in its frame, so the
		// peer's reader hands its payload over without copying it
		// (detachPayload); a tag per frame costs next to nothing there.
		// (With signatures a tag costs ≈ 50 µs, more than the copy.)
		return false
	}
	// Frame length after: what is there, minus the length field, plus the
	// record and the tag.
	return b.src == src && len(q.buf)-b.off-4+need+q.tagSize <= q.batchMax
}

// aloneRecord is the size of a record whose payload the peer's reader hands
// over (detachPayload).
var aloneRecord = wire.RecordSize(detachPayload)

// maxBatchFrame bounds the frames that batching makes in MAC mode (a
// record longer than that still goes, alone in its frame, up to the peer's
// limit): a peer checks and delivers a frame only once it has all of it,
// so frames of a quarter MiB let it work on one while the next is sealed
// and sent, and a MAC per quarter MiB costs nothing.
const maxBatchFrame = 256 << 10

// batchLimit returns the longest batch frame the queue makes: in MAC mode
// maxBatchFrame, in signature mode the peer's whole frame, since a
// signature and its check cost ≈ 50 µs, which frames of 256 KiB (1,150
// casts of 128 bytes) made 20% of a stream's CPU per message.
func batchLimit(frameMax, tagSize int) int {
	if tagSize == wire.AuthSignatures.TagSize() {
		return frameMax
	}
	return min(frameMax, maxBatchFrame)
}

// finishOpen closes the open batch, if any. q.mu must be held.
func (q *sendQueue) finishOpen() {
	if q.open {
		b := &q.batches[len(q.batches)-1]
		q.buf = wire.FinishBatch(q.buf, b.off, b.count, q.tagSize)
		q.open = false
	}
}

// hold keeps pushes from waking the writer until release: the reader holds
// the queue while it delivers a batch, so that what Deliver sends in answer
// (replies, most often) leaves in one batch rather than as a first envelope
// alone and then the rest. A push that finds the queue full still wakes the
// writer, so holding never stalls a sender.
func (q *sendQueue) hold() {
	q.mu.Lock()
	q.held = true
	if q.framesIn != nil {
		q.heldAt = q.framesIn.Load() + 1
	}
	q.mu.Unlock()
}

// leaveToWriter reports whether a flush should leave the queue to the
// writer, and whether the reader holds it (release wakes the writer then),
// which is one reason; the other is that the last frame in was a batch of
// several envelopes, whose answers (the calls of callers woken by a batch
// of replies, most often) make a burst that the writer's settle gathers
// into one batch, where flushing the first alone would cost a frame (and a
// signature) more.
func (q *sendQueue) leaveToWriter() (leave, held bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held || (q.framesIn != nil && q.framesIn.Load()+1 == q.heldAt), q.held
}

// release ends hold and wakes the writer if anything is queued.
func (q *sendQueue) release() {
	q.mu.Lock()
	q.held = false
	queued := len(q.buf) > 0
	q.mu.Unlock()
	if queued {
		q.wake()
	}
}

// settle lets the batch grow before the writer takes it (group commit): it
// yields the writer's processor to runnable goroutines, senders woken by the
// same event most often (callers whose replies just arrived), for as long as
// that makes the queue grow, at most settleRounds times. Nothing waits for
// time: on an idle node Gosched returns at once and the writer goes on.
func (q *sendQueue) settle() {
	n := q.bytes()
	for range settleRounds {
		runtime.Gosched()
		m := q.bytes()
		if m == n {
			return
		}
		n = m
	}
}

// settleRounds bounds the yields of settle, so a sender that keeps the
// queue growing cannot hold the writer back for long (16 yields are a few
// microseconds; with 256 callers they make batches of ~140 envelopes where
// 4 made ~108).
const settleRounds = 16

// bytes returns how many bytes wait for the writer.
func (q *sendQueue) bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf)
}

// requestPong asks the writer to answer a ping.
func (q *sendQueue) requestPong(data uint64) {
	q.mu.Lock()
	q.pong, q.pongData = true, data
	q.mu.Unlock()
	q.wake()
}

// take hands the queued frames to the writer, which passes in its spare
// buffers for the queue to fill next.
func (q *sendQueue) take(spare []byte, spareBatches []queuedBatch) (buf []byte, batches []queuedBatch, pong bool, pongData uint64) {
	q.mu.Lock()
	q.finishOpen()
	buf, batches = q.buf, q.batches
	q.buf, q.batches = spare[:0], spareBatches[:0]
	pong, pongData = q.pong, q.pongData
	q.pong = false
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	q.mu.Unlock()
	return buf, batches, pong, pongData
}

// close makes push fail from now on and releases waiting senders. What is
// queued stays, for a last take.
func (q *sendQueue) close() {
	q.mu.Lock()
	q.closed = true
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	q.mu.Unlock()
}
