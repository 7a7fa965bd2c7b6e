package genserver

import (
	"errors"
	"reflect"
	"sync"
	"time"
)

// A From may cross nodes, as OTP allows: a callee can put its caller's From
// in a message to a process on another node, which answers it with Reply.
// The System's FromCodec (installed by the transport, with
// Relay.SetFromCodec) gives the From a wire form when the message is
// encoded (From.MarshalCBOR), and answers a From decoded from one (Reply
// hands the answer to the codec, which sends it to the node holding the
// call). A From decoded on the other node must be bound to that node's
// System before it can answer anything: the transport does it for every
// message it decodes (Relay.BindFroms).

// FromCodec makes Froms portable for one System.
type FromCodec interface {
	// EncodeFrom returns the wire form of from, a CBOR data item that
	// another node's codec can answer (DecodeFrom, ReplyFrom).
	EncodeFrom(from From) ([]byte, error)
	// DecodeFrom checks a wire form and returns when its caller stops
	// waiting; ok false refuses it (Reply to it returns false).
	DecodeFrom(data []byte) (deadline time.Time, ok bool)
	// ReplyFrom sends the answer to the From whose wire form is data and
	// reports whether it left.
	ReplyFrom(data []byte, v any, err error) bool
}

// ErrFromNotPortable is what encoding a From returns when its System has no
// FromCodec (no transport runs on it): the From would arrive empty on the
// other node and its caller would wait out its deadline. With a transport,
// a From crosses nodes; or hand on a transport.RemoteFrom made with
// transport.ExportFrom, answered with transport.Reply.
var ErrFromNotPortable = errors.New("genserver: a From cannot cross nodes without a transport on its System: export it with transport.ExportFrom and send the RemoteFrom")

// farFrom is what a From decoded from another node holds: its wire form,
// and the System it was bound to (Relay.BindFroms).
type farFrom struct {
	data     []byte
	sys      *System
	deadline time.Time
}

type codecBox struct{ c FromCodec }

// SetFromCodec installs the System's FromCodec (nil removes it). A transport
// does this when it starts; one System has one.
func (r Relay) SetFromCodec(c FromCodec) {
	if r.sys == nil {
		return
	}
	if c == nil {
		r.sys.fromCodec.Store(nil)
		return
	}
	r.sys.fromCodec.Store(&codecBox{c})
}

func (s *System) codec() FromCodec {
	if b := s.fromCodec.Load(); b != nil {
		return b.c
	}
	return nil
}

// MarshalCBOR gives a From its wire form through its System's FromCodec,
// or fails with ErrFromNotPortable when there is none. The zero From
// encodes as CBOR null, so a message with an unset From field travels; a
// From decoded from another node encodes as it came.
func (f From) MarshalCBOR() ([]byte, error) {
	switch {
	case f.slot == nil:
		return []byte{0xf6}, nil
	case f.slot.far != nil:
		return f.slot.far.data, nil
	}
	if c := f.slot.sys.codec(); c != nil {
		return c.EncodeFrom(f)
	}
	return nil, ErrFromNotPortable
}

// UnmarshalCBOR decodes a From from another node: it answers nothing until
// it is bound to a System (Relay.BindFroms). Null (or the empty map older
// nodes wrote) is the zero From.
func (f *From) UnmarshalCBOR(b []byte) error {
	if len(b) == 1 && (b[0] == 0xf6 || b[0] == 0xa0) {
		*f = From{}
		return nil
	}
	s := &replySlot{far: &farFrom{data: append([]byte(nil), b...)}}
	s.state.Store(2)
	*f = From{slot: s, token: 2}
	return nil
}

// replyFar answers a From decoded from another node, at most once.
func (s *replySlot) replyFar(token uint64, v any, err error) bool {
	far := s.far
	if far.sys == nil || !s.state.CompareAndSwap(token, token+1) {
		return false
	}
	c := far.sys.codec()
	return c != nil && c.ReplyFrom(far.data, v, err)
}

var fromType = reflect.TypeFor[From]()

// BindFroms binds the Froms decoded from another node inside v (in exported
// fields, elements, map values and interfaces, as the decoder fills them)
// to this System, so that Reply to them goes through its FromCodec. A
// transport calls it on every value it decodes; for a type that cannot hold
// a From it costs one cached lookup.
func (r Relay) BindFroms(v any) {
	if r.sys == nil || v == nil {
		return
	}
	switch v.(type) {
	case []byte, string, bool, int, int64, uint64, float64:
		return // the common payloads that hold no From, without a lookup
	}
	rv := reflect.ValueOf(v)
	if !r.sys.fromTypes.mayHold(rv.Type()) {
		return
	}
	r.sys.bindFroms(rv, 0)
}

// maxBindDepth bounds the walk (the payload decoder bounds nesting anyway).
const maxBindDepth = 64

func (s *System) bindFroms(v reflect.Value, depth int) {
	if depth > maxBindDepth {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == fromType {
			if !v.CanInterface() {
				return
			}
			f := v.Interface().(From)
			if f.slot == nil || f.slot.far == nil || f.slot.far.sys != nil {
				return
			}
			c := s.codec()
			if c == nil {
				return
			}
			if d, ok := c.DecodeFrom(f.slot.far.data); ok {
				f.slot.far.deadline, f.slot.far.sys = d, s
			}
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			if sf := t.Field(i); sf.IsExported() && s.fromTypes.mayHold(sf.Type) {
				s.bindFroms(v.Field(i), depth+1)
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			s.bindFroms(v.Elem(), depth+1)
		}
	case reflect.Slice, reflect.Array:
		if !s.fromTypes.mayHold(v.Type().Elem()) {
			return
		}
		for i := range v.Len() {
			s.bindFroms(v.Index(i), depth+1)
		}
	case reflect.Map:
		if !s.fromTypes.mayHold(v.Type().Elem()) {
			return
		}
		for it := v.MapRange(); it.Next(); {
			s.bindFroms(it.Value(), depth+1)
		}
	}
}

// typeCache remembers, per System, which types may hold a From.
type typeCache struct{ m sync.Map } // reflect.Type -> bool

func (c *typeCache) mayHold(t reflect.Type) bool {
	if v, ok := c.m.Load(t); ok {
		return v.(bool)
	}
	b := mayHoldFrom(t, map[reflect.Type]bool{})
	c.m.Store(t, b)
	return b
}

func mayHoldFrom(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == fromType {
		return true
	}
	if seen[t] {
		return false // a recursive type: its other paths decide
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return mayHoldFrom(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if sf := t.Field(i); sf.IsExported() && mayHoldFrom(sf.Type, seen) {
				return true
			}
		}
	}
	return false
}
