package headers

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func newHeaders(t testing.TB, yaml string) *Headers {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*Headers)
}

// wantHeader compares h against want; a nil want value means "absent".
func wantHeader(t *testing.T, h http.Header, want map[string][]string) {
	t.Helper()
	for k, v := range want {
		if got := h[k]; !slices.Equal(got, v) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestApplyRequest(t *testing.T) {
	hp := newHeaders(t, `
request:
  set:
    x-gateway: gatehouse
    X-Replaced: new
    X-Removed-Then-Set: fresh
  add:
    X-Appended: two
    X-New: one
    Via: 1.1 gatehouse
  remove: [X-Debug, x-removed-then-set, X-Absent]
`)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header["X-Replaced"] = []string{"old1", "old2"}
	r.Header.Set("X-Debug", "1")
	r.Header.Set("X-Removed-Then-Set", "stale")
	r.Header.Set("X-Appended", "one")
	r.Header.Set("X-Untouched", "same")
	ex := policytest.Exchange(r)
	if err := hp.Apply(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	wantHeader(t, r.Header, map[string][]string{
		"X-Gateway":          {"gatehouse"},
		"X-Replaced":         {"new"},
		"X-Removed-Then-Set": {"fresh"},
		"X-Appended":         {"one", "two"},
		"X-New":              {"one"},
		"Via":                {"1.1 gatehouse"},
		"X-Debug":            nil,
		"X-Untouched":        {"same"},
	})
}

func TestFilterResponse(t *testing.T) {
	hp := newHeaders(t, `
response:
  set: {Cache-Control: no-store}
  add: {Vary: Authorization}
  remove: [Server, X-Powered-By]
security:
  hsts: {max_age: 8760h, include_subdomains: true}
  content_type_options: true
  frame_options: DENY
  referrer_policy: no-referrer
  content_security_policy: "default-src 'none'"
  cross_origin_resource_policy: same-origin
  permissions_policy: "camera=()"
`)
	upstream := func() http.Header {
		return http.Header{
			"Server":                  {"Apache/2.4.1"},
			"X-Powered-By":            {"PHP/5.6"},
			"Cache-Control":           {"public, max-age=3600"},
			"Vary":                    {"Accept-Encoding"},
			"X-Frame-Options":         {"ALLOWALL"},
			"Content-Security-Policy": {"default-src *"},
			"Content-Type":            {"application/json"},
		}
	}
	common := map[string][]string{
		"Server":                       nil,
		"X-Powered-By":                 nil,
		"Cache-Control":                {"no-store"},
		"Vary":                         {"Accept-Encoding", "Authorization"},
		"X-Frame-Options":              {"DENY"},
		"Content-Security-Policy":      {"default-src 'none'"},
		"X-Content-Type-Options":       {"nosniff"},
		"Referrer-Policy":              {"no-referrer"},
		"Cross-Origin-Resource-Policy": {"same-origin"},
		"Permissions-Policy":           {"camera=()"},
		"Content-Type":                 {"application/json"},
	}

	t.Run("plain http has no hsts", func(t *testing.T) {
		h := upstream()
		applyResponse(t, hp, policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil)), 200, h)
		wantHeader(t, h, common)
		wantHeader(t, h, map[string][]string{"Strict-Transport-Security": nil})
	})
	t.Run("tls has hsts", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
		r.TLS = &tls.ConnectionState{}
		ex := policytest.Exchange(r)
		if !ex.TLS {
			t.Fatal("exchange not TLS")
		}
		h := upstream()
		h.Set("Strict-Transport-Security", "max-age=0")
		applyResponse(t, hp, ex, 200, h)
		wantHeader(t, h, common)
		wantHeader(t, h, map[string][]string{"Strict-Transport-Security": {"max-age=31536000; includeSubDomains"}})
	})
	t.Run("gateway's own response", func(t *testing.T) {
		h := http.Header{"Content-Type": {"application/problem+json"}}
		applyResponse(t, hp, policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil)), 403, h)
		wantHeader(t, h, map[string][]string{"X-Frame-Options": {"DENY"}, "Vary": {"Authorization"}})
	})
}

// TestValuesNotShared checks that a writer appending to or editing a value
// set by the policy affects neither another header nor another request.
func TestValuesNotShared(t *testing.T) {
	hp := newHeaders(t, "response:\n  set: {X-A: a, X-B: b}\n  add: {X-C: c}\n")
	ex := policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil))
	h1, h2 := http.Header{}, http.Header{}
	applyResponse(t, hp, ex, 200, h1)
	applyResponse(t, hp, ex, 200, h2)
	h1.Add("X-A", "a2")
	h1["X-C"][0] = "changed"
	wantHeader(t, h1, map[string][]string{"X-A": {"a", "a2"}, "X-B": {"b"}, "X-C": {"changed"}})
	wantHeader(t, h2, map[string][]string{"X-A": {"a"}, "X-B": {"b"}, "X-C": {"c"}})
}

func TestApplyRequestNilHeader(t *testing.T) {
	hp := newHeaders(t, "request:\n  set: {X-A: a}\n")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header = nil
	if err := hp.Apply(context.Background(), policytest.Exchange(r)); err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Get("X-A"); got != "a" {
		t.Errorf("X-A = %q, want a", got)
	}
}

func BenchmarkApply(b *testing.B) {
	hp := newHeaders(b, `
request:
  set: {X-Gateway: gatehouse, X-Forwarded-Proto: https}
  remove: [X-Debug]
`)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	ex := policytest.Exchange(r)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		hp.Apply(ctx, ex)
	}
}

func BenchmarkFilterResponse(b *testing.B) {
	hp := newHeaders(b, `
response:
  remove: [Server, X-Powered-By]
security:
  hsts: {max_age: 8760h, include_subdomains: true}
  content_type_options: true
  frame_options: DENY
  referrer_policy: no-referrer
  content_security_policy: "default-src 'none'; frame-ancestors 'none'"
`)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.TLS = &tls.ConnectionState{}
	ex := policytest.Exchange(r)
	h := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		h["Server"] = []string{"nginx"}
		applyResponse(b, hp, ex, 200, h)
	}
}

// applyResponse sends a response with header h (edited in place) and no
// body through hp's filter.
func applyResponse(t testing.TB, hp *Headers, ex *policy.Exchange, status int, h http.Header) {
	t.Helper()
	w, rec := policytest.Filters(t, ex, hp)
	rec.HeaderMap = h
	w.WriteHeader(status)
	w.End()
	if rec.Status != status || !rec.Ended {
		t.Fatalf("the client got %d (ended %v), want %d", rec.Status, rec.Ended, status)
	}
}
