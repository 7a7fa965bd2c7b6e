package payload

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/fxamacker/cbor/v2"

	"github.com/enginekit/enginekit/internal/safetext"
)

// Limits bound what Registry.Unmarshal accepts, so a payload from an
// untrusted peer costs a bounded amount of memory and time. Zero fields get
// the defaults in DefaultLimits.
//
// Decoding n bytes of CBOR can allocate more than n bytes of Go values (an
// array of small integers decoded into []any takes about 16 bytes per input
// byte), so MaxSize bounds memory only up to that factor.
type Limits struct {
	// MaxSize is the largest payload, in bytes. Default DefaultMaxSize.
	MaxSize int
	// MaxNestedLevels bounds the nesting of arrays, maps and tags in the
	// value: default 16, range [4, 65535].
	MaxNestedLevels int
	// MaxArrayElements bounds the length of any array: default 65536,
	// range [16, 2147483647].
	MaxArrayElements int
	// MaxMapPairs bounds the size of any map: default 65536, range [16,
	// 2147483647].
	MaxMapPairs int
}

// DefaultMaxSize is the default Limits.MaxSize: 1 MiB + 64 KiB − 163 bytes,
// what one frame of the wire format's default size carries (it equals
// wire.DefaultMaxPayload, which a test in package wire keeps true), so a
// 1 MiB value plus its encoding crosses with the default limits. It is
// spelled out here because the wire format sits above this package.
const DefaultMaxSize = 1<<20 + 64<<10 - 163

// DefaultLimits returns the limits used for zero fields of Limits.
func DefaultLimits() Limits {
	return Limits{MaxSize: DefaultMaxSize, MaxNestedLevels: 16, MaxArrayElements: 1 << 16, MaxMapPairs: 1 << 16}
}

// Verify reports whether NewRegistry would accept l: zero fields take their
// defaults, the others must be within the ranges documented on Limits. The
// error wraps ErrBadConfig and names the field.
func (l Limits) Verify() error {
	l = l.withDefaults()
	bad := func(field string, v, lo, hi int) error {
		return fmt.Errorf("%w: %s %d outside [%d, %d]", ErrBadConfig, field, v, lo, hi)
	}
	switch {
	case l.MaxSize < 1:
		return bad("MaxSize", l.MaxSize, 1, math.MaxInt)
	case l.MaxNestedLevels < 4 || l.MaxNestedLevels > 65535:
		return bad("MaxNestedLevels", l.MaxNestedLevels, 4, 65535)
	case l.MaxArrayElements < 16 || l.MaxArrayElements > math.MaxInt32:
		return bad("MaxArrayElements", l.MaxArrayElements, 16, math.MaxInt32)
	case l.MaxMapPairs < 16 || l.MaxMapPairs > math.MaxInt32:
		return bad("MaxMapPairs", l.MaxMapPairs, 16, math.MaxInt32)
	}
	return nil
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSize == 0 {
		l.MaxSize = d.MaxSize
	}
	if l.MaxNestedLevels == 0 {
		l.MaxNestedLevels = d.MaxNestedLevels
	}
	if l.MaxArrayElements == 0 {
		l.MaxArrayElements = d.MaxArrayElements
	}
	if l.MaxMapPairs == 0 {
		l.MaxMapPairs = d.MaxMapPairs
	}
	return l
}

// MaxTypeName is the longest type name, in bytes.
const MaxTypeName = 128

// Registry maps Go types to the names their values travel under, and back.
// A payload is the deterministic CBOR encoding of the two-element array
// [name, value] (wire/spec.md, "Payloads").
//
// A new Registry knows the built-in names below; more are added with
// Register. Registering is meant to happen once, at start-up, but is safe
// at any time; Marshal and Unmarshal are lock-free and safe for concurrent
// use.
//
//	name      Go type   notes
//	nil       nil       Marshal(nil); value is CBOR null
//	bool      bool
//	int       int
//	int64     int64
//	uint64    uint64
//	float64   float64
//	string    string
//	bytes     []byte
//
// Generic containers such as map[string]any are deliberately not built in:
// they let a peer choose the shape of what we decode. Register them
// explicitly if you want them; Limits still apply.
type Registry struct {
	limits Limits
	enc    cbor.UserBufferEncMode
	dec    cbor.DecMode

	mu  sync.Mutex // serialises Register; readers use tab
	tab atomic.Pointer[regTables]

	// bytes is the built-in "bytes" ([]byte), which cannot be registered
	// again: Marshal and Unmarshal take it without a table lookup, as raw
	// byte payloads are the most common and the most size-sensitive.
	bytes *regType
}

type regTables struct {
	byName map[string]*regType
	byType map[reflect.Type]*regType
}

type regType struct {
	name   string
	typ    reflect.Type
	prefix []byte // CBOR array header and name, ready to append
	decode func(dm cbor.DecMode, b []byte) (any, error)
}

// NewRegistry returns a Registry that decodes within l (zero fields take
// defaults) and knows the built-in names. Limits that fail Verify give an
// error wrapping ErrBadConfig.
func NewRegistry(l Limits) (*Registry, error) {
	if err := l.Verify(); err != nil {
		return nil, err
	}
	l = l.withDefaults()
	enc, err := cbor.CoreDetEncOptions().UserBufferEncMode()
	if err != nil {
		return nil, fmt.Errorf("payload: cbor encoder: %w", err)
	}
	dec, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  l.MaxNestedLevels,
		MaxArrayElements: l.MaxArrayElements,
		MaxMapPairs:      l.MaxMapPairs,
		IndefLength:      cbor.IndefLengthForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err) // Verify should have caught it
	}
	r := &Registry{limits: l, enc: enc, dec: dec}
	r.tab.Store(&regTables{byName: map[string]*regType{}, byType: map[reflect.Type]*regType{}})
	for _, err := range []error{
		Register[bool](r, "bool"),
		Register[int](r, "int"),
		Register[int64](r, "int64"),
		Register[uint64](r, "uint64"),
		Register[float64](r, "float64"),
		Register[string](r, "string"),
		Register[[]byte](r, bytesName),
		r.add(&regType{name: nilName, decode: decodeNil}),
	} {
		if err != nil {
			return nil, err // cannot happen: the names are distinct
		}
	}
	r.bytes = r.tab.Load().byName[bytesName]
	return r, nil
}

const bytesName = "bytes"

const nilName = "nil"

func decodeNil(dm cbor.DecMode, b []byte) (any, error) {
	if len(b) == 1 && b[0] == 0xf6 { // null, the encoding Marshal makes
		return nil, nil
	}
	var v any
	if err := dm.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v != nil {
		return nil, errors.New("value of nil is not null")
	}
	return nil, nil
}

// Limits returns the decode limits of r.
func (r *Registry) Limits() Limits { return r.limits }

// Register makes values of type T travel under name. Registering a name or
// a type twice is an error (ErrDuplicateName, ErrDuplicateType), and so is a
// name that is empty, longer than MaxTypeName bytes or not UTF-8 (ErrBadName).
//
// Unmarshal returns values of exactly type T: register a struct type to get
// struct values, a pointer type to get pointers. Marshal also accepts a
// pointer to a registered non-pointer type and encodes what it points to.
func Register[T any](r *Registry, name string) error {
	typ := reflect.TypeFor[T]()
	decode := func(dm cbor.DecMode, b []byte) (any, error) {
		var v T
		if err := dm.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		return v, nil
	}
	if word, ok := indirectTypeWord[T](); ok {
		decode = func(dm cbor.DecMode, b []byte) (any, error) {
			p := new(T)
			if err := dm.Unmarshal(b, p); err != nil {
				return nil, err
			}
			return boxIndirect(word, unsafe.Pointer(p)), nil
		}
	}
	if typ == reflect.TypeFor[[]byte]() {
		decode = decodeBytes(decode)
	}
	return r.add(&regType{name: name, typ: typ, decode: decode})
}

// decodeBytes returns a decoder for []byte values that decodes a short byte
// string in its shortest form, the common case, with one allocation instead
// of two (the slice and its bytes come in one piece, see newBytes), and
// hands every other input to slow, the CBOR decoder, so what is accepted,
// what is returned and every error stay those of the CBOR decoder.
func decodeBytes(slow func(cbor.DecMode, []byte) (any, error)) func(cbor.DecMode, []byte) (any, error) {
	word, ok := indirectTypeWord[[]byte]()
	if !ok {
		return slow
	}
	return func(dm cbor.DecMode, b []byte) (any, error) {
		var n, off int
		switch {
		case len(b) < 1:
		case b[0] > 0x40 && b[0] < 0x58: // byte string of 1 to 23 bytes
			n, off = int(b[0]&0x1f), 1
		case b[0] == 0x58 && len(b) >= 2 && b[1] >= 24:
			n, off = int(b[1]), 2
		case b[0] == 0x59 && len(b) >= 3 && b[1] != 0: // 256 or more
			n, off = int(b[1])<<8|int(b[2]), 3
		}
		if n == 0 || n > maxPackedBytes || off+n != len(b) {
			return slow(dm, b)
		}
		p := newBytes(n)
		copy(*p, b[off:])
		return boxIndirect(word, unsafe.Pointer(p)), nil
	}
}

// maxPackedBytes is the longest []byte that newBytes allocates in one piece.
const maxPackedBytes = 1000

// newBytes returns a pointer to a []byte of length and capacity n, 0 < n <=
// maxPackedBytes, whose bytes are in the same allocation as the slice: a
// struct holding the slice and an array of the bytes, sized to fill one of
// the allocator's size classes (so it takes about the memory a separate
// slice and bytes would, within a quarter). The pointer is to the slice
// field, which is properly typed, and the slice points into the struct, so
// the garbage collector keeps it all for as long as either is reachable.
func newBytes(n int) *[]byte {
	switch {
	case n <= 8:
		b := new(struct {
			s []byte
			a [8]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 24:
		b := new(struct {
			s []byte
			a [24]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 40:
		b := new(struct {
			s []byte
			a [40]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 72:
		b := new(struct {
			s []byte
			a [72]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 104:
		b := new(struct {
			s []byte
			a [104]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 136:
		b := new(struct {
			s []byte
			a [136]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 168:
		b := new(struct {
			s []byte
			a [168]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 232:
		b := new(struct {
			s []byte
			a [232]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 296:
		b := new(struct {
			s []byte
			a [296]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 360:
		b := new(struct {
			s []byte
			a [360]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 488:
		b := new(struct {
			s []byte
			a [488]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 616:
		b := new(struct {
			s []byte
			a [616]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	case n <= 744:
		b := new(struct {
			s []byte
			a [744]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	default:
		b := new(struct {
			s []byte
			a [maxPackedBytes]byte
		})
		b.s = b.a[:n:n]
		return &b.s
	}
}

// eface is the layout of an interface value of type any: the type word and
// the data word.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// indirectTypeWord reports whether an interface holding a T holds it
// indirectly, its data word pointing to a T of its own (every type but
// pointers, maps, channels, funcs and structs or arrays of one of those),
// and if so returns the type word of such an interface.
//
// Returning a decoded value as an interface would normally copy it into a
// new allocation; for these types the decoder instead builds the interface
// around the T it decoded into (boxIndirect), which nothing else refers to
// afterwards, saving one allocation per payload. Two independent checks
// must agree before that is done: the compiler's rule for pointer-shaped
// types, and the data word of a boxed zero T, which is nil exactly when the
// T is held directly (its zero value is a nil pointer) and otherwise points
// to a (shared, read-only) zero T.
func indirectTypeWord[T any]() (unsafe.Pointer, bool) {
	if pointerShaped(reflect.TypeFor[T]()) {
		return nil, false
	}
	var zero T
	x := any(zero)
	e := (*eface)(unsafe.Pointer(&x))
	if e.typ == nil || e.data == nil {
		return nil, false
	}
	return e.typ, true
}

// pointerShaped is the compiler's rule for the types an interface holds
// directly, in its data word.
func pointerShaped(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Map, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() == 1 && pointerShaped(t.Elem())
	case reflect.Struct:
		return t.NumField() == 1 && pointerShaped(t.Field(0).Type)
	}
	return false
}

// boxIndirect returns the interface with type word word (from
// indirectTypeWord) holding the value p points to, without copying it: p
// must point to a heap value of that type that nothing writes to afterwards.
func boxIndirect(word, p unsafe.Pointer) any {
	var x any
	*(*eface)(unsafe.Pointer(&x)) = eface{typ: word, data: p}
	return x
}

func (r *Registry) add(rt *regType) error {
	if rt.name == "" || len(rt.name) > MaxTypeName || !utf8.ValidString(rt.name) {
		return fmt.Errorf("%w: %q", ErrBadName, safetext.Truncate(rt.name, MaxTypeName))
	}
	if rt.typ != nil && rt.typ.Kind() == reflect.Interface {
		return fmt.Errorf("%w: %v is an interface type", ErrBadName, rt.typ)
	}
	rt.prefix = appendPrefix(nil, rt.name)
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.tab.Load()
	if _, ok := old.byName[rt.name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateName, rt.name)
	}
	if rt.typ != nil {
		if prev, ok := old.byType[rt.typ]; ok {
			return fmt.Errorf("%w: %v is registered as %q", ErrDuplicateType, rt.typ, prev.name)
		}
	}
	t := &regTables{byName: maps.Clone(old.byName), byType: maps.Clone(old.byType)}
	t.byName[rt.name] = rt
	if rt.typ != nil {
		t.byType[rt.typ] = rt
	}
	r.tab.Store(t)
	return nil
}

// appendPrefix appends the CBOR head of a two-element array and the text
// string name, in their shortest forms.
func appendPrefix(dst []byte, name string) []byte {
	dst = append(dst, 0x82) // array(2)
	n := len(name)
	switch {
	case n < 24:
		dst = append(dst, 0x60|byte(n))
	default: // n <= MaxTypeName < 256
		dst = append(dst, 0x78, byte(n))
	}
	return append(dst, name...)
}

// Names returns the registered names, built-ins included, in no particular
// order.
func (r *Registry) Names() []string {
	t := r.tab.Load()
	names := make([]string, 0, len(t.byName))
	for n := range t.byName {
		names = append(names, n)
	}
	return names
}

// Marshal encodes v as a payload: [name, value] in deterministic CBOR.
// A v whose type is not registered gives ErrUnregisteredType.
func (r *Registry) Marshal(v any) ([]byte, error) {
	return r.AppendMarshal(nil, v)
}

// AppendMarshal is Marshal appending to dst. Reusing dst across calls avoids
// an allocation per payload.
func (r *Registry) AppendMarshal(dst []byte, v any) ([]byte, error) {
	if b, ok := v.([]byte); ok && b != nil {
		// What the CBOR encoder makes of a non-nil []byte (a nil one is
		// null), without its buffer: the shortest byte string head, then
		// the bytes.
		dst = append(dst, r.bytes.prefix...)
		return append(appendHead(dst, 0x40, uint64(len(b))), b...), nil
	}
	rt, v, err := r.lookupValue(v)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, rt.prefix...)
	if rt.typ == nil { // nil
		return append(dst, 0xf6), nil
	}
	// The encoder writes to a bytes.Buffer; one from a pool, pointed at dst,
	// saves allocating a new one per payload. The buffer lets go of the
	// slice before it goes back to the pool.
	buf := bufPool.Get().(*bytes.Buffer)
	*buf = *bytes.NewBuffer(dst)
	err = r.enc.MarshalToBuffer(v, buf)
	dst = buf.Bytes()
	*buf = bytes.Buffer{}
	bufPool.Put(buf)
	if err != nil {
		return dst[:start], fmt.Errorf("payload: encoding %q: %w", rt.name, err)
	}
	return dst, nil
}

// AppendMarshalTail is AppendMarshal for a caller that can send a payload
// in two pieces (netconn.Conn.SendTail): it appends to dst all of v's
// encoding but a trailing part, which it returns as tail without copying
// it: the bytes of a []byte value, which may be large, aliased (so valid
// as long as v's). dst followed by tail is what AppendMarshal appends;
// tail is nil for values of other types.
func (r *Registry) AppendMarshalTail(dst []byte, v any) (_, tail []byte, err error) {
	if b, ok := v.([]byte); ok && b != nil {
		dst = append(dst, r.bytes.prefix...)
		return appendHead(dst, 0x40, uint64(len(b))), b, nil
	}
	dst, err = r.AppendMarshal(dst, v)
	return dst, nil, err
}

// appendHead appends the shortest CBOR head of major type major (the top
// three bits, as 0x40 for a byte string) and argument n (RFC 8949 §3,
// deterministic: §4.2.1).
func appendHead(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major|byte(n))
	case n <= math.MaxUint8:
		return append(dst, major|24, byte(n))
	case n <= math.MaxUint16:
		return append(dst, major|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(dst, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// bufPool holds empty bytes.Buffers for AppendMarshal.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (r *Registry) lookupValue(v any) (*regType, any, error) {
	t := r.tab.Load()
	if v == nil {
		return t.byName[nilName], nil, nil
	}
	typ := reflect.TypeOf(v)
	if rt, ok := t.byType[typ]; ok {
		return rt, v, nil
	}
	if typ.Kind() == reflect.Pointer {
		if rt, ok := t.byType[typ.Elem()]; ok {
			rv := reflect.ValueOf(v)
			if rv.IsNil() {
				return nil, nil, fmt.Errorf("%w: nil %v", ErrUnregisteredType, typ)
			}
			return rt, rv.Elem().Interface(), nil
		}
	}
	return nil, nil, fmt.Errorf("%w: %v", ErrUnregisteredType, typ)
}

// Unmarshal decodes a payload made by Marshal (here or by another
// implementation of wire/spec.md) and returns the value, of the Go type
// registered under its name. It never panics on bad input: an unknown name
// gives ErrUnknownType, a payload over the limits ErrPayloadTooLarge or
// ErrPayloadLimits, anything else that does not decode ErrMalformedPayload.
func (r *Registry) Unmarshal(b []byte) (any, error) {
	if len(b) > r.limits.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(b), r.limits.MaxSize)
	}
	name, value, err := splitPayload(b)
	if err != nil {
		return nil, err
	}
	rt, ok := r.bytes, string(name) == bytesName
	if !ok {
		rt, ok = r.tab.Load().byName[string(name)] // no allocation for the lookup
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, safetext.Truncate(string(safetext.Sanitize(name)), 64))
	}
	v, err := rt.decode(r.dec, value)
	if err != nil {
		return nil, classifyDecodeError(rt.name, err)
	}
	return v, nil
}

// UnmarshalOwned is Unmarshal for a payload b that the caller hands over:
// nothing else will read or write b afterwards. The value may then alias b
// instead of copying from it; it does for a []byte of more than 1000 bytes
// in its shortest encoding, which comes back as a slice of b (its capacity
// limited to its length). Everything else, errors included, is as
// Unmarshal.
func (r *Registry) UnmarshalOwned(b []byte) (any, error) {
	if len(b) <= r.limits.MaxSize {
		if name, value, err := splitPayload(b); err == nil && string(name) == bytesName {
			if n, off := byteStringHead(value); n > maxPackedBytes && off+n == len(value) {
				return value[off:len(value):len(value)], nil
			}
		}
	}
	return r.Unmarshal(b)
}

// byteStringHead reads the head of a CBOR byte string of 24 bytes or more
// in its shortest form and returns its length and the head's; n is 0 for
// anything else.
func byteStringHead(b []byte) (n, off int) {
	switch {
	case len(b) < 2:
	case b[0] == 0x58 && b[1] >= 24:
		return int(b[1]), 2
	case b[0] == 0x59 && len(b) >= 3 && b[1] != 0: // 256 or more
		return int(b[1])<<8 | int(b[2]), 3
	case b[0] == 0x5a && len(b) >= 5 && (b[1] != 0 || b[2] != 0): // 65536 or more
		return int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4]), 5
	}
	return 0, 0
}

// splitPayload checks the array head and the name of a payload and returns
// the name and the encoded value.
func splitPayload(b []byte) (name, value []byte, err error) {
	if len(b) < 2 || b[0] != 0x82 {
		return nil, nil, fmt.Errorf("%w: not a two-element array", ErrMalformedPayload)
	}
	var n, off int
	switch h := b[1]; {
	case h >= 0x60 && h < 0x78:
		n, off = int(h&0x1f), 2
	case h == 0x78 && len(b) >= 3 && b[2] >= 24:
		n, off = int(b[2]), 3
	default:
		return nil, nil, fmt.Errorf("%w: type name is not a short definite text string", ErrMalformedPayload)
	}
	if n == 0 || n > MaxTypeName || off+n > len(b) {
		return nil, nil, fmt.Errorf("%w: type name of %d bytes", ErrMalformedPayload, n)
	}
	return b[off : off+n], b[off+n:], nil
}

func classifyDecodeError(name string, err error) error {
	var (
		nested *cbor.MaxNestedLevelError
		arr    *cbor.MaxArrayElementsError
		mp     *cbor.MaxMapPairsError
	)
	if errors.As(err, &nested) || errors.As(err, &arr) || errors.As(err, &mp) {
		return fmt.Errorf("%w: %q: %v", ErrPayloadLimits, name, err)
	}
	return fmt.Errorf("%w: %q: %v", ErrMalformedPayload, name, err)
}
