package cluster

import "errors"

// Errors returned by this package. Match them with errors.Is; the returned
// errors usually wrap them with what exactly is wrong.
var (
	// ErrBadCertificate reports bytes that are not a well-formed cluster
	// certificate: wrong structure, non-canonical encoding, bad field
	// lengths, a bad node name, or more than MaxCertificateSize bytes.
	ErrBadCertificate = errors.New("cluster: malformed certificate")
	// ErrBadSignature reports a certificate whose signature does not verify
	// under its cluster key.
	ErrBadSignature = errors.New("cluster: certificate signature does not verify")
	// ErrForeignCluster reports a certificate issued by another cluster key
	// than the one trusted.
	ErrForeignCluster = errors.New("cluster: certificate from another cluster")
	// ErrRouterMismatch reports a certificate presented by a router other
	// than the one it names.
	ErrRouterMismatch = errors.New("cluster: certificate names another router")
	// ErrExpired reports a certificate past its expiry.
	ErrExpired = errors.New("cluster: certificate expired")
	// ErrNotYetValid reports a certificate issued in the future (beyond the
	// allowed clock skew).
	ErrNotYetValid = errors.New("cluster: certificate not yet valid")
	// ErrDenied reports a certificate, or a router, on the deny list.
	ErrDenied = errors.New("cluster: certificate or router denied")
	// ErrBadName reports a node name that is empty, longer than MaxNodeName
	// bytes, not UTF-8, or holds control characters.
	ErrBadName = errors.New("cluster: bad node name")
	// ErrBadValidity reports a validity period that is empty, negative or
	// longer than MaxValidity.
	ErrBadValidity = errors.New("cluster: bad validity period")
	// ErrBadFile reports a certificate, gossip key or deny list file that
	// cannot be parsed; the wrapping error names the file and the problem.
	ErrBadFile = errors.New("cluster: bad file")
	// ErrInsecureFile reports a secret file (gossip key) that the group or
	// others may read.
	ErrInsecureFile = errors.New("cluster: secret file is accessible by group or others (chmod 600 it)")
	// ErrBadMeta reports member metadata that cannot be parsed.
	ErrBadMeta = errors.New("cluster: malformed member metadata")
	// ErrBadConfig reports an unusable Config.
	ErrBadConfig = errors.New("cluster: bad config")
	// ErrClosed reports use of a closed Membership or Authority.
	ErrClosed = errors.New("cluster: closed")
)
