package expr

import (
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// A rule refusing with insufficient_scope carries RFC 6750's challenge in
// the route's realm and the request's scheme; other codes carry none.
func TestInsufficientScopeChallenge(t *testing.T) {
	env := policytest.Env()
	env.Route.Realm = "partners"
	for _, tc := range []struct {
		code, authz, want string
	}{
		{"insufficient_scope", "Bearer x", `Bearer realm="partners", error="insufficient_scope", error_description="needs write"`},
		{"insufficient_scope", "dpop x", `DPoP realm="partners", error="insufficient_scope", error_description="needs write"`},
		{"access_denied", "Bearer x", ""},
	} {
		p, err := New(policytest.Node(t, "allow: '\"write\" in principal.scopes'\ncode: "+tc.code+"\nmessage: needs write\n"), env)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", tc.authz)
		ex := policytest.Exchange(r)
		ex.Principal = &policy.Principal{Subject: "a", Scopes: []string{"read"}}
		d, ok := policy.AsDenial(p.Apply(t.Context(), ex))
		if !ok || d.StatusCode() != 403 || d.Code != tc.code {
			t.Fatalf("%s: got %v", tc.code, d)
		}
		if got := d.Header.Get("Www-Authenticate"); got != tc.want {
			t.Errorf("%s %s: challenge %q, want %q", tc.code, tc.authz, got, tc.want)
		}
	}
}
