package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/router"
)

// FuzzPathSeam sends arbitrary HTTP/1.1 request lines through a real
// gateway (path cleaning, method checks, the router) to an upstream that
// records what it receives, and holds the seam invariant: either the
// request is refused (a 4xx, or net/http's 501/505 for what is not
// HTTP/1.x) and the upstream receives nothing, or the upstream receives
// exactly one request, with the request line's method (a standard one:
// the routes list none), and a target that Tomcat/Spring, Express, nginx
// and Go's ServeMux all resolve to the route the gateway chose.
func FuzzPathSeam(f *testing.F) {
	for _, tc := range pathCases {
		f.Add("GET " + tc.target + " HTTP/1.1")
	}
	for _, l := range []string{
		"delete /admin HTTP/1.1", "TRACE /admin HTTP/1.1", "CONNECT /admin HTTP/1.1",
		"GET * HTTP/1.1", "OPTIONS * HTTP/1.1", "GET /admin HTTP/1.0", "GET  /admin HTTP/1.1",
		"GET /admin\tHTTP/1.1", "PRI * HTTP/2.0", "GET /a%2 HTTP/1.1", "POST /Api/Items/7/ HTTP/1.1",
	} {
		f.Add(l)
	}
	rec := newRecorder(f)
	g := startSeamGateway(f, rec, "")
	addr := strings.TrimPrefix(g.URL, "http://")
	sr := stackRouter(f)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") || len(line) > 4000 {
			return // another message, not another request line
		}
		id := fmt.Sprint("seam-", n.Add(1))
		resp, _, err := rawExchange(t, addr, line+"\r\nHost: gw.test\r\nX-Seam: "+id+"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		up, reached := rec.get(id)
		if !reached {
			if err == nil && resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented && resp.StatusCode != http.StatusHTTPVersionNotSupported {
				t.Fatalf("%q: %d and nothing forwarded", line, resp.StatusCode)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: forwarded, but the client got %v", line, err)
		}
		if up.n != 1 {
			t.Fatalf("%q: the upstream received %d requests", line, up.n)
		}
		method, _, _ := strings.Cut(line, " ")
		if up.method != method || !slices.Contains(router.StandardMethods, up.method) {
			t.Fatalf("%q: the upstream received method %q", line, up.method)
		}
		route, fwd := splitRecorded(up.target)
		for _, s := range stacks {
			p, ok := s.resolve(fwd)
			if !ok {
				t.Fatalf("%q: forwarded as %q, which %s refuses", line, fwd, s.name)
			}
			if m, _ := sr.Match("gw.test", "GET", p, nil); m.Result != router.Found || m.Value != route {
				t.Fatalf("%q: forwarded as %q on route %q, which %s resolves to %q on route %q", line, fwd, route, s.name, p, m.Value)
			}
		}
	})
}
