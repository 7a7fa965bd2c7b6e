package echo

import (
	"errors"
	"fmt"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/payload"
)

// Echo, as a call, is answered with itself; as a cast, it is counted.
type Echo struct {
	Text string
}

// Count asks for the number of Echo casts received so far, as an int64.
type Count struct{}

// ErrUnknownRequest: a call of a type the engine does not serve.
var ErrUnknownRequest = errors.New("echo: unknown request")

// Register registers Echo and Count in reg as "echo.Echo" and "echo.Count"
// (the Count reply, an int64, is built in).
func Register(reg *payload.Registry) error {
	return errors.Join(
		payload.Register[Echo](reg, "echo.Echo"),
		payload.Register[Count](reg, "echo.Count"),
	)
}

// New returns a new incarnation of the engine; it is a genserver factory.
func New() genserver.Server { return &server{} }

type server struct {
	casts int64
}

func (s *server) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	switch r := req.(type) {
	case Echo:
		return r, nil
	case Count:
		return s.casts, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnknownRequest, req)
}

func (s *server) HandleCast(p *genserver.Process, msg any) {
	if _, ok := msg.(Echo); ok {
		s.casts++
	}
}
