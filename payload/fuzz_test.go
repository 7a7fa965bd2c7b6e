package payload_test

import (
	"errors"
	"testing"

	"github.com/enginekit/enginekit/payload"
)

// FuzzUnmarshal: any input decodes or fails with one of the documented error
// classes, and whatever decodes encodes again.
func FuzzUnmarshal(f *testing.F) {
	r, err := payload.NewRegistry(payload.Limits{MaxSize: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	_ = payload.Register[Inc](r, "inc")
	_ = payload.Register[*Tree](r, "tree")
	_ = payload.Register[[]any](r, "list")
	_ = payload.Register[map[string]any](r, "map")
	for _, v := range []any{nil, 1, "s", []byte("b"), true, 1.5, Inc{By: 1, Note: "n"}, &Tree{Kids: []*Tree{{}}},
		[]any{1, "a", []any{map[string]any{"x": 1}}}, map[string]any{"a": []any{1.5, nil}}} {
		b, err := r.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x82, 0x64, 'l', 'i', 's', 't', 0x9a, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x82, 0x63, 'm', 'a', 'p', 0xa1, 0x81, 0x01, 0x01})
	f.Add([]byte{0x82, 0x64, 'l', 'i', 's', 't', 0x81, 0xd8, 0x2a, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := r.Unmarshal(in)
		if err != nil {
			for _, known := range []error{payload.ErrMalformedPayload, payload.ErrUnknownType, payload.ErrPayloadTooLarge, payload.ErrPayloadLimits} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("unexpected error class: %v", err)
		}
		// Whatever decodes re-encodes (it is a registered type).
		if _, err := r.Marshal(v); err != nil {
			t.Fatalf("%#v decoded but does not encode: %v", v, err)
		}
	})
}
