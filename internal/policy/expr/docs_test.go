package expr

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// TestDocExamples loads the examples of docs/policies/expr.md and checks
// their decisions.
func TestDocExamples(t *testing.T) {
	const officeHours = `allow: >-
  ip_in(request.client_ip, "198.51.100.0/24") ||
  (now.getDayOfWeek("Europe/Berlin") in [1, 2, 3, 4, 5] &&
   now.getHours("Europe/Berlin") >= 8 && now.getHours("Europe/Berlin") < 18)
code: outside_office_hours
message: "this API is available on working days from 8:00 to 18:00 (Berlin)"
`
	const owner = `rules:
  - name: owner-only
    allow: 'principal.claims.sub == request.params.id || "admin" in principal.claims.?roles.orValue([])'
    code: not_owner
    message: "you may only read your own record"
`
	const tenant = `allow: 'principal.claims.?tenant.orValue("") != "legacy" || request.headers[?"x-api-version"].orValue("1") == "1"'
`
	const products = `rules:
  - name: read
    allow: 'request.method != "GET" || "products:read" in principal.scopes'
    code: insufficient_scope
    message: "reading products needs products:read"
  - name: write
    allow: 'request.method != "POST" || "products:write" in principal.scopes'
    code: insufficient_scope
    message: "changing products needs products:write"
`
	thursdayNoonBerlin := time.Date(2025, 1, 2, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		yaml  string
		at    time.Time
		edit  func(ex *exchangeEdit)
		allow bool
	}{
		{"office hours at 4:04 Berlin", officeHours, policytest.Start, nil, false},
		{"office hours at noon", officeHours, thursdayNoonBerlin, nil, true},
		{"office network at night", officeHours, policytest.Start, func(e *exchangeEdit) { e.ip = "198.51.100.9" }, true},
		{"owner", owner, policytest.Start, nil, true},
		{"not owner", owner, policytest.Start, func(e *exchangeEdit) { e.param = "7" }, false},
		{"admin reads any", owner, policytest.Start, func(e *exchangeEdit) { e.param = "7"; e.admin = true }, true},
		{"no roles claim", owner, policytest.Start, func(e *exchangeEdit) { e.param = "7"; e.noRoles = true }, false},
		{"reader reads", products, policytest.Start, nil, true},
		{"reader without the scope", products, policytest.Start, func(e *exchangeEdit) { e.noScopes = true }, false},
		{"reader writes", products, policytest.Start, func(e *exchangeEdit) { e.post = true }, false},
		{"tenant not legacy", tenant, policytest.Start, nil, true},
		{"legacy tenant on v2", tenant, policytest.Start, func(e *exchangeEdit) { e.legacy = true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := policytest.Env()
			env.Now = func() time.Time { return tt.at }
			p, err := New(policytest.Node(t, tt.yaml), env)
			if err != nil {
				t.Fatal(err)
			}
			ex := testExchange()
			var e exchangeEdit
			if tt.edit != nil {
				tt.edit(&e)
			}
			e.apply(ex)
			if got := p.Apply(context.Background(), ex) == nil; got != tt.allow {
				t.Errorf("allowed = %v, want %v", got, tt.allow)
			}
		})
	}
}

type exchangeEdit struct {
	ip, param              string
	admin, noRoles, legacy bool
	noScopes, post         bool
}

func (e *exchangeEdit) apply(ex *policy.Exchange) {
	if e.ip != "" {
		ex.ClientIP = netip.MustParseAddr(e.ip)
	}
	if e.param != "" {
		ex.Params[0].Value = e.param
	}
	if e.noScopes {
		ex.Principal.Scopes = nil
	}
	if e.post {
		ex.Request.Method = "POST"
	}
	c := ex.Principal.Claims
	if !e.admin {
		c["roles"] = []any{"reader"}
	}
	if e.noRoles {
		delete(c, "roles")
	}
	if e.legacy {
		c["tenant"] = "legacy"
	}
}
