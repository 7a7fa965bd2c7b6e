package testkit_test

import (
	"testing"

	"github.com/enginekit/enginekit/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
