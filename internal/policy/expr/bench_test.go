package expr

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/router"
)

func benchExchange() *policy.Exchange {
	r := httptest.NewRequest("GET", "/products/42?page=2&sort=name", nil)
	r.Header.Set("Authorization", "Bearer abc")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("X-Api-Version", "2")
	ex := policytest.Exchange(r)
	ex.Principal = &policy.Principal{
		Subject: "42", ClientID: "app", Method: "jwt",
		Scopes: []string{"openid", "profile", "products:read", "products:write"},
		Claims: map[string]any{"sub": "42", "tenant": "acme", "level": 3.0, "roles": []any{"reader", "admin"}},
	}
	ex.Params = []router.Param{{Key: "id", Value: "42"}}
	return ex
}

func BenchmarkApply(b *testing.B) {
	cases := []struct{ name, src string }{
		{"scope", `"products:write" in principal.scopes`},
		{"method-or-scope", `request.method == "GET" || "products:write" in principal.scopes`},
		{"claims", `principal.claims.sub == request.params.id`},
		{"claims-number", `principal.claims.level >= 3.0`},
		{"header", `request.headers["x-api-version"] == "2"`},
		{"query", `request.query.page == "2"`},
		{"ip_in", `ip_in(request.client_ip, "192.0.2.0/24")`},
		{"office-hours", `now.getDayOfWeek("Europe/Berlin") in [1, 2, 3, 4, 5] && now.getHours("Europe/Berlin") >= 3`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p, err := New(policytest.Node(b, "allow: '"+c.src+"'\n"), policytest.Env())
			if err != nil {
				b.Fatal(err)
			}
			ex := benchExchange()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := p.Apply(ctx, ex); err != nil {
				b.Fatalf("Apply = %v, want allowed", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Apply(ctx, ex)
			}
		})
	}
}
