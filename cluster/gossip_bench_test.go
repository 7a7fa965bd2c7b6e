package cluster

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// byteCounter counts what a set of memberlist transports send: UDP
// packets as written, TCP streams both ways on the dialling side (every
// stream is dialled by someone, so that is every stream byte once).
type byteCounter struct {
	udp, udpPackets, tcp, streams atomic.Uint64
}

type countingTransport struct {
	*memberlist.NetTransport
	c *byteCounter
}

func (t countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.c.udp.Add(uint64(len(b)))
	t.c.udpPackets.Add(1)
	return t.NetTransport.WriteTo(b, addr)
}

func (t countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.c.udp.Add(uint64(len(b)))
	t.c.udpPackets.Add(1)
	return t.NetTransport.WriteToAddress(b, a)
}

func (t countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	t.c.streams.Add(1)
	return countingConn{c, t.c}, nil
}

func (t countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	t.c.streams.Add(1)
	return countingConn{c, t.c}, nil
}

type countingConn struct {
	net.Conn
	c *byteCounter
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.tcp.Add(uint64(n))
	return n, err
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.tcp.Add(uint64(n))
	return n, err
}

// gossipSim is n memberlist members configured exactly as Membership
// configures them (certificates in the metadata, encryption, label), with
// memberlist's default LAN timings, on loopback, with counted transports.
type gossipSim struct {
	c       byteCounter
	members []*memberlist.Memberlist
}

func startGossipSim(b *testing.B, n int) *gossipSim {
	a, err := NewAuthority(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	gk, _ := a.GossipKey()
	s := &gossipSim{}
	for i := range n {
		cert, err := a.Issue(randRouter(b), fmt.Sprintf("node-%d", i), time.Now(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		m, err := NewMembership(Config{Certificate: cert, GossipKey: gk,
			Endpoints: []string{fmt.Sprintf("tcp://127.0.0.1:%d", 20000+i)}})
		if err != nil {
			b.Fatal(err)
		}
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
		if err != nil {
			b.Fatal(err)
		}
		cfg := m.memberlistConfig()
		cfg.Transport = countingTransport{nt, &s.c}
		ml, err := memberlist.Create(cfg)
		if err != nil {
			b.Fatal(err)
		}
		s.members = append(s.members, ml)
		if i > 0 {
			if _, err := ml.Join([]string{s.members[0].LocalNode().Address()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

func (s *gossipSim) converged() bool {
	for _, m := range s.members {
		if m.NumMembers() != len(s.members) {
			return false
		}
	}
	return true
}

func (s *gossipSim) stop() {
	for _, m := range s.members {
		_ = m.Shutdown()
	}
}

func (s *gossipSim) reset() {
	s.c.udp.Store(0)
	s.c.udpPackets.Store(0)
	s.c.tcp.Store(0)
	s.c.streams.Store(0)
}

// BenchmarkGossipTraffic measures what gossip costs per member in steady
// state, and the size of one full-state exchange (push/pull), at several
// cluster sizes; docs/clusters.md extrapolates them. Run it with
//
//	go test -run '^$' -bench GossipTraffic -benchtime 1x ./cluster
//
// Each size runs memberlist's default LAN timings (probe every 1 s, gossip
// every 200 ms, push/pull every 30 s, longer past 32 members): it waits for
// every member to see every other, measures one push/pull, lets the join
// broadcasts run out (5 s), and counts 10 s of steady state. Push/pulls are
// too rare to catch in that window; docs/clusters.md computes their rate
// from B_pushpull.
func BenchmarkGossipTraffic(b *testing.B) {
	const settle, window = 5 * time.Second, 10 * time.Second
	for _, n := range []int{4, 8, 16, 32, 64} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			for range b.N {
				start := time.Now()
				s := startGossipSim(b, n)
				deadline := time.After(120 * time.Second)
				tick := time.NewTicker(20 * time.Millisecond)
				for !s.converged() {
					select {
					case <-deadline:
						tick.Stop()
						s.stop()
						b.Fatalf("%d members did not converge", n)
					case <-tick.C:
					}
				}
				tick.Stop()
				b.ReportMetric(time.Since(start).Seconds(), "s_to_converge")

				// One push/pull: the last member joins the first again, which
				// exchanges the full state both ways over one stream.
				s.reset()
				if _, err := s.members[n-1].Join([]string{s.members[0].LocalNode().Address()}); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(s.c.tcp.Load()), "B_pushpull")

				// Steady state: let the broadcasts of the joins run out
				// (each is retransmitted a few times), then count.
				<-time.After(settle)
				s.reset()
				<-time.After(window)
				secs := window.Seconds()
				b.ReportMetric(float64(s.c.udp.Load())/secs/float64(n), "udpB/s/member")
				b.ReportMetric(float64(s.c.udpPackets.Load())/secs/float64(n), "pkts/s/member")
				b.ReportMetric(float64(s.c.tcp.Load())/secs/float64(n), "tcpB/s/member")
				s.stop()
			}
		})
	}
}
