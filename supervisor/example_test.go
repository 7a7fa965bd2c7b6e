package supervisor_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/enginekit/enginekit/supervisor"
	"github.com/thejerf/suture/v4"
)

// serviceFunc makes a function a suture.Service.
type serviceFunc func(ctx context.Context) error

func (f serviceFunc) Serve(ctx context.Context) error { return f(ctx) }

func Example() {
	// A healthy service runs until it is stopped.
	healthy := serviceFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})
	// The fetcher's first incarnation fails; the next one runs until it is stopped.
	incarnation := 0
	fetcher := func() suture.Service {
		incarnation++
		if incarnation == 1 {
			return serviceFunc(func(context.Context) error { return errors.New("connection refused") })
		}
		return healthy
	}

	restarted := make(chan struct{})
	sup, err := supervisor.New(supervisor.Spec{
		Name:     "app",
		Strategy: supervisor.RestForOne, // the fetcher needs the cache
		Children: []supervisor.ChildSpec{
			{ID: "cache", Start: func() suture.Service { return healthy }},
			{ID: "fetcher", Start: fetcher},
		},
		// In production: EventHook: supervisor.LogEvents(logger).
		EventHook: func(e supervisor.Event) {
			fmt.Println(e)
			if e, ok := e.(supervisor.ChildStarted); ok && e.Restarts == 1 {
				close(restarted)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// StartReady returns once the static children have started.
	stop, err := supervisor.StartReady(context.Background(), sup)
	if err != nil {
		fmt.Println(err)
		return
	}
	<-restarted
	fmt.Println("stop:", stop()) // stops the children in reverse order

	// Output:
	// supervisor "app": child "cache" started
	// supervisor "app": child "fetcher" started
	// supervisor "app": child "fetcher" exited with error: connection refused (action: restart)
	// supervisor "app": child "fetcher" restarted (restarts: 1)
	// supervisor "app": child "fetcher" stopped
	// supervisor "app": child "cache" stopped
	// stop: <nil>
}
