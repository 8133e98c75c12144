package ipfilter

import (
	"net/netip"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		path string
		msg  string
	}{
		{"no lists", "allow: []\ndeny: []\n", 1, "", "ipfilter needs allow or deny"},
		{"only trusted proxies", "trusted_proxies: [10.0.0.1]\n", 1, "", "ipfilter needs allow or deny"},
		{"unknown field", "allow: [10.0.0.0/8]\nalow: [10.0.0.0/8]\n", 2, "alow", `unknown field "alow"`},
		{"allow not a list", "allow: 10.0.0.0/8\n", 1, "allow", "expected a sequence"},
		{"bad allow entry at its index", "allow:\n  - 10.0.0.0/8\n  - 192.0.2.1\n  - 10.0.0.300/32\n", 4, "allow[2]", `"10.0.0.300/32" is not an IP address or CIDR prefix`},
		{"bad deny entry", "deny: [10.0.0.0/8, nonsense]\n", 1, "deny[1]", `"nonsense" is not`},
		{"host bits set", "allow:\n  - 10.0.0.1/8\n", 2, "allow[0]", "did you mean 10.0.0.0/8?"},
		{"prefix too long", "deny:\n  - 10.0.0.0/33\n", 2, "deny[0]", "is not an IP address or CIDR prefix"},
		{"zone", "allow:\n  - fe80::1%eth0\n", 2, "allow[0]", "zones are not allowed"},
		{"short mapped prefix", "allow:\n  - ::ffff:0:0/64\n", 2, "allow[0]", "at least /96"},
		{"bad trusted proxy", "allow: [10.0.0.0/8]\ntrusted_proxies:\n  - 10.0.0.1\n  - 10.0.0.0/40\n", 4, "trusted_proxies[1]", "is not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigParses(t *testing.T) {
	p, err := decode(policytest.Node(t, `
allow: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32", "::ffff:172.16.0.0/108", "::1"]
deny: [" 10.66.0.0/16 "]
`))
	if err != nil {
		t.Fatal(err)
	}
	wantAllow := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("172.16.0.0/12"), // unmapped
		netip.MustParsePrefix("::1/128"),
	}
	if got, want := p.allow.prefixes(), wantAllow; !equal(got, want) {
		t.Errorf("allow = %v, want %v", got, want)
	}
	if got, want := p.deny.prefixes(), []netip.Prefix{netip.MustParsePrefix("10.66.0.0/16")}; !equal(got, want) {
		t.Errorf("deny = %v, want %v", got, want)
	}
	if p.ownTrusted {
		t.Error("ownTrusted without trusted_proxies")
	}
}

func TestConfigTrustedProxies(t *testing.T) {
	tests := []struct {
		yaml string
		own  bool
		n    int
	}{
		{"deny: [10.0.0.0/8]\n", false, 0},
		{"deny: [10.0.0.0/8]\ntrusted_proxies:\n", false, 0},
		{"deny: [10.0.0.0/8]\ntrusted_proxies: []\n", true, 0},
		{"deny: [10.0.0.0/8]\ntrusted_proxies: [192.0.2.0/24, 192.0.2.9]\n", true, 2},
	}
	for _, tt := range tests {
		p, err := decode(policytest.Node(t, tt.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if p.ownTrusted != tt.own || len(p.trusted) != tt.n {
			t.Errorf("%q: own=%v n=%d, want own=%v n=%d", tt.yaml, p.ownTrusted, len(p.trusted), tt.own, tt.n)
		}
	}
}

func equal(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *prefixSet) prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, e := range s.entries {
		out = append(out, e.p)
	}
	return out
}

// TestConfigErrorsTogether checks that every bad entry of every list is
// reported in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	_, err := New(policytest.Node(t, "allow: [10.0.0.0/8, 10.0.0.1/8]\ndeny:\n  - nonsense\ntrusted_proxies: ['fe80::1%eth0']\n"), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "allow[1]"},
		policytest.ConfigErrorAt{Line: 3, Path: "deny[0]"},
		policytest.ConfigErrorAt{Line: 4, Path: "trusted_proxies[0]"},
	)
}
