package node_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The layering of docs/design.md, as data: what each package may import
// among ours. A package's allowance includes what the packages it may
// import may import.
var layers = map[string][]string{
	"genserver":           nil,
	"internal/atomicfile": nil,
	"keyholder":           {"internal/atomicfile"},
	"internal/relay":      nil,
	"internal/safetext":   nil,
	"payload":             {"internal/safetext"},
	"supervisor":          {"genserver"},
	"events":              {"genserver"},
	"callbridge":          {"genserver"},
	"wire":                {"keyholder", "payload", "internal/safetext"},
	"netconn":             {"genserver", "keyholder", "wire"},
	"transport":           {"genserver", "supervisor", "events", "keyholder", "wire", "netconn", "callbridge"},
	"cluster":             {"transport"},
	"admin":               {"transport"},
	"node":                {"transport", "cluster", "admin"},
	"testkit":             {"node", "internal/relay"},
	"internal/bench":      {"node"},
	// test/specpeer is a second implementation of the wire protocol written
	// from wire/spec.md alone: it imports nothing of ours (its tests do).
	"test/specpeer": nil,
	// internal/nodetest is the older harness testkit replaces.
	"internal/nodetest": {"node"},
}

const module = "github.com/enginekit/enginekit/"

// allowed returns everything pkg may import, transitively.
func allowed(pkg string, seen map[string]bool) map[string]bool {
	for _, p := range layers[pkg] {
		if !seen[p] {
			seen[p] = true
			allowed(p, seen)
		}
	}
	return seen
}

// TestLayering checks that no package imports above its layer in
// docs/design.md: nothing in genserver knows about networks, nothing in
// transport about nodes, nothing in node about tests.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "github.com/enginekit/enginekit/...").Output()
	if err != nil {
		t.Skipf("go list: %v", err) // no go command here: nothing to check against
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		var ours []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				ours = append(ours, strings.TrimPrefix(imp, module))
			}
		}
		switch {
		case strings.HasPrefix(name, "cmd/") || name == "test":
			continue // may import anything
		case strings.HasPrefix(name, "examples/"):
			for _, imp := range ours {
				if strings.HasPrefix(imp, "cmd/") || imp == "test" || strings.HasPrefix(imp, "internal/") || imp == "testkit" {
					t.Errorf("%s imports %s: examples are library code", name, imp)
				}
			}
			continue
		}
		if _, ok := layers[name]; !ok {
			t.Logf("%s is not in docs/design.md's layering yet", name)
			continue
		}
		ok := allowed(name, map[string]bool{})
		for _, imp := range ours {
			if !ok[imp] {
				t.Errorf("%s imports %s, above its layer in docs/design.md", name, imp)
			}
		}
	}
}

// TestREADMEQuotes checks that every Go block the README introduces with
// "From [path](path)" is quoted from that file as it is now.
func TestREADMEQuotes(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	from := regexp.MustCompile(`(?s)From\s+\[([^\]]+)\]\([^)]+\)[^\n]*?\n(?:[^\n]*\n)*?` + "```go\n(.*?)```")
	found := 0
	for _, m := range from.FindAllSubmatch(readme, -1) {
		path, quote := string(m[1]), string(m[2])
		src, err := os.ReadFile(filepath.Join("..", path))
		if err != nil {
			t.Errorf("README quotes %s: %v", path, err)
			continue
		}
		found++
		if !strings.Contains(string(src), quote) {
			t.Errorf("README's quote of %s is not in the file as it is now:\n%s", path, quote)
		}
	}
	want := []string{"genserver/readme_example_test.go", "supervisor/readme_example_test.go", "node/example_test.go", "testkit/example_test.go"}
	for _, w := range want {
		if !slices.ContainsFunc(from.FindAllSubmatch(readme, -1), func(m [][]byte) bool { return string(m[1]) == w }) {
			t.Errorf("README no longer quotes %s", w)
		}
	}
	if found < len(want) {
		t.Errorf("found %d quotes, want at least %d", found, len(want))
	}
}
