package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigDefaults(t *testing.T) {
	s, err := decode(policytest.Node(t, "issuer: https://idp.example\naudiences: [api]\nalgorithms: [RS256]\noidc_discovery: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"refresh", s.refresh, defaultRefresh},
		{"refetch", s.refetch, defaultRefetch},
		{"fetch timeout", s.fetchTimeout, defaultFetchTimeout},
		{"leeway", s.leeway, defaultLeeway},
		{"max token bytes", s.maxTokenBytes, defaultMaxTokenBytes},
		{"scope claim", s.scopeClaim, "scope"},
		{"subject claim", s.subjectClaim, "sub"},
		{"cache size", s.cacheSize, defaultCacheSize},
		{"authorization header", s.authzHeader, true},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	s, err = decode(policytest.Node(t, "issuer: https://idp.example\naudiences: [api]\nalgorithms: [RS256]\noidc_discovery: true\nleeway: 0s\ntyp: Application/AT+JWT\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.leeway != 0 || s.typ != "at+jwt" {
		t.Errorf("leeway %v typ %q, want an explicit 0 and at+jwt", s.leeway, s.typ)
	}
}

func TestConfigErrors(t *testing.T) {
	const base = "issuer: https://idp.example\naudiences: [api]\n"
	for _, tc := range []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"unknown field", base + "algorithms: [RS256]\noidc_discovery: true\njwks_ur: x\n", 5, "jwks_ur", "unknown"},
		{"no issuer", "audiences: [api]\nalgorithms: [RS256]\njwks_url: https://idp/keys\n", 1, "", "issuer is required"},
		{"no audiences", "issuer: https://idp\nalgorithms: [RS256]\njwks_url: https://idp/keys\n", 1, "", "audiences is required"},
		{"empty audience", "issuer: https://idp\naudiences: [api, '']\nalgorithms: [RS256]\njwks_url: https://idp/keys\n", 2, "audiences[1]", "empty audience"},
		{"no algorithms", base + "jwks_url: https://idp/keys\n", 1, "", "algorithms is required"},
		{"none", base + "algorithms: [RS256, none]\njwks_url: https://idp/keys\n", 3, "algorithms[1]", `"none" is never allowed`},
		{"HS256", base + "algorithms:\n  - HS256\njwks_url: https://idp/keys\n", 4, "algorithms[0]", "HMAC"},
		{"wrong case", base + "algorithms: [rs256]\njwks_url: https://idp/keys\n", 3, "algorithms[0]", "did you mean RS256"},
		{"unknown alg", base + "algorithms: [ES256K]\njwks_url: https://idp/keys\n", 3, "algorithms[0]", "unknown algorithm"},
		{"no key source", base + "algorithms: [RS256]\n", 1, "", "exactly one of jwks_url, oidc_discovery and keys"},
		{"two key sources", base + "algorithms: [RS256]\njwks_url: https://idp/keys\noidc_discovery: true\n", 1, "", "exactly one"},
		{"jwks_url not http", base + "algorithms: [RS256]\njwks_url: ftp://idp/keys\n", 4, "jwks_url", "not an http or https URL"},
		{"jwks_url in clear text", base + "algorithms: [RS256]\njwks_url: http://idp.example/keys\n", 4, "jwks_url", "allow_http"},
		{"jwks_url with credentials", base + "algorithms: [RS256]\njwks_url: https://u:p@idp/keys\n", 4, "jwks_url", "credentials"},
		{"discovery without URL issuer", "issuer: idp\naudiences: [api]\nalgorithms: [RS256]\noidc_discovery: true\n", 1, "issuer", "oidc_discovery needs an http(s) issuer URL"},
		{"empty keys", base + "algorithms: [RS256]\nkeys: []\n", 4, "keys", "keys is empty"},
		{"key without file", base + "algorithms: [RS256]\nkeys:\n  - kid: a\n", 5, "keys[0]", "file is required"},
		{"missing key file", base + "algorithms: [RS256]\nkeys:\n  - file: /nonexistent/key.pem\n", 5, "keys[0].file", "no such file"},
		{"missing ca file", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nca_file: /nonexistent/ca.pem\n", 5, "ca_file", "no such file"},
		{"refresh too short", base + "algorithms: [RS256]\njwks_url: https://idp/keys\njwks_refresh: 10ms\n", 5, "jwks_refresh", "at least 1s"},
		{"refetch too short", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nunknown_kid_refetch: 10ms\n", 5, "unknown_kid_refetch", "at least 1s"},
		{"fetch timeout too long", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nfetch_timeout: 2m\njwks_refresh: 1h\n", 5, "fetch_timeout", "at most 1m"},
		{"bad duration", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nfetch_timeout: soon\n", 5, "fetch_timeout", ""},
		{"leeway too large", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nleeway: 1h\n", 5, "leeway", "at most 5m"},
		{"empty required claim", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nrequired_claims: [jti, '']\n", 5, "required_claims[1]", "empty claim name"},
		{"token size too small", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nmax_token_bytes: 10\n", 5, "max_token_bytes", "between"},
		{"cache size zero", base + "algorithms: [RS256]\njwks_url: https://idp/keys\ncache:\n  size: 0\n", 6, "cache.size", "cache.disabled"},
		{"empty from", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nfrom: {}\n", 5, "from", "at least one"},
		{"bad header name", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nfrom: {header: 'X Token'}\n", 5, "from.header", "not a valid header name"},
		{"bad cookie name", base + "algorithms: [RS256]\njwks_url: https://idp/keys\nfrom:\n  cookie: 'a;b'\n", 6, "from.cookie", "not a valid cookie name"},
		{"wrong type", base + "algorithms: RS256\njwks_url: https://idp/keys\n", 3, "algorithms", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(policytest.Node(t, tc.yaml))
			policytest.WantConfigError(t, err, tc.line, tc.path, tc.msg)
		})
	}
}

// TestConfigErrorsAtOnce: independent problems are reported in one load,
// each at its place, and a bound relative to a wrong jwks_refresh is not
// reported as a second problem.
func TestConfigErrorsAtOnce(t *testing.T) {
	const yaml = "issuer: https://idp.example\n" + // 1
		"audiences: [api, '']\n" + // 2
		"algorithms: [RS256, none]\n" + // 3
		"jwks_url: http://idp.example/keys\n" + // 4
		"jwks_refresh: 10ms\n" + // 5
		"leeway: 1h\n" + // 6
		"required_claims: ['']\n" + // 7
		"from: {cookie: 'a;b'}\n" + // 8
		"jwe:\n" + // 9
		"  algorithms: [dir]\n" + // 10
		"  keys: []\n" // 11
	_, err := decode(policytest.Node(t, yaml))
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 2, Path: "audiences[1]"},
		policytest.ConfigErrorAt{Line: 3, Path: "algorithms[1]"},
		policytest.ConfigErrorAt{Line: 4, Path: "jwks_url"},
		policytest.ConfigErrorAt{Line: 5, Path: "jwks_refresh"},
		policytest.ConfigErrorAt{Line: 6, Path: "leeway"},
		policytest.ConfigErrorAt{Line: 7, Path: "required_claims[0]"},
		policytest.ConfigErrorAt{Line: 8, Path: "from.cookie"},
		policytest.ConfigErrorAt{Line: 10, Path: "jwe.algorithms[0]"},
		policytest.ConfigErrorAt{Line: 11, Path: "jwe.keys"},
	)
}

// TestConfigValidateNoIO: validate reads no file, so a config whose only
// problems are files is valid until provision.
func TestConfigValidateNoIO(t *testing.T) {
	n := policytest.Node(t, "issuer: https://idp.example\naudiences: [api]\nalgorithms: [RS256]\n"+
		"jwks_url: https://idp.example/keys\nca_file: /nonexistent/ca.pem\n")
	c := Config{Cache: CacheConfig{Size: defaultCacheSize}} // as decode does
	if err := n.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(n); err != nil {
		t.Fatalf("validate: %v", err)
	}
	_, err := c.provision(n)
	policytest.WantConfigError(t, err, 5, "ca_file", "no such file")
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func localNode(t *testing.T, dir, yaml string) *config.Node {
	t.Helper()
	n, err := config.ParseNode(filepath.Join(dir, "gatehouse.yaml"), []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLocalKeys(t *testing.T) {
	dir := t.TempDir()
	rsaS := signer{"", jose.RS256, rsaKey(0)}
	ecS := signer{"ec1", jose.ES256, ecKey(t, elliptic.P256())}
	edS := signer{"ed1", jose.EdDSA, edKey(t)}
	der, _ := x509.MarshalPKIXPublicKey(rsaS.key.Public())
	writeFile(t, dir, "rsa.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	ecJWK, _ := json.Marshal(ecS.jwk())
	writeFile(t, dir, "ec.jwk", ecJWK)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{edS.jwk()}})
	writeFile(t, dir, "keys.json", set)
	privDER, _ := x509.MarshalECPrivateKey(ecS.key.(*ecdsa.PrivateKey))
	writeFile(t, dir, "private.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}))
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: ecS.key, KeyID: "p", Algorithm: "ES256"})
	writeFile(t, dir, "private.jwk", privJWK)
	small, _ := rsaKeyOfBits(t, 1024)
	smallDER, _ := x509.MarshalPKIXPublicKey(small)
	writeFile(t, dir, "small.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER}))

	const head = "issuer: https://idp.example\naudiences: [" + testAud + "]\n"
	w := newWorld()
	a, err := New(localNode(t, dir, head+"algorithms: [RS256, ES256, EdDSA]\nkeys:\n  - file: rsa.pem\n    kid: rsa1\n  - file: ec.jwk\n  - file: keys.json\n"), w.env())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, s := range []signer{{"rsa1", jose.RS256, rsaS.key}, ecS, edS, {"", jose.RS256, rsaS.key}} {
		t.Run(string(s.alg)+"/"+s.kid, func(t *testing.T) {
			if _, err := auth(t, a, bearer(s.sign(t, claims("https://idp.example")))); err != nil {
				t.Fatal(err)
			}
		})
	}

	for _, tc := range []struct {
		name, yaml string
		line       int
		msg        string
	}{
		{"private PEM", head + "algorithms: [ES256]\nkeys:\n  - file: private.pem\n", 5, "private key"},
		{"private JWK", head + "algorithms: [ES256]\nkeys:\n  - file: private.jwk\n", 5, "private key material"},
		{"small RSA key", head + "algorithms: [RS256]\nkeys:\n  - file: small.pem\n", 5, "too small"},
		{"key of the wrong type", head + "algorithms: [RS256]\nkeys:\n  - file: ec.jwk\n", 5, "cannot verify any of the allowed algorithms"},
		{"ca_file with local keys", head + "algorithms: [RS256]\nkeys:\n  - file: rsa.pem\nca_file: x.pem\n", 6, "ca_file is for key servers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(localNode(t, dir, tc.yaml), w.env())
			var ce *config.Error
			if !asConfigError(err, &ce) || ce.Line != tc.line || !contains(ce.Msg, tc.msg) {
				t.Errorf("got %v, want a config error at line %d containing %q", err, tc.line, tc.msg)
			}
		})
	}
	_ = time.Second
}
