package payload_test

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/enginekit/enginekit/payload"
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
}
