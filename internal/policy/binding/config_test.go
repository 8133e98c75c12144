package binding

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"unknown field", "dpop: required\ncertificates: required\n", 2, "certificates", `unknown field "certificates"`},
		{"unknown dpop mode", "dpop: always\n", 1, "dpop", `unknown mode "always"`},
		{"unknown certificate mode", "dpop: allowed\ncertificate: yes please\n", 2, "certificate", `unknown mode "yes please"`},
		{"HMAC algorithm", "proof:\n  algorithms:\n    - ES256\n    - HS256\n", 4, "proof.algorithms[1]", `"HS256" not supported`},
		{"none algorithm", "proof:\n  algorithms: [none]\n", 2, "proof.algorithms[0]", `"none" not supported`},
		{"empty algorithms", "proof:\n  algorithms: []\n", 2, "proof.algorithms", "at least one algorithm"},
		{"negative max age", "proof:\n  max_age: -1s\n", 2, "proof.max_age", "must not be negative"},
		{"negative skew", "proof:\n  future_skew: -1s\n", 2, "proof.future_skew", "must not be negative"},
		{"negative cache size", "proof:\n  replay_cache_size: -1\n", 2, "proof.replay_cache_size", "must not be negative"},
		{"origin with path", "proof:\n  public_origin: https://api.example.com/v1\n", 2, "proof.public_origin", "is not an origin"},
		{"origin without scheme", "proof:\n  public_origin: api.example.com\n", 2, "proof.public_origin", "is not an origin"},
		{"origin and forwarded", "proof:\n  public_origin: https://api.example.com\n  trust_forwarded: true\n", 3, "proof.trust_forwarded", "exclude each other"},
		{"forwarded without trusted proxies", "proof:\n  trust_forwarded: true\n", 2, "proof.trust_forwarded", "needs the gateway's trusted_proxies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

// settings decodes and validates yaml and fills in the defaults (the
// route's realm: "route-realm").
func settings(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	n := policytest.Node(t, yaml)
	c, err := decode(n)
	if err != nil {
		return nil, err
	}
	if err := c.validate(n, false); err != nil {
		return nil, err
	}
	c.setDefaults("route-realm")
	return c, nil
}

func TestConfigDefaults(t *testing.T) {
	c, err := settings(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DPoP != Allowed || c.Certificate != Allowed || c.Realm != "route-realm" || c.Proof.ReplayCacheSize != 100_000 {
		t.Errorf("defaults: %+v", c)
	}
	c, err = settings(t, `
dpop: required
certificate: forbidden
realm: api
proof:
  algorithms: [ES384, EdDSA]
  max_age: 2m
  future_skew: 1s
  replay_cache_size: 10
  public_origin: HTTPS://api.example.com:8443/
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.DPoP != Required || c.Certificate != Forbidden || c.Realm != "api" ||
		c.Proof.MaxAge.Std() != 2*time.Minute || c.Proof.FutureSkew.Std() != time.Second ||
		c.Proof.ReplayCacheSize != 10 || c.Proof.PublicOrigin != "https://api.example.com:8443" {
		t.Errorf("parsed: %+v", c)
	}
	env := policytest.Env()
	env.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if _, err := New(policytest.Node(t, "proof:\n  trust_forwarded: true\n"), env); err != nil {
		t.Errorf("trust_forwarded with trusted proxies: %v", err)
	}
}

func TestCnfStringMap(t *testing.T) {
	jkt, x5t, err := cnf(principal(nil))
	if jkt != "" || x5t != "" || err != nil {
		t.Errorf("no cnf: %q %q %v", jkt, x5t, err)
	}
	pr := principal(nil)
	pr.Claims["cnf"] = map[string]string{"jkt": "a", "x5t#S256": "b"}
	if jkt, x5t, err := cnf(pr); jkt != "a" || x5t != "b" || err != nil {
		t.Errorf("string map: %q %q %v", jkt, x5t, err)
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "dpop: maybe\ncertificate: always\nproof:\n  algorithms: [none]\n  max_age: 1s\n  replay_cache_size: -1\n  public_origin: 'ftp://x'\n"
	_, err := settings(t, yaml)
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "dpop"},
		policytest.ConfigErrorAt{Line: 2, Path: "certificate"},
		policytest.ConfigErrorAt{Line: 4, Path: "proof.algorithms[0]"},
		policytest.ConfigErrorAt{Line: 6, Path: "proof.replay_cache_size"},
		policytest.ConfigErrorAt{Line: 7, Path: "proof.public_origin"},
	)
}
