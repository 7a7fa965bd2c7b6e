package admin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/transport"
)

// ErrNotReady wraps the reasons a readiness check fails.
var ErrNotReady = errors.New("admin: not ready")

// RequirePeers returns a Config.Ready check that passes while tr has a live
// connection to every one of peers, and otherwise names the ones missing.
func RequirePeers(tr *transport.Transport, peers ...keyholder.Address) func() error {
	return func() error {
		up := map[keyholder.Address]bool{}
		for _, c := range tr.Connections() {
			up[c.Peer] = true
		}
		var missing []string
		for _, p := range peers {
			if !up[p] {
				missing = append(missing, p.String())
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: no connection to peer %s", ErrNotReady, strings.Join(missing, ", "))
		}
		return nil
	}
}

// RequireListeners returns a Config.Ready check that passes while every
// listener of tr is bound (transport.Transport.Listeners), and otherwise
// names the ones that are not, with their failure counts. A transport
// with no listener passes.
func RequireListeners(tr *transport.Transport) func() error {
	return func() error {
		var down []string
		for _, l := range tr.Listeners() {
			if !l.Bound {
				down = append(down, fmt.Sprintf("%s (%d failures)", l.Endpoint, l.Errors))
			}
		}
		if len(down) > 0 {
			return fmt.Errorf("%w: listener not bound: %s", ErrNotReady, strings.Join(down, ", "))
		}
		return nil
	}
}

// AllReady combines readiness checks: it passes when every check passes, and
// otherwise returns every failure, joined.
func AllReady(checks ...func() error) func() error {
	return func() error {
		var errs []error
		for _, c := range checks {
			if c == nil {
				continue
			}
			if err := c(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}
