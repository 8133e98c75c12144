package sts

// For the external tests (package sts_test), which may import packages
// that import this one, such as internal/policy/saml.
var (
	InstallPeers = installPeers
	PeersDir     = peersDir
)
