package scopes

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// Without a realm of its own, scopes names the route's in its 401 and
// 403 challenges.
func TestRouteRealm(t *testing.T) {
	env := policytest.Env()
	env.Route.Realm = "partners"
	p, err := New(policytest.Node(t, "all: [write]\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range []*policy.Principal{nil, {Subject: "a", Scopes: []string{"read"}}} {
		ex := policytest.Exchange(httptest.NewRequest("GET", "/", nil))
		ex.Principal = pr
		d, ok := policy.AsDenial(p.Apply(t.Context(), ex))
		if !ok {
			t.Fatalf("principal %v: not refused", pr)
		}
		if ch := d.Header.Get("Www-Authenticate"); !strings.HasPrefix(ch, `Bearer realm="partners"`) {
			t.Errorf("%d: challenge %q, want realm partners", d.StatusCode(), ch)
		}
	}
}
