package test

import "fmt"

// Every multi-node test in this package runs once per connection type and
// authentication mode:
func Example() {
	for _, s := range setups() {
		fmt.Println(s)
	}
	// Output:
	// tcp/signatures
	// tcp/macs
	// unix/signatures
	// unix/macs
}
