package scopes

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func newScopes(t testing.TB, yaml string) *Scopes {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*Scopes)
}

func exchange(method, auth string, granted ...string) *policy.Exchange {
	r := httptest.NewRequest(method, "/products/1", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	ex := policytest.Exchange(r)
	ex.Principal = &policy.Principal{Subject: "alice", ClientID: "app", Scopes: granted, Method: "jwt"}
	return ex
}

const products = `
all: [products]
methods:
  GET: [products:read]
  POST: [products:write]
  DELETE: [products:write, products:admin]
`

// productsStar lets the methods products does not list through with all.
const productsStar = products + `  "*": []
`

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		method  string
		granted []string
		// missing is the scope attribute of the 403 challenge; "" allowed.
		missing string
	}{
		{"get with read", products, "GET", []string{"products", "products:read"}, ""},
		{"get with extra scopes", products, "GET", []string{"openid", "products:read", "x", "products"}, ""},
		{"get without read", products, "GET", []string{"products", "products:write"}, "products:read"},
		{"get without all", products, "GET", []string{"products:read"}, "products"},
		{"get with nothing", products, "GET", nil, "products products:read"},
		{"head uses get", products, "HEAD", []string{"products", "products:read"}, ""},
		{"head refused like get", products, "HEAD", []string{"products"}, "products:read"},
		{"post with write", products, "POST", []string{"products", "products:write"}, ""},
		{"post with read only", products, "POST", []string{"products", "products:read"}, "products:write"},
		{"delete needs both", products, "DELETE", []string{"products", "products:write"}, "products:admin"},
		{"delete names exactly the missing", products, "DELETE", []string{"products:admin"}, "products products:write"},
		{"star: unlisted method needs all only", productsStar, "PATCH", []string{"products"}, ""},
		{"star: unlisted method without all", productsStar, "PATCH", []string{"products:write"}, "products"},
		{"star: methods are case-sensitive", productsStar, "get", []string{"products"}, ""},
		{"star with scopes", "methods:\n  GET: [r]\n  \"*\": [w]\n", "PUT", []string{"r"}, "w"},
		{"star does not change a listed method", "methods:\n  GET: [r]\n  \"*\": [w]\n", "GET", []string{"r"}, ""},
		{"scopes are case-sensitive", products, "GET", []string{"Products", "products:read"}, "products"},
		{"star, no all, unlisted method passes", "methods:\n  POST: [w]\n  \"*\": []\n", "GET", nil, ""},
		{"star: head does not inherit without get", "methods:\n  POST: [w]\n  \"*\": []\n", "HEAD", nil, ""},
		{"all only: every method needs all", "all: [a]\n", "PROPFIND", []string{"b"}, "a"},
		{"all only: every method with all passes", "all: [a]\n", "TRACE", []string{"a"}, ""},
		{"head listed itself", "methods:\n  GET: [r]\n  HEAD: [h]\n", "HEAD", []string{"r"}, "h"},
		{"any_of one of each", "all: [a, b]\nmethods:\n  POST: [w, admin]\nany_of: true\n", "POST", []string{"b", "admin"}, ""},
		{"any_of method list unmet", "all: [a, b]\nmethods:\n  POST: [w, admin]\nany_of: true\n", "POST", []string{"b"}, "w admin"},
		{"any_of both unmet", "all: [a, b]\nmethods:\n  POST: [w, admin]\nany_of: true\n", "POST", []string{"r"}, "a b w admin"},
		{"any_of all unmet", "all: [a, b]\nmethods:\n  POST: [w, admin]\nany_of: true\n", "POST", []string{"w"}, "a b"},
		{"any_of unlisted", "all: [a, b]\nmethods:\n  POST: [w, admin]\n  \"*\": []\nany_of: true\n", "GET", []string{"a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScopes(t, tt.yaml)
			err := s.Apply(context.Background(), exchange(tt.method, "Bearer abc", tt.granted...))
			if tt.missing == "" {
				if err != nil {
					t.Fatalf("Apply = %v, want allowed", err)
				}
				return
			}
			d, ok := policy.AsDenial(err)
			if !ok {
				t.Fatalf("Apply = %v, want a Denial", err)
			}
			if got, want := d.StatusCode(), http.StatusForbidden; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := d.Code, "insufficient_scope"; got != want {
				t.Errorf("code = %q, want %q", got, want)
			}
			wantCh := `Bearer realm="gatehouse", error="insufficient_scope", scope="` + tt.missing + `"`
			if got := d.Header.Get("Www-Authenticate"); got != wantCh {
				t.Errorf("challenge = %s, want %s", got, wantCh)
			}
			if !strings.Contains(tt.yaml, "any_of") { // any_of details: TestDetail
				if got, want := d.Detail, "the token lacks the scope this request needs: "+tt.missing; got != want {
					t.Errorf("detail = %q, want %q", got, want)
				}
			}
			if d.Err == nil || !strings.HasPrefix(d.Err.Error(), `scopes: principal "alice" lacks`) {
				t.Errorf("Err = %v, want the logged cause naming the principal", d.Err)
			}
		})
	}
}

func TestDetail(t *testing.T) {
	tests := []struct {
		name, yaml string
		granted    []string
		want       string
	}{
		{"all-of", products, []string{"products:admin"}, "the token lacks the scope this request needs: products products:write"},
		{"any_of one list", "methods:\n  DELETE: [w, admin]\nany_of: true\n", nil, "the token lacks the scope this request needs: one of w admin"},
		{"any_of two lists", "all: [a, b]\nmethods:\n  DELETE: [w, admin]\nany_of: true\n", nil, "the token lacks the scope this request needs: one of a b, and one of w admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := policy.AsDenial(newScopes(t, tt.yaml).Apply(context.Background(), exchange("DELETE", "", tt.granted...)))
			if d == nil {
				t.Fatal("allowed, want a denial")
			}
			if got := d.Detail; got != tt.want {
				t.Errorf("detail = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChallengeScheme(t *testing.T) {
	tests := []struct {
		auth, want string
	}{
		{"Bearer abc", `Bearer realm="api", error="insufficient_scope", scope="w"`},
		{"DPoP abc", `DPoP realm="api", error="insufficient_scope", scope="w"`},
		{"dpop abc", `DPoP realm="api", error="insufficient_scope", scope="w"`},
		{"", `Bearer realm="api", error="insufficient_scope", scope="w"`},
		{"Basic YTpi", `Bearer realm="api", error="insufficient_scope", scope="w"`},
		{"DPoPx abc", `Bearer realm="api", error="insufficient_scope", scope="w"`},
	}
	s := newScopes(t, "methods:\n  POST: [w]\nrealm: api\n")
	for _, tt := range tests {
		t.Run(tt.auth, func(t *testing.T) {
			d, _ := policy.AsDenial(s.Apply(context.Background(), exchange("POST", tt.auth, "r")))
			if d == nil {
				t.Fatal("allowed, want a denial")
			}
			if got := d.Header.Values("Www-Authenticate"); !cmp.Equal(got, []string{tt.want}) {
				t.Errorf("challenge = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoPrincipal(t *testing.T) {
	// Even a method with nothing to check needs a caller: the policy is
	// there to say the route is not public.
	s := newScopes(t, "methods:\n  POST: [w]\nrealm: api\n")
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			ex := exchange(method, "")
			ex.Principal = nil
			d, ok := policy.AsDenial(s.Apply(context.Background(), ex))
			if !ok {
				t.Fatal("allowed, want a denial")
			}
			if d.StatusCode() != http.StatusUnauthorized || d.Code != "missing_credentials" {
				t.Errorf("denial = %d %s, want 401 missing_credentials", d.StatusCode(), d.Code)
			}
			if got, want := d.Header.Values("Www-Authenticate"), []string{`Bearer realm="api"`}; !cmp.Equal(got, want) {
				t.Errorf("challenge = %q, want %q", got, want)
			}
		})
	}
}

func TestDenialsAreNotShared(t *testing.T) {
	s := newScopes(t, products)
	ex := exchange("GET", "Bearer abc")
	d1, _ := policy.AsDenial(s.Apply(context.Background(), ex))
	d2, _ := policy.AsDenial(s.Apply(context.Background(), ex))
	d1.Header.Set("Www-Authenticate", "changed")
	d1.WithErr(errors.New("changed"))
	if d2.Header.Get("Www-Authenticate") == "changed" || d2.Err.Error() == "changed" {
		t.Error("two refusals share state")
	}
	ex.Principal = nil
	d3, _ := policy.AsDenial(s.Apply(context.Background(), ex))
	d3.Header.Set("Www-Authenticate", "changed")
	d4, _ := policy.AsDenial(s.Apply(context.Background(), ex))
	if d4.Header.Get("Www-Authenticate") == "changed" {
		t.Error("two 401s share a header")
	}
}

func TestApplySuccessAllocatesNothing(t *testing.T) {
	s := newScopes(t, products)
	ex := exchange("DELETE", "Bearer abc", "openid", "products", "products:write", "products:admin")
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		if err := s.Apply(ctx, ex); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Apply allocates %v times per allowed request, want 0", n)
	}
}

func BenchmarkApply(b *testing.B) {
	cases := []struct {
		name    string
		method  string
		granted []string
	}{
		{"success-get", "GET", []string{"openid", "profile", "products", "products:read"}},
		{"success-delete", "DELETE", []string{"openid", "products", "products:write", "products:admin"}},
		{"failure-post", "POST", []string{"openid", "products", "products:read"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := newScopes(b, products)
			ex := exchange(c.method, "Bearer abc", c.granted...)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				s.Apply(ctx, ex)
			}
		})
	}
}

// TestUnlistedMethodRefused: with methods set and no "*" entry, a method
// no rule names is refused (405, Allow listing the named methods) whatever
// the principal holds: another spelling of a listed method ("delete",
// "Get"), an extension method, TRACE, CONNECT, HEAD without GET.
func TestUnlistedMethodRefused(t *testing.T) {
	all := []string{"products", "products:read", "products:write", "products:admin", "w", "r"}
	tests := []struct {
		name, yaml, method, allow string
	}{
		{"lower-case delete", products, "delete", "DELETE, GET, HEAD, POST"},
		{"mixed-case get", products, "Get", "DELETE, GET, HEAD, POST"},
		{"lower-case head", products, "head", "DELETE, GET, HEAD, POST"},
		{"unlisted standard method", products, "PATCH", "DELETE, GET, HEAD, POST"},
		{"put", products, "PUT", "DELETE, GET, HEAD, POST"},
		{"options", products, "OPTIONS", "DELETE, GET, HEAD, POST"},
		{"extension method", products, "PROPFIND", "DELETE, GET, HEAD, POST"},
		{"trace", products, "TRACE", "DELETE, GET, HEAD, POST"},
		{"connect", products, "CONNECT", "DELETE, GET, HEAD, POST"},
		{"head without get", "methods:\n  POST: [w]\n", "HEAD", "POST"},
		{"get without get", "methods:\n  POST: [w]\n", "GET", "POST"},
		{"only head listed", "methods:\n  HEAD: [r]\n", "GET", "HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScopes(t, tt.yaml)
			err := s.Apply(context.Background(), exchange(tt.method, "Bearer abc", all...))
			d, ok := policy.AsDenial(err)
			if !ok {
				t.Fatalf("Apply = %v, want a Denial", err)
			}
			if d.StatusCode() != http.StatusMethodNotAllowed || d.Code != CodeMethodNotAllowed {
				t.Errorf("denial = %d %s, want 405 %s", d.StatusCode(), d.Code, CodeMethodNotAllowed)
			}
			if got := d.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if d.Err == nil || !strings.Contains(d.Err.Error(), tt.method) {
				t.Errorf("Err = %v, want the logged cause naming the method", d.Err)
			}
		})
	}
	// Without a principal the 401 comes first, whatever the method.
	ex := exchange("delete", "")
	ex.Principal = nil
	if d, ok := policy.AsDenial(newScopes(t, products).Apply(context.Background(), ex)); !ok || d.StatusCode() != http.StatusUnauthorized {
		t.Errorf("no principal, delete: got %v, want 401", d)
	}
}
