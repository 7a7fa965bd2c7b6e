package netconn

import "sync/atomic"

// Stats are the counters of a connection (Conn.Stats) or of all the
// connections of a Dialer (Dialer.Stats). Frames and bytes count what went
// over the secure channel after the handshake, framing included, TLS
// excluded.
type Stats struct {
	FramesIn, FramesOut       uint64
	BytesIn, BytesOut         uint64
	EnvelopesIn, EnvelopesOut uint64 // delivered; authenticated and written

	// Envelopes received and dropped, by cause.
	DroppedAuth      uint64 // their batch failed authentication
	DroppedReplay    uint64 // seen before, or older than the replay window
	DroppedMalformed uint64 // authentic but of an unknown kind

	// DroppedSend counts envelopes given to Send that the keyholder would
	// not authenticate (their source stopped being ours before the writer
	// got to them).
	DroppedSend uint64

	// Reconnects counts the connections a Dialer made after its first.
	Reconnects uint64
	// DialFailures counts a Dialer's attempts that brought no connection
	// up: the dial or the handshake failed (0 for a Conn).
	DialFailures uint64
}

func (s *Stats) add(o Stats) {
	s.FramesIn += o.FramesIn
	s.FramesOut += o.FramesOut
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
	s.EnvelopesIn += o.EnvelopesIn
	s.EnvelopesOut += o.EnvelopesOut
	s.DroppedAuth += o.DroppedAuth
	s.DroppedReplay += o.DroppedReplay
	s.DroppedMalformed += o.DroppedMalformed
	s.DroppedSend += o.DroppedSend
}

// counters are the live Stats of a Conn. Each is written by one goroutine
// (reader or writer) and read by anyone.
type counters struct {
	framesIn, framesOut       atomic.Uint64
	bytesIn, bytesOut         atomic.Uint64
	envelopesIn, envelopesOut atomic.Uint64
	droppedAuth               atomic.Uint64
	droppedReplay             atomic.Uint64
	droppedMalformed          atomic.Uint64
	droppedSend               atomic.Uint64
}

// Stats returns a snapshot of the connection's counters. Reconnects is the
// number of connections its Dialer made before this one (0 for accepted
// connections).
func (c *Conn) Stats() Stats {
	s := &c.stats
	return Stats{
		FramesIn:         s.framesIn.Load(),
		FramesOut:        s.framesOut.Load(),
		BytesIn:          s.bytesIn.Load(),
		BytesOut:         s.bytesOut.Load(),
		EnvelopesIn:      s.envelopesIn.Load(),
		EnvelopesOut:     s.envelopesOut.Load(),
		DroppedAuth:      s.droppedAuth.Load(),
		DroppedReplay:    s.droppedReplay.Load(),
		DroppedMalformed: s.droppedMalformed.Load(),
		DroppedSend:      s.droppedSend.Load(),
		Reconnects:       c.reconnNo,
	}
}
