package router

import (
	"fmt"
	"testing"
)

// benchRoutes is a realistic gateway route set of about 50 routes: health
// and token endpoints, a versioned REST API with templates, SOAP services,
// static prefixes, an admin host and tenant wildcards.
func benchRoutes() []Route[int] {
	var routes []Route[int]
	add := func(rt Route[int]) {
		rt.Value = len(routes)
		rt.Name = fmt.Sprint("r", len(routes))
		routes = append(routes, rt)
	}
	get, write := []string{"GET"}, []string{"PUT", "PATCH", "DELETE"}
	for _, p := range []string{"/health", "/ready", "/metrics", "/login", "/logout", "/oauth/authorize", "/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		add(Route[int]{Path: p, Methods: get})
	}
	add(Route[int]{Path: "/oauth/token", Methods: []string{"POST"}})
	add(Route[int]{Path: "/oauth/introspect", Methods: []string{"POST"}})
	for _, s := range []string{"OrderService", "StockService", "BillingService"} {
		add(Route[int]{Path: "/soap/" + s, Methods: []string{"POST"}})
	}
	for _, v := range []string{"/v1", "/v2"} {
		add(Route[int]{Path: v + "/users", Methods: []string{"GET", "POST"}})
		add(Route[int]{Path: v + "/users/me", Methods: get})
		add(Route[int]{Path: v + "/users/{id}", Methods: get})
		add(Route[int]{Path: v + "/users/{user_id}", Methods: write})
		add(Route[int]{Path: v + "/users/{id}/orders", Methods: get})
		add(Route[int]{Path: v + "/users/{id}/orders/{order_id}", Methods: get})
		add(Route[int]{Path: v + "/products", Methods: get})
		add(Route[int]{Path: v + "/products/{sku}", Methods: get})
		add(Route[int]{Path: v + "/products/{sku}/reviews", Methods: []string{"GET", "POST"}})
		add(Route[int]{Path: v + "/products/{sku}/reviews/{rid}", Methods: get})
		add(Route[int]{Path: v + "/orders/{id}", Methods: get})
		add(Route[int]{Path: v + "/orders/{id}/items/{item}", Methods: get})
		add(Route[int]{Path: v + "/carts/{id}/items/{item}"})
	}
	add(Route[int]{Path: "/v1/{resource}/export", Methods: get})
	for _, p := range []string{"/static/", "/assets/", "/api/legacy", "/docs", "/v1/search"} {
		add(Route[int]{PathPrefix: p, Methods: get})
	}
	admin := []string{"admin.example.com"}
	add(Route[int]{Hosts: admin, Path: "/health", Methods: get})
	add(Route[int]{Hosts: admin, PathPrefix: "/admin/api"})
	add(Route[int]{Hosts: admin, PathPrefix: "/"})
	tenants := []string{"*.tenants.example.com"}
	add(Route[int]{Hosts: tenants, Path: "/v1/users/{id}", Methods: get})
	add(Route[int]{Hosts: tenants, PathPrefix: "/files/"})
	add(Route[int]{Hosts: []string{"*.example.com"}, PathPrefix: "/public"})
	return routes
}

func BenchmarkMatch(b *testing.B) {
	routes := benchRoutes()
	r, err := New(routes)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d routes", len(routes))
	cases := []struct {
		name               string
		host, method, path string
		result             Result
	}{
		{"exact", "api.example.com", "GET", "/oauth/authorize", Found},
		{"template", "api.example.com", "GET", "/v1/products/sku-123", Found},
		{"template_2_params", "api.example.com", "GET", "/v2/users/42/orders/1001", Found},
		{"template_literal_wins", "api.example.com", "GET", "/v1/users/me", Found},
		{"template_backtrack", "api.example.com", "GET", "/v1/carts/export", Found},
		{"prefix", "api.example.com", "GET", "/static/js/app.3f9a.js", Found},
		{"exact_host", "admin.example.com", "POST", "/admin/api/keys/rotate", Found},
		{"wildcard_host", "acme.tenants.example.com", "GET", "/v1/users/7", Found},
		{"host_upper_port", "ACME.Tenants.Example.com:8443", "GET", "/files/a/b.pdf", Found},
		{"ipv6_host", "[::1]:8443", "GET", "/health", Found},
		{"method_not_allowed", "api.example.com", "POST", "/v1/products/sku-123", MethodNotAllowed},
		{"miss", "api.example.com", "GET", "/v3/unknown/path/here", NotFound},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			params := make([]Param, 0, 8)
			if m, _ := r.Match(c.host, c.method, c.path, params); m.Result != c.result {
				b.Fatalf("Match(%q, %q, %q) = %v, want %v", c.host, c.method, c.path, m.Result, c.result)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Match(c.host, c.method, c.path, params)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	routes := benchRoutes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(routes); err != nil {
			b.Fatal(err)
		}
	}
}
