package events_test

import (
	"errors"
	"testing"

	"github.com/enginekit/enginekit/events"
)

// DefaultConfig is what the zero Config stands for, and valid; a config
// NewBroker cannot use is refused with ErrBadConfig, before it starts.
func TestConfigVerify(t *testing.T) {
	d := events.DefaultConfig()
	if d.MaxPending != events.DefaultMaxPending || d.Overflow != events.DropNewest || d.Verify() != nil {
		t.Fatalf("%+v: %v", d, d.Verify())
	}
	newBroker(t, d)
	bad := events.Config{Overflow: events.Cancel + 1}
	if err := bad.Verify(); !errors.Is(err, events.ErrBadConfig) {
		t.Fatal(err)
	}
	sys, _ := newBroker(t, events.Config{})
	if _, err := events.NewBroker(sys, bad); !errors.Is(err, events.ErrBadConfig) {
		t.Fatal(err)
	}
	if _, err := events.NewBroker(nil, events.Config{}); !errors.Is(err, events.ErrBadConfig) {
		t.Fatal(err)
	}
}
