package gateway_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/router"
)

// seamRoutes are the routes of the path seam tests: a protected admin
// subtree, exact and template API routes and a health check, beside a
// public catch-all that every path the others do not take falls to. The
// upstream of route NAME has the base path /r/NAME, so the recorder
// knows which route the gateway chose from the request-target alone.
var seamRoutes = []struct{ name, kind, pattern string }{
	{"admin", "path_prefix", "/admin"},
	{"public", "path_prefix", "/"},
	{"items", "path", "/api/items"},
	{"item", "path", "/api/items/{id}"},
	{"health", "path", "/health"},
}

// recorder is an upstream that records the request-target, method and
// header of every request, by the gateway's X-Request-Id.
type recorder struct {
	mu   sync.Mutex
	seen map[string]recorded
	srv  *httptest.Server
}

type recorded struct {
	target, method, body string
	header               http.Header
	n                    int
}

func newRecorder(t testing.TB) *recorder {
	rec := &recorder{seen: make(map[string]recorded)}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		id := r.Header.Get("X-Seam")
		if id == "" {
			id = r.Header.Get("X-Request-Id")
		}
		got := rec.seen[id]
		rec.seen[id] = recorded{target: r.RequestURI, method: r.Method, header: r.Header.Clone(), body: string(body), n: got.n + 1}
		rec.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) get(id string) (recorded, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r, ok := rec.seen[id]
	return r, ok
}

// startSeamGateway starts a gateway with seamRoutes (plus extra YAML
// routes) in front of rec.
func startSeamGateway(t testing.TB, rec *recorder, extra string) *gatewaytest.Gateway {
	var b strings.Builder
	b.WriteString("listeners:\n  - {name: main, address: \"127.0.0.1:0\"}\nadmin: {address: \"off\"}\nstore: {type: memory}\naccess_log: {disabled: true}\nroutes:\n")
	for _, r := range seamRoutes {
		fmt.Fprintf(&b, "  - name: %s\n    match: {%s: %q}\n    upstream: {url: %q}\n", r.name, r.kind, r.pattern, rec.srv.URL+"/r/"+r.name)
	}
	b.WriteString(strings.ReplaceAll(extra, "UPSTREAM", rec.srv.URL))
	return gatewaytest.Start(t, b.String(), gateway.Options{Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler)})
}

// stackRouter maps a stack's resolved path to a route of seamRoutes, as a
// stack configured with the same routes would: the router's precedence
// on the stack's folded path (every pattern is lower case, without a
// trailing slash).
func stackRouter(t testing.TB) *router.Router[string] {
	var routes []router.Route[string]
	for _, r := range seamRoutes {
		rt := router.Route[string]{Name: r.name, Value: r.name, Methods: []string{"*"}}
		if r.kind == "path" {
			rt.Path = r.pattern
		} else {
			rt.PathPrefix = r.pattern
		}
		routes = append(routes, rt)
	}
	rr, err := router.New(routes)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// exchange sends one raw request over a new TCP connection (so that no
// client library cleans the target) and returns the response with its
// problem code.
func rawExchange(t testing.TB, addr, head string) (*http.Response, string, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var problem struct{ Code string }
	json.Unmarshal(body, &problem)
	return resp, problem.Code, nil
}

// splitRecorded returns the route and the forwarded request-target of an
// upstream request-target "/r/ROUTE/forwarded".
func splitRecorded(target string) (route, forwarded string) {
	rest, _ := strings.CutPrefix(target, "/r/")
	route, forwarded, _ = strings.Cut(rest, "/")
	return route, "/" + forwarded
}

// pathCase is one raw request-target: what each stack makes of it when
// the client sends it directly ("400": refused), and what the gateway
// does: "invalid_path" (refused by cleanPath or the ambiguity check),
// "400" (refused by net/http before the gateway sees it), or the
// request-target it forwards, on route.
type pathCase struct {
	target                        string
	tomcat, express, nginx, gomux string
	gateway, route                string
}

// pathCases: the upstream stacks disagree on most of these when they
// receive them as sent; the gateway refuses each one they disagree on, or
// forwards a target they all resolve to the route it chose.
var pathCases = []pathCase{
	// Plain paths.
	{"/admin", "/admin", "/admin", "/admin", "/admin", "/admin", "admin"},
	{"/admin/", "/admin", "/admin", "/admin/", "/admin/", "/admin/", "admin"},
	{"/admin/x", "/admin/x", "/admin/x", "/admin/x", "/admin/x", "/admin/x", "admin"},
	{"/api/items", "/api/items", "/api/items", "/api/items", "/api/items", "/api/items", "items"},
	{"/api/items/7", "/api/items/7", "/api/items/7", "/api/items/7", "/api/items/7", "/api/items/7", "item"},
	{"/health", "/health", "/health", "/health", "/health", "/health", "health"},
	{"/health.json", "/health.json", "/health.json", "/health.json", "/health.json", "/health.json", "public"},
	{"/admin?x=1", "/admin", "/admin", "/admin", "/admin", "/admin?x=1", "admin"},
	{"/public/x?/../admin", "/public/x", "/public/x", "/public/x", "/public/x", "/public/x?/../admin", "public"},
	{"http://evil.example/admin/x", "/admin/x", "/admin/x", "/admin/x", "/admin/x", "/admin/x", "admin"},
	// RFC 3986 dot segments, raw and encoded: resolved, the clean path forwarded.
	{"/public/../admin", "/admin", "/public/../admin", "/admin", "/admin", "/admin", "admin"},
	{"/public/%2e%2e/admin", "/admin", "/public/%2e%2e/admin", "/admin", "/admin", "/admin", "admin"},
	{"/public/%2E%2E/admin", "/admin", "/public/%2e%2e/admin", "/admin", "/admin", "/admin", "admin"},
	{"/public/.%2e/admin", "/admin", "/public/.%2e/admin", "/admin", "/admin", "/admin", "admin"},
	{"/./admin", "/admin", "/./admin", "/admin", "/admin", "/admin", "admin"},
	{"/admin/./x", "/admin/x", "/admin/./x", "/admin/x", "/admin/x", "/admin/x", "admin"},
	{"/admin/x/..", "/admin", "/admin/x/..", "/admin/", "/admin", "/admin", "admin"},
	{"/public/%2e", "/public", "/public/%2e", "/public/", "/public", "/public", "public"},
	{"/%2e%2e/admin", "400", "/%2e%2e/admin", "400", "/admin", "/admin", "admin"},
	{"/..", "400", "/..", "400", "/", "/", "public"},
	{"/admin/x/../../api/items/7", "/api/items/7", "/admin/x/../../api/items/7", "/api/items/7", "/api/items/7", "/api/items/7", "item"},
	// Empty segments, a leading "//" included (an authority to some).
	{"//admin", "/admin", "//admin", "/admin", "/admin", "/admin", "admin"},
	{"///admin", "/admin", "///admin", "/admin", "/admin", "/admin", "admin"},
	{"/public//admin", "/public/admin", "/public//admin", "/public/admin", "/public/admin", "/public/admin", "public"},
	{"//api//items//7", "/api/items/7", "//api//items//7", "/api/items/7", "/api/items/7", "/api/items/7", "item"},
	// Path parameters: Tomcat and Spring drop ";..." from a segment; the
	// others read a literal. Refused.
	{"/public/..;/admin", "/admin", "/public/..;/admin", "/public/..;/admin", "/public/..;/admin", "invalid_path", ""},
	{"/public/..;x=1/admin", "/admin", "/public/..;x=1/admin", "/public/..;x=1/admin", "/public/..;x=1/admin", "invalid_path", ""},
	{"/public/%2e%2e;/admin", "/admin", "/public/%2e%2e;/admin", "/public/..;/admin", "/public/..;/admin", "invalid_path", ""},
	{"/public/.;/admin", "/public/admin", "/public/.;/admin", "/public/.;/admin", "/public/.;/admin", "invalid_path", ""},
	{"/.;/admin", "/admin", "/.;/admin", "/.;/admin", "/.;/admin", "invalid_path", ""},
	{"/admin;x/", "/admin", "/admin;x", "/admin;x/", "/admin;x/", "invalid_path", ""},
	{"/admin;jsessionid=ABC", "/admin", "/admin;jsessionid=abc", "/admin;jsessionid=ABC", "/admin;jsessionid=ABC", "invalid_path", ""},
	{"/public;x/../admin", "/admin", "/public;x/../admin", "/admin", "/admin", "invalid_path", ""},
	{"/public/%3B/admin", "/public/;/admin", "/public/%3b/admin", "/public/;/admin", "/public/;/admin", "invalid_path", ""},
	{"/public%3B/../admin", "/admin", "/public%3b/../admin", "/admin", "/admin", "invalid_path", ""},
	{"/api/items/7;x", "/api/items/7", "/api/items/7;x", "/api/items/7;x", "/api/items/7;x", "invalid_path", ""},
	{"/;/admin", "/admin", "/;/admin", "/;/admin", "/;/admin", "invalid_path", ""},
	// Double and overlong encodings.
	{"/public/%252e%252e/admin", "/public/%2e%2e/admin", "/public/%252e%252e/admin", "/public/%2e%2e/admin", "/public/%2e%2e/admin", "invalid_path", ""},
	{"/public/%25%32%65%25%32%65/admin", "/public/%2e%2e/admin", "/public/%25%32%65%25%32%65/admin", "/public/%2e%2e/admin", "/public/%2e%2e/admin", "invalid_path", ""},
	{"/public/%c0%ae%c0%ae/admin", "400", "/public/%c0%ae%c0%ae/admin", "/public/\xc0\xae\xc0\xae/admin", "/public/\xc0\xae\xc0\xae/admin", "invalid_path", ""},
	{"/public/%c0%af../admin", "400", "/public/%c0%af../admin", "/public/\xc0\xaf../admin", "/public/\xc0\xaf../admin", "invalid_path", ""},
	{"/admin%ff", "400", "/admin%ff", "/admin\xff", "/admin\xff", "invalid_path", ""},
	{"/public/%u002e%u002e/admin", "400", "/public/%u002e%u002e/admin", "400", "400", "400", ""},
	// Encoded and raw separators the stacks split differently.
	{"/admin%2fx", "400", "/admin%2fx", "/admin/x", "/admin%2Fx", "invalid_path", ""},
	{"/public%2F..%2Fadmin", "400", "/public%2f..%2fadmin", "/admin", "/public%2F..%2Fadmin", "invalid_path", ""},
	{"/public/%5c../admin", "400", "/public/%5c../admin", "/public/\\../admin", "/public/\\../admin", "invalid_path", ""},
	{"/public/..%5cadmin", "400", "/public/..%5cadmin", "/public/..\\admin", "/public/..\\admin", "invalid_path", ""},
	{"/public\\..\\admin", "400", "/public\\..\\admin", "/public\\..\\admin", "/public\\..\\admin", "invalid_path", ""},
	{"/admin%00", "400", "/admin%00", "400", "/admin\x00", "invalid_path", ""},
	{"/admin%00.json", "400", "/admin%00.json", "400", "/admin\x00.json", "invalid_path", ""},
	// Trailing dots and whitespace (Windows, IIS), encoded controls.
	{"/admin.", "/admin.", "/admin.", "/admin.", "/admin.", "invalid_path", ""},
	{"/public/...", "/public/...", "/public/...", "/public/...", "/public/...", "invalid_path", ""},
	{"/public/.../admin", "/public/.../admin", "/public/.../admin", "/public/.../admin", "/public/.../admin", "invalid_path", ""},
	{"/admin%20", "/admin ", "/admin%20", "/admin ", "/admin ", "invalid_path", ""},
	{"/health%20", "/health ", "/health%20", "/health ", "/health ", "invalid_path", ""},
	{"/admin%09", "/admin\t", "/admin%09", "/admin\t", "/admin\t", "invalid_path", ""},
	{"/admin/%0d%0a", "/admin/\r\n", "/admin/%0d%0a", "/admin/\r\n", "/admin/\r\n", "invalid_path", ""},
	// "#" and "?" encoded: a stack that decodes and re-parses cuts there.
	{"/public%23/../admin", "/admin", "/public%23/../admin", "/admin", "/admin", "invalid_path", ""},
	{"/public%3F/../admin", "/admin", "/public%3f/../admin", "/admin", "/admin", "invalid_path", ""},
	// Unicode that normalizes to ASCII.
	{"/%EF%BC%8Fadmin", "/／admin", "/%ef%bc%8fadmin", "/／admin", "/／admin", "invalid_path", ""},
	{"/%EF%BD%81dmin", "/ａdmin", "/%ef%bd%81dmin", "/ａdmin", "/ａdmin", "invalid_path", ""},
	{"/public/%E2%80%A4%E2%80%A4/admin", "/public/․․/admin", "/public/%e2%80%a4%e2%80%a4/admin", "/public/․․/admin", "/public/․․/admin", "invalid_path", ""},
	{"/public/%ef%bc%8e%ef%bc%8e/admin", "/public/．．/admin", "/public/%ef%bc%8e%ef%bc%8e/admin", "/public/．．/admin", "/public/．．/admin", "invalid_path", ""},
	{"/public/%E2%80%8B/../admin", "/public/admin", "/public/%e2%80%8b/../admin", "/public/admin", "/public/admin", "invalid_path", ""},
	{"/%E2%84%AAey", "/\u212aey", "/%e2%84%aaey", "/\u212aey", "/\u212aey", "invalid_path", ""},
	{"/adm%C4%B1n", "/adm\u0131n", "/adm%c4%b1n", "/adm\u0131n", "/adm\u0131n", "invalid_path", ""},
	{"/admin/%C3%A9", "/admin/é", "/admin/%c3%a9", "/admin/é", "/admin/é", "/admin/%C3%A9", "admin"},
	// Percent-encoded unreserved characters: forwarded in one encoding.
	{"/adm%69n", "/admin", "/adm%69n", "/admin", "/admin", "/admin", "admin"},
	{"/api/items/%37", "/api/items/7", "/api/items/%37", "/api/items/7", "/api/items/7", "/api/items/7", "item"},
	{"/public/a%20b", "/public/a b", "/public/a%20b", "/public/a b", "/public/a b", "/public/a%20b", "public"},
	// Case: Express matches without regard to case; refused where
	// another route names the folded path.
	{"/ADMIN", "/ADMIN", "/admin", "/ADMIN", "/ADMIN", "invalid_path", ""},
	{"/Admin/x", "/Admin/x", "/admin/x", "/Admin/x", "/Admin/x", "invalid_path", ""},
	{"/aDmIn", "/aDmIn", "/admin", "/aDmIn", "/aDmIn", "invalid_path", ""},
	{"/API/items/7", "/API/items/7", "/api/items/7", "/API/items/7", "/API/items/7", "invalid_path", ""},
	{"/HEALTH", "/HEALTH", "/health", "/HEALTH", "/HEALTH", "invalid_path", ""},
	{"/public/ADMIN", "/public/ADMIN", "/public/admin", "/public/ADMIN", "/public/ADMIN", "/public/ADMIN", "public"},
	// Trailing slash: Spring (trailing slash match) and Express (not
	// strict) take "/a/" for "/a".
	{"/api/items/", "/api/items", "/api/items", "/api/items/", "/api/items/", "invalid_path", ""},
	{"/api/items/7/", "/api/items/7", "/api/items/7", "/api/items/7/", "/api/items/7/", "invalid_path", ""},
	{"/health/", "/health", "/health", "/health/", "/health/", "invalid_path", ""},
	{"/health//", "/health", "/health/", "/health/", "/health/", "invalid_path", ""},
	{"/public/x/", "/public/x", "/public/x", "/public/x/", "/public/x/", "/public/x/", "public"},
}

// TestPathSeam sends each raw target of pathCases to a real gateway and
// checks, for every stack, the recorded direct resolution (the resolver
// is the documented rule) and then that the gateway refuses the target
// with 400 or forwards a target every stack resolves to the route the
// gateway chose. SEAM_RECORD=1 prints the table as the resolvers and the
// gateway see it, to review a change.
func TestPathSeam(t *testing.T) {
	rec := newRecorder(t)
	g := startSeamGateway(t, rec, "")
	addr := strings.TrimPrefix(g.URL, "http://")
	sr := stackRouter(t)
	record := os.Getenv("SEAM_RECORD") != ""
	if len(pathCases) < 60 {
		t.Errorf("%d cases, want at least 60", len(pathCases))
	}
	for _, tc := range pathCases {
		direct := make([]string, len(stacks))
		for i, s := range stacks {
			direct[i] = "400"
			if p, ok := s.resolve(tc.target); ok {
				direct[i] = p
			}
		}
		gw, route := seamSend(t, rec, addr, tc.target, sr)
		if record {
			fmt.Printf("\t{%q, %q, %q, %q, %q, %q, %q},\n", tc.target, direct[0], direct[1], direct[2], direct[3], gw, route)
			continue
		}
		want := []string{tc.tomcat, tc.express, tc.nginx, tc.gomux}
		for i, s := range stacks {
			if direct[i] != want[i] {
				t.Errorf("%q: %s resolves it to %q, the table says %q", tc.target, s.name, direct[i], want[i])
			}
		}
		if gw != tc.gateway || route != tc.route {
			t.Errorf("%q: gateway %q on route %q, want %q on route %q", tc.target, gw, route, tc.gateway, tc.route)
		}
	}
}

// seamSend sends target and returns what the gateway did with it, as
// pathCase.gateway spells it, and the route; it fails the test when the
// gateway forwarded a target that a stack resolves to another route.
func seamSend(t testing.TB, rec *recorder, addr, target string, sr *router.Router[string]) (gw, route string) {
	t.Helper()
	resp, code, err := rawExchange(t, addr, "GET "+target+" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
	if err != nil {
		t.Fatalf("%q: %v", target, err)
	}
	up, reached := rec.get(resp.Header.Get("X-Request-Id"))
	switch {
	case reached && resp.StatusCode == http.StatusNoContent:
	case reached:
		t.Errorf("%q: the upstream was reached but the client got %d", target, resp.StatusCode)
		return "", ""
	case resp.StatusCode == http.StatusBadRequest && code == "invalid_path":
		return "invalid_path", ""
	case resp.StatusCode == http.StatusBadRequest && code == "":
		return "400", "" // net/http's own refusal of the request line
	default:
		t.Errorf("%q: status %d code %q and the upstream not reached", target, resp.StatusCode, code)
		return fmt.Sprint(resp.StatusCode), ""
	}
	if up.n != 1 {
		t.Errorf("%q: the upstream received %d requests", target, up.n)
	}
	route, fwd := splitRecorded(up.target)
	for _, s := range stacks {
		p, ok := s.resolve(fwd)
		if !ok {
			t.Errorf("%q: forwarded as %q, which %s refuses", target, fwd, s.name)
			continue
		}
		if m, _ := sr.Match("gw.test", "GET", p, nil); m.Result != router.Found || m.Value != route {
			t.Errorf("%q: forwarded as %q on route %q, which %s resolves to %q on route %q", target, fwd, route, s.name, p, m.Value)
		}
	}
	return fwd, route
}

// TestPathSeamMatrix: with paths.matrix_params the gateway routes as a
// servlet container does (parameters removed) and forwards the
// parameters; Tomcat/Spring resolve the forwarded target to the route
// chosen. Dot segments with parameters stay refused.
func TestPathSeamMatrix(t *testing.T) {
	rec := newRecorder(t)
	g := startSeamGateway(t, rec, "paths: {matrix_params: true}\n")
	addr := strings.TrimPrefix(g.URL, "http://")
	sr := stackRouter(t)
	tomcat := stacks[0]
	for _, tc := range []struct{ target, gateway, route string }{
		{"/admin;x/", "/admin;x/", "admin"},
		{"/admin;jsessionid=ABC", "/admin;jsessionid=ABC", "admin"},
		{"/api/items;v=2/7;x", "/api/items;v=2/7;x", "item"},
		{"/api;a/items;b", "/api;a/items;b", "items"},
		{"/public;x/../admin", "/admin", "admin"},
		{"/public/..;/admin", "invalid_path", ""},
		{"/public/.;/admin", "invalid_path", ""},
		{"/;x/admin", "invalid_path", ""},
		{"/public/%2e%2e;x/admin", "invalid_path", ""},
		{"/admin%3Bx", "/admin;x", "admin"},
		{"/Admin;x", "invalid_path", ""},
		{"/health;x/", "invalid_path", ""},
	} {
		resp, code, err := rawExchange(t, addr, "GET "+tc.target+" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		up, reached := rec.get(resp.Header.Get("X-Request-Id"))
		if !reached {
			if tc.gateway != code {
				t.Errorf("%q: %d %q, want %q", tc.target, resp.StatusCode, code, tc.gateway)
			}
			continue
		}
		route, fwd := splitRecorded(up.target)
		if fwd != tc.gateway || route != tc.route {
			t.Errorf("%q: forwarded %q on %q, want %q on %q", tc.target, fwd, route, tc.gateway, tc.route)
		}
		p, ok := tomcat.resolve(fwd)
		if m := sr.Lookup("gw.test", "GET", p); !ok || m.Value != route {
			t.Errorf("%q: forwarded %q on %q, which Tomcat/Spring resolves to %q on %q", tc.target, fwd, route, p, m.Value)
		}
	}
}
