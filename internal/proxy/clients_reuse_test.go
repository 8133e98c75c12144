package proxy_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// TestClientsConnectionReuse: two routes sharing their clients take turns
// on one upstream connection, each request still carrying its own route's
// path and Host; a route with other timeouts opens its own; closing the
// shared clients closes the idle connections.
func TestClientsConnectionReuse(t *testing.T) {
	us, ct := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Host, r.URL.Path)
	}))
	clients := proxy.NewClients()
	build := func(url string, mod func(*config.Upstream)) *proxy.Upstream {
		cfg := config.Upstream{
			URL:                   url,
			ConnectTimeout:        config.Duration(5 * time.Second),
			ResponseHeaderTimeout: config.Duration(60 * time.Second),
			IdleConnTimeout:       config.Duration(90 * time.Second),
			MaxIdleConnsPerHost:   256,
		}
		if mod != nil {
			mod(&cfg)
		}
		rec := newErrRecorder()
		up, err := proxy.New(cfg, proxy.Options{OnError: rec.handle, Clients: clients})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if errs := rec.all(); len(errs) > 0 {
				t.Errorf("OnError called: %v", errs)
			}
		})
		return up
	}
	a := newFront(t, build(us.URL+"/a", nil))
	b := newFront(t, build(us.URL+"/b", func(u *config.Upstream) { u.PreserveHost = true }))
	upstreamHost := us.Listener.Addr().String()
	ctx := testContext(t)
	check := func(front string, want string) {
		t.Helper()
		res, got, err := do(ctx, http.DefaultClient, http.MethodGet, front+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || got != want {
			t.Fatalf("GET %s/x: %d %q, want 200 %q", front, res.StatusCode, got, want)
		}
	}
	for range 5 {
		check(a.URL, upstreamHost+" /a/x")
		check(b.URL, b.Listener.Addr().String()+" /b/x")
	}
	if accepted, _ := ct.counts(); accepted != 1 {
		t.Errorf("10 sequential requests of two sharing routes opened %d upstream connections, want 1", accepted)
	}

	c := newFront(t, build(us.URL+"/c", func(u *config.Upstream) { u.ResponseHeaderTimeout = config.Duration(30 * time.Second) }))
	check(c.URL, upstreamHost+" /c/x")
	check(a.URL, upstreamHost+" /a/x")
	if accepted, _ := ct.counts(); accepted != 2 {
		t.Errorf("a route with its own timeouts: %d upstream connections in all, want 2", accepted)
	}

	clients.Close()
	if !waitFor(func() bool { _, open := ct.counts(); return open == 0 }) {
		_, open := ct.counts()
		t.Errorf("after Close, %d upstream connections still open", open)
	}
}
