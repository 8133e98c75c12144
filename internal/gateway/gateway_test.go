package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// echo is what the test upstream reports about the request it received.
type echo struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
	Proto  string      `json:"proto"`
}

// echoUpstream answers every request with a JSON description of it.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "echo")
		_ = json.NewEncoder(w).Encode(echo{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header, string(b), r.Proto})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// testGateway is a started gateway with its access log captured.
type testGateway struct {
	*Gateway
	base   string
	access *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// load parses a YAML config, expanding ${NAME} from vars.
func load(t testing.TB, yaml string, vars map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes("test.yaml", []byte(yaml), func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func startGateway(t *testing.T, yaml string, vars map[string]string) *testGateway {
	t.Helper()
	yaml = strings.ReplaceAll(yaml, "trusted_proxies: TRUSTED", "trusted_proxies: "+vars["TRUSTED"])
	cfg := load(t, yaml, vars)
	access := &syncBuffer{}
	g, err := New(cfg, Options{
		BaseDir:   t.TempDir(), // where the default file store goes
		Registry:  builtin.Registry(),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog: slog.New(slog.NewJSONHandler(access, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	scheme := "http"
	if cfg.Listeners[0].TLS != nil {
		scheme = "https"
	}
	return &testGateway{Gateway: g, base: scheme + "://" + g.Addr(cfg.Listeners[0].Name).String(), access: access}
}

const simpleConfig = `
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
trusted_proxies: TRUSTED
routes:
  - name: echo
    match: {path_prefix: /}
    upstream: {url: "${UP}"}
  - name: items
    match: {path: "/items/{id}", methods: [GET]}
    upstream: {url: "${UP}/base"}
  - name: deny-rest
    match: {path: /deny}
    upstream: {url: "${UP}"}
    policies:
      - ipfilter: {deny: [127.0.0.0/8, "::1"]}
  - name: deny-soap11
    soap: "1.1"
    match: {path: /soap11}
    upstream: {url: "${UP}"}
    policies:
      - ipfilter: {deny: [127.0.0.0/8, "::1"]}
  - name: deny-soap12
    soap: "1.2"
    match: {path: /soap12}
    upstream: {url: "${UP}"}
    policies:
      - ipfilter: {deny: [127.0.0.0/8, "::1"]}
  - name: limited
    match: {path: /limited}
    upstream: {url: "${UP}"}
    policies:
      - size_limit: {body: 10B}
      - headers:
          request: {set: {X-Added: yes-added}, remove: [X-Secret]}
          response: {remove: [Server], set: {X-Frame-Options: DENY}}
`

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, b
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func decodeEcho(t *testing.T, b []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("upstream echo %q: %v", b, err)
	}
	return e
}

func TestProxyHeadersAndPaths(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, simpleConfig, map[string]string{"UP": up.URL, "TRUSTED": "[]"})

	t.Run("forwarding headers replace an untrusted client's", func(t *testing.T) {
		req := newReq(t, "GET", g.base+"/a/b?x=1", nil)
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("Forwarded", "for=6.6.6.6")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, b := do(t, nil, req)
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d, body %s", resp.StatusCode, b)
		}
		e := decodeEcho(t, b)
		host := strings.TrimPrefix(g.base, "http://")
		checks := map[string]string{
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  host,
			"Forwarded":         `for=127.0.0.1;host="` + host + `";proto=http`,
		}
		for k, want := range checks {
			if got := strings.Join(e.Header[k], ","); got != want {
				t.Errorf("upstream %s = %q, want %q", k, got, want)
			}
		}
		if e.Path != "/a/b" || e.Query != "x=1" {
			t.Errorf("path, query = %q, %q", e.Path, e.Query)
		}
		if got := resp.Header.Get("X-Request-Id"); len(got) != 32 || e.Header.Get("X-Request-Id") != got {
			t.Errorf("request id: response %q, upstream %q", got, e.Header.Get("X-Request-Id"))
		}
	})

	t.Run("hop-by-hop headers are removed", func(t *testing.T) {
		req := newReq(t, "GET", g.base+"/hop", nil)
		req.Header.Set("Connection", "X-Private")
		req.Header.Set("X-Private", "secret")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
		req.Header.Set("X-Kept", "1")
		_, b := do(t, nil, req)
		e := decodeEcho(t, b)
		for _, h := range []string{"X-Private", "Keep-Alive", "Proxy-Authorization"} {
			if v := e.Header.Get(h); v != "" {
				t.Errorf("upstream received hop-by-hop %s: %q", h, v)
			}
		}
		if e.Header.Get("X-Kept") != "1" {
			t.Errorf("end-to-end header lost")
		}
	})

	t.Run("template route joins the upstream base path", func(t *testing.T) {
		_, b := do(t, nil, newReq(t, "GET", g.base+"/items/42", nil))
		if e := decodeEcho(t, b); e.Path != "/base/items/42" {
			t.Errorf("upstream path = %q, want /base/items/42", e.Path)
		}
	})

	t.Run("dot segments are resolved before routing and forwarding", func(t *testing.T) {
		req := newReq(t, "GET", g.base+"/", nil)
		req.URL.Opaque = "/x/../items/7"
		_, b := do(t, nil, req)
		if e := decodeEcho(t, b); e.Path != "/base/items/7" {
			t.Errorf("upstream path = %q, want /base/items/7", e.Path)
		}
	})

	t.Run("encoded slash is refused", func(t *testing.T) {
		req := newReq(t, "GET", g.base+"/", nil)
		req.URL.Opaque = "/items/a%2Fb"
		resp, b := do(t, nil, req)
		if resp.StatusCode != 400 || problemCode(t, b) != "invalid_path" {
			t.Errorf("status %d body %s", resp.StatusCode, b)
		}
	})

	t.Run("405 with Allow", func(t *testing.T) {
		resp, b := do(t, nil, newReq(t, "DELETE", g.base+"/items/1", nil))
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || problemCode(t, b) != "method_not_allowed" {
			t.Errorf("status %d Allow %q body %s", resp.StatusCode, resp.Header.Get("Allow"), b)
		}
	})
}

func TestTrustedProxyForwarding(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, simpleConfig, map[string]string{"UP": up.URL, "TRUSTED": "[127.0.0.1]"})
	req := newReq(t, "GET", g.base+"/x", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("Forwarded", "for=203.0.113.7;proto=https")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Request-Id", "edge-123")
	resp, b := do(t, nil, req)
	e := decodeEcho(t, b)
	if got := e.Header.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := e.Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	// The client address comes from X-Forwarded-For (the default
	// client_ip.header): the client-supplied Forwarded is not passed on,
	// the resolved address is (clientip_test.go has the matrix).
	if got := e.Header.Get("Forwarded"); !strings.HasPrefix(got, "for=203.0.113.7, for=127.0.0.1;") {
		t.Errorf("Forwarded = %q", got)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "edge-123" {
		t.Errorf("X-Request-Id from a trusted proxy = %q, want kept", got)
	}
	// The access log names the client behind the proxy.
	if !strings.Contains(g.access.String(), `"client_ip":"203.0.113.7"`) {
		t.Errorf("access log: %s", g.access.String())
	}
}

func problemCode(t *testing.T, b []byte) string {
	t.Helper()
	var p struct {
		Code      string `json:"code"`
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("problem %q: %v", b, err)
	}
	return p.Code
}

func TestDenialShapes(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, simpleConfig, map[string]string{"UP": up.URL, "TRUSTED": "[]"})

	t.Run("rest", func(t *testing.T) {
		resp, b := do(t, nil, newReq(t, "GET", g.base+"/deny", nil))
		if resp.StatusCode != 403 || resp.Header.Get("Content-Type") != "application/problem+json" || problemCode(t, b) != "ip_denied" {
			t.Errorf("status %d type %q body %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
	t.Run("soap 1.1", func(t *testing.T) {
		resp, b := do(t, nil, newReq(t, "POST", g.base+"/soap11", strings.NewReader("<x/>")))
		var env struct {
			XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
			Fault   struct {
				Code string `xml:"faultcode"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body>Fault"`
		}
		if err := xml.Unmarshal(b, &env); err != nil {
			t.Fatalf("fault %s: %v", b, err)
		}
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") || !strings.HasSuffix(env.Fault.Code, ":Client") {
			t.Errorf("status %d type %q fault %+v", resp.StatusCode, resp.Header.Get("Content-Type"), env.Fault)
		}
	})
	t.Run("soap 1.2", func(t *testing.T) {
		resp, b := do(t, nil, newReq(t, "POST", g.base+"/soap12", strings.NewReader("<x/>")))
		var env struct {
			Value string `xml:"http://www.w3.org/2003/05/soap-envelope Body>Fault>Code>Value"`
		}
		if err := xml.Unmarshal(b, &env); err != nil {
			t.Fatalf("fault %s: %v", b, err)
		}
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/soap+xml") || !strings.HasSuffix(env.Value, ":Sender") {
			t.Errorf("status %d type %q code %q", resp.StatusCode, resp.Header.Get("Content-Type"), env.Value)
		}
	})
	t.Run("no route", func(t *testing.T) {
		g2 := startGateway(t, strings.Replace(simpleConfig, "path_prefix: /}", "path_prefix: /only}", 1), map[string]string{"UP": up.URL, "TRUSTED": "[]"})
		resp, b := do(t, nil, newReq(t, "GET", g2.base+"/elsewhere", nil))
		if resp.StatusCode != 404 || problemCode(t, b) != "no_route" {
			t.Errorf("status %d body %s", resp.StatusCode, b)
		}
	})
	// Denials are logged with the policy and code, and counted.
	log := g.access.String()
	if !strings.Contains(log, `"decision":"deny"`) || !strings.Contains(log, `"policy":"ipfilter"`) || !strings.Contains(log, `"code":"ip_denied"`) {
		t.Errorf("access log lacks the denial: %s", log)
	}
	resp, b := do(t, nil, newReq(t, "GET", "http://"+g.AdminAddr().String()+"/metrics", nil))
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`gatehouse_denials_total{code="ip_denied",policy="ipfilter",route="deny-rest"} 1`)) {
		t.Errorf("metrics lack the denial:\n%s", grep(b, "gatehouse_denials"))
	}
}

func grep(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestPoliciesOnTheWay(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, simpleConfig, map[string]string{"UP": up.URL, "TRUSTED": "[]"})

	req := newReq(t, "POST", g.base+"/limited", strings.NewReader("small"))
	req.Header.Set("X-Secret", "s3")
	resp, b := do(t, nil, req)
	e := decodeEcho(t, b)
	if e.Header.Get("X-Added") != "yes-added" || e.Header.Get("X-Secret") != "" || e.Body != "small" {
		t.Errorf("request headers policy not applied: %+v", e)
	}
	if resp.Header.Get("Server") != "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("response headers policy not applied: %v", resp.Header)
	}

	t.Run("declared body too large", func(t *testing.T) {
		resp, b := do(t, nil, newReq(t, "POST", g.base+"/limited", strings.NewReader("this is more than ten bytes")))
		if resp.StatusCode != 413 || problemCode(t, b) != "body_too_large" {
			t.Errorf("status %d body %s", resp.StatusCode, b)
		}
	})
	t.Run("chunked body too large", func(t *testing.T) {
		req := newReq(t, "POST", g.base+"/limited", io.MultiReader(strings.NewReader("this is more "), strings.NewReader("than ten bytes")))
		req.ContentLength = -1
		resp, b := do(t, nil, req)
		if resp.StatusCode != 413 || problemCode(t, b) != "body_too_large" {
			t.Errorf("status %d body %s", resp.StatusCode, b)
		}
	})
}

func TestStreamingBothWays(t *testing.T) {
	gotFirst := make(chan struct{})
	sentFirst := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the first part of the request body before the client has
		// sent the rest: only a streaming proxy gets it here.
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil || string(buf) != "part1" {
			http.Error(w, "bad first part", 500)
			return
		}
		close(gotFirst)
		rest, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "got:%s|", rest)
		w.(http.Flusher).Flush()
		<-sentFirst // the client has read the first chunk of the response
		fmt.Fprint(w, "end")
	}))
	defer up.Close()
	g := startGateway(t, simpleConfig, map[string]string{"UP": up.URL, "TRUSTED": "[]"})

	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("part1"))
		select {
		case <-gotFirst:
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errors.New("upstream never saw the first part: request body was buffered"))
			return
		}
		pw.Write([]byte("part2"))
		pw.Close()
	}()
	req := newReq(t, "POST", g.base+"/stream", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("got:part2|"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("reading the first chunk before the upstream finished: %v", err)
	}
	close(sentFirst)
	rest, _ := io.ReadAll(resp.Body)
	if got := string(first) + string(rest); got != "got:part2|end" {
		t.Errorf("body = %q", got)
	}
}

func TestUpstreamFailures(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: dead
    match: {path: /dead}
    upstream: {url: "`+deadURL+`"}
  - name: slow
    match: {path: /slow}
    upstream: {url: "`+slow.URL+`", timeout: 200ms}
  - name: slow-soap
    soap: "1.1"
    match: {path: /slow-soap}
    upstream: {url: "`+slow.URL+`", response_header_timeout: 200ms}
`, nil)
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/dead", 502, "upstream_unavailable"},
		{"/slow", 504, "upstream_timeout"},
	} {
		resp, b := do(t, nil, newReq(t, "GET", g.base+tc.path, nil))
		if resp.StatusCode != tc.status || problemCode(t, b) != tc.code {
			t.Errorf("%s: status %d body %s", tc.path, resp.StatusCode, b)
		}
	}
	resp, b := do(t, nil, newReq(t, "POST", g.base+"/slow-soap", nil))
	if resp.StatusCode != 504 || !bytes.Contains(b, []byte("Fault")) {
		t.Errorf("soap timeout: status %d body %s", resp.StatusCode, b)
	}
}

func TestTLSAndMutualTLS(t *testing.T) {
	up := echoUpstream(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	client := ca.Client(t, "client-1")
	vars := map[string]string{"UP": up.URL, "CERT": certFile, "KEY": keyFile, "CA": caFile}
	const cfgTLS = `
listeners:
  - name: tls
    address: 127.0.0.1:0
    tls: {cert_file: "${CERT}", key_file: "${KEY}", client_auth: "${AUTH}", client_ca_file: "${CA}"}
admin: {address: "off"}
routes:
  - name: echo
    match: {path_prefix: /}
    upstream: {url: "${UP}"}
`
	transport := func(max uint16, certs []tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), MaxVersion: max, Certificates: certs},
			ForceAttemptHTTP2: true,
		}}
	}

	vars["AUTH"] = "none"
	g := startGateway(t, cfgTLS, vars)
	resp, b := do(t, transport(0, nil), newReq(t, "GET", g.base+"/x", nil))
	if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 || resp.ProtoMajor != 2 {
		t.Errorf("TLS %+v proto %s", resp.TLS, resp.Proto)
	}
	if e := decodeEcho(t, b); e.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto = %q", e.Header.Get("X-Forwarded-Proto"))
	}
	if _, err := transport(tls.VersionTLS11, nil).Get(g.base + "/x"); err == nil {
		t.Error("TLS 1.1 client accepted")
	}
	resp, _ = do(t, transport(tls.VersionTLS12, nil), newReq(t, "GET", g.base+"/x", nil))
	if resp.TLS.Version != tls.VersionTLS12 {
		t.Errorf("TLS 1.2 client: version %x", resp.TLS.Version)
	}

	vars["AUTH"] = "require_and_verify"
	m := startGateway(t, cfgTLS, vars)
	if _, err := transport(0, nil).Get(m.base + "/x"); err == nil {
		t.Error("mTLS listener accepted a client without a certificate")
	}
	other := tlstest.NewCA(t, "other CA").Client(t, "intruder")
	if _, err := transport(0, []tls.Certificate{other.TLS}).Get(m.base + "/x"); err == nil {
		t.Error("mTLS listener accepted a certificate from an unknown CA")
	}
	resp, _ = do(t, transport(0, []tls.Certificate{client.TLS}), newReq(t, "GET", m.base+"/x", nil))
	if resp.StatusCode != 200 {
		t.Errorf("mTLS client: status %d", resp.StatusCode)
	}
}

func TestUpstreamMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "upstream CA")
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.TLS.PeerCertificates[0].Subject.CommonName, r.Proto)
	}))
	up.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.Server(t).TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		NextProtos:   []string{"h2", "http/1.1"},
	}
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	certFile, keyFile := ca.Client(t, "gatehouse").WriteFiles(t, dir, "client")
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: secure
    match: {path: /s}
    upstream:
      url: "`+up.URL+`"
      tls: {ca_file: "`+ca.WriteFile(t, dir, "ca.pem")+`", cert_file: "`+certFile+`", key_file: "`+keyFile+`"}
`, nil)
	resp, b := do(t, nil, newReq(t, "GET", g.base+"/s", nil))
	if resp.StatusCode != 200 || string(b) != "gatehouse HTTP/2.0" {
		t.Errorf("status %d body %q", resp.StatusCode, b)
	}
}

func TestH2C(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0", h2c: true}]
admin: {address: "off"}
routes:
  - name: echo
    match: {path_prefix: /}
    upstream: {url: "`+up.URL+`"}
`, nil)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &p}}
	resp, _ := do(t, c, newReq(t, "GET", g.base+"/x", nil))
	if resp.ProtoMajor != 2 {
		t.Errorf("proto = %s, want HTTP/2.0", resp.Proto)
	}
}

func TestWebSocketPassThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: ws
    match: {path: /ws}
    upstream: {url: "`+up.URL+`", websocket: true}
  - name: plain
    match: {path: /plain}
    upstream: {url: "`+up.URL+`"}
`, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A route without websocket: true forwards the handshake as a plain
	// GET, which the upstream refuses.
	if c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.base, "http")+"/plain", nil); err == nil {
		c.CloseNow()
		t.Fatal("a WebSocket opened through a route without websocket: true")
	} else if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatalf("route without websocket: %v", err)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.base, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through gateway: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, msg := range []string{"one", "two"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo:"+msg {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

func TestReload(t *testing.T) {
	upA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	defer upA.Close()
	upB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") }))
	defer upB.Close()
	const tmpl = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "${UP}"}
`
	g := startGateway(t, tmpl, map[string]string{"UP": upA.URL})
	get := func() (string, error) {
		resp, err := http.Get(g.base + "/r")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return string(b), err
	}

	t.Run("a config that does not build keeps the old one", func(t *testing.T) {
		bad := load(t, tmpl+`
  - name: twin
    match: {path: /r}
    upstream: {url: "${UP}"}
`, map[string]string{"UP": upB.URL})
		err := g.Reload(bad)
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Line != 10 {
			t.Fatalf("Reload error = %v, want a config error at line 10", err)
		}
		if got, err := get(); err != nil || got != "A" {
			t.Errorf("after a failed reload: %q, %v", got, err)
		}
	})

	t.Run("reloads under load lose no request", func(t *testing.T) {
		cfgs := []*config.Config{
			load(t, tmpl, map[string]string{"UP": upB.URL}),
			load(t, tmpl, map[string]string{"UP": upA.URL}),
		}
		var stop atomic.Bool
		var failures, done atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for !stop.Load() {
					if _, err := get(); err != nil {
						failures.Add(1)
						t.Log(err)
					}
					done.Add(1)
				}
			})
		}
		for i := range 40 {
			if err := g.Reload(cfgs[i%2]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop.Store(true)
		wg.Wait()
		if failures.Load() != 0 {
			t.Errorf("%d of %d requests failed during reloads", failures.Load(), done.Load())
		}
		if got, _ := get(); got != "A" {
			t.Errorf("after the last reload the upstream is %q, want A", got)
		}
	})
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	}))
	defer up.Close()
	cfg := load(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "127.0.0.1:0"}
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "`+up.URL+`"}
`, nil)
	g, err := New(cfg, Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + g.Addr("main").String()
	admin := "http://" + g.AdminAddr().String()
	if resp, _ := do(t, nil, newReq(t, "GET", admin+"/readyz", nil)); resp.StatusCode != 200 {
		t.Fatalf("readyz before shutdown: %d", resp.StatusCode)
	}

	type result struct {
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/r")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{string(b), err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- g.Shutdown(ctx)
	}()
	// New connections are refused once the listeners close.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after Shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if r := <-inflight; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestBuildErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	bogus := filepath.Join(dir, "bogus.pem")
	if err := os.WriteFile(bogus, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"ambiguous routes", `
listeners: [{address: "127.0.0.1:0"}]
routes:
  - name: a
    match: {path: "/p/{id}"}
    upstream: {url: "http://127.0.0.1:1"}
  - name: b
    match: {path: "/p/{name}"}
    upstream: {url: "http://127.0.0.1:1"}
`, 8, "routes[1].match"},
		{"missing listener certificate", `
listeners:
  - address: "127.0.0.1:0"
    tls:
      cert_file: ` + missing + `
      key_file: ` + missing + `
routes: []
`, 5, "listeners[0].tls.cert_file"},
		{"bad upstream CA", `
listeners: [{address: "127.0.0.1:0"}]
routes:
  - name: a
    match: {path: /a}
    upstream:
      url: https://127.0.0.1:1
      tls:
        ca_file: ` + bogus + `
`, 9, "routes[0].upstream.tls.ca_file"},
		{"unknown policy type", `
listeners: [{address: "127.0.0.1:0"}]
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - teleport: {}
`, 8, "routes[0].policies[0]"},
		{"bad policy setting", `
listeners: [{address: "127.0.0.1:0"}]
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter:
          allow: [10.0.0.0/33]
`, 9, "allow[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := load(t, tc.yaml, nil)
			_, err := New(cfg, Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v, want a *config.Error", err)
			}
			if cerr.Line != tc.line || !strings.Contains(cerr.Error(), tc.want) || cerr.File != "test.yaml" {
				t.Errorf("err = %v, want line %d naming %s", err, tc.line, tc.want)
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b/", "/a/b/", true},
		{"/a//b", "/a/b", true},
		{"/a/./b/", "/a/b/", true},
		{"/a/../../b", "/b", true},
		{"/..", "/", true},
		{"/a/%2e%2e/b", "/b", true},
		{"/a%2fb", "", false},
		{"/a%5Cb", "", false},
		{"/a\\b", "", false},
		{"/a%00", "", false},
		{"/.well-known/x", "/.well-known/x", true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://x"+tc.raw, nil)
			got, fwd, ok := cleanPath(r, false)
			if got != tc.want || ok != tc.ok || fwd != got {
				t.Errorf("cleanPath(%q) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// trusted0 is the client IP the benchmarks pretend to come from.
func (rt *runtime) trusted0() netip.Addr { return netip.MustParseAddr("127.0.0.1") }

func TestUpstreamH2CAndRequestIDEcho(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Request-Id", "upstream-made-this")
		io.WriteString(w, r.Proto)
	}))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetHTTP1(true)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	defer up.Close()
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: h2c
    match: {path: /h2c}
    upstream: {url: "`+up.URL+`", h2c: true}
`, nil)
	resp, b := do(t, nil, newReq(t, "GET", g.base+"/h2c", nil))
	if string(b) != "HTTP/2.0" {
		t.Errorf("upstream saw %q, want HTTP/2.0", b)
	}
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 || len(ids[0]) != 32 {
		t.Errorf("X-Request-Id = %q, want the gateway's one id", ids)
	}
}

func TestAuthenticateWithAPIKeyThroughTheGateway(t *testing.T) {
	up := echoUpstream(t)
	key := "gh_" + strings.Repeat("k", 43)
	sum := sha256.Sum256([]byte(key))
	hash := "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: products
    match: {path: /product}
    upstream: {url: "`+up.URL+`"}
    policies:
      - authenticate:
          realm: products
          with:
            - apikey:
                keys:
                  - {consumer: reader-app, hash: "`+hash+`", scopes: [products:read]}
  - name: products-soap
    soap: "1.1"
    match: {path: /soap}
    upstream: {url: "`+up.URL+`"}
    policies:
      - authenticate:
          with:
            - apikey:
                keys:
                  - {consumer: reader-app, hash: "`+hash+`"}
`, nil)
	resp, b := do(t, nil, newReq(t, "GET", g.base+"/product", nil))
	if resp.StatusCode != 401 || problemCode(t, b) != "missing_credentials" {
		t.Errorf("no key: %d %s", resp.StatusCode, b)
	}
	req := newReq(t, "GET", g.base+"/product", nil)
	req.Header.Set("X-API-Key", "gh_wrong")
	if resp, b := do(t, nil, req); resp.StatusCode != 401 {
		t.Errorf("wrong key: %d %s", resp.StatusCode, b)
	}
	req = newReq(t, "GET", g.base+"/product", nil)
	req.Header.Set("X-API-Key", key)
	resp, b = do(t, nil, req)
	if resp.StatusCode != 200 {
		t.Fatalf("good key: %d %s", resp.StatusCode, b)
	}
	if e := decodeEcho(t, b); e.Header.Get("X-API-Key") != "" {
		t.Error("the API key reached the upstream")
	}
	if !strings.Contains(g.access.String(), `"principal":"reader-app"`) {
		t.Errorf("access log lacks the principal: %s", g.access.String())
	}
	// A SOAP route refuses with a SOAP fault, same status.
	resp, b = do(t, nil, newReq(t, "POST", g.base+"/soap", strings.NewReader("<x/>")))
	if resp.StatusCode != 401 || !bytes.Contains(b, []byte("Fault")) {
		t.Errorf("soap: %d %s", resp.StatusCode, b)
	}
}
