package keyholder_test

import (
	"fmt"

	"github.com/enginekit/enginekit/keyholder"
)

func Example() {
	k, err := keyholder.New(keyholder.Config{})
	if err != nil {
		panic(err)
	}
	counter, err := k.NewEngine("counter")
	if err != nil {
		panic(err)
	}

	// Addresses have a stable text form.
	text := counter.String()
	parsed, err := keyholder.ParseAddress(text)
	fmt.Println("address round-trips:", err == nil && parsed == counter)

	// The keyholder signs on behalf of its engines; anyone can verify.
	msg := []byte("\x01cast: inc")
	sig, err := k.Sign(counter, msg)
	if err != nil {
		panic(err)
	}
	fmt.Println("signature verifies:", keyholder.Verify(counter, msg, sig))

	// A peer checks that the engine belongs to the router announcing it.
	proof, _ := k.EngineProof(counter)
	fmt.Println("engine proof verifies:", keyholder.VerifyEngineProof(k.Router(), counter, proof))

	// Only our own engines can sign.
	stranger, _ := keyholder.New(keyholder.Config{})
	_, err = k.Sign(stranger.Router(), msg)
	fmt.Println(err != nil)

	for _, e := range k.Engines() {
		fmt.Println("engine:", e.Name)
	}
	// Output:
	// address round-trips: true
	// signature verifies: true
	// engine proof verifies: true
	// true
	// engine: counter
}

// Both ends of a TLS connection export the same keying material and MAC on
// behalf of their engines with it.
func ExampleKeyholder_NewMACSession() {
	alice, _ := keyholder.New(keyholder.Config{})
	bob, _ := keyholder.New(keyholder.Config{})
	counter, _ := alice.NewEngine("counter")

	// In netconn: conn.ConnectionState().ExportKeyingMaterial("enginekit mac v1", nil, 32)
	secret := make([]byte, 32)

	// Each side names the router at the other end: a key is for one
	// direction.
	aliceSide, _ := alice.NewMACSession(secret, bob.Router())
	bobSide, _ := bob.NewMACSession(secret, alice.Router())

	// The second argument is a number never used twice for one signer on
	// one session (netconn: the sequence number of the batch).
	msg := []byte("cast: inc")
	tag, _ := aliceSide.MAC(counter, 1, nil, msg)
	fmt.Println(bobSide.Verify(counter, 1, msg, tag))
	fmt.Println(bobSide.Verify(counter, 1, []byte("cast: dec"), tag))
	// Output:
	// true
	// false
}
