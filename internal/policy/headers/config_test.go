package headers

import (
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
		{"nothing to do", "{}\n", 1, "", "headers needs request, response or security"},
		{"nothing but false", "security:\n  content_type_options: false\n", 1, "", "headers needs"},
		{"unknown field", "request:\n  sett: {X-A: b}\n", 2, "request.sett", `unknown field "sett"`},
		{"unknown security field", "security:\n  hst: {}\n", 2, "security.hst", `unknown field "hst"`},
		{"bool as string", "security:\n  content_type_options: \"yes\"\n", 2, "security.content_type_options", "expected a boolean"},
		{"bad name", "request:\n  set:\n    X-Ok: a\n    Bad Name: b\n", 4, `request.set["Bad Name"]`, `invalid header name "Bad Name"`},
		{"bad name in remove", "response:\n  remove: [Server, \"X:Y\"]\n", 2, "response.remove[1]", "invalid header name"},
		{"CRLF injection", "response:\n  set:\n    X-A: \"ok\"\n    X-B: \"a\\r\\nSet-Cookie: x=1\"\n", 4, "response.set.X-B", "control character"},
		{"NUL", "request:\n  add:\n    X-A: \"a\\0b\"\n", 3, "request.add.X-A", "control character"},
		{"LF in security header", "security:\n  content_security_policy: \"default-src 'none'\\nX: y\"\n", 2, "security.content_security_policy", "control character"},
		{"set Connection", "request:\n  set:\n    connection: close\n", 3, "request.set.connection", "Connection is a hop-by-hop or framing header"},
		{"remove Host", "request:\n  remove:\n    - Host\n", 3, "request.remove[0]", "Host is a hop-by-hop"},
		{"set Transfer-Encoding", "response:\n  set: {Transfer-Encoding: chunked}\n", 2, "response.set.Transfer-Encoding", "Transfer-Encoding is a hop-by-hop"},
		{"add TE", "request:\n  add: {TE: trailers}\n", 2, "request.add.TE", "Te is a hop-by-hop"},
		{"Proxy-*", "response:\n  set:\n    Proxy-Authenticate: Basic\n", 3, "response.set.Proxy-Authenticate", "hop-by-hop"},
		{"remove Content-Length", "response:\n  remove: [Content-Length]\n", 2, "response.remove[0]", "Content-Length is a hop-by-hop or framing"},
		{"duplicate by case", "request:\n  set:\n    X-A: one\n    x-a: two\n", 4, "request.set.x-a", "X-A is given twice"},
		{"removed twice", "request:\n  remove: [X-A, x-a]\n", 2, "request.remove[1]", "removed twice"},
		{"frame options", "security:\n  frame_options: ALLOW-FROM https://x\n", 2, "security.frame_options", "want DENY or SAMEORIGIN"},
		{"referrer policy", "security:\n  referrer_policy: no-referer\n", 2, "security.referrer_policy", `invalid referrer policy "no-referer"`},
		{"referrer policy list", "security:\n  referrer_policy: \"no-referrer, bogus\"\n", 2, "security.referrer_policy", `"bogus"`},
		{"corp", "security:\n  cross_origin_resource_policy: same-host\n", 2, "security.cross_origin_resource_policy", "want one of same-site"},
		{"preload without subdomains", "security:\n  hsts:\n    max_age: 17520h\n    preload: true\n", 4, "security.hsts.preload", "requires include_subdomains"},
		{"preload too short", "security:\n  hsts:\n    max_age: 720h\n    include_subdomains: true\n    preload: true\n", 3, "security.hsts.max_age", "at least 8760h"},
		{"hsts fractions", "security:\n  hsts: {max_age: 1500ms}\n", 2, "security.hsts.max_age", "whole seconds"},
		{"hsts bad duration", "security:\n  hsts:\n    max_age: 1y\n", 3, "security.hsts.max_age", "invalid duration"},
		{"security header also set", "response:\n  set: {Content-Security-Policy: \"default-src 'self'\"}\nsecurity:\n  content_security_policy: \"default-src 'none'\"\n", 4, "security.content_security_policy", "also in response.set"},
		{"hsts also set", "response:\n  set: {strict-transport-security: max-age=1}\nsecurity:\n  hsts: {}\n", 4, "security.hsts", "also in response.set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigHSTS(t *testing.T) {
	tests := []struct {
		yaml string
		want string
	}{
		{"{}", "max-age=31536000"},
		{"{max_age: 24h}", "max-age=86400"},
		{"{max_age: 8760h, include_subdomains: true}", "max-age=31536000; includeSubDomains"},
		{"{max_age: 17520h, include_subdomains: true, preload: true}", "max-age=63072000; includeSubDomains; preload"},
		{"{include_subdomains: true, preload: true}", "max-age=31536000; includeSubDomains; preload"},
	}
	for _, tt := range tests {
		c, err := decode(policytest.Node(t, "security:\n  hsts: "+tt.yaml+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.yaml, err)
		}
		if c.hsts != tt.want {
			t.Errorf("%s: got %q, want %q", tt.yaml, c.hsts, tt.want)
		}
	}
}

func TestConfigSecurityValues(t *testing.T) {
	c, err := decode(policytest.Node(t, `
security:
  content_type_options: true
  frame_options: sameorigin
  referrer_policy: "no-referrer, strict-origin-when-cross-origin"
  content_security_policy: "default-src 'none'; frame-ancestors 'none'"
  cross_origin_resource_policy: same-origin
  permissions_policy: "geolocation=(), camera=()"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []field{
		{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
		{"Cross-Origin-Resource-Policy", "same-origin"},
		{"Permissions-Policy", "geolocation=(), camera=()"},
		{"Referrer-Policy", "no-referrer, strict-origin-when-cross-origin"},
		{"X-Content-Type-Options", "nosniff"},
		{"X-Frame-Options", "SAMEORIGIN"},
	}
	if len(c.resp.set) != len(want) {
		t.Fatalf("got %v, want %v", c.resp.set, want)
	}
	for i := range want {
		if c.resp.set[i] != want[i] {
			t.Errorf("[%d] = %v, want %v", i, c.resp.set[i], want[i])
		}
	}
	if c.hsts != "" {
		t.Errorf("hsts = %q without hsts settings", c.hsts)
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "request:\n  remove: [Host, 'a b']\n  set: {X-A: \"v\\r\\nX-B: w\"}\nresponse:\n  set: {X-Frame-Options: DENY}\n" +
		"security:\n  frame_options: DENY\n  referrer_policy: sometimes\n  hsts: {preload: true}\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 2, Path: "request.remove[0]"},
		policytest.ConfigErrorAt{Line: 2, Path: "request.remove[1]"},
		policytest.ConfigErrorAt{Line: 3, Path: "request.set.X-A"},
		policytest.ConfigErrorAt{Line: 7, Path: "security.frame_options"},
		policytest.ConfigErrorAt{Line: 8, Path: "security.referrer_policy"},
		policytest.ConfigErrorAt{Line: 9, Path: "security.hsts.preload"},
	)
}
