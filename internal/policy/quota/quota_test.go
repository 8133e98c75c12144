package quota

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newQuota(t *testing.T, yaml string, clk *clock) (*Quota, store.Store) {
	t.Helper()
	env := policytest.Env()
	env.Now = clk.now
	st := store.NewMemory(clk.now)
	env.Store = st
	p, err := New(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Quota), st
}

func apply(t *testing.T, q *Quota, consumer, tier string) (*policy.Denial, http.Header) {
	t.Helper()
	ex := policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil))
	ex.Principal = &policy.Principal{Consumer: consumer, Claims: map[string]any{}}
	if tier != "" {
		ex.Principal.Claims["tier"] = tier
	}
	err := q.Apply(context.Background(), ex)
	if err == nil {
		return nil, ex.ResponseHeader
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("Apply: %v", err)
	}
	return d, ex.ResponseHeader
}

// TestPeriodBoundary: a daily quota in Berlin is used up, stays used up
// until local midnight and is fresh right after it.
func TestPeriodBoundary(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	clk := &clock{t: time.Date(2025, 6, 1, 23, 59, 0, 0, berlin)}
	q, _ := newQuota(t, "period: day\ntime_zone: Europe/Berlin\nrequests: 3\n", clk)
	for i := range 3 {
		d, h := apply(t, q, "alice", "")
		if d != nil {
			t.Fatalf("request %d: %v", i, d)
		}
		if got, want := h.Get(HeaderRemaining), string(rune('2'-i)); got != want {
			t.Errorf("request %d: remaining %q, want %q", i, got, want)
		}
		if got, want := h.Get(HeaderReset), "60"; got != want {
			t.Errorf("reset %q, want %q", got, want)
		}
	}
	d, h := apply(t, q, "alice", "")
	if d == nil || d.StatusCode() != 429 || d.Code != Code {
		t.Fatalf("fourth request: %v, want 429 %s", d, Code)
	}
	if got, want := d.Header.Get("Retry-After"), "60"; got != want {
		t.Errorf("Retry-After %q, want %q", got, want)
	}
	if got := h.Get(HeaderRemaining); got != "0" {
		t.Errorf("remaining on refusal %q, want 0", got)
	}
	// Bob has his own quota.
	if d, _ := apply(t, q, "bob", ""); d != nil {
		t.Fatalf("bob: %v", d)
	}
	// 23:59:59.999 is still the same day; at midnight it is fresh.
	clk.t = time.Date(2025, 6, 1, 23, 59, 59, 999e6, berlin)
	if d, _ := apply(t, q, "alice", ""); d == nil {
		t.Fatal("allowed before midnight")
	}
	clk.t = time.Date(2025, 6, 2, 0, 0, 0, 0, berlin)
	d, h = apply(t, q, "alice", "")
	if d != nil {
		t.Fatalf("after midnight: %v", d)
	}
	if got, want := h.Get(HeaderReset), "86400"; got != want {
		t.Errorf("reset after midnight %q, want %q", got, want)
	}
	// Refusals were taken back: the previous day's counter says 3.
	u, err := q.Usage(context.Background(), "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if u.Requests != 1 || u.RequestLimit != 3 || !u.Start.Equal(time.Date(2025, 6, 2, 0, 0, 0, 0, berlin)) {
		t.Errorf("usage = %+v, want 1 of 3 from 2025-06-02 Berlin", u)
	}
	// The admin API's view of the same counter.
	cu, err := q.ConsumerUsage(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.Usage{{Name: "requests per day", Used: 1, Limit: 3, Unit: "requests", Resets: time.Date(2025, 6, 3, 0, 0, 0, 0, berlin)}}
	if diff := cmp.Diff(want, cu, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("ConsumerUsage (-want +got):\n%s", diff)
	}
}

func TestTiers(t *testing.T) {
	clk := &clock{t: policytest.Start}
	q, _ := newQuota(t, "period: hour\nrequests: 1\ntiers:\n  gold: {requests: 3}\n", clk)
	for i := range 3 {
		if d, _ := apply(t, q, "g", "gold"); d != nil {
			t.Fatalf("gold %d: %v", i, d)
		}
	}
	if d, _ := apply(t, q, "g", "gold"); d == nil {
		t.Fatal("gold: fourth allowed")
	}
	if d, _ := apply(t, q, "s", "silver"); d != nil { // unknown tier: defaults
		t.Fatal(d)
	}
	if d, _ := apply(t, q, "s", "silver"); d == nil {
		t.Fatal("unknown tier got more than the default quota")
	}
	u, _ := q.Usage(context.Background(), "g", "gold")
	if u.Requests != 3 || u.RequestLimit != 3 {
		t.Errorf("gold usage %+v, want 3 of 3", u)
	}
}
