package wire_test

import (
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
