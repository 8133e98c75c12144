package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
)

// clock is a fake clock tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(t *testing.T, yaml string, env *policy.Env) *Limiter {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	l := p.(*Limiter)
	t.Cleanup(func() { l.Close() })
	return l
}

// call applies l to a GET from client (X-Client header) and returns the
// denial (nil when allowed) and the response headers it recorded.
func call(t *testing.T, l *Limiter, client string) (*policy.Denial, http.Header) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	if client != "" {
		r.Header.Set("X-Client", client)
	}
	ex := policytest.Exchange(r)
	err := l.Apply(context.Background(), ex)
	if err == nil {
		return nil, ex.ResponseHeader
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("Apply: %v, want nil or a denial", err)
	}
	return d, ex.ResponseHeader
}

func TestLocalBurstRefillAndHeaders(t *testing.T) {
	clk := &clock{t: policytest.Start}
	env := policytest.Env()
	env.Now = clk.now
	l := newLimiter(t, "key: header:X-Client\nlimits:\n  - {rate: 2, per: 1s, burst: 3}\n  - {rate: 5, per: 1m}\n", env)

	// The burst of 3 passes at once, the fourth waits half a second.
	for i := range 3 {
		d, h := call(t, l, "a")
		if d != nil {
			t.Fatalf("request %d refused: %v", i, d)
		}
		if got, want := h.Get("RateLimit-Policy"), `"2-per-1s";q=2;w=1, "5-per-1m";q=5;w=60`; got != want {
			t.Errorf("RateLimit-Policy = %s, want %s", got, want)
		}
	}
	d, h := call(t, l, "a")
	if d == nil {
		t.Fatal("fourth request in the same instant allowed")
	}
	if d.StatusCode() != 429 || d.Code != Code {
		t.Errorf("denial %d %s, want 429 %s", d.StatusCode(), d.Code, Code)
	}
	if got, want := d.Header.Get("Retry-After"), "1"; got != want {
		t.Errorf("Retry-After = %q, want %q", got, want)
	}
	if got, want := h.Get("RateLimit"), `"2-per-1s";r=0;t=1`; got != want {
		t.Errorf("RateLimit = %s, want %s", got, want)
	}
	// Another client has its own buckets.
	if d, _ := call(t, l, "b"); d != nil {
		t.Fatalf("client b refused: %v", d)
	}
	// Half a second refills one unit of the per-second limit; the
	// per-minute limit (5) refuses the sixth.
	clk.advance(500 * time.Millisecond)
	d, h = call(t, l, "a")
	if d != nil {
		t.Fatalf("after 500ms: %v", d)
	}
	if got, want := h.Get("RateLimit"), `"2-per-1s";r=0;t=2`; got != want {
		t.Errorf("RateLimit = %s, want %s", got, want)
	}
	clk.advance(time.Second)
	if d, _ := call(t, l, "a"); d != nil {
		t.Fatalf("fifth in the minute: %v", d)
	}
	clk.advance(time.Second)
	d, h = call(t, l, "a")
	if d == nil {
		t.Fatal("sixth request within a minute allowed by a 5 per minute limit")
	}
	if got := h.Get("RateLimit"); !strings.HasPrefix(got, `"5-per-1m";r=0;t=`) {
		t.Errorf("RateLimit = %s, want the per-minute limit exhausted", got)
	}
	// A refusal consumed nothing: after the per-minute interval (12s)
	// exactly one more passes.
	clk.advance(12 * time.Second)
	if d, _ := call(t, l, "a"); d != nil {
		t.Fatalf("after 12s: %v", d)
	}
	if d, _ := call(t, l, "a"); d == nil {
		t.Fatal("two passed after one interval")
	}
}

func TestMissingKeyFallsBackToIP(t *testing.T) {
	l := newLimiter(t, "key: header:X-Client\nrate: 1\nper: 1h\n", policytest.Env())
	if d, _ := call(t, l, ""); d != nil {
		t.Fatal(d)
	}
	if d, _ := call(t, l, ""); d == nil {
		t.Fatal("second request without the header allowed: no fallback to the client address")
	}
	// A header value equal to the address is a different key.
	if d, _ := call(t, l, "192.0.2.1"); d != nil {
		t.Fatalf("header value equal to the client address shares its bucket: %v", d)
	}
}

func TestCostExpr(t *testing.T) {
	l := newLimiter(t, "key: route\nrate: 10\nper: 1h\ncost_expr: 'request.method == \"POST\" ? 4 : 1'\n", policytest.Env())
	post := func() error {
		ex := policytest.Exchange(httptest.NewRequest(http.MethodPost, "/x", nil))
		return l.Apply(context.Background(), ex)
	}
	for i := range 2 {
		if err := post(); err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
	}
	if err := post(); err == nil {
		t.Fatal("third POST (12 units of 10) allowed")
	}
	for i := range 2 {
		if d, _ := call(t, l, ""); d != nil {
			t.Fatalf("GET %d (units 9 and 10): %v", i, d)
		}
	}
	if d, _ := call(t, l, ""); d == nil {
		t.Fatal("11th unit allowed")
	}
}

func TestHeadersOff(t *testing.T) {
	l := newLimiter(t, "rate: 1\nheaders: false\n", policytest.Env())
	if _, h := call(t, l, ""); len(h) != 0 {
		t.Errorf("headers: false still added %v", h)
	}
}

func TestSOAPRouteDenial(t *testing.T) {
	// The denial is the same; the renderer makes it a SOAP Fault with the
	// same 429 (internal/render); here: the status and code it gets.
	env := policytest.Env()
	env.Route.Protocol = policy.SOAP11
	l := newLimiter(t, "rate: 1\nper: 1h\n", env)
	call(t, l, "")
	d, _ := call(t, l, "")
	if d == nil || d.StatusCode() != 429 || d.Code != Code {
		t.Fatalf("got %v, want 429 %s", d, Code)
	}
}

// failingStore is a store whose Allow fails like an unreachable Redis
// until ok is set; it counts Allow calls.
type failingStore struct {
	store.Store
	ok    bool
	calls int
}

func (f *failingStore) Allow(ctx context.Context, key string, limits []store.Limit, cost int) (store.Decision, error) {
	f.calls++
	if !f.ok {
		return store.Decision{}, errors.New("dial tcp: connection refused: " + store.ErrUnavailable.Error())
	}
	return f.Store.Allow(ctx, key, limits, cost)
}

func TestStoreErrorThatIsNotUnavailableFailsClosed(t *testing.T) {
	env := policytest.Env()
	env.Store = &failingStore{Store: store.NewMemory(nil)}
	l := newLimiter(t, "rate: 1\non_store_error: open\n", env)
	err := l.Apply(context.Background(), policytest.Exchange(httptest.NewRequest("GET", "/", nil)))
	if err == nil {
		t.Fatal("an unexpected store error let the request through")
	}
	if _, ok := policy.AsDenial(err); ok {
		t.Fatalf("got a denial %v, want an internal error", err)
	}
}

// TestHeadersStack checks the headers of two rate_limit policies on one
// exchange, after a value another policy added: each keeps its own values
// in order, none is lost or overwritten, and a later request starts
// afresh although the first RateLimit-Policy value is shared between
// requests. The second limit's name is too long for the inline buffer of
// the RateLimit value.
func TestHeadersStack(t *testing.T) {
	long := strings.Repeat("n", 60)
	a := newLimiter(t, "key: header:X-Client\nlimits:\n  - {rate: 10, per: 1s}\n", policytest.Env())
	b := newLimiter(t, "key: header:X-Client\nlimits:\n  - {name: "+long+", rate: 20, per: 1m}\n", policytest.Env())
	wantPolicy := []string{`"10-per-1s";q=10;w=1`, `"` + long + `";q=20;w=60`}
	for i := range 3 {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.Header.Set("X-Client", "c")
		ex := policytest.Exchange(r)
		ex.AddResponseHeader("RateLimit", "earlier")
		for _, l := range []*Limiter{a, b} {
			if err := l.Apply(context.Background(), ex); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		h := ex.ResponseHeader
		if got := h.Values("RateLimit-Policy"); !slices.Equal(got, wantPolicy) {
			t.Errorf("request %d: RateLimit-Policy = %q, want %q", i, got, wantPolicy)
		}
		wantRL := []string{"earlier", fmt.Sprintf(`"10-per-1s";r=%d;t=1`, 9-i), fmt.Sprintf(`"%s";r=%d;t=%d`, long, 19-i, 3*(i+1))}
		if got := h.Values("RateLimit"); !slices.Equal(got, wantRL) {
			t.Errorf("request %d: RateLimit = %q, want %q", i, got, wantRL)
		}
		// What a later policy does to its exchange's headers must not
		// reach the limiter's shared value.
		h.Add("RateLimit-Policy", "x")
		h.Set("RateLimit", "y")
	}
	if got := a.policyHeader; len(got) != 1 || got[0] != wantPolicy[0] {
		t.Errorf("shared RateLimit-Policy value is now %q", got)
	}
}
