package payload_test

import (
	"errors"
	"fmt"

	"github.com/enginekit/enginekit/payload"
)

// Put is an application message; its name on the wire is "storage.Put".
type Put struct {
	Key   string
	Value []byte `cbor:",omitempty"`
}

// Both sides register the same names; a value travels as [name, value] and
// comes back as the registered Go type. A name the receiver never registered
// is an error for that payload, not a crash.
func Example() {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		panic(err)
	}
	if err := payload.Register[Put](reg, "storage.Put"); err != nil {
		panic(err)
	}

	b, err := reg.Marshal(Put{Key: "k", Value: []byte("v")})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", b)
	v, err := reg.Unmarshal(b)
	fmt.Printf("%#v %v\n", v, err)

	other, _ := payload.NewRegistry(payload.Limits{}) // a peer that never registered storage.Put
	_, err = other.Unmarshal(b)
	fmt.Println(errors.Is(err, payload.ErrUnknownType))
	// Output:
	// 826b73746f726167652e507574a2634b6579616b6556616c75654176
	// payload_test.Put{Key:"k", Value:[]uint8{0x76}} <nil>
	// true
}
