package introspect

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	const ep = "endpoint: https://idp.example/introspect\n"
	const cred = "client_id: gw\nclient_secret: s\n"
	tests := []struct {
		name string
		yaml string
		line int
		path string
		msg  string
	}{
		{"no endpoint", cred, 1, "", "endpoint is required"},
		{"unknown field", ep + cred + "cache_ttl: 5s\n", 4, "cache_ttl", "unknown field"},
		{"endpoint not a URL", "endpoint: idp.example\n" + cred, 1, "endpoint", "is not an http(s) URL"},
		{"endpoint ftp", "endpoint: ftp://idp.example/x\n" + cred, 1, "endpoint", "is not an http(s) URL"},
		{"endpoint with credentials", "endpoint: https://u:p@idp.example/x\n" + cred, 1, "endpoint", "credentials in the URL"},
		{"plain http", "endpoint: http://idp.example/x\n" + cred, 1, "endpoint", "clear text"},
		{"no client id", ep + "client_secret: s\n", 1, "", "client_id is required"},
		{"no client secret", ep + "client_id: gw\n", 1, "", "client_secret is required"},
		{"unset secret variable", ep + "client_id: gw\nclient_secret: {env: GATEHOUSE_TEST_UNSET_VAR}\n", 3, "client_secret.env", "GATEHOUSE_TEST_UNSET_VAR"},
		{"bad auth method", ep + cred + "auth_method: private_key_jwt\n", 4, "auth_method", `unknown auth_method "private_key_jwt"`},
		{"missing ca file", ep + cred + "ca_file: /nonexistent/ca.pem\n", 4, "ca_file", "no such file"},
		{"ca file without pem", ep + cred + "ca_file: " + notPEM + "\n", 4, "ca_file", "no PEM certificate"},
		{"bad timeout", ep + cred + "timeout: 2\n", 4, "timeout", "use a unit"},
		{"zero timeout", ep + cred + "timeout: 0s\n", 4, "timeout", "more than 0"},
		{"zero ttl", ep + cred + "cache:\n  ttl: 0s\n", 5, "cache.ttl", "cache.disabled"},
		{"zero size", ep + cred + "cache:\n  size: 0\n", 5, "cache.size", "more than 0"},
		{"negative size", ep + cred + "cache:\n  size: -3\n", 5, "cache.size", "more than 0"},
		{"empty audience", ep + cred + "audiences:\n  - a\n  - \"\"\n", 6, "audiences[1]", "not empty"},
		{"huge leeway", ep + cred + "leeway: 1h\n", 4, "leeway", "at most 5m0s"},
		{"empty scope field", ep + cred + "scope_field: \"\"\n", 4, "scope_field", "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), &authn.Env{Env: policytest.Env(), Realm: "api"})
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name, yaml string
		check      func(p *parsed) bool
	}{
		{"defaults", "", func(p *parsed) bool {
			return p.timeout == 2*time.Second && p.ttl == time.Minute && p.negTTL == 10*time.Second &&
				p.size == 10000 && p.hint == "access_token" && p.scopeField == "scope" && p.basic != "" && !p.noCache
		}},
		{"partial cache keeps other defaults", "cache: {ttl: 30s}\n", func(p *parsed) bool {
			return p.ttl == 30*time.Second && p.negTTL == 10*time.Second && p.size == 10000
		}},
		{"post", "auth_method: client_secret_post\n", func(p *parsed) bool { return p.basic == "" }},
		{"disabled cache ignores its sizes", "cache: {disabled: true, size: 0}\n", func(p *parsed) bool { return p.noCache }},
		{"endpoint kept", "", func(p *parsed) bool { return p.endpoint == "https://idp.example/i" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decode(policytest.Node(t, "endpoint: https://idp.example/i\nclient_id: gw\nclient_secret: s\n"+tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(p) {
				t.Errorf("got %+v", *p)
			}
		})
	}
	for _, ep := range []string{"http://127.0.0.1:9/i", "http://[::1]/i", "http://localhost/i"} {
		if _, err := decode(policytest.Node(t, "endpoint: "+ep+"\nclient_id: gw\nclient_secret: s\n")); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
	if _, err := decode(policytest.Node(t, "endpoint: http://idp.internal/i\nallow_http: true\nclient_id: gw\nclient_secret: s\n")); err != nil {
		t.Errorf("allow_http: %v", err)
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place, before the CA file is read.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "endpoint: http://idp.example/introspect\nclient_id: gw\nclient_secret: s\nauth_method: jwt\ntimeout: 0s\n" +
		"cache: {ttl: 0s}\naudiences: ['']\nleeway: 1h\nca_file: /nonexistent.pem\n"
	_, err := New(policytest.Node(t, yaml), &authn.Env{Env: policytest.Env()})
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "endpoint"},
		policytest.ConfigErrorAt{Line: 4, Path: "auth_method"},
		policytest.ConfigErrorAt{Line: 5, Path: "timeout"},
		policytest.ConfigErrorAt{Line: 6, Path: "cache.ttl"},
		policytest.ConfigErrorAt{Line: 7, Path: "audiences[0]"},
		policytest.ConfigErrorAt{Line: 8, Path: "leeway"},
	)
}
