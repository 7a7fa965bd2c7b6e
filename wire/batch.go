package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/enginekit/enginekit/keyholder"
)

// Batch layout (spec.md, "Batch frames"). Offsets are from the start of the
// frame, length field included.
const (
	// BatchHeaderSize is the part of a batch body before its records:
	// src (32), seq (8), count (4).
	BatchHeaderSize = 32 + 8 + 4
	// RecordHeaderSize is the part of a record before its payload:
	// kind (1), flags (1), dst (32), ref (8), deadline (8), payload length (4).
	RecordHeaderSize = 1 + 1 + 32 + 8 + 8 + 4

	offSrc     = FrameHeaderSize
	offSeq     = offSrc + 32
	offCount   = offSeq + 8
	offRecords = offCount + 4
)

// BatchOverhead returns the bytes a batch frame adds to its records under
// mode: frame header, batch header and tag.
func BatchOverhead(mode AuthMode) int {
	return FrameHeaderSize + BatchHeaderSize + mode.TagSize()
}

// RecordSize returns the encoded size of an envelope with a payload of n bytes.
func RecordSize(n int) int { return RecordHeaderSize + n }

// AppendBatchStart appends the start of a batch frame from src. The length,
// seq and count fields are left zero, for FinishBatch and SetBatchSeq to
// fill in once the records have been appended (AppendRecord).
func AppendBatchStart(dst []byte, src *keyholder.Address) []byte {
	dst = append(dst, 0, 0, 0, 0, byte(FrameBatch))
	dst = append(dst, src[:]...)
	return append(dst, make([]byte, 8+4)...)
}

// AppendRecord appends the record of e: everything but Src and Seq, which
// the batch carries.
func AppendRecord(dst []byte, e *Envelope) []byte {
	dst = append(dst, byte(e.Kind), e.Flags)
	dst = append(dst, e.Dst[:]...)
	dst = binary.BigEndian.AppendUint64(dst, e.Ref)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Deadline))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Payload)))
	return append(dst, e.Payload...)
}

// AppendRecordTail is AppendRecord for an envelope whose payload is
// e.Payload followed by tail, with the two copied in once each.
func AppendRecordTail(dst []byte, e *Envelope, tail []byte) []byte {
	dst = append(dst, byte(e.Kind), e.Flags)
	dst = append(dst, e.Dst[:]...)
	dst = binary.BigEndian.AppendUint64(dst, e.Ref)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Deadline))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Payload)+len(tail)))
	dst = append(dst, e.Payload...)
	return append(dst, tail...)
}

// FinishBatch completes the batch frame that starts at buf[start:] and holds
// count records: it appends tagSize zero bytes for the tag and fills in the
// frame length and the count.
func FinishBatch(buf []byte, start, count, tagSize int) []byte {
	buf = append(buf, make([]byte, tagSize)...)
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	binary.BigEndian.PutUint32(buf[start+offCount:], uint32(count))
	return buf
}

// SetBatchSeq sets the seq of the first envelope of a batch frame.
func SetBatchSeq(frame []byte, seq uint64) {
	binary.BigEndian.PutUint64(frame[offSeq:], seq)
}

// BatchSigned returns the part of a finished batch frame that the tag
// covers: the body without the tag. In MAC mode it is the GMAC's additional
// data as it stands; in signature mode its SHA-256 digest is signed (see
// AppendAuthMessage).
func BatchSigned(frame []byte, tagSize int) []byte {
	return frame[FrameHeaderSize : len(frame)-tagSize]
}

// BatchTag returns the tag slot at the end of a finished batch frame, with
// its capacity limited to tagSize so appending into [:0] cannot overrun it.
func BatchTag(frame []byte, tagSize int) []byte {
	n := len(frame)
	return frame[n-tagSize : n : n]
}

// AppendBatch appends a whole batch frame holding envs, all from src, with
// seqs seq, seq+1, …; the tag is left zero (see BatchTag). Src and Seq of
// envs are ignored.
func AppendBatch(dst []byte, src keyholder.Address, seq uint64, envs []Envelope, tagSize int) []byte {
	start := len(dst)
	dst = AppendBatchStart(dst, &src)
	for i := range envs {
		dst = AppendRecord(dst, &envs[i])
	}
	dst = FinishBatch(dst, start, len(envs), tagSize)
	SetBatchSeq(dst[start:], seq)
	return dst
}

// Batch is a decoded batch frame. Its slices alias the frame body.
type Batch struct {
	Src   keyholder.Address
	Seq   uint64 // seq of the first envelope; envelope i has Seq+i
	Count int
	// Signed is the body without the tag: what the tag covers (see
	// BatchSigned).
	Signed []byte
	Tag    []byte

	records []byte
}

// DecodeBatch checks the layout of a batch frame body whose tag is tagSize
// bytes long and returns it decoded. It walks every record, so a Batch it
// returns can be iterated without further checks. Unknown kinds are not
// checked here: they are an error for that envelope only (Kind.Valid).
func DecodeBatch(body []byte, tagSize int) (Batch, error) {
	if len(body) < BatchHeaderSize+RecordHeaderSize+tagSize {
		return Batch{}, fmt.Errorf("%w: batch of %d bytes", ErrMalformedFrame, len(body))
	}
	var b Batch
	copy(b.Src[:], body)
	b.Seq = binary.BigEndian.Uint64(body[32:])
	count := binary.BigEndian.Uint32(body[40:])
	records := body[BatchHeaderSize : len(body)-tagSize]
	if count == 0 || uint64(count) > uint64(len(records)/RecordHeaderSize) {
		return Batch{}, fmt.Errorf("%w: batch count %d for %d bytes of records", ErrMalformedFrame, count, len(records))
	}
	if b.Seq > math.MaxUint64-uint64(count-1) {
		return Batch{}, fmt.Errorf("%w: batch seqs overflow", ErrMalformedFrame)
	}
	rest := records
	for i := uint32(0); i < count; i++ {
		if len(rest) < RecordHeaderSize {
			return Batch{}, fmt.Errorf("%w: record %d truncated", ErrMalformedFrame, i)
		}
		n := binary.BigEndian.Uint32(rest[RecordHeaderSize-4:])
		if uint64(n) > uint64(len(rest)-RecordHeaderSize) {
			return Batch{}, fmt.Errorf("%w: record %d payload of %d bytes overruns the batch", ErrMalformedFrame, i, n)
		}
		rest = rest[RecordHeaderSize+int(n):]
	}
	if len(rest) != 0 {
		return Batch{}, fmt.Errorf("%w: %d stray bytes after %d records", ErrMalformedFrame, len(rest), count)
	}
	b.Count = int(count)
	b.Signed = body[:len(body)-tagSize]
	b.Tag = body[len(body)-tagSize:]
	b.records = records
	return b, nil
}

// Envelopes returns an iterator over b's envelopes.
func (b *Batch) Envelopes() EnvelopeIter {
	return EnvelopeIter{rest: b.records, src: b.Src, seq: b.Seq}
}

// EnvelopeIter iterates over the envelopes of a Batch.
type EnvelopeIter struct {
	rest []byte
	src  keyholder.Address
	seq  uint64
}

// Next decodes the next envelope into e and reports whether there was one.
// e.Payload aliases the frame body.
func (it *EnvelopeIter) Next(e *Envelope) bool {
	r := it.rest
	if len(r) < RecordHeaderSize {
		return false
	}
	n := int(binary.BigEndian.Uint32(r[RecordHeaderSize-4:]))
	end := RecordHeaderSize + n
	e.Kind = Kind(r[0])
	e.Flags = r[1]
	e.Src = it.src
	copy(e.Dst[:], r[2:34])
	e.Ref = binary.BigEndian.Uint64(r[34:])
	e.Deadline = int64(binary.BigEndian.Uint64(r[42:]))
	e.Seq = it.seq
	e.Payload = r[RecordHeaderSize:end:end]
	it.rest = r[end:]
	it.seq++
	return true
}

// AuthDomain starts every authentication message (spec.md, "What is
// signed"). It keeps batch signatures apart from anything else an engine key
// signs.
const AuthDomain = "enginekit/wire batch v1\x00"

// AuthMessageSize is the length of an authentication message.
const AuthMessageSize = len(AuthDomain) + 1 + 32 + 32 + sha256.Size

// AppendAuthMessage appends the message that a batch's tag signs in
// signature mode:
//
//	AuthDomain || 1 (AuthSignatures) || sender router || receiver router || SHA-256(signed)
//
// where signed is BatchSigned of the frame (Batch.Signed when decoding).
// Naming both routers binds the batch to one direction between two nodes, so
// it cannot be replayed to another node or reflected back to its sender.
//
// MAC mode has no such message: its tag is a GMAC of signed itself, under a
// key that already names the direction (keyholder.MACSession) and with the
// batch's first seq as nonce.
func AppendAuthMessage(dst []byte, sender, receiver *keyholder.Address, signed []byte) []byte {
	d := sha256.Sum256(signed)
	dst = append(dst, AuthDomain...)
	dst = append(dst, byte(AuthSignatures))
	dst = append(dst, sender[:]...)
	dst = append(dst, receiver[:]...)
	return append(dst, d[:]...)
}
