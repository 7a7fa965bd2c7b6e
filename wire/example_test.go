package wire_test

import (
	"bytes"
	"fmt"
	"github.com/enginekit/enginekit/payload"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

type Greet struct {
	Name string
}

// A message goes out as a Registry payload inside an envelope inside a batch
// frame, and comes back the same way.
func Example() {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		panic(err)
	}
	if err := payload.Register[Greet](reg, "example.greet"); err != nil {
		panic(err)
	}
	payload, err := reg.Marshal(Greet{Name: "alice"})
	if err != nil {
		panic(err)
	}

	src, dst := keyholder.Address{1}, keyholder.Address{2}
	env := wire.Envelope{Kind: wire.Cast, Dst: dst, Payload: payload}
	frame := wire.AppendBatch(nil, src, 100, []wire.Envelope{env}, wire.MACSize)
	// A connection would now put a tag in wire.BatchTag(frame, wire.MACSize).

	fr := wire.NewFrameReader(bytes.NewReader(frame), wire.DefaultMaxFrameSize)
	typ, body, err := fr.ReadFrame()
	if err != nil {
		panic(err)
	}
	batch, err := wire.DecodeBatch(body, wire.MACSize)
	if err != nil {
		panic(err)
	}
	it := batch.Envelopes()
	var got wire.Envelope
	for it.Next(&got) {
		v, err := reg.Unmarshal(got.Payload)
		fmt.Println(typ, got.Kind, got.Seq, got.Src == src, v, err)
	}
	// Output:
	// batch cast 100 true {alice} <nil>
}
