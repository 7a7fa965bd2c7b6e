package relay_test

import (
	"fmt"
	"io"
	"net"

	"github.com/enginekit/enginekit/internal/relay"
)

func Example() {
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err == nil {
			c.Write([]byte("hello through the relay"))
			c.Close()
		}
	}()
	r, _ := relay.New("tcp", "127.0.0.1:0", "tcp", target.Addr().String())
	defer r.Close()
	c, _ := net.Dial("tcp", r.Addr().String())
	b, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(b))
	// Output: hello through the relay
}
