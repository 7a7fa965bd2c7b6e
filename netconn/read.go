package netconn

import (
	"errors"
	"fmt"
	"io"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// detachPayload is the smallest payload that the reader hands over with
// its frame (wire.FrameReader.SetDetach, Envelope.Owned) rather than
// through its reused buffer: a large envelope travels alone in its frame,
// and its payload can then be kept without a copy.
const detachPayload = 64 << 10

// readLoop reads frames until the stream fails or the peer misbehaves.
func (c *Conn) readLoop() error {
	var rs readState
	c.fr.SetDetach(detachPayload)
	for {
		typ, body, err := c.fr.ReadFrame()
		if err != nil {
			switch {
			case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrMalformedFrame), errors.Is(err, wire.ErrUnknownFrame):
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			case errors.Is(err, io.EOF):
				return fmt.Errorf("%w: end of stream", ErrPeerClosed)
			}
			return err
		}
		c.stats.framesIn.Add(1)
		c.stats.bytesIn.Add(uint64(wire.FrameHeaderSize + len(body)))
		switch typ {
		case wire.FrameBatch:
			if err := c.handleBatch(body, &rs); err != nil {
				return err
			}
		case wire.FramePing:
			v, err := wire.ParsePing(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			c.q.requestPong(v)
		case wire.FramePong:
			if _, err := wire.ParsePing(body); err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
		case wire.FrameGoAway:
			g, err := wire.ParseGoAway(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			return fmt.Errorf("%w: %w", ErrPeerClosed, g)
		default: // a second hello
			return fmt.Errorf("%w: unexpected %v frame", ErrProtocol, typ)
		}
	}
}

// readState is the reader's scratch space, reused from batch to batch.
type readState struct {
	env  wire.Envelope
	mask []uint64
	auth []byte
	bad  int
}

// handleBatch checks a batch frame body and delivers its envelopes: the
// layout (else the peer is broken: error), the tag (else the batch is
// dropped and counted, and the peer disconnected after MaxBadBatches), the
// replay window, the kinds.
func (c *Conn) handleBatch(body []byte, rs *readState) error {
	b, err := wire.DecodeBatch(body, c.tagSize)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if !c.verify(&b, rs) {
		c.stats.droppedAuth.Add(uint64(b.Count))
		c.log.Debug().Str("src", b.Src.String()).Int("envelopes", b.Count).Msg("batch failed authentication; dropped")
		if rs.bad++; rs.bad > c.cfg.MaxBadBatches {
			return fmt.Errorf("%w: %d batches", ErrTooManyBad, rs.bad)
		}
		return nil
	}
	if words := (b.Count + 63) / 64; len(rs.mask) < words {
		rs.mask = make([]uint64, words)
	}
	accepted := c.guard.accept(b.Src, b.Seq, b.Count, rs.mask)
	if accepted < b.Count {
		c.stats.droppedReplay.Add(uint64(b.Count - accepted))
		c.log.Debug().Str("src", b.Src.String()).Int("envelopes", b.Count-accepted).Msg("replayed envelopes dropped")
	}
	it := b.Envelopes()
	env := &rs.env
	env.Owned = b.Count == 1 && c.fr.Detached() // the body is ours to give away
	if b.Count > 1 {
		c.q.hold()
		defer c.q.release()
	}
	for i := 0; it.Next(env); i++ {
		if rs.mask[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		if !env.Kind.Valid() {
			c.stats.droppedMalformed.Add(1)
			c.log.Debug().Str("src", b.Src.String()).Stringer("kind", env.Kind).Msg("envelope of unknown kind dropped")
			continue
		}
		c.stats.envelopesIn.Add(1) // before Deliver, so what it triggers sees the count
		c.cfg.Deliver(c, env)
	}
	return nil
}

// verify checks a batch tag: in MAC mode the GMAC of the body with the
// batch's first seq as nonce, in signature mode the signature of the
// authentication message (built in rs.auth). No peer may speak for this
// node's router or engines (MACSession.Verify refuses them too), whatever it
// signs.
func (c *Conn) verify(b *wire.Batch, rs *readState) bool {
	if c.mac != nil {
		return c.mac.Verify(b.Src, b.Seq, b.Signed, b.Tag)
	}
	rs.auth = wire.AppendAuthMessage(rs.auth[:0], &c.peer, &c.router, b.Signed)
	return !c.cfg.Keyholder.Owns(b.Src) && keyholder.Verify(b.Src, rs.auth, b.Tag)
}
