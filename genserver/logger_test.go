package genserver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/rs/zerolog"
)

// Config.Logger is a value; System.Logger hands out a copy, so a caller
// that changes it does not change what the System's processes log with.
func TestSystemLogger(t *testing.T) {
	var logs syncBuffer
	sys := genserver.NewSystem(genserver.Config{Name: "logs", Logger: zerolog.New(&logs)})
	defer sys.Stop(context.Background())

	l := sys.Logger()
	l.Info().Msg("from the copy")
	*l = l.With().Str("changed", "yes").Logger()
	sys.Logger().Info().Msg("from a second copy")
	out := logs.String()
	if !strings.Contains(out, "from the copy") || !strings.Contains(out, "from a second copy") {
		t.Fatalf("logs: %s", out)
	}
	if strings.Contains(out, "changed") {
		t.Fatalf("changing the copy changed the System's logger: %s", out)
	}

	// The zero Config logs nothing and does not fail.
	quiet := genserver.NewSystem(genserver.Config{})
	defer quiet.Stop(context.Background())
	quiet.Logger().Error().Msg("discarded")
}
