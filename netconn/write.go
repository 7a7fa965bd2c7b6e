package netconn

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// writeLoop writes what Send queues, pings when the peer is quiet and gives
// up when it stays quiet, until told to stop. It writes under c.wmu, as a
// sender flushing in its own goroutine does (flush).
func (c *Conn) writeLoop() error {
	tick := time.NewTicker(c.cfg.IdleTimeout / 4)
	defer tick.Stop()
	var (
		lastIn    = c.stats.framesIn.Load()
		idleTicks int
		pingNo    uint64
	)
	for {
		var ctrl []byte // control frames to add this round
		stopping := false
		select {
		case <-c.q.kick:
			c.q.settle()
		case <-c.writerStop:
			stopping = true
		case <-tick.C:
			if n := c.stats.framesIn.Load(); n != lastIn {
				lastIn, idleTicks = n, 0
				continue
			}
			idleTicks++
			if idleTicks >= 4 {
				c.wmu.Lock()
				c.ws.done = true
				c.writeFinal(wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayIdleTimeout}), 1)
				c.wmu.Unlock()
				return fmt.Errorf("%w: nothing for %v", ErrIdleTimeout, c.cfg.IdleTimeout)
			}
			pingNo++
			ctrl = wire.AppendPing(ctrl, pingNo)
		}
		c.wmu.Lock()
		if err := c.ws.err; err != nil {
			// A sender's write failed (flush): the stream is broken.
			c.ws.done = true
			c.wmu.Unlock()
			return err
		}
		var err error
		if stopping {
			err = c.flushFinal(ctrl)
		} else {
			err = c.flushLocked(ctrl)
		}
		if stopping || err != nil {
			c.ws.done = true
		}
		c.wmu.Unlock()
		if stopping || err != nil {
			return err
		}
	}
}

// writeState is what the one writing (c.wmu held) keeps from one write to
// the next.
type writeState struct {
	spare  []byte        // the queue's next buffer
	spareB []queuedBatch // and its batch list
	auth   []byte        // scratch for the authenticated message
	err    error         // a sender's write failed: the writer ends with it
	done   bool          // the writer has ended: nothing more is written
}

// flushLocked takes what is queued (and a pong the reader asked for),
// seals it and writes it, then ctrl. c.wmu must be held.
func (c *Conn) flushLocked(ctrl []byte) error {
	out, frames, err := c.takeSealed(ctrl, c.cfg.IdleTimeout)
	if err != nil {
		return err
	}
	if len(out) > 0 {
		return c.write(out, frames, c.cfg.IdleTimeout)
	}
	return nil
}

// takeSealed takes what is queued (and a pong the reader asked for) and
// seals it, writing sealed frames as they reach writeChunk bytes; it
// returns the rest, with ctrl after it, and how many frames that is.
// c.wmu must be held; the queue's buffers come back as spares for the
// next take, which only a holder of c.wmu makes, after this write.
func (c *Conn) takeSealed(ctrl []byte, timeout time.Duration) (out []byte, frames int, err error) {
	ws := &c.ws
	buf, batches, pong, pongData := c.q.take(ws.spare, ws.spareB)
	if pong {
		ctrl = wire.AppendPong(ctrl, pongData)
	}
	tail, sealed, auth, err := c.sealWrite(buf, batches, ws.auth, timeout)
	ws.auth = auth
	if err != nil {
		return nil, 0, err
	}
	ws.spare, ws.spareB = buf[:0], batches
	return append(tail, ctrl...), sealed + countFrames(ctrl), nil
}

// flushFinal is flushLocked when closing: a best-effort write of what is
// queued and the go-away frame, within Config.HandshakeTimeout.
func (c *Conn) flushFinal(ctrl []byte) error {
	out, frames, err := c.takeSealed(ctrl, c.cfg.HandshakeTimeout)
	if err != nil {
		return nil
	}
	if g := c.goAway.Load(); g != nil {
		out = wire.AppendGoAway(out, *g)
		frames++
	}
	c.writeFinal(out, frames)
	return nil
}

// flush is how a sender that queued with pushOpt(direct) gets its envelope
// written without waking the writer goroutine (a hand-off, a yield and a
// park: one on each side of a call round trip): if no one else is writing,
// the reader does not hold the queue and the last frame in was no batch of
// several envelopes (leaveToWriter), it takes and writes the queue itself,
// as the writer would. Otherwise it wakes the writer. It returns ErrClosed, or the write's error, when
// what it queued may not have left. It does not wait for more to queue
// (the writer's settle): senders use it when they expect to be alone.
//
// It writes in the calling goroutine, so it can block as a write does:
// when the peer stops reading and the socket's buffer is full, up to
// Config.IdleTimeout, after which the connection fails (as the writer's
// own write would). Only senders that may block call it (SendDirect, and
// Flush after TryQueue), never the reader: TrySend, used on the reader
// path, never writes. Other senders are not held: they queue (or wait for
// room, released by their ctx) behind the write, and the writer takes what
// they queued once the write is done.
func (c *Conn) flush() error {
	if !c.wmu.TryLock() {
		c.q.wake() // someone writes: the writer takes ours after it
		return nil
	}
	if c.ws.done || c.ws.err != nil {
		queued := c.q.bytes() > 0
		c.wmu.Unlock()
		if queued {
			return ErrClosed
		}
		return nil
	}
	if leave, held := c.q.leaveToWriter(); leave {
		c.wmu.Unlock()
		if !held { // held: release wakes the writer
			c.q.wake()
		}
		return nil
	}
	err := c.flushLocked(nil)
	if err != nil {
		c.ws.err = err
	}
	c.wmu.Unlock()
	if err != nil {
		c.q.wake() // the writer ends with the error
	}
	return err
}

// writeChunk is how many sealed bytes the writer lets accumulate before it
// writes them, so that the peer can check and deliver the first frames of a
// large take while the next ones are being sealed.
const writeChunk = 64 << 10

// sealWrite seals the batches in buf as seal does, writing the sealed frames
// as they reach writeChunk bytes. It returns what is sealed but not yet
// written (a tail of buf, which the caller may append to) and how many
// frames it holds.
func (c *Conn) sealWrite(buf []byte, batches []queuedBatch, auth []byte, timeout time.Duration) (tail []byte, frames int, _ []byte, err error) {
	w, done := 0, 0 // buf[:w] is sealed, buf[:done] written
	for i := range batches {
		end := len(buf)
		if i+1 < len(batches) {
			end = batches[i+1].off
		}
		var ok bool
		if auth, ok = c.sealOne(buf[batches[i].off:end], &batches[i], auth); !ok {
			continue
		}
		if w != batches[i].off {
			copy(buf[w:], buf[batches[i].off:end]) // close the gap of a dropped batch
		}
		w += end - batches[i].off
		frames++
		if w-done >= writeChunk && i+1 < len(batches) {
			if err := c.write(buf[done:w], frames, timeout); err != nil {
				return nil, 0, auth, err
			}
			done, frames = w, 0
		}
	}
	return buf[done:w], frames, auth, nil
}

// sealOne numbers and authenticates one batch frame. It reports false, and
// counts the envelopes as dropped, if the keyholder will not authenticate
// them.
func (c *Conn) sealOne(frame []byte, b *queuedBatch, auth []byte) ([]byte, bool) {
	seq := c.guard.nextSeq(b.src, b.count)
	wire.SetBatchSeq(frame, seq)
	var err error
	if auth, err = c.tag(b.src, seq, frame, auth); err != nil {
		c.stats.droppedSend.Add(uint64(b.count))
		c.log.Warn().Err(err).Str("src", b.src.String()).Int("envelopes", b.count).Msg("cannot authenticate; envelopes dropped")
		return auth, false
	}
	c.stats.envelopesOut.Add(uint64(b.count))
	return auth, true
}

func countFrames(ctrl []byte) int {
	// Control frames are pings and pongs here, all the same size.
	return len(ctrl) / (wire.FrameHeaderSize + wire.PingSize)
}

// write writes out within timeout and counts it.
func (c *Conn) write(out []byte, frames int, timeout time.Duration) error {
	if err := c.tls.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := c.tls.Write(out); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%w: write blocked for %v", ErrIdleTimeout, timeout)
		}
		return err
	}
	c.stats.framesOut.Add(uint64(frames))
	c.stats.bytesOut.Add(uint64(len(out)))
	return nil
}

// writeFinal makes a last, best-effort write when closing.
func (c *Conn) writeFinal(out []byte, frames int) {
	if len(out) > 0 {
		_ = c.write(out, frames, c.cfg.HandshakeTimeout)
	}
}

// seal numbers and authenticates the batches in buf, dropping (and
// counting) those the keyholder will not authenticate. It returns buf
// without them and how many batches are left.
func (c *Conn) seal(buf []byte, batches []queuedBatch, auth []byte) ([]byte, int, []byte) {
	w, kept := 0, 0 // buf[:w] is done
	for i := range batches {
		b := &batches[i]
		end := len(buf)
		if i+1 < len(batches) {
			end = batches[i+1].off
		}
		frame := buf[b.off:end]
		var ok bool
		if auth, ok = c.sealOne(frame, b, auth); !ok {
			continue
		}
		if w != b.off {
			copy(buf[w:], frame)
		}
		w += len(frame)
		kept++
	}
	return buf[:w], kept, auth
}

// tag writes src's tag into the tag slot of frame, a finished batch whose
// first seq is seq. In MAC mode that is the GMAC of the body in place, with
// seq as nonce: seq is fresh for src on this connection because nextSeq
// never hands out a number twice (spec.md §6). In signature mode it signs
// the authentication message, built in auth (returned for reuse).
func (c *Conn) tag(src keyholder.Address, seq uint64, frame, auth []byte) ([]byte, error) {
	signed, slot := wire.BatchSigned(frame, c.tagSize), wire.BatchTag(frame, c.tagSize)
	if c.mac != nil {
		t, err := c.mac.MAC(src, seq, slot[:0], signed)
		if err != nil {
			return auth, err
		}
		if len(t) != len(slot) || &t[0] != &slot[0] {
			return auth, fmt.Errorf("netconn: MAC of %d bytes, want %d in place", len(t), len(slot))
		}
		return auth, nil
	}
	auth = wire.AppendAuthMessage(auth[:0], &c.router, &c.peer, signed)
	sig, err := c.cfg.Keyholder.Sign(src, auth)
	if err != nil {
		return auth, err
	}
	if len(sig) != len(slot) {
		return auth, fmt.Errorf("netconn: signature of %d bytes, want %d", len(sig), len(slot))
	}
	copy(slot, sig)
	return auth, nil
}
