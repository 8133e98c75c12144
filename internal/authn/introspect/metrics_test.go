package introspect

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// TestLatencyHistogram: each call to the endpoint is observed, as success
// when an answer was read (active or not) and as failure when the
// endpoint failed; answers from the cache are not calls. Both series
// exist, at zero, from the authenticator's build.
func TestLatencyHistogram(t *testing.T) {
	d := newIDP(t, "client_secret_basic")
	d.set("tok", map[string]any{"active": true, "sub": "alice"})
	m := telemetry.NewMetrics()
	env := &authn.Env{Env: policytest.Env(), Realm: "api"}
	env.Metrics = m
	a, err := New(policytest.Node(t, settings(d.srv.URL, "timeout: 200ms\n")), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	count := func() (ok, failed uint64) {
		t.Helper()
		fams, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range fams {
			if f.GetName() != "gatehouse_introspection_duration_seconds" {
				continue
			}
			for _, s := range f.GetMetric() {
				n++
				for _, l := range s.GetLabel() {
					switch {
					case l.GetName() == "endpoint" && l.GetValue() != d.srv.URL:
						t.Errorf("endpoint label %q, want %q", l.GetValue(), d.srv.URL)
					case l.GetValue() == "success":
						ok = s.GetHistogram().GetSampleCount()
					case l.GetValue() == "failure":
						failed = s.GetHistogram().GetSampleCount()
					}
				}
			}
		}
		if n != 2 {
			t.Fatalf("%d series, want success and failure", n)
		}
		return ok, failed
	}
	if ok, failed := count(); ok != 0 || failed != 0 {
		t.Fatalf("before any call: %d, %d", ok, failed)
	}
	for range 2 { // the second from the cache
		if _, err := request(a, "Bearer tok"); err != nil {
			t.Fatal(err)
		}
	}
	request(a, "Bearer unknown") // inactive: an answer
	d.setMode("500")
	request(a, "Bearer other")
	if ok, failed := count(); ok != 2 || failed != 1 {
		t.Errorf("observed %d successes and %d failures, want 2 and 1", ok, failed)
	}
}
