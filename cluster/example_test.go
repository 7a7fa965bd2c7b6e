package cluster_test

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/keyholder"
)

// An operator's cluster key admits a node's router; any node that trusts
// the cluster key then admits that router, and only that router, while the
// certificate is valid.
func Example() {
	// Fixed seeds make the example's keys the same on every run; real keys
	// come from crypto/rand (pass nil).
	auth, _ := cluster.NewAuthority(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	defer auth.Close()
	node, _ := keyholder.New(keyholder.Config{Rand: bytes.NewReader(bytes.Repeat([]byte{2}, 32))})
	defer node.Close()

	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert, _ := auth.Issue(node.Router(), "node-1", issued, 24*time.Hour)
	fmt.Println("cluster", cert.Cluster)
	fmt.Println("certificate", cert.ID())

	// On every node: the trusted cluster key comes from the node's own
	// certificate file; Verifier.Admit is netconn's AdmitCredential.
	now := issued.Add(time.Hour)
	v, _ := cluster.NewVerifier(cluster.VerifierConfig{Cluster: cert.Cluster, Now: func() time.Time { return now }})
	fmt.Println("admit node-1:", v.Admit(node.Router(), cert.Bytes()))

	other, _ := keyholder.New(keyholder.Config{})
	defer other.Close()
	_, err := v.Check(other.Router(), cert.Bytes())
	fmt.Println("someone else with node-1's certificate:", errors.Is(err, cluster.ErrRouterMismatch))

	now = issued.Add(25 * time.Hour)
	_, err = v.Check(node.Router(), cert.Bytes())
	fmt.Println("a day later:", errors.Is(err, cluster.ErrExpired))
	// Output:
	// cluster ek1rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5oa
	// certificate 13e7426a411099e9267f106fec9cc5470ec20b22fb35d133926174327ddda5b8
	// admit node-1: true
	// someone else with node-1's certificate: true
	// a day later: true
}
