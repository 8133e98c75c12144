package router

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testRoutes is a representative route set.
var testRoutes = []Route[string]{
	{Name: "health", Path: "/health", Methods: []string{"GET", "POST"}},
	{Name: "product-new", Path: "/product/new", Methods: []string{"GET"}},
	{Name: "product", Path: "/product/{id}", Methods: []string{"GET"}},
	{Name: "product-write", Path: "/product/{pid}", Methods: []string{"PUT", "DELETE"}},
	{Name: "product-slash", Path: "/product/", Methods: []string{"GET"}},
	{Name: "review", Path: "/product/{id}/reviews/{rid}"},
	{Name: "a-x", Path: "/a/{x}", Methods: []string{"GET"}},
	{Name: "a-x-c", Path: "/a/{x}/c"},
	{Name: "a-b-d", Path: "/a/b/d"},
	{Name: "y-b", Path: "/{y}/b"},
	{Name: "api", PathPrefix: "/api"},
	{Name: "api-v2", PathPrefix: "/api/v2/", Methods: []string{"POST", "GET"}},
	{Name: "files", Path: "/files", Methods: []string{"GET"}},
	{Name: "files-head", Path: "/files", Methods: []string{"HEAD"}},
	{Name: "admin-health", Hosts: []string{"admin.example.com"}, Path: "/health", Methods: []string{"GET"}},
	{Name: "wild", Hosts: []string{"*.example.com"}, PathPrefix: "/", Methods: []string{"GET"}},
	{Name: "wild-eu", Hosts: []string{"*.EU.example.com"}, Path: "/health"},
	{Name: "ipv6", Hosts: []string{"[::1]"}, Path: "/health"},
	{Name: "ipv4", Hosts: []string{"127.0.0.1"}, Path: "/v"},
	{Name: "catchall", Hosts: []string{"catchall.test", "other.test."}, PathPrefix: "/"},
}

// newTestRouter compiles testRoutes with each route's Value set to its Name.
func newTestRouter(t testing.TB) *Router[string] {
	t.Helper()
	routes := make([]Route[string], len(testRoutes))
	for i, rt := range testRoutes {
		rt.Value = rt.Name
		routes[i] = rt
	}
	r, err := New(routes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMatch(t *testing.T) {
	r := newTestRouter(t)
	type want struct {
		result Result
		name   string
		params []Param
		allow  string
	}
	found := func(name string, kv ...string) want {
		w := want{result: Found, name: name}
		for i := 0; i < len(kv); i += 2 {
			w.params = append(w.params, Param{Key: kv[i], Value: kv[i+1]})
		}
		return w
	}
	notFound := want{result: NotFound}
	notAllowed := func(allow string) want { return want{result: MethodNotAllowed, allow: allow} }

	tests := []struct {
		name               string
		host, method, path string
		want               want
	}{
		// Precedence of path kinds and templates.
		{"exact", "x.test", "GET", "/health", found("health")},
		{"exact beats template", "x.test", "GET", "/product/new", found("product-new")},
		{"template", "x.test", "GET", "/product/42", found("product", "id", "42")},
		{"template names are the route's own", "x.test", "PUT", "/product/42", found("product-write", "pid", "42")},
		{"two params", "x.test", "GET", "/product/42/reviews/7", found("review", "id", "42", "rid", "7")},
		{"param value keeps case and bytes", "x.test", "GET", "/product/A%20b", found("product", "id", "A%20b")},
		{"literal beats param", "x.test", "GET", "/a/b", found("a-x", "x", "b")},
		{"param first when no literal", "x.test", "GET", "/z/b", found("y-b", "y", "z")},
		{"backtrack to param", "x.test", "GET", "/a/b/c", found("a-x-c", "x", "b")},
		{"literal branch", "x.test", "GET", "/a/b/d", found("a-b-d")},
		{"param needs non-empty segment", "x.test", "GET", "/product//reviews/7", notFound},
		{"no template for depth", "x.test", "GET", "/a/b/c/d", notFound},

		// Trailing slash.
		{"trailing slash exact", "x.test", "GET", "/product/", found("product-slash")},
		{"no trailing slash", "x.test", "GET", "/product", notFound},
		{"template trailing slash", "x.test", "GET", "/product/42/", notFound},
		{"exact trailing slash", "x.test", "GET", "/health/", notFound},

		// Prefixes.
		{"prefix itself", "x.test", "GET", "/api", found("api")},
		{"prefix slash", "x.test", "GET", "/api/", found("api")},
		{"prefix below", "x.test", "DELETE", "/api/x/y", found("api")},
		{"prefix boundary", "x.test", "GET", "/apix", notFound},
		{"slash prefix not without slash", "x.test", "GET", "/api/v2", found("api")},
		{"longest prefix", "x.test", "GET", "/api/v2/", found("api-v2")},
		{"longest prefix below", "x.test", "POST", "/api/v2/orders/1", found("api-v2")},
		{"longest prefix method", "x.test", "DELETE", "/api/v2/orders/1", notAllowed("GET, HEAD, POST")},
		{"prefix sibling", "x.test", "GET", "/api/v20", found("api")},

		// Methods.
		{"405 exact", "x.test", "DELETE", "/health", notAllowed("GET, HEAD, POST")},
		{"405 union over routes", "x.test", "POST", "/product/42", notAllowed("DELETE, GET, HEAD, PUT")},
		{"405 no fallback to template", "x.test", "PUT", "/product/new", notAllowed("GET, HEAD")},
		{"HEAD from GET", "x.test", "HEAD", "/product/42", found("product", "id", "42")},
		{"explicit HEAD wins", "x.test", "HEAD", "/files", found("files-head")},
		{"GET beside HEAD", "x.test", "GET", "/files", found("files")},
		{"methods are case-sensitive", "x.test", "get", "/files", notAllowed("GET, HEAD")},
		{"any method", "x.test", "PATCH", "/a/b/c", found("a-x-c", "x", "b")},

		// Hosts.
		{"exact host", "admin.example.com", "GET", "/health", found("admin-health")},
		{"exact host port and case", "Admin.Example.COM:8443", "GET", "/health", found("admin-health")},
		{"exact host trailing dot", "admin.example.com.", "GET", "/health", found("admin-health")},
		{"no method fallback to any host", "admin.example.com", "POST", "/health", notAllowed("GET, HEAD")},
		{"path fallback to wildcard", "admin.example.com", "GET", "/other", found("wild")},
		{"wildcard one label", "a.example.com", "GET", "/x", found("wild")},
		{"wildcard two labels", "a.b.example.com:80", "GET", "/x", found("wild")},
		{"longest wildcard", "x.eu.example.com", "GET", "/health", found("wild-eu")},
		{"wildcard fallback by path", "x.eu.example.com", "GET", "/nope", found("wild")},
		{"wildcard fallback no method", "x.eu.example.com", "POST", "/nope", notAllowed("GET, HEAD")},
		{"wildcard suffix only", "eu.example.com", "GET", "/health", found("wild")},
		{"wildcard needs a label", "example.com", "GET", "/health", found("health")},
		{"wildcard not a dotless suffix", "xexample.com", "GET", "/x", notFound},
		{"exact host table over any host", "catchall.test", "GET", "/health", found("catchall")},
		{"second host of route", "OTHER.test", "GET", "/z", found("catchall")},
		{"any host fallback", "unknown.test", "GET", "/health", found("health")},
		{"empty host", "", "GET", "/health", found("health")},
		{"ipv6 with port", "[::1]:8080", "GET", "/health", found("ipv6")},
		{"ipv6 without port", "[::1]", "PUT", "/health", found("ipv6")},
		{"ipv6 non-canonical", "[0:0::1]:1", "GET", "/health", found("ipv6")},
		{"ipv6 other", "[::2]:8080", "DELETE", "/health", notAllowed("GET, HEAD, POST")},
		{"ipv4 with port", "127.0.0.1:9090", "GET", "/v", found("ipv4")},
		{"malformed host", "a.example.com:80:80", "GET", "/health", found("health")},

		// Paths the caller should not pass.
		{"empty path", "x.test", "GET", "", notFound},
		{"relative path", "x.test", "GET", "health", notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := make([]Param, 1, 4) // a stale entry must not leak
			m, out := r.Match(tt.host, tt.method, tt.path, params)
			got := want{result: m.Result, name: m.Name, params: out, allow: m.Allow}
			if len(got.params) == 0 {
				got.params = nil
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("Match(%q, %q, %q) (-want +got):\n%s", tt.host, tt.method, tt.path, diff)
			}
			if m.Result == Found && m.Value != m.Name {
				t.Errorf("Value = %q, want the route's value %q", m.Value, m.Name)
			}
			if m.Result != Found && (m.Value != "" || m.Name != "") {
				t.Errorf("Value, Name = %q, %q; want zero when not found", m.Value, m.Name)
			}
		})
	}
}

func TestMatchNilAndEmpty(t *testing.T) {
	var nilRouter *Router[int]
	if m, _ := nilRouter.Match("a", "GET", "/", nil); m.Result != NotFound {
		t.Errorf("nil router: got %v, want %v", m.Result, NotFound)
	}
	empty, err := New[int](nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := empty.Match("a", "GET", "/", nil); m.Result != NotFound {
		t.Errorf("empty router: got %v, want %v", m.Result, NotFound)
	}
	if got := (Match[int]{}).Result; got != NotFound {
		t.Errorf("zero Match: got %v, want %v", got, NotFound)
	}
}

func TestMatchGrowsParams(t *testing.T) {
	r, err := New([]Route[int]{{Path: "/{a}/{b}/{c}"}})
	if err != nil {
		t.Fatal(err)
	}
	m, got := r.Match("", "GET", "/x/y/z", nil)
	want := []Param{{"a", "x"}, {"b", "y"}, {"c", "z"}}
	if m.Result != Found || !cmp.Equal(got, want) {
		t.Errorf("got %v %v, want found %v", m.Result, got, want)
	}
}

// TestMatchManyStatics crosses the fan-out at which a node switches to a
// map of literal children.
func TestMatchManyStatics(t *testing.T) {
	var routes []Route[int]
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
	for i, n := range names {
		routes = append(routes, Route[int]{Path: "/" + n + "/{id}", Value: i})
	}
	routes = append(routes, Route[int]{Path: "/{x}/{id}", Value: -1})
	r, err := New(routes)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		if m, _ := r.Match("", "GET", "/"+n+"/1", nil); m.Result != Found || m.Value != i {
			t.Errorf("/%s/1: got %v %d, want found %d", n, m.Result, m.Value, i)
		}
	}
	if m, _ := r.Match("", "GET", "/zz/1", nil); m.Result != Found || m.Value != -1 {
		t.Errorf("/zz/1: got %v %d, want found -1", m.Result, m.Value)
	}
}

func TestMatchAllocs(t *testing.T) {
	r := newTestRouter(t)
	params := make([]Param, 0, 8)
	for _, req := range [][3]string{
		{"x.test", "GET", "/health"},
		{"x.test", "GET", "/product/42/reviews/7"},
		{"x.test", "GET", "/a/b/c"},
		{"x.test", "POST", "/api/v2/orders/1"},
		{"X.Eu.Example.COM:443", "GET", "/health"},
		{"[::1]:8080", "GET", "/health"},
		{"x.test", "DELETE", "/health"},
		{"x.test", "GET", "/nothing/here"},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			r.Match(req[0], req[1], req[2], params)
		})
		if allocs != 0 {
			t.Errorf("Match(%q, %q, %q): %v allocs, want 0", req[0], req[1], req[2], allocs)
		}
	}
}

func TestNewRouteErrors(t *testing.T) {
	tests := []struct {
		name  string
		route Route[int]
		field string
		msg   string // a part of the message
	}{
		{"no path", Route[int]{}, "path", "required"},
		{"both paths", Route[int]{Path: "/a", PathPrefix: "/a"}, "path_prefix", "exclusive"},
		{"relative", Route[int]{Path: "a/b"}, "path", `start with "/"`},
		{"relative prefix", Route[int]{PathPrefix: "api"}, "path_prefix", `start with "/"`},
		{"empty segment", Route[int]{Path: "/a//b"}, "path", "empty segment"},
		{"empty segment at end", Route[int]{Path: "/a//"}, "path", "empty segment"},
		{"empty segment in prefix", Route[int]{PathPrefix: "//"}, "path_prefix", "empty segment"},
		{"dot", Route[int]{Path: "/a/./b"}, "path", `"." or ".."`},
		{"dot dot", Route[int]{Path: "/a/.."}, "path", `"." or ".."`},
		{"dot dot prefix", Route[int]{PathPrefix: "/../"}, "path_prefix", `"." or ".."`},
		{"space", Route[int]{Path: "/a b"}, "path", "whitespace"},
		{"tab", Route[int]{Path: "/a\tb"}, "path", "whitespace"},
		{"unicode space", Route[int]{Path: "/a\u00a0b"}, "path", "whitespace"},
		{"control", Route[int]{PathPrefix: "/a\x00"}, "path_prefix", "control"},
		{"invalid utf-8", Route[int]{Path: "/a\xff"}, "path", "UTF-8"},
		{"query", Route[int]{Path: "/a?b=1"}, "path", `"?"`},
		{"fragment", Route[int]{Path: "/a#b"}, "path", `"#"`},
		{"brace in literal", Route[int]{Path: "/a{id}"}, "path", "whole segment"},
		{"brace after param", Route[int]{Path: "/{id}x"}, "path", "whole segment"},
		{"two params in segment", Route[int]{Path: "/{a}{b}"}, "path", "whole segment"},
		{"nested braces", Route[int]{Path: "/{{a}}"}, "path", "whole segment"},
		{"lone close brace", Route[int]{Path: "/a}"}, "path", "whole segment"},
		{"lone open brace", Route[int]{Path: "/{a"}, "path", "whole segment"},
		{"empty name", Route[int]{Path: "/p/{}"}, "path", "empty parameter name"},
		{"name starts with digit", Route[int]{Path: "/p/{1a}"}, "path", `"1a" is not valid`},
		{"name with dash", Route[int]{Path: "/p/{a-b}"}, "path", `"a-b" is not valid`},
		{"duplicate name", Route[int]{Path: "/{id}/x/{id}"}, "path", `"id" is used twice`},
		{"param in prefix", Route[int]{PathPrefix: "/api/{v}"}, "path_prefix", "literal"},
		{"lower-case method", Route[int]{Path: "/a", Methods: []string{"get"}}, "methods", "upper case"},
		{"empty method", Route[int]{Path: "/a", Methods: []string{""}}, "methods", "empty method"},
		{"method with space", Route[int]{Path: "/a", Methods: []string{"GE T"}}, "methods", "token"},
		{"duplicate method", Route[int]{Path: "/a", Methods: []string{"GET", "POST", "GET"}}, "methods", "twice"},
		{"empty host", Route[int]{Path: "/a", Hosts: []string{""}}, "hosts", "empty host"},
		{"star host", Route[int]{Path: "/a", Hosts: []string{"*"}}, "hosts", "empty hosts list"},
		{"star dot host", Route[int]{Path: "/a", Hosts: []string{"*."}}, "hosts", "empty hosts list"},
		{"host with port", Route[int]{Path: "/a", Hosts: []string{"a.com:80"}}, "hosts", "port"},
		{"ipv6 with port", Route[int]{Path: "/a", Hosts: []string{"[::1]:80"}}, "hosts", "IPv6"},
		{"bracketed ipv4", Route[int]{Path: "/a", Hosts: []string{"[127.0.0.1]"}}, "hosts", "IPv6"},
		{"empty label", Route[int]{Path: "/a", Hosts: []string{"a..com"}}, "hosts", "empty label"},
		{"inner star", Route[int]{Path: "/a", Hosts: []string{"a.*.com"}}, "hosts", `"*"`},
		{"double star", Route[int]{Path: "/a", Hosts: []string{"*.*.com"}}, "hosts", `"*"`},
		{"partial star", Route[int]{Path: "/a", Hosts: []string{"a*.com"}}, "hosts", `"*"`},
		{"non-ascii host", Route[int]{Path: "/a", Hosts: []string{"münchen.de"}}, "hosts", "xn--"},
		{"bad host char", Route[int]{Path: "/a", Hosts: []string{"a/b.com"}}, "hosts", "invalid character"},
		{"long label", Route[int]{Path: "/a", Hosts: []string{strings.Repeat("a", 64) + ".com"}}, "hosts", "63"},
		{"long host", Route[int]{Path: "/a", Hosts: []string{strings.Repeat("abcdefghi.", 26) + "com"}}, "hosts", "253"},
		{"duplicate host", Route[int]{Path: "/a", Hosts: []string{"a.com", "A.COM."}}, "hosts", "twice"},
		{"duplicate ip", Route[int]{Path: "/a", Hosts: []string{"::1", "[0::1]"}}, "hosts", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.route.Name = "bad"
			// The bad route is second, so its index is checked too.
			routes := []Route[int]{{Name: "good", Path: "/ok"}, tt.route}
			r, err := New(routes)
			var re *RouteError
			if !errors.As(err, &re) {
				t.Fatalf("got %v (%T), want a *RouteError", err, err)
			}
			if r != nil {
				t.Error("got a router along with the error")
			}
			if re.Index != 1 || re.Name != "bad" || re.Field != tt.field || !strings.Contains(re.Msg, tt.msg) {
				t.Errorf("got {Index: %d, Name: %q, Field: %q, Msg: %q}, want {1, \"bad\", %q, ...%q...}", re.Index, re.Name, re.Field, re.Msg, tt.field, tt.msg)
			}
			if got := err.Error(); !strings.HasPrefix(got, "router: ") {
				t.Errorf("Error() = %q, want the \"router: \" prefix", got)
			}
		})
	}
}

func TestNewAmbiguous(t *testing.T) {
	tests := []struct {
		name   string
		routes []Route[int]
		a, b   int
		reason string // a part of Reason
	}{
		{"same exact path", []Route[int]{{Path: "/a"}, {Path: "/x"}, {Path: "/a"}}, 0, 2, "both take the standard methods"},
		{"same exact path any method", []Route[int]{{Path: "/a", Methods: []string{"*"}}, {Path: "/x"}, {Path: "/a", Methods: []string{"*"}}}, 0, 2, `both take any method ("*")`},
		{"any method beside an extension method", []Route[int]{
			{Path: "/a", Methods: []string{"PROPFIND"}},
			{Path: "/a", Methods: []string{"*"}},
		}, 0, 1, `route 1 takes any method ("*")`},
		{"same exact path overlapping methods", []Route[int]{
			{Path: "/a", Methods: []string{"GET", "POST"}},
			{Path: "/a", Methods: []string{"PUT", "POST"}},
		}, 0, 1, "both take POST"},
		{"any method beside one", []Route[int]{
			{Path: "/a", Methods: []string{"GET"}},
			{Path: "/a"},
		}, 0, 1, "route 1 takes the standard methods (no methods listed), GET included"},
		{"one beside any method", []Route[int]{
			{Path: "/a"},
			{Path: "/a", Methods: []string{"GET"}},
		}, 0, 1, "route 0 takes the standard methods (no methods listed), GET included"},
		{"templates modulo names", []Route[int]{
			{Path: "/p/{id}/r/{rid}", Methods: []string{"GET"}},
			{Path: "/p/{pid}/r/{x}", Methods: []string{"GET"}},
		}, 0, 1, `path template ("/p/{pid}/r/{x}" and "/p/{id}/r/{rid}" differ only in parameter names)`},
		{"same prefix", []Route[int]{{PathPrefix: "/api"}, {PathPrefix: "/api", Methods: []string{"GET"}}}, 0, 1, `path prefix "/api"`},
		{"same slash prefix", []Route[int]{{PathPrefix: "/"}, {PathPrefix: "/"}}, 0, 1, `path prefix "/"`},
		{"same host", []Route[int]{
			{Hosts: []string{"a.com"}, Path: "/a"},
			{Hosts: []string{"A.COM."}, Path: "/a"},
		}, 0, 1, `host "a.com"`},
		{"same wildcard", []Route[int]{
			{Hosts: []string{"*.a.com"}, Path: "/a"},
			{Hosts: []string{"*.A.com"}, Path: "/a"},
		}, 0, 1, `host "*.a.com"`},
		{"one of several hosts", []Route[int]{
			{Hosts: []string{"a.com"}, PathPrefix: "/"},
			{Hosts: []string{"b.com", "a.com"}, PathPrefix: "/"},
		}, 0, 1, `host "a.com"`},
		{"same ip", []Route[int]{
			{Hosts: []string{"[::1]"}, Path: "/"},
			{Hosts: []string{"0::1"}, Path: "/"},
		}, 0, 1, `host "::1"`},
		{"explicit HEAD twice", []Route[int]{
			{Path: "/f", Methods: []string{"GET", "HEAD"}},
			{Path: "/f", Methods: []string{"HEAD"}},
		}, 0, 1, "both take HEAD"},
		{"first conflict only", []Route[int]{
			{Path: "/a"}, {Path: "/b"}, {Path: "/b"}, {Path: "/a"},
		}, 1, 2, `path "/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.routes {
				tt.routes[i].Name = string(rune('p' + i))
			}
			r, err := New(tt.routes)
			var ae *AmbiguousError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v (%T), want an *AmbiguousError", err, err)
			}
			if r != nil {
				t.Error("got a router along with the error")
			}
			if ae.A != tt.a || ae.B != tt.b || ae.NameA != tt.routes[tt.a].Name || ae.NameB != tt.routes[tt.b].Name {
				t.Errorf("got A=%d %q, B=%d %q; want A=%d, B=%d", ae.A, ae.NameA, ae.B, ae.NameB, tt.a, tt.b)
			}
			if !strings.Contains(ae.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", ae.Reason, tt.reason)
			}
			if got := err.Error(); !strings.HasPrefix(got, "router: ") {
				t.Errorf("Error() = %q, want the \"router: \" prefix", got)
			}
		})
	}
}

func TestNewNotAmbiguous(t *testing.T) {
	tests := []struct {
		name   string
		routes []Route[int]
	}{
		{"exact host and any host", []Route[int]{{Hosts: []string{"a.com"}, Path: "/a"}, {Path: "/a"}}},
		{"wildcard and exact below it", []Route[int]{{Hosts: []string{"*.a.com"}, Path: "/a"}, {Hosts: []string{"x.a.com"}, Path: "/a"}}},
		{"nested wildcards", []Route[int]{{Hosts: []string{"*.a.com"}, Path: "/a"}, {Hosts: []string{"*.x.a.com"}, Path: "/a"}}},
		{"disjoint methods", []Route[int]{{Path: "/a", Methods: []string{"GET"}}, {Path: "/a", Methods: []string{"POST", "PUT"}}}},
		{"GET and explicit HEAD", []Route[int]{{Path: "/a", Methods: []string{"GET"}}, {Path: "/a", Methods: []string{"HEAD"}}}},
		{"exact and template", []Route[int]{{Path: "/p/new"}, {Path: "/p/{id}"}}},
		{"template and prefix", []Route[int]{{Path: "/p/{id}"}, {PathPrefix: "/p"}}},
		{"exact and prefix", []Route[int]{{Path: "/p"}, {PathPrefix: "/p"}}},
		{"templates of different shape", []Route[int]{{Path: "/a/{x}"}, {Path: "/{y}/b"}}},
		{"prefix with and without slash", []Route[int]{{PathPrefix: "/api"}, {PathPrefix: "/api/"}}},
		{"trailing slash", []Route[int]{{Path: "/p/{id}"}, {Path: "/p/{id}/"}}},
		{"different hosts", []Route[int]{{Hosts: []string{"a.com"}, Path: "/a"}, {Hosts: []string{"b.com"}, Path: "/a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.routes); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
}

// TestNewFirstProblem checks that New reports the problem of the earliest
// route in the input, whatever its kind.
func TestNewFirstProblem(t *testing.T) {
	_, err := New([]Route[int]{{Path: "/a"}, {Path: "/a"}, {Path: "bad"}})
	var ae *AmbiguousError
	if !errors.As(err, &ae) || ae.B != 1 {
		t.Errorf("got %v, want an ambiguity with route 1", err)
	}
	_, err = New([]Route[int]{{Path: "/a"}, {Path: "bad"}, {Path: "/a"}})
	var re *RouteError
	if !errors.As(err, &re) || re.Index != 1 {
		t.Errorf("got %v, want a route error for route 1", err)
	}
}

// TestNewCopiesRoutes checks that the caller may change its routes after
// New without changing the router.
func TestNewCopiesRoutes(t *testing.T) {
	routes := []Route[int]{{Name: "a", Hosts: []string{"a.com"}, Path: "/{id}", Methods: []string{"GET"}, Value: 1}}
	r, err := New(routes)
	if err != nil {
		t.Fatal(err)
	}
	routes[0].Name, routes[0].Value, routes[0].Hosts[0], routes[0].Methods[0] = "b", 2, "b.com", "POST"
	m, p := r.Match("a.com", "GET", "/x", nil)
	if m.Result != Found || m.Name != "a" || m.Value != 1 || len(p) != 1 || p[0] != (Param{"id", "x"}) {
		t.Errorf("got %+v %v, want route a with id=x", m, p)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{Found: "found", NotFound: "not_found", MethodNotAllowed: "method_not_allowed", 9: "Result(9)"} {
		if got := r.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(r), got, want)
		}
	}
}

// TestMethodsFailClosed: a route that lists no methods takes the standard
// ones only (not TRACE, CONNECT, extension methods or another spelling of
// a standard one: methods are case-sensitive); "*" takes every token.
func TestMethodsFailClosed(t *testing.T) {
	r, err := New([]Route[int]{
		{Name: "std", Path: "/std", Value: 1},
		{Name: "any", Path: "/any", Methods: []string{"*"}, Value: 2},
		{Name: "get", Path: "/get", Methods: []string{"GET"}, Value: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	const stdAllow = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
	tests := []struct {
		method, path string
		want         Result
		allow        string
	}{
		{"GET", "/std", Found, ""},
		{"HEAD", "/std", Found, ""},
		{"POST", "/std", Found, ""},
		{"PUT", "/std", Found, ""},
		{"PATCH", "/std", Found, ""},
		{"DELETE", "/std", Found, ""},
		{"OPTIONS", "/std", Found, ""},
		{"TRACE", "/std", MethodNotAllowed, stdAllow},
		{"CONNECT", "/std", MethodNotAllowed, stdAllow},
		{"PROPFIND", "/std", MethodNotAllowed, stdAllow},
		{"delete", "/std", MethodNotAllowed, stdAllow},
		{"Delete", "/std", MethodNotAllowed, stdAllow},
		{"get", "/std", MethodNotAllowed, stdAllow},
		{"GET ", "/std", MethodNotAllowed, stdAllow},
		{"", "/std", MethodNotAllowed, stdAllow},
		{"TRACE", "/any", Found, ""},
		{"CONNECT", "/any", Found, ""},
		{"PROPFIND", "/any", Found, ""},
		{"get", "/get", MethodNotAllowed, "GET, HEAD"},
		{"head", "/get", MethodNotAllowed, "GET, HEAD"},
		{"HEAD", "/get", Found, ""},
	}
	for _, tt := range tests {
		m, _ := r.Match("x", tt.method, tt.path, nil)
		if m.Result != tt.want || m.Allow != tt.allow {
			t.Errorf("%q %s: got %v allow %q, want %v allow %q", tt.method, tt.path, m.Result, m.Allow, tt.want, tt.allow)
		}
	}
	_, err = New([]Route[int]{{Name: "mixed", Path: "/a", Methods: []string{"GET", "*"}}})
	var re *RouteError
	if !errors.As(err, &re) || re.Field != "methods" {
		t.Errorf(`"*" beside GET: got %v, want a methods RouteError`, err)
	}
	_, err = New([]Route[int]{{Name: "lower", Path: "/a", Methods: []string{"delete"}}})
	if !errors.As(err, &re) || re.Field != "methods" {
		t.Errorf(`"delete": got %v, want a methods RouteError`, err)
	}
	// An extension method beside the standard set is not ambiguous.
	if _, err := New([]Route[int]{{Path: "/a"}, {Path: "/a", Methods: []string{"PROPFIND"}}}); err != nil {
		t.Errorf("standard methods beside PROPFIND: %v", err)
	}
}

// TestLookupAgreesWithMatch: Lookup is Match without the parameters, on
// the reference test's random route sets and requests; and Rank orders
// host tables, then exact over template over prefix.
func TestLookupAgreesWithMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		var routes []Route[int]
		for len(routes) < 8 {
			rt := randRoute(rng)
			rt.Value = len(routes)
			if cand := append(slices.Clone(routes), rt); len(refConflicts(cand)) == 0 {
				routes = cand
			}
		}
		r, err := New(routes)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			host, method, path := randRequest(rng)
			m, _ := r.Match(host, method, path, nil)
			if l := r.Lookup(host, method, path); l != m {
				t.Fatalf("Lookup(%q, %q, %q) = %+v, Match = %+v", host, method, path, l, m)
			}
		}
	}
	r, err := New([]Route[int]{
		{Path: "/a/b", Value: 0}, {Path: "/a/{x}", Value: 1}, {PathPrefix: "/a", Value: 2}, {PathPrefix: "/", Value: 3},
		{Hosts: []string{"h.test"}, PathPrefix: "/", Value: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	rank := func(host, path string) uint32 { return r.Lookup(host, "GET", path).Rank }
	if !(rank("x", "/a/b") > rank("x", "/a/c") && rank("x", "/a/c") > rank("x", "/a/c/d") && rank("x", "/a/c/d") > rank("x", "/z")) {
		t.Errorf("ranks exact %d, template %d, prefix %d, root prefix %d: want decreasing", rank("x", "/a/b"), rank("x", "/a/c"), rank("x", "/a/c/d"), rank("x", "/z"))
	}
	if rank("h.test", "/z") <= rank("x", "/a/b") {
		t.Errorf("an exact host's prefix ranks %d, below the any-host exact path's %d", rank("h.test", "/z"), rank("x", "/a/b"))
	}
	if got := rank("x", ""); got != 0 {
		t.Errorf("NotFound rank %d", got)
	}
}
