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
// up when it stays quiet, until told to stop.
func (c *Conn) writeLoop() error {
	tick := time.NewTicker(c.cfg.IdleTimeout / 4)
	defer tick.Stop()
	var (
		spare     []byte
		spareB    []queuedBatch
		auth      []byte
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
				c.writeFinal(wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayIdleTimeout}), 1)
				return fmt.Errorf("%w: nothing for %v", ErrIdleTimeout, c.cfg.IdleTimeout)
			}
			pingNo++
			ctrl = wire.AppendPing(ctrl, pingNo)
		}
		buf, batches, pong, pongData := c.q.take(spare, spareB)
		if pong {
			ctrl = wire.AppendPong(ctrl, pongData)
		}
		timeout := c.cfg.IdleTimeout
		if stopping {
			timeout = c.cfg.HandshakeTimeout
		}
		var (
			tail   []byte
			sealed int
			err    error
		)
		tail, sealed, auth, err = c.sealWrite(buf, batches, auth, timeout)
		if err != nil {
			if stopping {
				return nil
			}
			return err
		}
		out := append(tail, ctrl...)
		frames := sealed + countFrames(ctrl)
		if stopping {
			if g := c.goAway.Load(); g != nil {
				out = wire.AppendGoAway(out, *g)
				frames++
			}
			c.writeFinal(out, frames)
			return nil
		}
		if len(out) > 0 {
			if err := c.write(out, frames, c.cfg.IdleTimeout); err != nil {
				return err
			}
		}
		spare, spareB = buf[:0], batches
	}
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
