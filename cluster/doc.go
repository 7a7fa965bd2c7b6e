// Package cluster lets enginekit nodes form a cluster: they admit each other
// by a cluster key instead of pinning every pair of router keys, find each
// other by gossip, and keep a full mesh of transport connections.
//
// Three parts, usable separately:
//
//   - Admission. An Authority holds the cluster's ed25519 key (encrypted at
//     rest like a node's key file) and issues a Certificate per node: the
//     cluster key's signature over the node's router address, its name and
//     a validity period (format in wire/spec.md, "Cluster membership
//     certificates"). A node holds only its certificate file, which carries
//     the cluster's public key; it never needs the cluster's private key. A
//     Verifier checks a certificate presented by a TLS-authenticated router:
//     the cluster key, the signature, that it names that router, expiry (on
//     an injected clock) and a DenyList. Verifier.Admit has the shape of
//     netconn's Config.AdmitCredential; the node sends its certificate as
//     Config.Credential.
//   - Membership (hashicorp/memberlist, gossip encrypted with a key derived
//     from the cluster key): who is in the cluster. Each member advertises,
//     in its memberlist metadata, its certificate and its transport
//     endpoints; members without a valid certificate are ignored and
//     counted. Seeds come from a Discovery: a static list or DNS (A or SRV
//     records, as a Kubernetes headless service gives).
//   - Mesh: keeps one transport connection per pair of admitted members (the
//     member with the lower router address dials), forgets departed
//     members and follows a member that comes back under a new address,
//     through a small Connector interface that the transport satisfies.
//
// An Agent runs a Membership and its Mesh as one suture service; with a
// Verifier's Admit as the transport's AdmitCredential and the certificate as
// its Credential, that is all a node needs (see Agent for the wiring).
//
// docs/clusters.md explains the design, its costs at 100 and 1,000 nodes,
// and where a full mesh stops being sensible.
package cluster
