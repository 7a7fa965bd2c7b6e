package safetext_test

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/enginekit/enginekit/internal/safetext"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"}, // é is 2 bytes: not split
		{"é", 1, ""},
		{"", 0, ""},
	} {
		if got := safetext.Truncate(c.s, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ok", "ok"},
		{"a\xffb", "a\uFFFDb"},
		{"\xff\xfe", "\uFFFD\uFFFD"}, // one replacement per bad byte
		{"\xe2\x82", "\uFFFD\uFFFD"}, // a cut rune
	} {
		if got := string(safetext.Sanitize([]byte(c.in))); got != c.want {
			t.Errorf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func Example() {
	name := []byte("greeting\xff from a peer")
	fmt.Printf("%+q\n", safetext.Truncate(string(safetext.Sanitize(name)), 12))
	// Output: "greeting\ufffd "
}
