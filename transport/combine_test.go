package transport_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
)

// Issue #13: calls to other nodes go through one combiner at a time (no
// caller waits on the transport's lock); every caller still gets its own
// answer or its own error at once, whatever the calls batched with it
// did: a request over the frame limit fails with its size error, the
// others are answered.
func TestCombinedCallsKeepTheirAnswers(t *testing.T) {
	small := func(c *transport.Config) { c.Net.MaxFrameSize = wire.MinFrameSize }
	a, b := newTNode(t, "a", small), newTNode(t, "b", small)
	e, _, err := b.tr.SpawnEngine("srv", func() genserver.Server { return server{} })
	if err != nil {
		t.Fatal(err)
	}
	a.connect(t, b, b.listen(t))
	a.waitSynced(t, b)
	dest := genserver.Name(e.String())
	ctx := ctxT(t)
	const callers, calls = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			for j := range calls {
				if (i+j)%5 == 0 {
					_, err := a.sys.Call(ctx, dest, BigReq{make([]byte, 2*wire.MinFrameSize)})
					var se *netconn.SizeError
					if !errors.Is(err, transport.ErrTooLarge) || !errors.As(err, &se) {
						errs <- err
						return
					}
					continue
				}
				want := Ping{string(rune('a' + i%26))}
				if v, err := a.sys.Call(ctx, dest, want); err != nil || v != want {
					errs <- errors.Join(err, errors.New("wrong answer"))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
