package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// env returns a lookupEnv over a fixed map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

const goodConfig = `# a full config
listeners:
  - name: public
    address: ":8443"
    tls:
      cert_file: /etc/gh/tls.crt
      key_file: /etc/gh/tls.key
      min_version: 1.3
      client_auth: verify_if_given
      client_ca_file: /etc/gh/ca.pem
    read_timeout: 30s
    max_header_bytes: 32KiB
  - address: 127.0.0.1:${PLAIN_PORT}
    h2c: true
admin:
  address: "off"
trusted_proxies: [10.0.0.0/8, 192.168.1.1, "::1"]
access_log:
  output: /var/log/gh/access.log
shutdown_timeout: 1m30s
routes:
  - name: products
    match:
      hosts: [API.Example.com, "*.example.org"]
      path_prefix: /products
      methods: [GET, POST]
    upstream: &fast
      url: http://products.internal:8080/v1
      connect_timeout: 2s
      max_idle_conns_per_host: 32
    policies:
      - ipfilter:
          allow: [10.0.0.0/8]
      - size_limit:
  - name: soap
    soap: "1.2"
    match:
      path: /ws/{service}
    upstream:
      <<: *fast
      url: https://soap.internal
      tls:
        ca_file: ca.pem
        server_name: soap.internal
      timeout: 10s
`

func TestLoadGood(t *testing.T) {
	src := goodConfig
	c, err := LoadBytes("gh.yaml", []byte(src), env(map[string]string{"PLAIN_PORT": "8080"}))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	want := &Config{
		Listeners: []Listener{
			{
				Name:    "public",
				Address: ":8443",
				TLS: &ServerTLS{
					CertFile: "/etc/gh/tls.crt", KeyFile: "/etc/gh/tls.key",
					MinVersion: "1.3", ClientAuth: "verify_if_given", ClientCAFile: "/etc/gh/ca.pem",
				},
				ReadHeaderTimeout:   Duration(DefaultReadHeaderTimeout),
				ReadTimeout:         Duration(30 * time.Second),
				IdleTimeout:         Duration(DefaultIdleTimeout),
				MaxHeaderBytes:      32 << 10,
				BodyIdleTimeout:     Duration(DefaultBodyIdleTimeout),
				MaxConnections:      DefaultMaxConnections,
				MaxConnectionsPerIP: DefaultMaxConnectionsPerIP,
			},
			{
				Name:                "listener-1",
				Address:             "127.0.0.1:8080",
				H2C:                 true,
				ReadHeaderTimeout:   Duration(DefaultReadHeaderTimeout),
				IdleTimeout:         Duration(DefaultIdleTimeout),
				MaxHeaderBytes:      DefaultMaxHeaderBytes,
				BodyIdleTimeout:     Duration(DefaultBodyIdleTimeout),
				MaxConnections:      DefaultMaxConnections,
				MaxConnectionsPerIP: DefaultMaxConnectionsPerIP,
			},
		},
		Admin:           Admin{Address: "off", DecisionHistory: DefaultDecisionHistory},
		Audit:           Audit{Output: "off", MaxSize: DefaultAuditMaxSize, MaxFiles: DefaultAuditMaxFiles},
		TrustedProxies:  []string{"10.0.0.0/8", "192.168.1.1", "::1"},
		AccessLog:       AccessLog{Output: "/var/log/gh/access.log"},
		ShutdownTimeout: Duration(90 * time.Second),
		Routes: []Route{
			{
				Name: "products",
				Match: Match{
					Hosts:      []string{"api.example.com", "*.example.org"},
					PathPrefix: "/products",
					Methods:    []string{"GET", "POST"},
				},
				Upstream: Upstream{
					URL:                   "http://products.internal:8080/v1",
					ConnectTimeout:        Duration(2 * time.Second),
					ResponseHeaderTimeout: Duration(DefaultResponseHeaderTimeout),
					IdleConnTimeout:       Duration(DefaultIdleConnTimeout),
					MaxIdleConnsPerHost:   32,
				},
				Policies: []PolicySpec{{Type: "ipfilter"}, {Type: "size_limit"}},
			},
			{
				Name:  "soap",
				SOAP:  "1.2",
				Match: Match{Path: "/ws/{service}"},
				Upstream: Upstream{
					URL:                   "https://soap.internal",
					TLS:                   &UpstreamTLS{CAFile: "ca.pem", ServerName: "soap.internal"},
					Timeout:               Duration(10 * time.Second),
					ConnectTimeout:        Duration(2 * time.Second), // merged from *fast
					ResponseHeaderTimeout: Duration(DefaultResponseHeaderTimeout),
					IdleConnTimeout:       Duration(DefaultIdleConnTimeout),
					MaxIdleConnsPerHost:   32,
				},
			},
		},
	}
	opts := cmp.Options{cmpopts.IgnoreUnexported(Config{}), cmpopts.IgnoreFields(PolicySpec{}, "Config")}
	if diff := cmp.Diff(want, c, opts); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}

	// The policy nodes keep their place for the factories.
	ipf := c.Routes[0].Policies[0].Config
	if got, want := ipf.Path(), "routes[0].policies[0].ipfilter"; got != want {
		t.Errorf("ipfilter Path() = %q, want %q", got, want)
	}
	if got, want := ipf.Line(), 32; got != want {
		t.Errorf("ipfilter Line() = %d, want %d", got, want)
	}
	if got, want := ipf.File(), "gh.yaml"; got != want {
		t.Errorf("ipfilter File() = %q, want %q", got, want)
	}
	var ipcfg struct {
		Allow []string `yaml:"allow"`
	}
	if err := ipf.Decode(&ipcfg); err != nil {
		t.Fatalf("ipfilter Decode: %v", err)
	}
	if diff := cmp.Diff([]string{"10.0.0.0/8"}, ipcfg.Allow); diff != "" {
		t.Errorf("ipfilter allow (-want +got):\n%s", diff)
	}
	sl := c.Routes[0].Policies[1].Config
	if !sl.IsZero() {
		t.Errorf("size_limit with no value: IsZero() = false, want true")
	}
	if got, want := sl.Line(), 34; got != want {
		t.Errorf("size_limit Line() = %d, want %d", got, want)
	}
	if err := sl.Decode(&ipcfg); err != nil {
		t.Errorf("Decode of an empty node: %v", err)
	}

	gotPrefixes := c.TrustedPrefixes()
	wantPrefixes := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("::1/128"),
	}
	if diff := cmp.Diff(wantPrefixes, gotPrefixes, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("TrustedPrefixes (-want +got):\n%s", diff)
	}
}

func TestLoadMinimalDefaults(t *testing.T) {
	c, err := LoadBytes("min.yaml", []byte("listeners: [{address: ':80', tls: {cert_file: c, key_file: k}}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Admin.Address, DefaultAdminAddress; got != want {
		t.Errorf("admin address = %q, want %q", got, want)
	}
	if got, want := c.AccessLog.Output, "stdout"; got != want {
		t.Errorf("access log output = %q, want %q", got, want)
	}
	if got, want := c.ShutdownTimeout.Std(), DefaultShutdownTimeout; got != want {
		t.Errorf("shutdown timeout = %v, want %v", got, want)
	}
	l := c.Listeners[0]
	if l.Name != "listener-0" || l.TLS.MinVersion != "1.2" || l.TLS.ClientAuth != "none" {
		t.Errorf("listener defaults: name %q, min_version %q, client_auth %q; want listener-0, 1.2, none",
			l.Name, l.TLS.MinVersion, l.TLS.ClientAuth)
	}
	if c.TrustedPrefixes() != nil {
		t.Errorf("TrustedPrefixes() = %v, want nil", c.TrustedPrefixes())
	}
}

// base is a valid prefix to which the bad cases add their mistakes; its
// routes key comes last so cases can append routes.
const base = `listeners:
  - address: ":8080"
routes:
`

const goodRoute = `  - name: r
    match: {path_prefix: /}
    upstream: {url: "http://u"}
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		env      map[string]string
		wantLine int
		wantPath string // substring of the path
		wantMsg  string // substring of the message
		noColumn bool   // yaml.v3 syntax errors have a line only
	}{
		{
			name:     "unknown top-level field",
			src:      "listeners: [{address: ':80'}]\nlisteners_extra: 1\n",
			wantLine: 2, wantPath: "listeners_extra", wantMsg: `unknown field "listeners_extra"`,
		},
		{
			name:     "unknown field with suggestion",
			src:      "listeners: [{address: ':80'}]\nadmin:\n  adress: ':9000'\n",
			wantLine: 3, wantPath: "admin.adress", wantMsg: `unknown field "adress" (did you mean "address"?)`,
		},
		{
			name:     "unknown field in a route",
			src:      base + goodRoute + "    timeout: 5s\n",
			wantLine: 7, wantPath: "routes[0].timeout", wantMsg: `unknown field "timeout"`,
		},
		{
			name: "unknown field in upstream tls",
			src: base + `  - name: r
    match: {path: /x}
    upstream:
      url: https://u
      tls:
        ca_file: ca.pem
        verify: false
`,
			wantLine: 10, wantPath: "routes[0].upstream.tls.verify", wantMsg: `unknown field "verify"`,
		},
		{
			name:     "string for bool",
			src:      "listeners:\n  - address: ':80'\n    h2c: yes\n",
			wantLine: 3, wantPath: "listeners[0].h2c", wantMsg: `expected a boolean (true or false), got string "yes"`,
		},
		{
			name:     "mapping for string",
			src:      "listeners:\n  - address:\n      host: a\n",
			wantLine: 2, wantPath: "listeners[0].address", wantMsg: "expected a string, got a mapping",
		},
		{
			name:     "boolean for string",
			src:      "listeners:\n  - address: ':80'\n    name: true\n",
			wantLine: 3, wantPath: "listeners[0].name", wantMsg: "expected a string, got boolean",
		},
		{
			name:     "unquoted yaml 1.1 boolean for string",
			src:      "listeners:\n  - address: ':80'\n    name: no\n",
			wantLine: 3, wantPath: "listeners[0].name", wantMsg: `write "no" for the string`,
		},
		{
			name:     "abc for int",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream: {url: 'http://u', max_idle_conns_per_host: abc}\n",
			wantLine: 6, wantPath: "routes[0].upstream.max_idle_conns_per_host", wantMsg: `expected an integer, got string "abc"`,
		},
		{
			name:     "int out of range",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream: {url: 'http://u', max_idle_conns_per_host: 9223372036854775808}\n",
			wantLine: 6, wantPath: "routes[0].upstream.max_idle_conns_per_host", wantMsg: "out of range [-9223372036854775808, 9223372036854775807]",
		},
		{
			name:     "bad duration",
			src:      "listeners:\n  - address: ':80'\n    idle_timeout: 5 minutes\n",
			wantLine: 3, wantPath: "listeners[0].idle_timeout", wantMsg: `invalid duration "5 minutes"`,
		},
		{
			name:     "duration without unit",
			src:      "listeners: [{address: ':80'}]\nshutdown_timeout: 30\n",
			wantLine: 2, wantPath: "shutdown_timeout", wantMsg: "use a unit, e.g. 5s",
		},
		{
			name:     "negative duration",
			src:      "listeners: [{address: ':80'}]\nshutdown_timeout: -1s\n",
			wantLine: 2, wantPath: "shutdown_timeout", wantMsg: "must not be negative",
		},
		{
			name:     "bad byte size",
			src:      "listeners:\n  - address: ':80'\n    max_header_bytes: 64kb\n",
			wantLine: 3, wantPath: "listeners[0].max_header_bytes", wantMsg: `unknown unit "kb"`,
		},
		{
			name:     "missing listeners",
			src:      "admin: {address: 'off'}\n",
			wantLine: 1, wantPath: "listeners", wantMsg: "at least one listener",
		},
		{
			name:     "missing listener address",
			src:      "listeners:\n  - name: a\n    address: ':80'\n  - name: b\n",
			wantLine: 4, wantPath: "listeners[1].address", wantMsg: "required field is missing",
		},
		{
			name:     "missing route name",
			src:      base + "  - match: {path: /}\n    upstream: {url: 'http://u'}\n",
			wantLine: 4, wantPath: "routes[0].name", wantMsg: "required field is missing",
		},
		{
			name:     "missing upstream url",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream: {h2c: true}\n",
			wantLine: 6, wantPath: "routes[0].upstream.url", wantMsg: "required field is missing",
		},
		{
			name:     "duplicate route name",
			src:      base + goodRoute + goodRoute,
			wantLine: 7, wantPath: "routes[1].name", wantMsg: `duplicate route name "r" (first at line 4)`,
		},
		{
			name:     "duplicate listener name",
			src:      "listeners:\n  - {name: a, address: ':80'}\n  - {name: a, address: ':81'}\n",
			wantLine: 3, wantPath: "listeners[1].name", wantMsg: "first at line 2",
		},
		{
			name:     "bad listener address",
			src:      "listeners:\n  - address: localhost\n",
			wantLine: 2, wantPath: "listeners[0].address", wantMsg: "want host:port",
		},
		{
			name:     "bad listener port",
			src:      "listeners:\n  - address: ':70000'\n",
			wantLine: 2, wantPath: "listeners[0].address", wantMsg: "port must be a number 0-65535",
		},
		{
			name:     "tls listener without key",
			src:      "listeners:\n  - address: ':443'\n    tls:\n      cert_file: c\n",
			wantLine: 3, wantPath: "listeners[0].tls.key_file", wantMsg: "required field is missing",
		},
		{
			name:     "bad tls version",
			src:      "listeners:\n  - address: ':443'\n    tls: {cert_file: c, key_file: k, min_version: 1.1}\n",
			wantLine: 3, wantPath: "listeners[0].tls.min_version", wantMsg: `invalid TLS version "1.1"`,
		},
		{
			name:     "verifying client auth without ca",
			src:      "listeners:\n  - address: ':443'\n    tls:\n      cert_file: c\n      key_file: k\n      client_auth: require_and_verify\n",
			wantLine: 3, wantPath: "listeners[0].tls.client_ca_file", wantMsg: "required when client_auth is require_and_verify",
		},
		{
			name:     "bad client auth",
			src:      "listeners:\n  - address: ':443'\n    tls:\n      cert_file: c\n      key_file: k\n      client_auth: always\n",
			wantLine: 6, wantPath: "listeners[0].tls.client_auth", wantMsg: `invalid client_auth "always"`,
		},
		{
			name:     "h2c with tls",
			src:      "listeners:\n  - address: ':443'\n    tls: {cert_file: c, key_file: k}\n    h2c: true\n",
			wantLine: 4, wantPath: "listeners[0].h2c", wantMsg: "h2c is for plain listeners",
		},
		{
			name:     "bad admin address",
			src:      "listeners: [{address: ':80'}]\nadmin: {address: 9901}\n",
			wantLine: 2, wantPath: "admin.address", wantMsg: "want host:port",
		},
		{
			name:     "both path and path_prefix",
			src:      base + "  - name: r\n    match:\n      path: /a\n      path_prefix: /b\n    upstream: {url: 'http://u'}\n",
			wantLine: 7, wantPath: "routes[0].match.path_prefix", wantMsg: "mutually exclusive",
		},
		{
			name:     "neither path nor path_prefix",
			src:      base + "  - name: r\n    match:\n      methods: [GET]\n    upstream: {url: 'http://u'}\n",
			wantLine: 5, wantPath: "routes[0].match", wantMsg: "one of path or path_prefix is required",
		},
		{
			name:     "relative path",
			src:      base + "  - name: r\n    match: {path: api}\n    upstream: {url: 'http://u'}\n",
			wantLine: 5, wantPath: "routes[0].match.path", wantMsg: "must start with /",
		},
		{
			name:     "path with query",
			src:      base + "  - name: r\n    match:\n      path_prefix: /a?b=1\n    upstream: {url: 'http://u'}\n",
			wantLine: 6, wantPath: "routes[0].match.path_prefix", wantMsg: "must not contain ? or #",
		},
		{
			name:     "bad method",
			src:      base + "  - name: r\n    match:\n      path: /\n      methods: [GET, \"PO ST\"]\n    upstream: {url: 'http://u'}\n",
			wantLine: 7, wantPath: "routes[0].match.methods[1]", wantMsg: `invalid method "PO ST"`,
		},
		{
			name:     "lower-case method",
			src:      base + "  - name: r\n    match:\n      path: /\n      methods:\n        - GET\n        - delete\n    upstream: {url: 'http://u'}\n",
			wantLine: 9, wantPath: "routes[0].match.methods[1]", wantMsg: `methods are case-sensitive; write "DELETE"`,
		},
		{
			name:     "duplicate method",
			src:      base + "  - name: r\n    match:\n      path: /\n      methods:\n        - GET\n        - GET\n    upstream: {url: 'http://u'}\n",
			wantLine: 9, wantPath: "routes[0].match.methods[1]", wantMsg: "duplicate method GET",
		},
		{
			name:     "any method beside another",
			src:      base + "  - name: r\n    match:\n      path: /\n      methods: [GET, \"*\"]\n    upstream: {url: 'http://u'}\n",
			wantLine: 7, wantPath: "routes[0].match.methods[1]", wantMsg: `"*" (any method) must be the only method`,
		},
		{
			name:     "host with port",
			src:      base + "  - name: r\n    match:\n      path: /\n      hosts:\n        - api.example.com:443\n    upstream: {url: 'http://u'}\n",
			wantLine: 8, wantPath: "routes[0].match.hosts[0]", wantMsg: "must not contain a port",
		},
		{
			name:     "bad wildcard host",
			src:      base + "  - name: r\n    match:\n      path: /\n      hosts: [\"api.*.com\"]\n    upstream: {url: 'http://u'}\n",
			wantLine: 7, wantPath: "routes[0].match.hosts[0]", wantMsg: "wildcard must be the whole leftmost label",
		},
		{
			name:     "invalid host name",
			src:      base + "  - name: r\n    match:\n      path: /\n      hosts: [\"exa mple.com\"]\n    upstream: {url: 'http://u'}\n",
			wantLine: 7, wantPath: "routes[0].match.hosts[0]", wantMsg: "not a DNS name",
		},
		{
			name:     "duplicate host after normalization",
			src:      base + "  - name: r\n    match:\n      path: /\n      hosts: [a.example, A.Example]\n    upstream: {url: 'http://u'}\n",
			wantLine: 7, wantPath: "routes[0].match.hosts[1]", wantMsg: "duplicate host a.example",
		},
		{
			name:     "bad soap version",
			src:      base + goodRoute + "    soap: 2\n",
			wantLine: 7, wantPath: "routes[0].soap", wantMsg: `invalid SOAP version "2"`,
		},
		{
			name:     "soap fault status not 500",
			src:      base + goodRoute + "    soap: \"1.1\"\n    soap_fault_status: 401\n",
			wantLine: 8, wantPath: "routes[0].soap_fault_status", wantMsg: "invalid status 401",
		},
		{
			name:     "soap fault status on a SOAP 1.2 route",
			src:      base + goodRoute + "    soap: \"1.2\"\n    soap_fault_status: 500\n",
			wantLine: 8, wantPath: "routes[0].soap_fault_status", wantMsg: "only SOAP 1.1 routes",
		},
		{
			name:     "bad upstream scheme",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: ftp://files.internal\n",
			wantLine: 7, wantPath: "routes[0].upstream.url", wantMsg: "scheme must be http or https",
		},
		{
			name:     "upstream url without host",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: http:///x\n",
			wantLine: 7, wantPath: "routes[0].upstream.url", wantMsg: "has no host",
		},
		{
			name:     "upstream url with query",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: http://u/x?a=b\n",
			wantLine: 7, wantPath: "routes[0].upstream.url", wantMsg: "must not have a query",
		},
		{
			name:     "upstream url with user info",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: http://user:pw@u/\n",
			wantLine: 7, wantPath: "routes[0].upstream.url", wantMsg: "must not contain user info",
		},
		{
			name:     "upstream url with fragment",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: 'http://u/#top'\n",
			wantLine: 7, wantPath: "routes[0].upstream.url", wantMsg: "must not have a fragment",
		},
		{
			name:     "tls on http upstream",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: http://u\n      tls:\n        ca_file: ca.pem\n",
			wantLine: 8, wantPath: "routes[0].upstream.tls", wantMsg: "tls is only for https upstreams",
		},
		{
			name:     "h2c on https upstream",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: https://u\n      h2c: true\n",
			wantLine: 8, wantPath: "routes[0].upstream.h2c", wantMsg: "h2c is only for http upstreams",
		},
		{
			name:     "websocket on h2c upstream",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: http://u\n      h2c: true\n      websocket: true\n",
			wantLine: 9, wantPath: "routes[0].upstream.websocket", wantMsg: "cannot take a WebSocket upgrade",
		},
		{
			name:     "upstream client cert without key",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream:\n      url: https://u\n      tls:\n        cert_file: c.pem\n",
			wantLine: 8, wantPath: "routes[0].upstream.tls.key_file", wantMsg: "required with cert_file",
		},
		{
			name:     "bad CIDR in trusted_proxies",
			src:      "listeners: [{address: ':80'}]\ntrusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n",
			wantLine: 4, wantPath: "trusted_proxies[1]", wantMsg: `invalid CIDR "10.0.0.0/33"`,
		},
		{
			name:     "CIDR with host bits in trusted_proxies",
			src:      "listeners: [{address: ':80'}]\ntrusted_proxies: [10.1.2.3/8]\n",
			wantLine: 2, wantPath: "trusted_proxies[0]", wantMsg: "did you mean 10.0.0.0/8?",
		},
		{
			name:     "policy entry with two keys",
			src:      base + goodRoute + "    policies:\n      - ipfilter:\n        allow: [10.0.0.0/8]\n",
			wantLine: 9, wantPath: "routes[0].policies[0]", wantMsg: `got 2 (ipfilter, allow): is "allow" meant to be indented under "ipfilter"?`,
		},
		{
			name:     "policy entry not a mapping",
			src:      base + goodRoute + "    policies:\n      - ipfilter\n",
			wantLine: 8, wantPath: "routes[0].policies[0]", wantMsg: "a policy entry is a mapping with one key",
		},
		{
			name:     "unset env var",
			src:      "listeners:\n  - address: ':80'\n    name: ${LISTENER_NAME}\n",
			wantLine: 3, wantPath: "listeners[0].name", wantMsg: "environment variable LISTENER_NAME is not set",
		},
		{
			name:     "env var expands to a bad int",
			src:      base + "  - name: r\n    match: {path: /}\n    upstream: {url: 'http://u', max_idle_conns_per_host: '${N}'}\n",
			env:      map[string]string{"N": "12"},
			wantLine: 6, wantPath: "routes[0].upstream.max_idle_conns_per_host", wantMsg: `expected an integer, got string "12"`,
		},
		{
			name:     "unterminated env reference",
			src:      "listeners:\n  - address: ':80'\n    name: ${NAME\n",
			wantLine: 3, wantPath: "listeners[0].name", wantMsg: "unterminated ${",
		},
		{
			name:     "duplicate key",
			src:      "listeners:\n  - address: ':80'\n    name: a\n    name: b\n",
			wantLine: 4, wantPath: "listeners[0].name", wantMsg: `duplicate key "name" (first at line 3)`,
		},
		{
			name:     "duplicate top-level key",
			src:      "listeners: [{address: ':80'}]\nadmin: {address: 'off'}\nadmin: {address: ':1'}\n",
			wantLine: 3, wantPath: "admin", wantMsg: `duplicate key "admin" (first at line 2)`,
		},
		{
			name: "alias bomb",
			src: `a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
`,
			// e holds 10^5 x's and 11,111 sequences: 111,111 nodes.
			wantLine: 5, wantMsg: "aliases expand the document by more than 100000 nodes",
		},
		{
			name:     "self-referencing alias",
			src:      "listeners: &l [{address: ':80'}, *l]\n",
			wantLine: 1, wantMsg: "alias *l refers to a node containing it",
		},
		{
			name:     "multiple documents",
			src:      "listeners: [{address: ':80'}]\n---\nlisteners: [{address: ':81'}]\n",
			wantLine: 2, wantMsg: "multiple YAML documents",
		},
		{
			name:    "empty file",
			src:     "",
			wantMsg: "empty config",
		},
		{
			name:    "only comments",
			src:     "# nothing here\n",
			wantMsg: "empty config",
		},
		{
			name:     "top level not a mapping",
			src:      "- a\n- b\n",
			wantLine: 1, wantMsg: "the top level must be a mapping, got a sequence",
		},
		{
			name:     "yaml syntax error",
			src:      "listeners:\n  - address: ':80'\n\tname: x\n",
			wantLine: 3, wantMsg: "that cannot start any token",
		},
		{
			name:     "unsupported tag",
			src:      "listeners:\n  - address: !secret ':80'\n",
			wantLine: 2, wantPath: "listeners[0].address", wantMsg: "unsupported tag !secret",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes("bad.yaml", []byte(tt.src), env(tt.env))
			if err == nil {
				t.Fatalf("LoadBytes succeeded (%+v), want an error", c)
			}
			if c != nil {
				t.Errorf("LoadBytes returned a config with an error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *Error", err, err)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T) is not an Errors", err, err)
			}
			if len(errs) != 1 {
				t.Errorf("got %d errors, want 1:\n%v", len(errs), err)
			}
			if e.File != "bad.yaml" {
				t.Errorf("File = %q, want bad.yaml", e.File)
			}
			if e.Line != tt.wantLine {
				t.Errorf("Line = %d, want %d (%v)", e.Line, tt.wantLine, e)
			}
			if tt.wantLine > 0 && !tt.noColumn && e.Column == 0 {
				t.Errorf("Column = 0, want a column (%v)", e)
			}
			if !strings.Contains(e.Path, tt.wantPath) {
				t.Errorf("Path = %q, want it to contain %q", e.Path, tt.wantPath)
			}
			if !strings.Contains(e.Msg, tt.wantMsg) {
				t.Errorf("Msg = %q, want it to contain %q", e.Msg, tt.wantMsg)
			}
		})
	}
}

// TestValidateSharedUpstreamURL: routes with the same upstream URL share
// one parse of it (validateRoutes), and each is still checked as a whole
// and reported at its own place.
func TestValidateSharedUpstreamURL(t *testing.T) {
	route := func(i int, upstream string) string {
		return fmt.Sprintf("  - name: r%d\n    match: {path_prefix: /r%d/, methods: [GET, GET]}\n    upstream: %s\n", i, i, upstream)
	}
	src := "listeners: [{name: main, address: \"127.0.0.1:0\"}]\nroutes:\n" +
		route(0, "{url: \"ftp://files\"}") +
		route(1, "{url: \"https://u\"}") +
		route(2, "{url: \"ftp://files\"}") +
		route(3, "{url: \"https://u\", h2c: true}") +
		route(4, "{url: \"http://u:0\"}") +
		route(5, "{url: \"https://u\"}") +
		route(6, "{url: \"http://u:0\"}")
	_, err := LoadBytes("shared.yaml", []byte(src), nil)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d %s: %s", e.Line, e.Path, e.Msg))
	}
	want := []string{
		`4 routes[0].match.methods[1]: duplicate method GET`,
		`5 routes[0].upstream.url: URL "ftp://files": scheme must be http or https`,
		`7 routes[1].match.methods[1]: duplicate method GET`,
		`10 routes[2].match.methods[1]: duplicate method GET`,
		`11 routes[2].upstream.url: URL "ftp://files": scheme must be http or https`,
		`13 routes[3].match.methods[1]: duplicate method GET`,
		`14 routes[3].upstream.h2c: h2c is only for http upstreams (https negotiates HTTP/2 through ALPN)`,
		`16 routes[4].match.methods[1]: duplicate method GET`,
		`17 routes[4].upstream.url: URL "http://u:0": invalid port "0"`,
		`19 routes[5].match.methods[1]: duplicate method GET`,
		`22 routes[6].match.methods[1]: duplicate method GET`,
		`23 routes[6].upstream.url: URL "http://u:0": invalid port "0"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
