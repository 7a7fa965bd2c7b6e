package wire_test

import (
	"errors"
	"testing"

	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/wire"
)

// The registry's own tests are in package payload. Inc, Tree and
// newRegistry stay here for the benchmarks and fuzz targets of this package.

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

// payload.DefaultMaxSize is spelled out in package payload, below wire; it
// must stay what one default frame carries.
func TestDefaultMaxPayloadIsPayloadDefault(t *testing.T) {
	if wire.DefaultMaxPayload != payload.DefaultMaxSize {
		t.Fatalf("wire.DefaultMaxPayload %d, payload.DefaultMaxSize %d", wire.DefaultMaxPayload, payload.DefaultMaxSize)
	}
}

// The deprecated names in wire are the payload package's, not copies.
func TestRegistryForwarding(t *testing.T) {
	r, err := wire.NewRegistry(wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var _ *payload.Registry = r
	if err := wire.Register[Inc](r, "inc"); err != nil {
		t.Fatal(err)
	}
	if err := payload.Register[Inc](r, "inc2"); !errors.Is(err, wire.ErrDuplicateType) || !errors.Is(err, payload.ErrDuplicateType) {
		t.Fatal(err)
	}
	if _, err := r.Unmarshal([]byte{0x82, 0x61, 'x', 0x01}); !errors.Is(err, wire.ErrUnknownType) {
		t.Fatal(err)
	}
	if wire.DefaultLimits() != payload.DefaultLimits() || wire.MaxTypeName != payload.MaxTypeName {
		t.Fatal("limits differ")
	}
	for _, pair := range [][2]error{
		{wire.ErrUnknownType, payload.ErrUnknownType},
		{wire.ErrUnregisteredType, payload.ErrUnregisteredType},
		{wire.ErrPayloadTooLarge, payload.ErrPayloadTooLarge},
		{wire.ErrPayloadLimits, payload.ErrPayloadLimits},
		{wire.ErrMalformedPayload, payload.ErrMalformedPayload},
		{wire.ErrDuplicateName, payload.ErrDuplicateName},
		{wire.ErrDuplicateType, payload.ErrDuplicateType},
		{wire.ErrBadName, payload.ErrBadName},
		{wire.ErrBadLimits, payload.ErrBadConfig},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%v is not %v", pair[0], pair[1])
		}
	}
}
