package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameType is the first byte after a frame's length (spec.md, "Frames").
type FrameType uint8

// The frame types of version 1.
const (
	FrameHello  FrameType = 1 // connection parameters, once per side, first
	FrameBatch  FrameType = 2 // authenticated envelopes of one sender
	FramePing   FrameType = 3 // liveness probe; answered by a pong
	FramePong   FrameType = 4 // echo of a ping
	FrameGoAway FrameType = 5 // the sender is closing the connection, and why
)

var frameNames = [...]string{"invalid", "hello", "batch", "ping", "pong", "goaway"}

// Valid reports whether t is a frame type of this version.
func (t FrameType) Valid() bool { return t >= FrameHello && t <= FrameGoAway }

func (t FrameType) String() string {
	if int(t) < len(frameNames) {
		return frameNames[t]
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

// Frame size limits. A frame's length counts its type byte and body, not the
// 4-byte length field itself.
const (
	// FrameHeaderSize is the length field plus the type byte.
	FrameHeaderSize = 5
	// MinFrameSize is the smallest maximum frame length a side may announce.
	MinFrameSize = 4096
	// DefaultMaxFrameSize is the maximum frame length used when none is
	// configured: 1 MiB + 64 KiB, so that a batch carrying one 1 MiB
	// payload, with its headers, its tag and the few bytes a CBOR encoding
	// adds around it, fits one frame (see DefaultMaxPayload).
	DefaultMaxFrameSize = 1<<20 + 64<<10
	// MaxFrameSizeLimit is the largest maximum frame length a side may
	// announce.
	MaxFrameSizeLimit = 1 << 26
)

// DefaultMaxPayload is the largest payload one frame of DefaultMaxFrameSize
// carries in either authentication mode (spec.md, "Limits"): 1 MiB + 64 KiB
// minus the headers and a 64-byte tag. It is also the default
// Limits.MaxSize, so a 1 MiB value encoded by a Registry crosses with the
// default limits.
const DefaultMaxPayload = DefaultMaxFrameSize + 4 - FrameHeaderSize - BatchHeaderSize - 64 - RecordHeaderSize

// AppendFrameHeader appends the header of a frame of type t whose body is
// bodyLen bytes long.
func AppendFrameHeader(dst []byte, t FrameType, bodyLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(bodyLen+1))
	return append(dst, byte(t))
}

// AppendFrame appends a whole frame of type t with the given body.
func AppendFrame(dst []byte, t FrameType, body []byte) []byte {
	return append(AppendFrameHeader(dst, t, len(body)), body...)
}

// FrameReader reads frames from a byte stream through its own buffer, so a
// frame's body can be returned without copying. It checks every length
// against its maximum before it reads or allocates anything for that frame,
// so a peer can make it hold at most max+4 bytes (plus its initial buffer)
// at a time; a frame it detaches (SetDetach) takes a buffer of its own of
// the frame's length instead of growing the shared one.
//
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	r          io.Reader
	max        int
	buf        []byte
	rpos, wpos int // unread bytes are buf[rpos:wpos]

	detachMin int  // SetDetach; 0: never
	detached  bool // the last body returned is the caller's
}

// initialReadBuffer is large enough for several TLS records, so one frame
// read usually needs no extra system call.
const initialReadBuffer = 64 << 10

// NewFrameReader returns a FrameReader reading from r and refusing frames
// longer than maxFrameSize (clamped to [MinFrameSize, MaxFrameSizeLimit]).
func NewFrameReader(r io.Reader, maxFrameSize int) *FrameReader {
	maxFrameSize = clampFrameSize(maxFrameSize)
	n := min(initialReadBuffer, maxFrameSize+4)
	return &FrameReader{r: r, max: maxFrameSize, buf: make([]byte, n)}
}

func clampFrameSize(n int) int {
	return max(MinFrameSize, min(n, MaxFrameSizeLimit))
}

// SetMaxFrameSize changes the largest frame length fr accepts from the next
// ReadFrame on (clamped as in NewFrameReader). netconn reads the hello,
// which may be longer than a small max frame size, with a larger one.
func (fr *FrameReader) SetMaxFrameSize(n int) { fr.max = clampFrameSize(n) }

// SetDetach makes fr read a BATCH frame that holds a single envelope with a
// payload of at least minPayload bytes into a buffer of its own, which the
// caller then owns (Detached reports it): the payload can be kept without a
// copy. Other frames go through fr's buffer as before. minPayload ≤ 0
// turns detaching off; values below 64 are raised to 64.
func (fr *FrameReader) SetDetach(minPayload int) {
	if minPayload > 0 {
		minPayload = max(minPayload, 64)
	}
	fr.detachMin = minPayload
}

// Detached reports whether the body of the last frame ReadFrame returned is
// a buffer of the caller's (see SetDetach), which fr will not reuse.
func (fr *FrameReader) Detached() bool { return fr.detached }

// MaxFrameSize returns the largest frame length fr accepts.
func (fr *FrameReader) MaxFrameSize() int { return fr.max }

// Buffered returns the number of bytes read from the stream but not yet
// returned as frames.
func (fr *FrameReader) Buffered() int { return fr.wpos - fr.rpos }

// ReadFrame reads the next frame and returns its type and body. The body
// aliases fr's buffer and is valid only until the next call, unless
// Detached reports true: then it is the caller's to keep (SetDetach).
//
// Errors: io.EOF when the stream ends cleanly between frames,
// io.ErrUnexpectedEOF when it ends inside one, ErrFrameTooLarge,
// ErrMalformedFrame (zero length) and ErrUnknownFrame (the frame has been
// consumed; the stream stays in sync), or an error of the underlying reader.
// After an error other than ErrUnknownFrame the reader must not be used again.
func (fr *FrameReader) ReadFrame() (FrameType, []byte, error) {
	fr.detached = false
	if err := fr.fill(4); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(fr.buf[fr.rpos:])
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: zero length", ErrMalformedFrame)
	}
	if uint64(n) > uint64(fr.max) {
		return 0, nil, fmt.Errorf("%w: length %d, limit %d", ErrFrameTooLarge, n, fr.max)
	}
	total := 4 + int(n)
	if fr.detachMin > 0 && int(n) > detachHead+fr.detachMin {
		if detach, err := fr.shouldDetach(); err != nil {
			return 0, nil, err
		} else if detach {
			return fr.readDetached(int(n))
		}
	}
	if err := fr.fill(total); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	t := FrameType(fr.buf[fr.rpos+4])
	body := fr.buf[fr.rpos+FrameHeaderSize : fr.rpos+total : fr.rpos+total]
	fr.rpos += total
	if !t.Valid() {
		return t, nil, fmt.Errorf("%w: %d", ErrUnknownFrame, uint8(t))
	}
	return t, body, nil
}

// detachReadAhead is how far past the bytes it needs fill reads when
// detaching is on (SetDetach): enough for a few small frames per read,
// little to copy out of fr.buf when the next frame is detached.
const detachReadAhead = 4 << 10

// detachHead is the part of a BATCH frame that tells whether to detach it:
// type, batch header and the first record's header.
const detachHead = 1 + BatchHeaderSize + RecordHeaderSize

// shouldDetach reports whether the frame at fr.rpos, whose length is more
// than detachHead+fr.detachMin, is a BATCH of one envelope with a payload of
// at least fr.detachMin bytes.
func (fr *FrameReader) shouldDetach() (bool, error) {
	if err := fr.fill(4 + detachHead); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return false, err
	}
	h := fr.buf[fr.rpos+4 : fr.rpos+4+detachHead]
	count := binary.BigEndian.Uint32(h[1+40:])
	payload := binary.BigEndian.Uint32(h[detachHead-4:])
	return FrameType(h[0]) == FrameBatch && count == 1 && uint64(payload) >= uint64(fr.detachMin), nil
}

// readDetached reads the frame of length n at fr.rpos into a new buffer and
// returns its body.
func (fr *FrameReader) readDetached(n int) (FrameType, []byte, error) {
	t := FrameType(fr.buf[fr.rpos+4])
	body := make([]byte, n-1)
	have := copy(body, fr.buf[fr.rpos+FrameHeaderSize:fr.wpos])
	fr.rpos += FrameHeaderSize + have
	if fr.rpos == fr.wpos {
		fr.rpos, fr.wpos = 0, 0
	}
	zeroReads := 0
	for have < len(body) {
		m, err := fr.r.Read(body[have:])
		have += m
		if have == len(body) {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		if m == 0 { // as in fill
			if zeroReads++; zeroReads >= 100 {
				return 0, nil, io.ErrNoProgress
			}
		} else {
			zeroReads = 0
		}
	}
	fr.detached = true
	return t, body[:len(body):len(body)], nil
}

// fill makes at least n unread bytes available in fr.buf[fr.rpos:]. It
// returns io.EOF only if the stream ended with no unread bytes at all.
func (fr *FrameReader) fill(n int) error {
	if fr.wpos-fr.rpos >= n {
		return nil
	}
	if fr.rpos+n > len(fr.buf) {
		// Not enough room after rpos: move the unread bytes to the front,
		// growing the buffer if the frame is bigger than it. n was checked
		// against fr.max by the caller, so growth is bounded.
		if n > len(fr.buf) {
			nb := make([]byte, min(max(n, 2*len(fr.buf)), fr.max+4))
			fr.wpos = copy(nb, fr.buf[fr.rpos:fr.wpos])
			fr.buf = nb
		} else {
			fr.wpos = copy(fr.buf, fr.buf[fr.rpos:fr.wpos])
		}
		fr.rpos = 0
	}
	zeroReads := 0
	for fr.wpos-fr.rpos < n {
		into := fr.buf[fr.wpos:]
		if fr.detachMin > 0 {
			// Read little beyond what is needed, so that a frame to
			// detach is not read into fr.buf first (to be copied out
			// again): the stream keeps the rest.
			into = into[:min(len(into), n-(fr.wpos-fr.rpos)+detachReadAhead)]
		}
		m, err := fr.r.Read(into)
		fr.wpos += m
		if fr.wpos-fr.rpos >= n {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) && fr.wpos > fr.rpos {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		// io.Reader discourages returning 0, nil; don't spin on a reader
		// that keeps doing it (bufio gives up the same way).
		if m == 0 {
			if zeroReads++; zeroReads >= 100 {
				return io.ErrNoProgress
			}
		} else {
			zeroReads = 0
		}
	}
	return nil
}
