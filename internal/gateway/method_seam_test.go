package gateway_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// methodRoutes add method-override routes to seamRoutes: ov-item takes
// overrides, ov-get shares its path for GET, plain does not take them,
// and ov2 takes them on POST while its DELETE sibling does not.
const methodRoutes = `
  - name: ov-item
    match: {path: "/ov/items/{id}", methods: [POST, PUT, PATCH, DELETE]}
    method_override: true
    upstream: {url: "UPSTREAM/r/ov-item"}
  - name: ov-get
    match: {path: "/ov/items/{id}", methods: [GET]}
    upstream: {url: "UPSTREAM/r/ov-get"}
  - name: plain
    match: {path: "/plain/{id}", methods: [POST, DELETE]}
    upstream: {url: "UPSTREAM/r/plain"}
  - name: ov2
    match: {path: "/ov2/{id}", methods: [POST]}
    method_override: true
    upstream: {url: "UPSTREAM/r/ov2"}
  - name: ov2-delete
    match: {path: "/ov2/{id}", methods: [DELETE]}
    upstream: {url: "UPSTREAM/r/ov2-delete"}
  - name: any
    match: {path: "/any", methods: ["*"]}
    upstream: {url: "UPSTREAM/r/any"}
`

// isOverrideName reports whether a header name received upstream is a
// method-override field in any spelling.
func isOverrideName(k string) bool {
	k = strings.ReplaceAll(strings.ToLower(k), "_", "-")
	return k == "x-http-method-override" || k == "x-http-method" || k == "x-method-override"
}

// TestMethodSeam: methods are case-sensitive, a route without methods
// takes the standard ones only, and method-override fields never reach
// the upstream: on a route with method_override a POST's override is the
// method routed and forwarded, elsewhere the fields are dropped.
func TestMethodSeam(t *testing.T) {
	rec := newRecorder(t)
	g := startSeamGateway(t, rec, methodRoutes)
	addr := strings.TrimPrefix(g.URL, "http://")
	tests := []struct {
		name, method, target, headers string
		// status is the client's; on 204 the upstream got method on
		// route with target.
		status                  int
		code                    string
		method2, route, target2 string
	}{
		{"override header", "POST", "/ov/items/1", "X-HTTP-Method-Override: DELETE\r\n", 204, "", "DELETE", "ov-item", "/ov/items/1"},
		{"override header lower-case name", "POST", "/ov/items/1", "x-http-method-override: DELETE\r\n", 204, "", "DELETE", "ov-item", "/ov/items/1"},
		{"override header underscores", "POST", "/ov/items/1", "X_HTTP_Method_Override: DELETE\r\n", 204, "", "DELETE", "ov-item", "/ov/items/1"},
		{"override header mixed underscores", "POST", "/ov/items/1", "x-http_METHOD-override: PATCH\r\n", 204, "", "PATCH", "ov-item", "/ov/items/1"},
		{"x-http-method", "POST", "/ov/items/1", "X-HTTP-Method: PUT\r\n", 204, "", "PUT", "ov-item", "/ov/items/1"},
		{"x-method-override", "POST", "/ov/items/1", "X-Method-Override: PATCH\r\n", 204, "", "PATCH", "ov-item", "/ov/items/1"},
		{"two fields agreeing", "POST", "/ov/items/1", "X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\n", 204, "", "DELETE", "ov-item", "/ov/items/1"},
		{"query _method", "POST", "/ov/items/1?a=1&_method=DELETE&b=2", "", 204, "", "DELETE", "ov-item", "/ov/items/1?a=1&b=2"},
		{"query encoded _method", "POST", "/ov/items/1?%5Fmethod=PUT", "", 204, "", "PUT", "ov-item", "/ov/items/1"},
		{"query _method after ;", "POST", "/ov/items/1?a=1;_method=DELETE", "", 204, "", "DELETE", "ov-item", "/ov/items/1?a=1"},
		{"lower-case override", "POST", "/ov/items/1", "X-HTTP-Method-Override: delete\r\n", 400, "invalid_method_override", "", "", ""},
		{"override to CONNECT", "POST", "/ov/items/1", "X-HTTP-Method-Override: CONNECT\r\n", 400, "invalid_method_override", "", "", ""},
		{"override to TRACE", "POST", "/ov/items/1", "X-HTTP-Method-Override: TRACE\r\n", 400, "invalid_method_override", "", "", ""},
		{"override to GET", "POST", "/ov/items/1", "X-HTTP-Method-Override: GET\r\n", 400, "invalid_method_override", "", "", ""},
		{"override to an extension method", "POST", "/ov/items/1", "X-HTTP-Method-Override: PROPFIND\r\n", 400, "invalid_method_override", "", "", ""},
		{"two fields disagreeing", "POST", "/ov/items/1", "X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method-Override: PUT\r\n", 400, "invalid_method_override", "", "", ""},
		{"header and query disagreeing", "POST", "/ov/items/1?_method=PUT", "X-HTTP-Method: DELETE\r\n", 400, "invalid_method_override", "", "", ""},
		{"a list", "POST", "/ov/items/1", "X-HTTP-Method-Override: DELETE, PUT\r\n", 400, "invalid_method_override", "", "", ""},
		{"empty override", "POST", "/ov/items/1", "X-HTTP-Method-Override: \r\n", 400, "invalid_method_override", "", "", ""},
		{"override the target route does not take", "POST", "/ov2/1", "X-HTTP-Method-Override: DELETE\r\n", 400, "invalid_method_override", "", "", ""},
		{"form _method", "POST", "/ov/items/1", "BODY a=1&_method=DELETE&b=2", 204, "", "DELETE", "ov-item", "/ov/items/1"},
		{"form encoded _method", "POST", "/ov/items/1", "BODY %5Fmethod=PATCH", 204, "", "PATCH", "ov-item", "/ov/items/1"},
		{"form and header agreeing", "POST", "/ov/items/1", "X-HTTP-Method-Override: PUT\r\nBODY _method=PUT&x=2", 204, "", "PUT", "ov-item", "/ov/items/1"},
		{"form and header disagreeing", "POST", "/ov/items/1", "X-HTTP-Method-Override: PUT\r\nBODY _method=DELETE", 400, "invalid_method_override", "", "", ""},
		{"form lower-case _method", "POST", "/ov/items/1", "BODY _method=delete", 400, "invalid_method_override", "", "", ""},
		{"route without override: form _method removed", "POST", "/plain/1", "BODY a=1&_method=DELETE&b=2", 204, "", "POST", "plain", "/plain/1"},
		{"catch-all: form _method removed", "POST", "/admin", "BODY %5Fmethod=PATCH", 204, "", "POST", "admin", "/admin"},
		{"header override and a form _method", "POST", "/ov/items/1", "X-HTTP-Method-Override: PUT\r\nBODY x=1&_method=PUT&y=2", 204, "", "PUT", "ov-item", "/ov/items/1"},
		{"no override on an override route", "POST", "/ov/items/1", "", 204, "", "POST", "ov-item", "/ov/items/1"},
		{"GET is never overridden", "GET", "/ov/items/1", "X-HTTP-Method-Override: DELETE\r\n", 204, "", "GET", "ov-get", "/ov/items/1"},
		{"GET query _method dropped", "GET", "/ov/items/1?_method=DELETE&x=1", "", 204, "", "GET", "ov-get", "/ov/items/1?x=1"},
		{"route without override: dropped", "POST", "/plain/1", "X-HTTP-Method-Override: DELETE\r\nX_HTTP_METHOD: DELETE\r\nx-method-override: DELETE\r\n", 204, "", "POST", "plain", "/plain/1"},
		{"route without override: query dropped", "POST", "/plain/1?_method=DELETE", "", 204, "", "POST", "plain", "/plain/1"},
		{"catch-all without override: dropped", "POST", "/admin", "X-HTTP-Method-Override: DELETE\r\n", 204, "", "POST", "admin", "/admin"},
		{"lower-case method", "delete", "/plain/1", "", 405, "method_not_allowed", "", "", ""},
		{"lower-case method, no methods listed", "delete", "/admin", "", 405, "method_not_allowed", "", "", ""},
		{"mixed-case method", "Get", "/admin", "", 405, "method_not_allowed", "", "", ""},
		{"TRACE, no methods listed", "TRACE", "/admin", "", 405, "method_not_allowed", "", "", ""},
		{"PROPFIND, no methods listed", "PROPFIND", "/admin", "", 405, "method_not_allowed", "", "", ""},
		{"standard method, no methods listed", "OPTIONS", "/admin", "", 204, "", "OPTIONS", "admin", "/admin"},
		{"PATCH, no methods listed", "PATCH", "/admin", "", 204, "", "PATCH", "admin", "/admin"},
		{"any method", "PROPFIND", "/any", "", 204, "", "PROPFIND", "any", "/any"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			headers, body, form := strings.Cut(tc.headers, "BODY ")
			head := tc.method + " " + tc.target + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n" + headers
			if form {
				head += "Content-Type: application/x-www-form-urlencoded\r\n"
			}
			head += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
			resp, code, err := rawExchange(t, addr, head)
			if err != nil {
				t.Fatal(err)
			}
			up, reached := rec.get(resp.Header.Get("X-Request-Id"))
			if resp.StatusCode != tc.status || code != tc.code {
				t.Fatalf("status %d code %q, want %d %q", resp.StatusCode, code, tc.status, tc.code)
			}
			if tc.status != http.StatusNoContent {
				if reached {
					t.Fatalf("refused, but the upstream received %s %s", up.method, up.target)
				}
				if tc.status == 405 && resp.Header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
				return
			}
			if !reached || up.n != 1 {
				t.Fatalf("the upstream received %d requests", up.n)
			}
			route, fwd := splitRecorded(up.target)
			if up.method != tc.method2 || route != tc.route || fwd != tc.target2 {
				t.Errorf("upstream got %s %s on route %s, want %s %s on route %s", up.method, fwd, route, tc.method2, tc.target2, tc.route)
			}
			if strings.Contains(up.body, "_method") || strings.Contains(up.body, "%5Fmethod") {
				t.Errorf("the upstream received the body %q", up.body)
			}
			if form {
				want := strings.NewReplacer("_method=DELETE&", "", "%5Fmethod=PATCH", "", "_method=PUT&", "", "&_method=PUT", "").Replace(body)
				if up.body != want {
					t.Errorf("the upstream received the body %q, want %q", up.body, want)
				}
			}
			for k := range up.header {
				if isOverrideName(k) {
					t.Errorf("the upstream received %s: %q", k, up.header[k])
				}
			}
		})
	}
}
