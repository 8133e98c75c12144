package authenticate

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place: validate's, then every authenticator's
// own, and that authenticators built before a failure are closed.
func TestConfigErrorsTogether(t *testing.T) {
	_, err := New(policytest.Node(t, "realm: \"a\\nb\"\nwith:\n  - kerberos: {}\n  - header: {header: X}\n  - ntlm: {}\n"), policytest.Env(), testRegistry())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "realm"},
		policytest.ConfigErrorAt{Line: 3, Path: "with[0].kerberos"},
		policytest.ConfigErrorAt{Line: 5, Path: "with[2].ntlm"},
	)

	closed = false
	_, err = New(policytest.Node(t, "with:\n  - header: {header: X-A}\n  - header: {secret: b}\n  - header: {secret: c}\n"), policytest.Env(), testRegistry())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 3, Path: "with[1].header.header"},
		policytest.ConfigErrorAt{Line: 4, Path: "with[2].header.header"},
	)
	if !closed {
		t.Error("the authenticator built before the failures was not closed")
	}
}

// TestConfigGood checks the settings of good configs, the realm default
// included.
func TestConfigGood(t *testing.T) {
	for _, tc := range []struct {
		yaml, realm string
		optional    bool
		auths       int
	}{
		{"with: [{header: {header: X}}]\n", "gatehouse", false, 1},
		{twoAuths, "api", false, 2},
		{"realm: r\noptional: true\nwith: [{header: {header: X}}]\n", "r", true, 1},
	} {
		p := build(t, tc.yaml)
		if p.realm != tc.realm || p.optional != tc.optional || len(p.auths) != tc.auths || len(p.names) != tc.auths {
			t.Errorf("%q: realm %q optional %v auths %d, want %q %v %d", tc.yaml, p.realm, p.optional, len(p.auths), tc.realm, tc.optional, tc.auths)
		}
	}
}
