package events

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"
)

// The CBOR encoding of a spec is written by hand (it is a few arrays of
// small integers and text strings) so that it is deterministic and its size
// is known before encoding; it is read with fxamacker/cbor under limits
// derived from the spec limits, then rebuilt through the constructors, which
// check everything else. See doc.go, "Wire format".

const (
	majorText  = 3 << 5
	majorArray = 4 << 5
)

// cborHead returns the length of the CBOR head carrying argument n.
func cborHead(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// cborText returns the length of the CBOR encoding of the text string s.
func cborText(s string) int { return cborHead(uint64(len(s))) + len(s) }

func appendHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= 0xff:
		return append(b, major|24, byte(n))
	case n <= 0xffff:
		return append(b, major|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

// MarshalCBOR returns the deterministic CBOR encoding of f (RFC 8949 core
// deterministic encoding), at most MaxFilterSize bytes. An invalid Filter
// returns its error.
func (f Filter) MarshalCBOR() ([]byte, error) { return f.AppendCBOR(nil) }

// AppendCBOR appends the encoding of f to b (see MarshalCBOR).
func (f Filter) AppendCBOR(b []byte) ([]byte, error) {
	p := f.prog()
	if p.err != nil {
		return b, p.err
	}
	b = slices.Grow(b, p.size)
	return p.appendNode(b, 0), nil
}

func (p *program) appendNode(b []byte, i int32) []byte {
	n := &p.nodes[i]
	switch n.op {
	case opNone, opAll:
		return append(appendHead(b, majorArray, 1), byte(n.op))
	case opTopic, opTopicPrefix:
		b = append(appendHead(b, majorArray, 2), byte(n.op))
		return appendText(b, n.val)
	case opAttrEquals, opAttrPrefix:
		b = append(appendHead(b, majorArray, 3), byte(n.op))
		return appendText(appendText(b, n.key), n.val)
	case opAttrOneOf:
		b = append(appendHead(b, majorArray, uint64(2+len(n.vals))), byte(n.op))
		b = appendText(b, n.key)
		for _, v := range n.vals {
			b = appendText(b, v)
		}
		return b
	}
	k := 0
	for j := i + 1; j < n.end; j = p.nodes[j].end {
		k++
	}
	b = append(appendHead(b, majorArray, uint64(1+k)), byte(n.op))
	for j := i + 1; j < n.end; j = p.nodes[j].end {
		b = p.appendNode(b, j)
	}
	return b
}

// filterDecMode reads specs from untrusted peers. Its limits sit just above
// the spec limits, so the library refuses grossly hostile input while it
// parses and the constructors give the precise error for the rest; input
// longer than MaxFilterSize is refused before parsing.
var filterDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  MaxFilterDepth + 1,
		MaxArrayElements: 2 * MaxFilterNodes,
		MaxMapPairs:      16, // the library's minimum; a spec has no maps
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		panic("events: bad CBOR decode options: " + err.Error()) // constant options: a bug, caught by any test
	}
	return dm
}()

// DecodeFilter decodes and validates a spec encoded by MarshalCBOR (or by
// another implementation of the wire format). Input that is not a valid
// spec returns an error wrapping ErrBadFilter or ErrFilterTooLarge; it never
// panics, and its cost is bounded by MaxFilterSize whatever the input.
func DecodeFilter(data []byte) (Filter, error) {
	if len(data) > MaxFilterSize {
		return Filter{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFilterTooLarge, len(data), MaxFilterSize)
	}
	var v any
	if err := filterDecMode.Unmarshal(data, &v); err != nil {
		var nest *cbor.MaxNestedLevelError
		var arr *cbor.MaxArrayElementsError
		var pairs *cbor.MaxMapPairsError
		if errors.As(err, &nest) || errors.As(err, &arr) || errors.As(err, &pairs) {
			return Filter{}, fmt.Errorf("%w: %v", ErrFilterTooLarge, err)
		}
		return Filter{}, fmt.Errorf("%w: %v", ErrBadFilter, err)
	}
	var d decoder
	return d.build(v, 1)
}

// UnmarshalCBOR decodes a spec with DecodeFilter's checks, so a Filter
// field in a larger CBOR message is as safe as a lone spec.
func (f *Filter) UnmarshalCBOR(data []byte) error {
	g, err := DecodeFilter(data)
	if err != nil {
		return err
	}
	*f = g
	return nil
}

type decoder struct{ nodes int }

func (d *decoder) build(v any, depth int) (Filter, error) {
	if depth > MaxFilterDepth {
		return Filter{}, fmt.Errorf("%w: depth over %d", ErrFilterTooLarge, MaxFilterDepth)
	}
	if d.nodes++; d.nodes > MaxFilterNodes {
		return Filter{}, fmt.Errorf("%w: more than %d nodes", ErrFilterTooLarge, MaxFilterNodes)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return Filter{}, fmt.Errorf("%w: a node must be a non-empty array, got %T", ErrBadFilter, v)
	}
	code, ok := arr[0].(uint64)
	if !ok || code >= uint64(numOps) {
		return Filter{}, fmt.Errorf("%w: unknown operator %v", ErrBadFilter, arr[0])
	}
	o, args := op(code), arr[1:]
	var f Filter
	switch o {
	case opNone, opAll, opTopic, opTopicPrefix, opAttrEquals, opAttrPrefix, opAttrOneOf:
		want := [...]int{opNone: 0, opAll: 0, opTopic: 1, opTopicPrefix: 1, opAttrEquals: 2, opAttrPrefix: 2, opAttrOneOf: -1}[o]
		if want >= 0 && len(args) != want {
			return Filter{}, fmt.Errorf("%w: %s takes %d operands, got %d", ErrBadFilter, opNames[o], want, len(args))
		}
		if o == opAttrOneOf && len(args) < 2 {
			return Filter{}, fmt.Errorf("%w: AttrOneOf needs a key and at least one value", ErrBadFilter)
		}
		strs := make([]string, len(args))
		for i, a := range args {
			s, ok := a.(string)
			if !ok {
				return Filter{}, fmt.Errorf("%w: %s operand %d is %T, not a text string", ErrBadFilter, opNames[o], i+1, a)
			}
			strs[i] = s
		}
		switch o {
		case opNone:
			f = Nothing()
		case opAll:
			f = All()
		case opTopic:
			f = Topic(strs[0])
		case opTopicPrefix:
			f = TopicPrefix(strs[0])
		case opAttrEquals:
			f = AttrEquals(strs[0], strs[1])
		case opAttrPrefix:
			f = AttrPrefix(strs[0], strs[1])
		case opAttrOneOf:
			f = AttrOneOf(strs[0], strs[1:]...)
		}
	case opAnd, opOr, opNot:
		if o == opNot && len(args) != 1 {
			return Filter{}, fmt.Errorf("%w: Not takes 1 operand, got %d", ErrBadFilter, len(args))
		}
		operands := make([]Filter, len(args))
		for i, a := range args {
			g, err := d.build(a, depth+1)
			if err != nil {
				return Filter{}, err
			}
			operands[i] = g
		}
		f = compose(o, operands)
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	return f, nil
}
