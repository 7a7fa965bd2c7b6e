package payload_test

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"testing"

	"github.com/enginekit/enginekit/payload"
	"github.com/fxamacker/cbor/v2"
)

type (
	onePtr   struct{ P *int }
	ptrArray [1]*int
	empty    struct{}
	big      struct{ A [200]int64 }
	pair     struct{ A, B int }
	nested   struct{ In onePtr }
	twoPtrs  struct{ P, Q *int }
	strMap   map[string]int
	byteArr  [3]byte
	floatArr [2]float64
)

// Values of every shape an interface can hold (in its data word or through
// it) decode to values equal to what was encoded, each its own copy: the
// decoder builds the interface around the value it decoded into for the
// indirect shapes, and boxes the others as usual.
func TestUnmarshalShapes(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	register := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	register(payload.Register[onePtr](r, "oneptr"))
	register(payload.Register[ptrArray](r, "ptrarray"))
	register(payload.Register[empty](r, "empty"))
	register(payload.Register[big](r, "big"))
	register(payload.Register[pair](r, "pair"))
	register(payload.Register[nested](r, "nested"))
	register(payload.Register[twoPtrs](r, "twoptrs"))
	register(payload.Register[strMap](r, "strmap"))
	register(payload.Register[byteArr](r, "bytearr"))
	register(payload.Register[floatArr](r, "floatarr"))
	register(payload.Register[*pair](r, "pairptr"))
	one, two := 1, 2
	var b big
	for i := range b.A {
		b.A[i] = int64(i) * 1e9
	}
	vals := []any{
		onePtr{P: &one}, onePtr{}, ptrArray{&two}, ptrArray{}, empty{}, b, big{},
		pair{A: -1, B: 1 << 40}, pair{}, nested{In: onePtr{P: &two}}, twoPtrs{P: &one, Q: &two},
		twoPtrs{}, strMap{"a": 1, "b": 2}, byteArr{1, 2, 3}, floatArr{0.5, -2}, &pair{A: 3},
		false, true, 0, 255, 256, -1, int64(7), uint64(0), 0.0, "", "x", []byte{},
	}
	for round := range 3 {
		var got []any
		for _, v := range vals {
			p, err := r.Marshal(v)
			if err != nil {
				t.Fatalf("%#v: %v", v, err)
			}
			g, err := r.Unmarshal(p)
			if err != nil {
				t.Fatalf("%#v: %v", v, err)
			}
			if reflect.TypeOf(g) != reflect.TypeOf(v) || !reflect.DeepEqual(g, v) {
				t.Fatalf("got %T %#v, want %T %#v", g, g, v, v)
			}
			got = append(got, g)
		}
		runtime.GC() // a wrongly built interface would fail here or below
		for i, g := range got {
			if !reflect.DeepEqual(g, vals[i]) {
				t.Fatalf("round %d after GC: got %#v, want %#v", round, g, vals[i])
			}
		}
		// Comparable values compare equal through the interface too.
		if got[7] != any(pair{A: -1, B: 1 << 40}) || got[14] != any(floatArr{0.5, -2}) || got[4] != any(empty{}) {
			t.Fatalf("interface comparison: %#v %#v %#v", got[7], got[14], got[4])
		}
	}
}

// The allocations the issue-13 budget counts: encoding into a reused buffer
// allocates nothing, and decoding a value without pointers allocates just
// the value.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes sync.Pool and allocation counts")
	}
	r := newRegistry(t, payload.Limits{})
	if err := payload.Register[pair](r, "pair"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	var err error
	if n := testing.AllocsPerRun(100, func() {
		buf, err = r.AppendMarshal(buf[:0], pair{A: 1, B: 2})
	}); n != 0 || err != nil {
		t.Fatalf("AppendMarshal: %v allocations, err %v", n, err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, err = r.Unmarshal(buf)
	}); n != 1 || err != nil {
		t.Fatalf("Unmarshal: %v allocations, err %v", n, err)
	}
	buf, err = r.AppendMarshal(buf[:0], nil)
	if n := testing.AllocsPerRun(100, func() {
		_, err = r.Unmarshal(buf)
	}); n != 0 || err != nil {
		t.Fatalf("Unmarshal of nil: %v allocations, err %v", n, err)
	}
	for _, size := range []int{1, 128, 1000} {
		buf, err = r.AppendMarshal(buf[:0], make([]byte, size))
		if n := testing.AllocsPerRun(100, func() {
			_, err = r.Unmarshal(buf)
		}); n != 1 || err != nil {
			t.Fatalf("Unmarshal of %d bytes: %v allocations, err %v", size, n, err)
		}
	}
}

// Byte strings decode to the same []byte as the CBOR decoder gives, or fail
// as it does, whatever their length and head; short ones in their shortest
// form take the decoder's fast path, the others the CBOR decoder.
func TestUnmarshalBytes(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	head := []byte{0x82, 0x65, 'b', 'y', 't', 'e', 's'}
	check := func(value []byte) {
		t.Helper()
		in := append(append([]byte(nil), head...), value...)
		got, err := r.Unmarshal(in)
		var want []byte
		werr := cbor.Unmarshal(value, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("% x: error %v, the CBOR decoder's %v", value, err, werr)
		}
		if err != nil {
			if !errors.Is(err, payload.ErrMalformedPayload) {
				t.Fatalf("% x: %v is not ErrMalformedPayload", value, err)
			}
			return
		}
		g, ok := got.([]byte)
		if !ok || !bytes.Equal(g, want) || (g == nil) != (want == nil) || cap(g) != cap(want) {
			t.Fatalf("% x: got %T %v (cap %d), want %v (cap %d)", value, got, got, cap(g), want, cap(want))
		}
		for i := range in { // the value is a copy, not a view of the input
			in[i] = 0xff
		}
		if len(g) > 0 && !bytes.Equal(g, want) {
			t.Fatalf("% x: the decoded value changed with the input", value)
		}
	}
	var kept []any
	for n := range 1100 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + n)
		}
		shortest, err := cbor.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		check(shortest)
		check(shortest[:len(shortest)-1])                        // truncated
		check(append(shortest[:len(shortest):len(shortest)], 0)) // trailing byte
		long := append([]byte{0x5a, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, data...)
		check(long) // a longer head than needed
		if n < 256 {
			check(append([]byte{0x59, 0, byte(n)}, data...))
		}
		if n < 24 {
			check(append([]byte{0x58, byte(n)}, data...))
		}
		if v, err := r.Unmarshal(append(append([]byte(nil), head...), shortest...)); err == nil {
			kept = append(kept, v)
		}
	}
	check([]byte{0xf6})                   // null
	check([]byte{0x83, 0x01, 0x02, 0x03}) // an array of small integers
	check([]byte{0x61, 'x'})              // a text string
	check(nil)
	runtime.GC()
	for n, v := range kept {
		g := v.([]byte)
		if len(g) != n || cap(g) != n {
			t.Fatalf("after GC: length %d cap %d, want %d", len(g), cap(g), n)
		}
		for i := range g {
			if g[i] != byte(i*7+n) {
				t.Fatalf("after GC: byte %d of %d is %d", i, n, g[i])
			}
		}
	}
}

// The value of nil is exactly a CBOR null (or what the CBOR decoder reads
// as nil); anything after it is malformed.
func TestUnmarshalNil(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	head := []byte{0x82, 0x63, 'n', 'i', 'l'}
	for _, c := range []struct {
		value []byte
		ok    bool
	}{
		{[]byte{0xf6}, true},
		{[]byte{0xf7}, true}, // undefined decodes to nil too
		{[]byte{0xf6, 0xf6}, false},
		{[]byte{0xf6, 0x00}, false},
		{[]byte{0xf5}, false},
		{[]byte{}, false},
		{[]byte{0xf8}, false},
	} {
		v, err := r.Unmarshal(append(append([]byte(nil), head...), c.value...))
		if c.ok && (err != nil || v != nil) {
			t.Fatalf("% x: %v, %v", c.value, v, err)
		}
		if !c.ok && !errors.Is(err, payload.ErrMalformedPayload) {
			t.Fatalf("% x: %v, %v; want ErrMalformedPayload", c.value, v, err)
		}
	}
}

// TestMarshalBytes checks the []byte fast path of Marshal against the CBOR
// encoder's deterministic encoding, for every head length, and that a nil
// []byte still encodes as the encoder does it (null).
func TestMarshalBytes(t *testing.T) {
	r := newRegistry(t, payload.Limits{MaxSize: 1 << 21})
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	head := []byte{0x82, 0x65, 'b', 'y', 't', 'e', 's'}
	sizes := []int{0, 1, 23, 24, 25, 255, 256, 1000, 65535, 65536, 1 << 20}
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*5 + n)
		}
		want, err := enc.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		want = append(append([]byte(nil), head...), want...)
		got, err := r.AppendMarshal([]byte("keep"), data)
		if err != nil || string(got[:4]) != "keep" || !bytes.Equal(got[4:], want) {
			t.Fatalf("%d bytes: % x…, %v; want % x…", n, got[:min(len(got), 16)], err, want[:min(len(want), 12)])
		}
		v, err := r.Unmarshal(got[4:])
		if err != nil || !bytes.Equal(v.([]byte), data) {
			t.Fatalf("%d bytes: round trip %v", n, err)
		}
	}
	var null []byte
	want, _ := enc.Marshal(null)
	got, err := r.Marshal(null)
	if err != nil || !bytes.Equal(got, append(append([]byte(nil), head...), want...)) {
		t.Fatalf("nil []byte: % x, %v; want the head and % x", got, err, want)
	}
}

// TestUnmarshalOwned checks that UnmarshalOwned returns what Unmarshal
// does, errors included, and that it aliases its input exactly for large
// byte strings in their shortest form.
func TestUnmarshalOwned(t *testing.T) {
	r := newRegistry(t, payload.Limits{MaxSize: 1 << 18})
	_ = payload.Register[Inc](r, "inc")
	head := []byte{0x82, 0x65, 'b', 'y', 't', 'e', 's'}
	var inputs [][]byte
	for _, n := range []int{0, 1, 23, 24, 255, 256, 1000, 1001, 4096, 65535, 65536, 70000, 1 << 18} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*3 + n)
		}
		p, err := r.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, p, p[:len(p)-1], append(p[:len(p):len(p)], 0))
		long := append(append(append([]byte(nil), head...), 0x5b, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n)), data...)
		inputs = append(inputs, long) // a longer head than needed
	}
	inc, _ := r.Marshal(Inc{By: 2})
	inputs = append(inputs, inc, []byte{0x82, 0x65, 'b', 'y', 't', 'e', 's', 0xf6}, []byte{0x82}, nil)
	for _, in := range inputs {
		want, werr := r.Unmarshal(in)
		got, err := r.UnmarshalOwned(in)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("% x…: error %v, Unmarshal's %v", in[:min(len(in), 12)], err, werr)
		}
		if err != nil {
			continue
		}
		g, isBytes := got.([]byte)
		if !isBytes {
			if got != want {
				t.Fatalf("% x: %v, want %v", in, got, want)
			}
			continue
		}
		w := want.([]byte)
		if !bytes.Equal(g, w) || (g == nil) != (w == nil) {
			t.Fatalf("%d bytes differ", len(g))
		}
		aliases := len(g) > 0 && &g[0] == &in[len(in)-len(g)]
		wantAlias := len(g) > 1000 && in[7] != 0x5b
		if aliases != wantAlias || (aliases && cap(g) != len(g)) {
			t.Fatalf("%d bytes (head %x): aliases %v (cap %d), want %v", len(g), in[7], aliases, cap(g), wantAlias)
		}
	}
}
