package gateway

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestRoutesShareUpstreamClients: routes to one upstream with the same
// client settings take turns on one connection, whatever their own
// settings; a route with other timeouts has its own; a reload retires the
// old load's connections once it is done with them.
func TestRoutesShareUpstreamClients(t *testing.T) {
	var mu sync.Mutex
	opened, closed := 0, 0
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.URL.Path)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			opened++
		case http.StateClosed, http.StateHijacked:
			closed++
		}
	}
	up.Start()
	defer up.Close()
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return opened, opened - closed
	}
	const cfg = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: a
    match: {path_prefix: /a}
    upstream: {url: "${UP}/base-a"}
  - name: b
    match: {path_prefix: /b}
    upstream: {url: "${UP}", preserve_host: true, timeout: 30s}
    policies: [{size_limit: {body: 1KiB}}]
  - name: c
    match: {path_prefix: /c}
    upstream: {url: "${UP}", response_header_timeout: 30s}
`
	vars := map[string]string{"UP": up.URL}
	g := startGateway(t, cfg, vars)
	upHost := up.Listener.Addr().String()
	gwHost := g.base[len("http://"):]
	get := func(path, want string) {
		t.Helper()
		resp, b := do(t, nil, newReq(t, "GET", g.base+path, nil))
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("GET %s: %d %q, want 200 %q", path, resp.StatusCode, b, want)
		}
	}
	for range 3 {
		get("/a/x", upHost+" /base-a/a/x")
		get("/b/x", gwHost+" /b/x")
	}
	if n, _ := counts(); n != 1 {
		t.Errorf("routes a and b opened %d upstream connections, want 1", n)
	}
	get("/c/x", upHost+" /c/x")
	if n, _ := counts(); n != 2 {
		t.Errorf("with route c, %d upstream connections, want 2", n)
	}

	if err := g.Reload(load(t, cfg, vars)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, open := counts(); open > 0 && time.Now().Before(deadline); _, open = counts() {
		time.Sleep(10 * time.Millisecond)
	}
	if _, open := counts(); open != 0 {
		t.Errorf("after a reload, %d connections of the old load still open", open)
	}
	get("/a/x", upHost+" /base-a/a/x")
	get("/b/x", gwHost+" /b/x")
	if n, _ := counts(); n != 3 {
		t.Errorf("after the reload, %d upstream connections in all, want 3 (one new, shared)", n)
	}
}
