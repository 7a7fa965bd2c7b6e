package keyholder

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

var testPass = []byte("correct horse battery staple")

// savedFile returns a keyholder with engines and the bytes of its key file.
func savedFile(t testing.TB) (*Keyholder, string, []byte) {
	t.Helper()
	k := newKH(t)
	for _, n := range []string{"counter", "broker", "ünïcode"} {
		mustEngine(t, k, n)
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := k.SaveWith(path, testPass, SaveOptions{KDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k, path, data
}

func sameKeys(t *testing.T, want, got *Keyholder) {
	t.Helper()
	if got.Router() != want.Router() {
		t.Fatalf("router %v, want %v", got.Router(), want.Router())
	}
	we, ge := want.Engines(), got.Engines()
	if len(we) != len(ge) {
		t.Fatalf("engines %v, want %v", ge, we)
	}
	for i := range we {
		if we[i] != ge[i] {
			t.Fatalf("engine %v, want %v", ge[i], we[i])
		}
	}
	// The private keys came back too: they sign for the same addresses.
	for _, a := range append([]Address{got.Router()}, addrs(ge)...) {
		sig, err := got.Sign(a, []byte("m"))
		if err != nil || !Verify(a, []byte("m"), sig) {
			t.Fatalf("loaded key for %v does not sign: %v", a, err)
		}
	}
}

func addrs(es []Engine) []Address {
	var as []Address
	for _, e := range es {
		as = append(as, e.Address)
	}
	return as
}

func TestSaveLoad(t *testing.T) {
	k, path, _ := savedFile(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := Load(path, testPass)
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, k, got)
	// A loaded keyholder carries on: new engines, save again, load again.
	mustEngine(t, got, "later")
	if err := got.SaveWith(path, testPass, SaveOptions{KDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	again, err := Load(path, testPass)
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, got, again)
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %v", ents)
	}
}

// TestSaveLoadDefaultKDF uses the real argon2id parameters once.
func TestSaveLoadDefaultKDF(t *testing.T) {
	if testing.Short() {
		t.Skip("argon2id with 64 MiB")
	}
	k := newKH(t)
	mustEngine(t, k, "e")
	path := filepath.Join(t.TempDir(), "keys")
	if err := k.Save(path, testPass); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := DefaultKDFParams()
	if got := (KDFParams{Threads: data[offThreads], Time: binary.BigEndian.Uint32(data[offTime:]), MemoryKiB: binary.BigEndian.Uint32(data[offMemory:])}); got != want {
		t.Errorf("file has %+v, want %+v", got, want)
	}
	got, err := Load(path, testPass)
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, k, got)
}

func TestSaveLoadNoEngines(t *testing.T) {
	k := newKH(t)
	path := filepath.Join(t.TempDir(), "keys")
	if err := k.SaveWith(path, testPass, SaveOptions{KDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, testPass)
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, k, got)
}

func TestSaveReplacesInsecureFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := newKH(t).SaveWith(path, testPass, SaveOptions{KDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after Save", fi.Mode().Perm())
	}
}

func TestSaveErrors(t *testing.T) {
	k := newKH(t)
	dir := t.TempDir()
	if err := k.Save(filepath.Join(dir, "keys"), nil); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty passphrase: %v", err)
	}
	for _, p := range []KDFParams{
		{Time: MaxKDFTime + 1, MemoryKiB: 64, Threads: 1},
		{Time: 1, MemoryKiB: MaxKDFMemoryKiB + 1, Threads: 1},
		{Time: 1, MemoryKiB: 8, Threads: 2},
		{Time: MaxKDFTime, MemoryKiB: MaxKDFMemoryKiB, Threads: 1},
	} {
		if err := k.SaveWith(filepath.Join(dir, "keys"), testPass, SaveOptions{KDF: p}); !errors.Is(err, ErrBadKDFParams) {
			t.Errorf("SaveWith(%+v): %v", p, err)
		}
	}
	if err := k.SaveWith(filepath.Join(dir, "missing", "keys"), testPass, SaveOptions{KDF: fastKDF}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("save into a missing directory: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed saves left %v", ents)
	}
	if err := DefaultKDFParams().validate(); err != nil {
		t.Errorf("default parameters invalid: %v", err)
	}
	if got := (KDFParams{}).withDefaults(); got != DefaultKDFParams() {
		t.Errorf("zero KDFParams give %+v", got)
	}
}

func TestLoadWrongPassphrase(t *testing.T) {
	_, path, _ := savedFile(t)
	for _, pass := range [][]byte{[]byte("wrong"), append(bytes.Clone(testPass), 'x'), testPass[1:]} {
		k, err := Load(path, pass)
		if !errors.Is(err, ErrWrongPassphrase) || k != nil {
			t.Errorf("Load with %q: %v, %v", pass, k, err)
		}
		if errors.Is(err, ErrCorruptKeyFile) {
			t.Errorf("wrong passphrase reported as corruption: %v", err)
		}
	}
	if _, err := Load(path, nil); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty passphrase: %v", err)
	}
}

func TestLoadFileProblems(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing"), testPass); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(dir, testPass); err == nil {
		t.Error("loaded a directory")
	}
	if runtime.GOOS != "windows" {
		_, path, _ := savedFile(t)
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
			os.Chmod(path, mode)
			if k, err := Load(path, testPass); !errors.Is(err, ErrInsecureKeyFile) || k != nil {
				t.Errorf("mode %04o: %v", mode, err)
			}
		}
		os.Chmod(path, 0o400)
		if _, err := Load(path, testPass); err != nil {
			t.Errorf("read-only owner file: %v", err)
		}
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, testPass); !errors.Is(err, ErrCorruptKeyFile) {
		t.Errorf("oversized file: %v", err)
	}
}

// resum recomputes the header checksum, as a hostile file would: over the
// header and, in version 2, the address list.
func resum(data []byte) {
	var public []byte
	if binary.BigEndian.Uint16(data[offVersion:]) >= 2 && len(data) >= headerSize+4 {
		n := binary.BigEndian.Uint32(data[headerSize:])
		if uint64(headerSize+4)+uint64(n) <= uint64(len(data)) {
			public = data[headerSize : headerSize+4+int(n)]
		}
	}
	sum := sha256.New()
	sum.Write(data[:offHdrSum])
	sum.Write(public)
	copy(data[offHdrSum:headerSize], sum.Sum(nil)[:headerSumSize])
}

// publicEnd is where a version-2 file's address list ends.
func publicEnd(data []byte) int {
	return headerSize + 4 + int(binary.BigEndian.Uint32(data[headerSize:]))
}

func TestLoadCorrupt(t *testing.T) {
	_, _, good := savedFile(t)
	type tc struct {
		name string
		data []byte
		also error // another error the result must match
	}
	var cases []tc
	add := func(name string, mutate func(d []byte) []byte, also error) {
		cases = append(cases, tc{name, mutate(bytes.Clone(good)), also})
	}
	flip := func(off int) func([]byte) []byte {
		return func(d []byte) []byte { d[off] ^= 0x40; return d }
	}
	regions := []struct {
		name     string
		from, to int
	}{
		{"magic", 0, offVersion}, {"version", offVersion, offThreads}, {"threads", offThreads, offReserved},
		{"reserved", offReserved, offTime}, {"time", offTime, offMemory}, {"memory", offMemory, offSalt},
		{"salt", offSalt, offNonce}, {"nonce", offNonce, offCTLen}, {"length", offCTLen, offCheck},
		{"check", offCheck, offHdrSum}, {"checksum", offHdrSum, headerSize},
		{"address list", headerSize, publicEnd(good)},
		{"ciphertext", publicEnd(good), len(good) - 16}, {"tag", len(good) - 16, len(good)},
	}
	for _, r := range regions {
		for _, off := range []int{r.from, (r.from + r.to) / 2, r.to - 1} {
			add(r.name+"/"+itoa(off), flip(off), nil)
		}
	}
	for n := 0; n < len(good); n++ {
		add("truncated/"+itoa(n), func(d []byte) []byte { return d[:n] }, nil)
	}
	add("trailing garbage", func(d []byte) []byte { return append(d, 0) }, nil)
	add("doubled", func(d []byte) []byte { return append(d, d...) }, nil)
	add("text", func([]byte) []byte { return []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n") }, nil)
	add("zeros", func(d []byte) []byte { return make([]byte, len(d)) }, nil)
	add("header only", func(d []byte) []byte { return d[:headerSize] }, nil)

	// Hostile but well-formed headers: the checksum is right, the
	// parameters are absurd. Load must refuse them before running argon2.
	hostile := func(name string, set func(d []byte)) {
		add(name, func(d []byte) []byte { set(d); resum(d); return d }, ErrBadKDFParams)
	}
	hostile("memory 4 TiB", func(d []byte) { binary.BigEndian.PutUint32(d[offMemory:], 0xffffffff) })
	hostile("memory 100 GB", func(d []byte) { binary.BigEndian.PutUint32(d[offMemory:], 100<<20) })
	hostile("memory 0", func(d []byte) { binary.BigEndian.PutUint32(d[offMemory:], 0) })
	hostile("time 2^32-1", func(d []byte) { binary.BigEndian.PutUint32(d[offTime:], 0xffffffff) })
	hostile("time 0", func(d []byte) { binary.BigEndian.PutUint32(d[offTime:], 0) })
	hostile("threads 0", func(d []byte) { d[offThreads] = 0 })
	hostile("threads 255", func(d []byte) { d[offThreads] = 255 })
	hostile("work", func(d []byte) {
		binary.BigEndian.PutUint32(d[offTime:], MaxKDFTime)
		binary.BigEndian.PutUint32(d[offMemory:], MaxKDFMemoryKiB)
	})
	// A length field that disagrees with the file, checksum fixed up.
	for _, n := range []uint32{0, 15, 0xffffffff} {
		add("length "+itoa(int(n)), func(d []byte) []byte {
			binary.BigEndian.PutUint32(d[offCTLen:], n)
			resum(d)
			return d
		}, nil)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := decodeKeyFile(c.data, testPass)
			if !errors.Is(err, ErrCorruptKeyFile) || k != nil {
				t.Fatalf("got %v, %v; want ErrCorruptKeyFile", k, err)
			}
			if c.also != nil && !errors.Is(err, c.also) {
				t.Fatalf("got %v; want also %v", err, c.also)
			}
		})
	}
	// And through Load, for a sample.
	path := filepath.Join(t.TempDir(), "keys")
	for _, c := range cases[:40] {
		os.WriteFile(path, c.data, 0o600)
		if k, err := Load(path, testPass); !errors.Is(err, ErrCorruptKeyFile) || k != nil {
			t.Errorf("Load %s: %v", c.name, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLoadBadPlaintext covers files that decrypt fine but hold malformed keys,
// as a buggy or hostile writer who knows the passphrase could make.
func TestLoadBadPlaintext(t *testing.T) {
	seed := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	entry := func(name string, s []byte) []byte { return append(append([]byte{byte(len(name))}, name...), s...) }
	keys := func(router []byte, n uint32, entries ...[]byte) []byte {
		p := binary.BigEndian.AppendUint32(bytes.Clone(router), n)
		for _, e := range entries {
			p = append(p, e...)
		}
		return p
	}
	cases := map[string][]byte{
		"empty":              {},
		"router only":        seed(1),
		"short count":        append(seed(1), 0, 0),
		"missing engine":     keys(seed(1), 1),
		"count too high":     keys(seed(1), 2, entry("a", seed(2))),
		"count too low":      keys(seed(1), 0, entry("a", seed(2))),
		"truncated seed":     keys(seed(1), 1, entry("a", seed(2))[:20]),
		"empty name":         keys(seed(1), 1, entry("", seed(2))),
		"control char name":  keys(seed(1), 1, entry("a\nb", seed(2))),
		"bad UTF-8 name":     keys(seed(1), 1, entry("\xff", seed(2))),
		"unsorted":           keys(seed(1), 2, entry("b", seed(2)), entry("a", seed(3))),
		"duplicate name":     keys(seed(1), 2, entry("a", seed(2)), entry("a", seed(3))),
		"duplicate key":      keys(seed(1), 2, entry("a", seed(2)), entry("b", seed(2))),
		"engine uses router": keys(seed(1), 1, entry("a", seed(1))),
		"trailing bytes":     append(keys(seed(1), 1, entry("a", seed(2))), 0),
		"huge count":         keys(seed(1), 0xffffffff, entry("a", seed(2))),
	}
	for name, plain := range cases {
		t.Run(name, func(t *testing.T) {
			file, err := encodeKeyFile(plain, nil, testPass, fastKDF, make([]byte, saltSize), make([]byte, 24))
			if err != nil {
				t.Fatal(err)
			}
			k, err := decodeKeyFile(file, testPass)
			if !errors.Is(err, ErrCorruptKeyFile) || k != nil {
				t.Fatalf("got %v, %v; want ErrCorruptKeyFile", k, err)
			}
		})
	}
	// The well-formed version of the above loads.
	file, _ := encodeKeyFile(keys(seed(1), 2, entry("a", seed(2)), entry("b", seed(3))), nil, testPass, fastKDF, make([]byte, saltSize), make([]byte, 24))
	k, err := decodeKeyFile(file, testPass)
	if err != nil {
		t.Fatal(err)
	}
	if es := k.Engines(); len(es) != 2 || es[0].Name != "a" || es[1].Name != "b" {
		t.Fatalf("engines %v", es)
	}
}

// The addresses of a version-2 file are readable without the passphrase.
func TestReadAddresses(t *testing.T) {
	k, path, _ := savedFile(t)
	a, err := ReadAddresses(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Router != k.Router() || len(a.Engines) != len(k.Engines()) {
		t.Fatalf("ReadAddresses = %+v", a)
	}
	for _, e := range a.Engines {
		if got, ok := k.Engine(e.Name); !ok || got != e.Address {
			t.Errorf("engine %s: %v, keyholder has %v", e.Name, e.Address, got)
		}
	}
	for i := 1; i < len(a.Engines); i++ {
		if a.Engines[i-1].Name >= a.Engines[i].Name {
			t.Errorf("engines not sorted: %v", a.Engines)
		}
	}
}

// An address list altered on purpose, checksum fixed up, reads as altered
// (nothing but the encryption authenticates it) and fails the next Load.
func TestAlteredAddressList(t *testing.T) {
	_, path, data := savedFile(t)
	other := newKH(t)
	r := other.Router()
	copy(data[headerSize+4:], r[:]) // the router address comes first
	resum(data)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := ReadAddresses(path)
	if err != nil || a.Router != r {
		t.Fatalf("ReadAddresses = %v, %v", a.Router, err)
	}
	if _, err := Load(path, testPass); !errors.Is(err, ErrCorruptKeyFile) {
		t.Fatalf("Load of an altered address list: %v, want ErrCorruptKeyFile", err)
	}
}

// A version-1 file, as the code before version 2 wrote it
// (testdata/keyfile-v1.keys, passphrase testPass), still loads; it lists no
// addresses until it is saved again.
func TestVersion1File(t *testing.T) {
	data, err := os.ReadFile("testdata/keyfile-v1.keys")
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.BigEndian.Uint16(data[offVersion:]); v != 1 {
		t.Fatalf("fixture is version %d", v)
	}
	want, err := os.ReadFile("testdata/keyfile-v1.addresses")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v1.keys")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAddresses(path); !errors.Is(err, ErrNoAddressList) {
		t.Fatalf("ReadAddresses of a version-1 file: %v, want ErrNoAddressList", err)
	}
	k, err := Load(path, testPass)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	got := "router " + k.Router().String() + "\n"
	for _, e := range k.Engines() {
		got += "engine " + e.Address.String() + " " + e.Name + "\n"
	}
	if got != string(want) {
		t.Fatalf("version-1 file holds\n%s\nwant\n%s", got, want)
	}
	if err := k.SaveWith(path, testPass, SaveOptions{KDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	a, err := ReadAddresses(path)
	if err != nil || a.Router != k.Router() || len(a.Engines) != 3 {
		t.Fatalf("after saving again: %+v, %v", a, err)
	}
}
