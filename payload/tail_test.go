package payload_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/enginekit/enginekit/payload"
)

// AppendMarshalTail's head followed by its tail is AppendMarshal's
// encoding, for every kind of value; the tail is a []byte's own bytes
// (aliased, not copied) and nil for other values.
func TestAppendMarshalTail(t *testing.T) {
	r := newRegistry(t, payload.Limits{})
	if err := payload.Register[Inc](r, "counter.inc"); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{7}, 70000)
	for _, v := range []any{
		nil, 42, "héllo", []byte{}, []byte{1, 2, 3}, make([]byte, 300), big, []byte(nil), Inc{By: 2},
	} {
		want, err := r.AppendMarshal([]byte("x"), v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		head, tail, err := r.AppendMarshalTail([]byte("x"), v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		if got := append(head, tail...); !bytes.Equal(got, want) {
			t.Fatalf("%#v: head+tail %x, want %x", v, got, want)
		}
		if b, ok := v.([]byte); ok && b != nil {
			if len(tail) != len(b) || len(b) > 0 && &tail[0] != &b[0] {
				t.Fatalf("%d bytes: the tail is not the value's bytes", len(b))
			}
		} else if tail != nil {
			t.Fatalf("%#v: tail %x, want nil", v, tail)
		}
		got, err := r.Unmarshal(want[1:])
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("%#v: round trip %#v, %v", v, got, err)
		}
	}
	if _, _, err := r.AppendMarshalTail(nil, struct{ X int }{}); !errors.Is(err, payload.ErrUnregisteredType) {
		t.Fatalf("unregistered: %v", err)
	}
}
