package wire_test

import (
	"testing"

	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/wire"
)

// payload.DefaultMaxSize is spelled out in package payload, below wire; it
// must stay what one default frame carries.
func TestDefaultMaxPayloadIsPayloadDefault(t *testing.T) {
	if wire.DefaultMaxPayload != payload.DefaultMaxSize {
		t.Fatalf("wire.DefaultMaxPayload %d, payload.DefaultMaxSize %d", wire.DefaultMaxPayload, payload.DefaultMaxSize)
	}
}
