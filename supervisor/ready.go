package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ReadyServer is what StartReady runs: anything that reports when it has started, as
// ReadyService does (a *Supervisor, a *genserver.Service, a transport).
type ReadyServer interface {
	ServeReady(ctx context.Context, ready func()) error
}

// StartReady runs svc.ServeReady in a new goroutine and returns once svc has called ready:
// then the service is up, and stop cancels it, waits for ServeReady to return, and returns
// its error (context.Canceled, the usual answer to being cancelled, counts as nil). stop
// may be called more than once; later calls return the same error.
//
// The service runs under a context derived from ctx, so it also stops when ctx ends; stop
// is still the way to wait for it. If ServeReady returns before calling ready, StartReady
// returns its error (or one matching ErrStartFailed when it returned nil). If ctx ends
// first, the service is cancelled and waited for, and StartReady returns ctx's error. In
// both cases no goroutine is left behind and stop is nil.
//
// It replaces the usual hand-written
//
//	ready, done := make(chan struct{}), make(chan error, 1)
//	go func() { done <- svc.ServeReady(ctx, func() { close(ready) }) }()
//	select { case <-ready: case err := <-done: ... }
func StartReady(ctx context.Context, svc ReadyServer) (stop func() error, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	ready, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var served error
	go func() {
		defer close(done)
		served = svc.ServeReady(runCtx, func() { once.Do(func() { close(ready) }) })
	}()
	select {
	case <-ready:
	case <-done:
		select {
		case <-ready: // ready, then returned at once: stop reports why
		default:
			cancel()
			if served == nil {
				return nil, fmt.Errorf("%w: %v returned before it was ready", ErrStartFailed, svc)
			}
			return nil, served
		}
	case <-ctx.Done():
		cancel()
		<-done
		return nil, ctx.Err()
	}
	return func() error {
		cancel()
		<-done
		if errors.Is(served, context.Canceled) && ctx.Err() == nil {
			return nil
		}
		return served
	}, nil
}
