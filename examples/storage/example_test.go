package storage_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
)

func Example() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "example"})
	defer sys.Stop(ctx)

	// The snapshot store outlives the engine's incarnations.
	store := storage.NewMemoryStore()
	if _, err := sys.Spawn(storage.New(storage.Config{Snapshots: store}), genserver.WithName("kv")); err != nil {
		fmt.Println(err)
		return
	}
	kv := genserver.Name("kv")

	// A reader waits for a key that does not exist yet. (Should the Put
	// below come first, the reader is answered at once, with the same entry.)
	waited := make(chan storage.Entry)
	go func() {
		e, _ := genserver.Call[storage.Entry](ctx, sys, kv, storage.Get{Key: "greeting", Wait: true})
		waited <- e
	}()

	e, _ := genserver.Call[storage.Entry](ctx, sys, kv, storage.Put{Key: "greeting", Value: []byte("hello")})
	fmt.Printf("put: %s at version %d\n", e.Value, e.Version)
	w := <-waited
	fmt.Printf("the waiting reader got: %s at version %d\n", w.Value, w.Version)

	// Compare-and-set: only the writer that read the current version wins.
	e, _ = genserver.Call[storage.Entry](ctx, sys, kv, storage.Put{Key: "greeting", Value: []byte("hi"), IfVersion: e.Version})
	fmt.Printf("put if version 1: %s at version %d\n", e.Value, e.Version)
	_, err := genserver.Call[storage.Entry](ctx, sys, kv, storage.Put{Key: "greeting", Value: []byte("hey"), IfVersion: 1})
	fmt.Println("put if version 1 again:", errors.Is(err, storage.ErrVersionMismatch))

	// A clean stop saves a snapshot; the next incarnation starts from it.
	_ = sys.StopProcess(ctx, kv, nil)
	_, _ = sys.Spawn(storage.New(storage.Config{Snapshots: store}), genserver.WithName("kv"))
	e, _ = genserver.Call[storage.Entry](ctx, sys, kv, storage.Get{Key: "greeting"})
	s, _ := genserver.Call[storage.StatsReply](ctx, sys, kv, storage.Stats{})
	fmt.Printf("after a restart: %s at version %d (loaded from snapshot: %v)\n", e.Value, e.Version, s.LoadedFromSnapshot)
	// Output:
	// put: hello at version 1
	// the waiting reader got: hello at version 1
	// put if version 1: hi at version 2
	// put if version 1 again: true
	// after a restart: hi at version 2 (loaded from snapshot: true)
}
