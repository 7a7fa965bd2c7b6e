package payload_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/enginekit/enginekit/payload"
)

type Inc struct {
	By   int
	Note string `cbor:",omitempty"`
}

type Tree struct {
	Kids []*Tree `cbor:"k"`
}

func newRegistry(t testing.TB, l payload.Limits) *payload.Registry {
	t.Helper()
	r, err := payload.NewRegistry(l)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistryRoundTrip(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	if err := payload.Register[Inc](r, "counter.inc"); err != nil {
		t.Fatal(err)
	}
	if err := payload.Register[*Tree](r, "tree"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		nil, true, 42, int64(-7), uint64(1 << 63), 3.5, "héllo", []byte{1, 2, 3},
		Inc{By: 2, Note: "x"}, Inc{}, &Tree{Kids: []*Tree{{}, {}}},
	} {
		b, err := r.Marshal(v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		got, err := r.Unmarshal(b)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("got %#v, want %#v", got, v)
		}
	}
	// A pointer to a registered value type encodes the value.
	b, err := r.Marshal(&Inc{By: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Unmarshal(b); got != (Inc{By: 5}) {
		t.Fatalf("%#v", got)
	}
	if _, err := r.Marshal((*Inc)(nil)); !errors.Is(err, payload.ErrUnregisteredType) {
		t.Fatal(err)
	}
}

func TestRegistryEncoding(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	_ = payload.Register[map[string]int](r, "m")
	b, _ := r.Marshal(5)
	if !bytes.Equal(b, []byte{0x82, 0x63, 'i', 'n', 't', 0x05}) {
		t.Fatalf("%x", b)
	}
	b, _ = r.Marshal(nil)
	if !bytes.Equal(b, []byte{0x82, 0x63, 'n', 'i', 'l', 0xf6}) {
		t.Fatalf("%x", b)
	}
	// Deterministic: map keys sorted whatever the iteration order.
	m := map[string]int{}
	for i := range 50 {
		m[fmt.Sprint("k", i)] = i
	}
	first, _ := r.Marshal(m)
	for range 20 {
		if again, _ := r.Marshal(m); !bytes.Equal(again, first) {
			t.Fatal("encoding is not deterministic")
		}
	}
	// AppendMarshal appends.
	b, err := r.AppendMarshal([]byte("ab"), "c")
	if err != nil || !bytes.HasPrefix(b, []byte("ab\x82")) {
		t.Fatalf("%x %v", b, err)
	}
	long := strings.Repeat("n", 100)
	_ = payload.Register[Tree](r, long)
	b, _ = r.Marshal(Tree{})
	if b[1] != 0x78 || b[2] != 100 {
		t.Fatalf("%x", b[:3])
	}
	if v, err := r.Unmarshal(b); err != nil || !reflect.DeepEqual(v, Tree{}) {
		t.Fatal(v, err)
	}
}

func TestRegisterErrors(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	if err := payload.Register[Inc](r, "inc"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{payload.Register[Inc](r, "inc2"), payload.ErrDuplicateType},
		{payload.Register[Tree](r, "inc"), payload.ErrDuplicateName},
		{payload.Register[Tree](r, "string"), payload.ErrDuplicateName},
		{payload.Register[Tree](r, "nil"), payload.ErrDuplicateName},
		{payload.Register[string](r, "text"), payload.ErrDuplicateType},
		{payload.Register[Tree](r, ""), payload.ErrBadName},
		{payload.Register[Tree](r, strings.Repeat("x", payload.MaxTypeName+1)), payload.ErrBadName},
		{payload.Register[Tree](r, "\xff"), payload.ErrBadName},
		{payload.Register[any](r, "any"), payload.ErrBadName},
		{payload.Register[fmt.Stringer](r, "stringer"), payload.ErrBadName},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("got %v, want %v", tc.err, tc.want)
		}
	}
	if _, err := r.Marshal(struct{}{}); !errors.Is(err, payload.ErrUnregisteredType) {
		t.Fatal(err)
	}
	if _, err := r.Marshal(int32(1)); !errors.Is(err, payload.ErrUnregisteredType) {
		t.Fatal(err)
	}
	if _, err := payload.NewRegistry(payload.Limits{MaxNestedLevels: 2}); !errors.Is(err, payload.ErrBadConfig) {
		t.Fatal(err)
	}
	if _, err := payload.NewRegistry(payload.Limits{MaxSize: -1}); !errors.Is(err, payload.ErrBadConfig) {
		t.Fatal(err)
	}
	if got := len(r.Names()); got != 9 {
		t.Fatalf("%d names", got)
	}
}

// cborArray returns the head of a definite CBOR array of n items.
func cborArray(n int) []byte {
	switch {
	case n < 24:
		return []byte{0x80 | byte(n)}
	case n < 256:
		return []byte{0x98, byte(n)}
	case n < 65536:
		return []byte{0x99, byte(n >> 8), byte(n)}
	}
	return []byte{0x9a, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func TestUnmarshalErrors(t *testing.T) {
	r := newRegistry(t, payload.Limits{MaxSize: 4096, MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16})
	_ = payload.Register[Inc](r, "inc")
	_ = payload.Register[[]any](r, "list")
	_ = payload.Register[map[string]int](r, "map")
	_ = payload.Register[*Tree](r, "tree")
	prefix := func(name string) []byte { return append([]byte{0x82, 0x60 | byte(len(name))}, name...) }
	nest := func(levels int) []byte {
		b := prefix("list")
		for range levels {
			b = append(b, 0x81)
		}
		return append(b, 0x01)
	}
	bigMap := append(prefix("map"), 0xb1) // map(17)
	for i := range 17 {
		bigMap = append(bigMap, 0x61, byte('a'+i), 0x01)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, payload.ErrMalformedPayload},
		{"not array", []byte{0x01}, payload.ErrMalformedPayload},
		{"array of 3", []byte{0x83, 0x61, 'a', 0x01, 0x01}, payload.ErrMalformedPayload},
		{"name not text", []byte{0x82, 0x41, 'a', 0x01}, payload.ErrMalformedPayload},
		{"empty name", []byte{0x82, 0x60, 0x01}, payload.ErrMalformedPayload},
		{"name truncated", []byte{0x82, 0x65, 'a'}, payload.ErrMalformedPayload},
		{"indefinite name", []byte{0x82, 0x7f, 0x61, 'a', 0xff, 0x01}, payload.ErrMalformedPayload},
		{"non-shortest name", []byte{0x82, 0x78, 0x03, 'i', 'n', 't', 0x01}, payload.ErrMalformedPayload},
		{"unknown", append(prefix("nope"), 0x01), payload.ErrUnknownType},
		{"no value", prefix("int"), payload.ErrMalformedPayload},
		{"trailing", append(prefix("int"), 0x01, 0x01), payload.ErrMalformedPayload},
		{"wrong shape", append(prefix("inc"), 0x61, 'x'), payload.ErrMalformedPayload},
		{"int overflow", append(prefix("int64"), 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), payload.ErrMalformedPayload},
		{"bad utf8", append(prefix("string"), 0x61, 0xff), payload.ErrMalformedPayload},
		{"indefinite value", append(prefix("list"), 0x9f, 0x01, 0xff), payload.ErrMalformedPayload},
		{"nil not null", append(prefix("nil"), 0x01), payload.ErrMalformedPayload},
		{"too large", append(prefix("bytes"), append([]byte{0x59, 0x10, 0x00}, make([]byte, 4096)...)...), payload.ErrPayloadTooLarge},
		{"nested", nest(5), payload.ErrPayloadLimits},
		{"array", append(append(prefix("list"), cborArray(17)...), make([]byte, 17)...), payload.ErrPayloadLimits},
		{"array claims more than sent", append(prefix("list"), cborArray(1<<30)...), payload.ErrPayloadLimits},
		{"map", bigMap, payload.ErrPayloadLimits},
		{"dup keys", append(prefix("map"), 0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02), payload.ErrMalformedPayload},
		{"bytes claims 4GB", append(prefix("bytes"), 0x5a, 0xff, 0xff, 0xff, 0xff), payload.ErrMalformedPayload},
	} {
		v, err := r.Unmarshal(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, v, err, tc.want)
		}
	}
	if v, err := r.Unmarshal(nest(3)); err != nil {
		t.Fatalf("3 levels: %v %v", v, err)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 2 {
			case 0:
				type T[N any] struct{ A int }
				_ = payload.Register[T[int]](r, fmt.Sprint("t", i))
			default:
				for range 100 {
					b, _ := r.Marshal("x")
					if v, err := r.Unmarshal(b); err != nil || v != "x" {
						t.Error(v, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// A 1 MiB value crosses with the default limits; one byte over MaxSize does
// not.
func TestDefaultMaxSize(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	if got := r.Limits(); got != payload.DefaultLimits() || got.MaxSize != payload.DefaultMaxSize {
		t.Fatalf("%+v", got)
	}
	b, err := r.Marshal(make([]byte, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Unmarshal(b); err != nil {
		t.Fatalf("%d bytes: %v", len(b), err)
	}
	b, _ = r.Marshal(make([]byte, payload.DefaultMaxSize))
	if _, err := r.Unmarshal(b); !errors.Is(err, payload.ErrPayloadTooLarge) {
		t.Fatal(err)
	}
}

// Verify accepts exactly what NewRegistry accepts: the documented ranges,
// with zero fields taking defaults; each refusal names its field.
func TestLimitsVerify(t *testing.T) {
	for _, l := range []payload.Limits{
		{},
		payload.DefaultLimits(),
		{MaxSize: 1, MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16},
		{MaxNestedLevels: 65535, MaxArrayElements: math.MaxInt32, MaxMapPairs: math.MaxInt32},
	} {
		if err := l.Verify(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
		if _, err := payload.NewRegistry(l); err != nil {
			t.Errorf("NewRegistry(%+v): %v", l, err)
		}
	}
	for _, tc := range []struct {
		l     payload.Limits
		field string
	}{
		{payload.Limits{MaxSize: -1}, "MaxSize"},
		{payload.Limits{MaxNestedLevels: 3}, "MaxNestedLevels"},
		{payload.Limits{MaxNestedLevels: 65536}, "MaxNestedLevels"},
		{payload.Limits{MaxArrayElements: 15}, "MaxArrayElements"},
		{payload.Limits{MaxArrayElements: -5}, "MaxArrayElements"},
		{payload.Limits{MaxMapPairs: 15}, "MaxMapPairs"},
	} {
		err := tc.l.Verify()
		if !errors.Is(err, payload.ErrBadConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want ErrBadConfig naming %s", tc.l, err, tc.field)
		}
		if _, err := payload.NewRegistry(tc.l); !errors.Is(err, payload.ErrBadConfig) {
			t.Errorf("NewRegistry(%+v): %v", tc.l, err)
		}
	}
}
