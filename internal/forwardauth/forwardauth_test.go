package forwardauth_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/doortest"
	"github.com/gatehouse/gatehouse/internal/forwardauth"
)

// start returns the gateway of doortest and the base URL of its
// forward-auth endpoint, trusting the peers of trusted.
func start(t testing.TB, trusted ...string) (*doortest.Env, string) {
	t.Helper()
	env := doortest.Start(t, "")
	var ps []netip.Prefix
	for _, p := range trusted {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	s, err := forwardauth.Start(env.GW.Gateway, &config.ForwardAuth{Address: "127.0.0.1:0", MaxBodyBytes: 1 << 10}, ps, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return env, "http://" + s.Addr().String()
}

type answer struct {
	status int
	header http.Header
	body   string
}

func ask(t *testing.T, url string, header map[string]string, body string) answer {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url+"/auth", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func TestForwardAuth(t *testing.T) {
	env, url := start(t, "127.0.0.1/32")
	bearer := "Bearer " + env.Reader
	orig := func(method, uri string, kv ...string) map[string]string {
		h := map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Uri": uri, "X-Forwarded-Host": "api.example.com", "Authorization": bearer}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	for _, c := range []struct {
		name   string
		header map[string]string
		body   string
		status int
		code   string
	}{
		{"allowed", orig("GET", "/product/p-1", "X-Forwarded-Content-Length", "0"), "", 200, ""},
		{"nginx's X-Original-URI, method of the request", map[string]string{"X-Original-URI": "/product/p-1", "Authorization": bearer}, "", 200, ""},
		{"no URI", map[string]string{"X-Forwarded-Method": "GET", "Authorization": bearer}, "", 400, "invalid_request"},
		{"absolute URI", orig("GET", "http://evil.example/product"), "", 400, "invalid_request"},
		{"bad method", orig("G(E)T", "/product"), "", 400, "invalid_request"},
		{"denied by the chain", orig("POST", "/product", "X-Forwarded-Content-Length", "0"), "", 403, "insufficient_scope"},
		{"body route, body unknown", orig("GET", "/orders", "Content-Type", "application/json"), "", 403, "body_unavailable"},
		{"body route, nothing to read", orig("GET", "/orders"), "", 200, ""},
		{"body route, body declared but kept", orig("POST", "/orders", "X-Forwarded-Content-Length", "25", "Content-Type", "application/json"), "", 403, "body_unavailable"},
		{"body route, no body", orig("GET", "/orders", "X-Forwarded-Content-Length", "0"), "", 200, ""},
		{"body route, body forwarded", orig("POST", "/orders", "Content-Type", "application/json"), `{"a":{"b":{"c":{"d":1}}}}`, 400, "json_limit_exceeded"},
		{"forwarded body too large", orig("POST", "/orders", "Content-Type", "application/json"), `{"a":"` + strings.Repeat("x", 2000) + `"}`, 413, "body_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := ask(t, url, c.header, c.body)
			if a.status != c.status || !strings.Contains(a.body, `"code":"`+c.code+`"`) && c.code != "" {
				t.Fatalf("%d %s, want %d %s", a.status, a.body, c.status, c.code)
			}
			if a.status == 200 && strings.HasPrefix(c.header["X-Forwarded-Uri"]+c.header["X-Original-URI"], "/product") {
				if a.header.Get("X-Auth-Subject") != "reader" || a.header.Get("X-Gatehouse-Identity") == "" || a.header.Get("X-Request-Id") == "" {
					t.Errorf("identity fields missing: %v", a.header)
				}
			}
		})
	}
}

// TestUntrustedPeer: a peer outside trusted_proxies could describe any
// request; it is refused whatever it describes.
func TestUntrustedPeer(t *testing.T) {
	env, url := start(t, "192.0.2.0/24")
	a := ask(t, url, map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/product/p-1", "Authorization": "Bearer " + env.Reader}, "")
	if a.status != 403 || !strings.Contains(a.body, `"code":"untrusted_peer"`) {
		t.Fatalf("%d %s, want 403 untrusted_peer", a.status, a.body)
	}
}

// freePort returns a port free on 127.0.0.1 a moment ago, for a peer
// that must be told its port in its config.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
