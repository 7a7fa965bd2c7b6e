package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// SnapshotStore keeps the latest snapshot. The engine calls it from its own
// process, one call at a time; an implementation shared by several engines
// must be safe for concurrent use.
type SnapshotStore interface {
	// Save replaces the stored snapshot with data. The engine does not
	// keep or modify data after Save returns.
	Save(data []byte) error
	// Load returns the stored snapshot; ok is false when there is none.
	Load() (data []byte, ok bool, err error)
}

// MemoryStore is a SnapshotStore in memory, safe for concurrent use. It
// outlives the engine's incarnations (which is what a restart test needs),
// not the OS process.
type MemoryStore struct {
	mu    sync.Mutex
	data  []byte
	saved bool
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Save keeps a copy of data.
func (m *MemoryStore) Save(data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data, m.saved = append([]byte(nil), data...), true
	return nil
}

// Load returns a copy of the latest snapshot.
func (m *MemoryStore) Load() ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data...), m.saved, nil
}

// FileStore is a SnapshotStore in one file, replaced atomically on each
// Save (write to a temporary file, sync, rename), so a crash in the middle
// of a Save leaves the previous snapshot. It is safe for concurrent use
// within one OS process.
type FileStore struct {
	mu   sync.Mutex
	path string
}

// NewFileStore returns a FileStore that keeps its snapshot at path.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Save writes data to the file atomically and durably.
func (f *FileStore) Save(data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("storage: saving snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("storage: saving snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("storage: saving snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storage: saving snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("storage: saving snapshot: %w", err)
	}
	// Make the rename itself durable. Some systems cannot sync a
	// directory; the snapshot is saved all the same.
	if dir, err := os.Open(filepath.Dir(f.path)); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return nil
}

// Load reads the file; a missing file is no snapshot.
func (f *FileStore) Load() ([]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage: loading snapshot: %w", err)
	}
	return data, true, nil
}

// snapshotFormat is the version of the snapshot encoding below.
const snapshotFormat = 1

// snapshot is what a SnapshotStore holds, encoded as deterministic CBOR:
//
//	{1: format (1), 2: store version, 3: {key: {1: value, 2: version}}}
//
// Integer keys keep it small; it reads the same from any CBOR library (an
// Elixir node would decode it with CBOR.decode/1).
type snapshot struct {
	Format  uint64            `cbor:"1,keyasint"`
	Version uint64            `cbor:"2,keyasint"`
	Entries map[string]record `cbor:"3,keyasint"`
}

// record is one key's value and the store version of its last write.
type record struct {
	Value   []byte `cbor:"1,keyasint"`
	Version uint64 `cbor:"2,keyasint"`
}

type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// snapshotCodec is built once; the options are constant, so the error can
// only be a programming mistake, which it reports instead of panicking.
var snapshotCodec = sync.OnceValues(func() (codec, error) {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return codec{}, err
	}
	dec, err := cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		MaxMapPairs: 1<<31 - 1, // a store may hold more keys than the default 131072
		IndefLength: cbor.IndefLengthForbidden,
		UTF8:        cbor.UTF8RejectInvalid,
	}.DecMode()
	return codec{enc, dec}, err
})

func encodeSnapshot(version uint64, entries map[string]record) ([]byte, error) {
	c, err := snapshotCodec()
	if err != nil {
		return nil, err
	}
	return c.enc.Marshal(snapshot{Format: snapshotFormat, Version: version, Entries: entries})
}

func decodeSnapshot(data []byte) (snapshot, error) {
	c, err := snapshotCodec()
	if err != nil {
		return snapshot{}, err
	}
	var s snapshot
	if err := c.dec.Unmarshal(data, &s); err != nil {
		return snapshot{}, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if s.Format != snapshotFormat {
		return snapshot{}, fmt.Errorf("%w: format %d, want %d", ErrBadSnapshot, s.Format, snapshotFormat)
	}
	for k, r := range s.Entries {
		if r.Version == 0 || r.Version > s.Version {
			return snapshot{}, fmt.Errorf("%w: key %q at version %d, store at %d", ErrBadSnapshot, k, r.Version, s.Version)
		}
	}
	if s.Entries == nil {
		s.Entries = make(map[string]record)
	}
	return s, nil
}
