package events_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/events"
	"github.com/fxamacker/cbor/v2"
)

func sampleFilters() []events.Filter {
	long := strings.Repeat("é", events.MaxFilterString/2)
	return []events.Filter{
		{},
		events.All(),
		events.Topic("orders.created"),
		events.TopicPrefix(""),
		events.TopicPrefix("orders."),
		events.AttrEquals("region", "eu"),
		events.AttrPrefix("region", ""),
		events.AttrOneOf("tier", "gold", "silver", ""),
		events.And(),
		events.Or(),
		events.Not(events.Filter{}),
		events.And(events.TopicPrefix("orders."), events.Or(events.AttrEquals("region", "eu"), events.Not(events.AttrOneOf("tier", "gold")))),
		events.Topic(long),
		events.Or(leaves(events.MaxFilterNodes - 1)...),
		chain(events.AttrEquals("k", "v"), events.MaxFilterDepth-1),
	}
}

// The hand-written encoder must produce what a generic deterministic CBOR
// encoder produces for the same tree.
func TestFilterEncodingIsDeterministicCBOR(t *testing.T) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sampleFilters() {
		b, err := f.MarshalCBOR()
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if len(b) > events.MaxFilterSize {
			t.Errorf("%v: %d bytes", f, len(b))
		}
		var generic any
		if err := cbor.Unmarshal(b, &generic); err != nil {
			t.Fatalf("%v: generic decode: %v", f, err)
		}
		again, err := em.Marshal(generic)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, again) {
			t.Errorf("%v:\n got %x\nwant %x", f, b, again)
		}
		app, err := f.AppendCBOR([]byte("prefix"))
		if err != nil || string(app[:6]) != "prefix" || !bytes.Equal(app[6:], b) {
			t.Errorf("%v: AppendCBOR = %x, %v", f, app, err)
		}
	}
}

func TestFilterWireFormat(t *testing.T) {
	// The examples of doc.go, "Wire format".
	tests := []struct {
		f    events.Filter
		want string // CBOR diagnostic notation
	}{
		{events.Filter{}, `[0]`},
		{events.All(), `[1]`},
		{events.Topic("a.b"), `[2, "a.b"]`},
		{events.TopicPrefix("a."), `[3, "a."]`},
		{events.AttrEquals("k", "v"), `[4, "k", "v"]`},
		{events.AttrPrefix("k", "v"), `[5, "k", "v"]`},
		{events.AttrOneOf("k", "x", "y"), `[6, "k", "x", "y"]`},
		{events.And(events.Topic("a"), events.Not(events.AttrEquals("k", "v"))), `[7, [2, "a"], [9, [4, "k", "v"]]]`},
		{events.Or(events.All(), events.Filter{}), `[8, [1], [0]]`},
	}
	for _, tt := range tests {
		b, err := tt.f.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		got, err := cbor.Diagnose(b)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%v encodes as %s, want %s", tt.f, got, tt.want)
		}
	}
}

// A Filter field in a larger CBOR message is decoded with the spec's own
// limits, whatever the outer decoder's.
func TestFilterInStruct(t *testing.T) {
	type learn struct {
		Engine string
		Filter events.Filter
	}
	in := learn{Engine: "e1", Filter: events.And(events.TopicPrefix("orders."), events.AttrEquals("region", "eu"))}
	b, err := cbor.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out learn
	if err := cbor.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Engine != "e1" || !out.Filter.Equal(in.Filter) {
		t.Errorf("got %+v", out)
	}

	deep := make([]any, 0)
	var v any = []any{uint64(2), "t"}
	for range events.MaxFilterDepth {
		v = []any{uint64(9), v}
	}
	deep = append(deep, "e2", v)
	hostile, err := cbor.Marshal(deep)
	if err != nil {
		t.Fatal(err)
	}
	type learnArr struct {
		_      struct{} `cbor:",toarray"`
		Engine string
		Filter events.Filter
	}
	var la learnArr
	if err := cbor.Unmarshal(hostile, &la); !errors.Is(err, events.ErrFilterTooLarge) {
		t.Errorf("hostile spec in a struct: %v", err)
	}
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nest(depth int) any {
	var v any = []any{uint64(1)}
	for range depth - 1 {
		v = []any{uint64(9), v}
	}
	return v
}

func hostileInputs(t testing.TB) []struct {
	name string
	in   []byte
	want error
} {
	big := make([]any, 0, 200)
	big = append(big, uint64(8))
	for range 199 {
		big = append(big, []any{uint64(1)})
	}
	wideOr := []any{uint64(8)}
	for range events.MaxFilterNodes {
		wideOr = append(wideOr, []any{uint64(1)})
	}
	oneOf := []any{uint64(6), "k"}
	for range events.MaxOneOf + 1 {
		oneOf = append(oneOf, "v")
	}
	return []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, events.ErrBadFilter},
		{"not an array", mustCBOR(t, 1), events.ErrBadFilter},
		{"null", []byte{0xf6}, events.ErrBadFilter},
		{"empty array", []byte{0x80}, events.ErrBadFilter},
		{"unknown operator", mustCBOR(t, []any{uint64(10)}), events.ErrBadFilter},
		{"huge operator", mustCBOR(t, []any{uint64(1 << 40)}), events.ErrBadFilter},
		{"negative operator", mustCBOR(t, []any{-1}), events.ErrBadFilter},
		{"text operator", mustCBOR(t, []any{"and"}), events.ErrBadFilter},
		{"float operator", mustCBOR(t, []any{1.0}), events.ErrBadFilter},
		{"Nothing with operand", mustCBOR(t, []any{uint64(0), "x"}), events.ErrBadFilter},
		{"Topic without operand", mustCBOR(t, []any{uint64(2)}), events.ErrBadFilter},
		{"Topic with two operands", mustCBOR(t, []any{uint64(2), "a", "b"}), events.ErrBadFilter},
		{"Topic empty", mustCBOR(t, []any{uint64(2), ""}), events.ErrBadFilter},
		{"Topic operand not text", mustCBOR(t, []any{uint64(2), 5}), events.ErrBadFilter},
		{"Topic operand bytes", mustCBOR(t, []any{uint64(2), []byte("a")}), events.ErrBadFilter},
		{"AttrEquals one operand", mustCBOR(t, []any{uint64(4), "k"}), events.ErrBadFilter},
		{"AttrOneOf without values", mustCBOR(t, []any{uint64(6), "k"}), events.ErrBadFilter},
		{"AttrOneOf too many values", mustCBOR(t, oneOf), events.ErrFilterTooLarge},
		{"And with a non-array operand", mustCBOR(t, []any{uint64(7), "x"}), events.ErrBadFilter},
		{"Not without operand", mustCBOR(t, []any{uint64(9)}), events.ErrBadFilter},
		{"Not with two operands", mustCBOR(t, []any{uint64(9), []any{uint64(1)}, []any{uint64(1)}}), events.ErrBadFilter},
		{"map", mustCBOR(t, map[string]any{"op": "and"}), events.ErrBadFilter},
		{"tag", []byte{0xc1, 0x82, 0x02, 0x61, 'a'}, events.ErrBadFilter},
		{"indefinite array", []byte{0x9f, 0x01, 0xff}, events.ErrBadFilter},
		{"invalid UTF-8", []byte{0x82, 0x02, 0x61, 0xff}, events.ErrBadFilter},
		{"trailing bytes", []byte{0x81, 0x01, 0x00}, events.ErrBadFilter},
		{"truncated", []byte{0x82, 0x02}, events.ErrBadFilter},
		{"string claims 2^60 bytes", []byte{0x82, 0x02, 0x7b, 0x10, 0, 0, 0, 0, 0, 0, 0}, events.ErrBadFilter},
		{"array claims 2^32 elements", []byte{0x9a, 0xff, 0xff, 0xff, 0xff, 0x01}, events.ErrFilterTooLarge},
		{"array of 200 operands", mustCBOR(t, big), events.ErrFilterTooLarge},
		{"65 nodes", mustCBOR(t, wideOr), events.ErrFilterTooLarge},
		{"depth 9", mustCBOR(t, nest(events.MaxFilterDepth+1)), events.ErrFilterTooLarge},
		{"depth 100", mustCBOR(t, nest(100)), events.ErrFilterTooLarge},
		{"string too long", mustCBOR(t, []any{uint64(2), strings.Repeat("x", events.MaxFilterString+1)}), events.ErrFilterTooLarge},
		{"over MaxFilterSize", append([]byte{0x82, 0x02, 0x79, 0x20, 0x00}, make([]byte, 0x2000)...), events.ErrFilterTooLarge},
	}
}

func TestDecodeFilterHostile(t *testing.T) {
	for _, tt := range hostileInputs(t) {
		t.Run(tt.name, func(t *testing.T) {
			f, err := events.DecodeFilter(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeFilter = %v, %v; want %v", f, err, tt.want)
			}
			var g events.Filter
			if err := g.UnmarshalCBOR(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("UnmarshalCBOR = %v", err)
			}
		})
	}
	if _, err := events.DecodeFilter(mustCBOR(t, nest(events.MaxFilterDepth))); err != nil {
		t.Errorf("depth %d refused: %v", events.MaxFilterDepth, err)
	}
}

func FuzzDecodeFilter(f *testing.F) {
	for _, flt := range sampleFilters() {
		b, err := flt.MarshalCBOR()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, h := range hostileInputs(f) {
		f.Add(h.in)
	}
	ev := order
	f.Fuzz(func(t *testing.T, data []byte) {
		flt, err := events.DecodeFilter(data)
		if err != nil {
			if !errors.Is(err, events.ErrBadFilter) && !errors.Is(err, events.ErrFilterTooLarge) {
				t.Fatalf("error of an unknown kind: %v", err)
			}
			return
		}
		if err := flt.Validate(); err != nil {
			t.Fatalf("decoded an invalid filter: %v", err)
		}
		b, err := flt.MarshalCBOR()
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		if len(b) > events.MaxFilterSize || len(b) > len(data) {
			t.Fatalf("re-encoded to %d bytes from %d", len(b), len(data))
		}
		again, err := events.DecodeFilter(b)
		if err != nil || !again.Equal(flt) {
			t.Fatalf("round trip: %v, %v != %v", err, again, flt)
		}
		m := flt.Match(&ev)
		if n := events.Not(flt); again.Match(&ev) != m || (n.Validate() == nil && n.Match(&ev) == m) {
			t.Fatal("inconsistent Match")
		}
		_ = flt.String()
	})
}
