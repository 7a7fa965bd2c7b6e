package keyholder

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the key file decoder that Load uses after
// reading the file. It must never panic, and must return either a complete
// keyholder or an error, never both or neither. The seed corpus (a valid file
// made with cheap argon2id parameters, and damaged versions of it) runs as an
// ordinary test.
func FuzzLoad(f *testing.F) {
	_, _, good := savedFile(f)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte(keyFileMagic))
	f.Add(good[:headerSize])
	f.Add(append(bytes.Clone(good), 0))
	for _, off := range []int{offVersion, offThreads, offTime, offMemory, offSalt, offCTLen, offCheck, offHdrSum, headerSize, len(good) - 1} {
		d := bytes.Clone(good)
		d[off] ^= 1
		f.Add(d)
	}
	hostile := bytes.Clone(good)
	hostile[offMemory] = 0xff
	resum(hostile)
	f.Add(hostile)

	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := decodeKeyFile(data, testPass)
		switch {
		case err == nil && k == nil:
			t.Fatal("no keyholder and no error")
		case err != nil && k != nil:
			t.Fatalf("keyholder and error %v", err)
		case err != nil:
			if !errors.Is(err, ErrCorruptKeyFile) && !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		default:
			// Whatever loads is whole: it signs for all it claims.
			for _, a := range append([]Address{k.Router()}, addrs(k.Engines())...) {
				sig, err := k.Sign(a, []byte("m"))
				if err != nil || !Verify(a, []byte("m"), sig) {
					t.Fatalf("loaded key for %v does not sign: %v", a, err)
				}
			}
		}
	})
}
