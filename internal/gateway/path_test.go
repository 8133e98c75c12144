package gateway

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestCleanPathMatrix: with matrix params off (the default) any ";" is
// refused; with them on, the route path drops each segment's parameters
// as a servlet container does, the forwarded path keeps them, and a
// segment whose name is empty, "." or ".." stays refused.
func TestCleanPathMatrix(t *testing.T) {
	tests := []struct {
		raw          string
		route, fwd   string // "" with ok false
		matrix, want bool
	}{
		{"/a;v=1/b", "", "", false, false},
		{"/a%3Bv=1/b", "", "", false, false},
		{"/a;v=1/b", "/a/b", "/a;v=1/b", true, true},
		{"/orders;v=2/7;x", "/orders/7", "/orders;v=2/7;x", true, true},
		{"/a;jsessionid=X", "/a", "/a;jsessionid=X", true, true},
		{"/a;x/", "/a/", "/a;x/", true, true},
		{"/a;x//b", "/a/b", "/a;x/b", true, true},
		{"/p;x/../admin", "/admin", "/admin", true, true},
		{"/a/%3B/b", "", "", true, false}, // ";" alone: an empty name
		{"/public/..;/admin", "", "", true, false},
		{"/public/..;x=1/admin", "", "", true, false},
		{"/public/%2e%2e;/admin", "", "", true, false},
		{"/public/.;/admin", "", "", true, false},
		{"/.;/admin", "", "", true, false},
		{"/;x/admin", "", "", true, false},
		{"/admin.;x", "", "", true, false},
		{"/admin%20;x", "", "", true, false},
		{"/a;x%2Fb", "", "", true, false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "http://x"+tc.raw, nil)
		route, fwd, ok := cleanPath(r, tc.matrix)
		if ok != tc.want || route != tc.route || fwd != tc.fwd {
			t.Errorf("cleanPath(%q, matrix %v) = %q, %q, %v; want %q, %q, %v", tc.raw, tc.matrix, route, fwd, ok, tc.route, tc.fwd, tc.want)
		}
	}
}

// TestCleanPathRefuses: one line per class of docs/architecture.md's
// path table that the gateway refuses.
func TestCleanPathRefuses(t *testing.T) {
	for _, raw := range []string{
		"/a%2Fb", "/a%2fb", "/a%5Cb", "/a\\b", "/a%00", "/a%09", "/a%0d%0a", "/a%7f",
		"/a%252e", "/a%25", "/a%23/../b", "/a%3F/../b", "/a;b", "/a%3bb",
		"/admin.", "/admin%20", "/a%20/b", "/a./b", "/...",
		"/a%c0%ae", "/a%ff", "/a%ed%a0%80",
		"/%EF%BC%8Fadmin", "/%EF%BD%81dmin", "/%EF%BC%8E%EF%BC%8E/admin", "/%E2%80%A4", "/%E2%84%AA",
		"/%C5%BF", "/adm%C4%B1n", "/%E2%80%8B", "/%C2%AD", "/%E2%80%AE", "/%C2%A0", "/%E3%80%80", "/%EF%BB%BF",
	} {
		// As net/http's server parses a request-target (URL.Parse
		// would resolve the dot segments itself).
		r := httptest.NewRequest("GET", "http://x/", nil)
		var err error
		if r.URL, err = url.ParseRequestURI(raw); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if route, fwd, ok := cleanPath(r, false); ok {
			t.Errorf("cleanPath(%q) = %q, %q, ok; want refused", raw, route, fwd)
		}
	}
	// Non-ASCII without an ASCII reading passes.
	for _, raw := range []string{"/caf%C3%A9", "/%E6%97%A5%E6%9C%AC", "/a%20b", "/.well-known/x", "/a.b/c"} {
		r := httptest.NewRequest("GET", "http://x"+raw, nil)
		if _, _, ok := cleanPath(r, false); !ok {
			t.Errorf("cleanPath(%q) refused", raw)
		}
	}
}
