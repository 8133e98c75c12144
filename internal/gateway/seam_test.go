package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// The tests of this file hold the gateway to issue 15, items 1 to 3: what
// the chain authorized is exactly what the upstream receives, as the
// upstream's own bytes show. They drive a real gateway over raw TCP (so
// that a request can carry exactly the bytes an attacker chooses) to
// upstreams that record every byte they read, on both of the proxy's
// paths: its own HTTP/1.1 client (http:// upstreams) and ReverseProxy
// (https:// upstreams, here speaking HTTP/1.1 so that their bytes can be
// read back).

// seen is one request as a raw upstream read it.
type seen struct {
	raw     []byte // every byte read on the connection up to the request's end
	req     *http.Request
	body    []byte
	trailer http.Header
	// after holds what the connection carried after a 101 the upstream
	// sent, until it closed (only when the answer was a 101).
	after chan []byte
}

// rawUpstream is an HTTP/1.1 upstream on 127.0.0.1 that parses each
// request with http.ReadRequest, keeps the raw bytes, and answers with the
// bytes answer returns (one request a connection: it closes after).
type rawUpstream struct {
	URL    string
	ln     net.Listener
	got    chan *seen
	mu     sync.Mutex
	answer func(*http.Request) string
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

func startRawUpstream(t testing.TB, tc *tls.Config) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if tc != nil {
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	u := &rawUpstream{URL: scheme + "://" + ln.Addr().String(), ln: ln, got: make(chan *seen, 64)}
	u.answer = func(*http.Request) string { return okAnswer }
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *rawUpstream) setAnswer(f func(*http.Request) string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f == nil {
		f = func(*http.Request) string { return okAnswer }
	}
	u.answer = f
}

// byteRecorder keeps every byte read through it.
type byteRecorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *byteRecorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	rec := &byteRecorder{r: c}
	br := bufio.NewReader(rec)
	req, err := http.ReadRequest(br)
	if err != nil {
		if rec.buf.Len() > 0 {
			u.got <- &seen{raw: bytes.Clone(rec.buf.Bytes())}
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	s := &seen{raw: bytes.Clone(rec.buf.Bytes()), req: req, body: body, trailer: req.Trailer}
	u.mu.Lock()
	answer := u.answer(req)
	u.mu.Unlock()
	if strings.HasPrefix(answer, "HTTP/1.1 101") {
		s.after = make(chan []byte, 1)
	}
	u.got <- s
	if _, err := io.WriteString(c, answer); err != nil || s.after == nil {
		return
	}
	// Switched: keep what comes, echo it back marked, until the gateway
	// closes the connection or a second passes.
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	var after bytes.Buffer
	buf := make([]byte, 4096)
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		after.Write(b)
	}
	for {
		n, err := c.Read(buf)
		if n > 0 {
			after.Write(buf[:n])
			_, _ = c.Write(append([]byte("echo:"), buf[:n]...))
		}
		if err != nil {
			break
		}
	}
	s.after <- after.Bytes()
}

// next returns the next request the upstream read, or fails the test.
func (u *rawUpstream) next(t *testing.T) *seen {
	t.Helper()
	select {
	case s := <-u.got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream received no request")
		return nil
	}
}

// none checks that the upstream received nothing (after the gateway
// answered, so a forwarded request would already be there).
func (u *rawUpstream) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-u.got:
		t.Errorf("the upstream received a request:\n%s", s.raw)
	case <-time.After(100 * time.Millisecond):
	}
}

// drain forgets what earlier requests left.
func (u *rawUpstream) drain() {
	for {
		select {
		case <-u.got:
		default:
			return
		}
	}
}

// exchange sends raw to the gateway on a new connection and reads the
// response; conn is left open for tunnels.
type exchange struct {
	res  *http.Response
	body []byte
	conn net.Conn
	br   *bufio.Reader
}

func send(t *testing.T, addr, raw string) *exchange {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the gateway's response: %v", err)
	}
	ex := &exchange{res: res, conn: c, br: br}
	if res.StatusCode != http.StatusSwitchingProtocols {
		ex.body, _ = io.ReadAll(res.Body)
		res.Body.Close()
	}
	return ex
}

// closed reports whether the gateway closed the connection after its
// response: a read ends in EOF within the deadline.
func (ex *exchange) closed() bool {
	_ = ex.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := ex.br.ReadByte()
	return errors.Is(err, io.EOF)
}

// headerSection returns the raw header section of what the upstream read.
func (s *seen) headerSection() string {
	head, _, _ := bytes.Cut(s.raw, []byte("\r\n\r\n"))
	return string(head)
}

// fieldNames returns the lower-cased names of the raw header lines of b
// (the request line skipped), '_' kept, so that no canonicalization
// hides a spelling.
func fieldNames(b string) map[string][]string {
	out := map[string][]string{}
	lines := strings.Split(b, "\r\n")
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			k = strings.ToLower(k)
			out[k] = append(out[k], strings.TrimSpace(v))
		}
	}
	return out
}

// seamGateway is a gateway whose routes cover both proxy paths, with and
// without WebSocket and request trailers, behind an API key and the
// identity policy (headers and a signed token).
type seamGateway struct {
	addr   string
	apiKey string
	plain  *rawUpstream // http://: the proxy's own HTTP/1.1 client
	tls    *rawUpstream // https://: ReverseProxy
	// h2c is an HTTP/2 upstream (ReverseProxy, h2c): its requests as Go
	// parsed them, since HTTP/2 frames are no text to read back.
	h2c      chan http.Header
	identity []string // the identity policy's header names
}

func startFieldSeamGateway(t testing.TB, trusted string) *seamGateway {
	t.Helper()
	dir := t.TempDir()
	k, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "identity.pem"), pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := tlstest.NewCA(t, "upstream CA")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	sg := &seamGateway{
		plain:    startRawUpstream(t, nil),
		tls:      startRawUpstream(t, &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS}, NextProtos: []string{"http/1.1"}}),
		identity: []string{"X-Auth-Subject", "X-Auth-Scopes", "X-Gatehouse-Identity", "X-Admin"},
	}
	sg.h2c = make(chan http.Header, 16)
	h2cUp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set(":proto", r.Proto)
		sg.h2c <- h
		io.WriteString(w, "ok")
	}))
	h2cUp.Config.Protocols = new(http.Protocols)
	h2cUp.Config.Protocols.SetUnencryptedHTTP2(true)
	h2cUp.Start()
	t.Cleanup(h2cUp.Close)
	key, hash, err := apikey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sg.apiKey = key
	chain := `
    policies:
      - authenticate:
          with:
            - apikey:
                keys:
                  - {consumer: billing-app, hash: "` + hash + `", scopes: [products:read]}
      - identity:
          headers: {subject: X-Auth-Subject, scopes: X-Auth-Scopes}
          strip: [X-Admin]
          jwt: {issuer: https://gatehouse.internal, audience: products-api, key_file: identity.pem}`
	route := func(name, prefix, up, extra string) string {
		tlsPart := ""
		if strings.HasPrefix(up, "https") {
			tlsPart = `, tls: {ca_file: "` + caFile + `"}`
		}
		return `
  - name: ` + name + `
    match: {path_prefix: ` + prefix + `}
    upstream: {url: "` + up + `"` + tlsPart + extra + `}` + chain
	}
	yaml := `
listeners: [{name: main, address: "127.0.0.1:0", h2c: true}]
admin: {address: "off"}
trusted_proxies: ` + trusted + `
routes:` +
		route("h1", "/h1", sg.plain.URL, "") +
		route("h1-ws", "/h1ws", sg.plain.URL, ", websocket: true") +
		route("h1-trailers", "/h1trl", sg.plain.URL, ", request_trailers: true") +
		route("rp", "/rp", sg.tls.URL, "") +
		route("rp-ws", "/rpws", sg.tls.URL, ", websocket: true") +
		route("rp-trailers", "/rptrl", sg.tls.URL, ", request_trailers: true") +
		route("h2c", "/h2c", h2cUp.URL, ", h2c: true")
	g := gatewaytest.Start(t, yaml, gateway.Options{
		Registry:  builtin.Registry(),
		AccessLog: slog.New(slog.DiscardHandler),
		BaseDir:   dir,
	})
	sg.addr = strings.TrimPrefix(g.URL, "http://")
	return sg
}

// upstreamOf returns the upstream of the routes under prefix.
func (sg *seamGateway) upstreamOf(prefix string) *rawUpstream {
	if strings.HasPrefix(prefix, "/rp") {
		return sg.tls
	}
	return sg.plain
}

// TestSeamUpgrades: no Upgrade reaches an upstream that did not opt in to
// WebSocket, h2c and HTTP2-Settings reach none, a WebSocket handshake
// passes only after the chain, and a 101 nobody asked for is a 502 that
// closes the client's connection.
func TestSeamUpgrades(t *testing.T) {
	sg := startFieldSeamGateway(t, "[]")
	auth := "X-Api-Key: " + sg.apiKey + "\r\n"
	wsKey := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

	// Requests that must reach the upstream as plain requests: no
	// Upgrade, no HTTP2-Settings, no upgrade token in Connection.
	plain := []struct {
		name, method, fields, body string
		routes                     []string
	}{
		{"websocket, route without websocket", "GET", "Connection: Upgrade\r\nUpgrade: websocket\r\n" + wsKey, "", []string{"/h1", "/rp"}},
		{"keep-alive, Upgrade", "GET", "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n" + wsKey, "", []string{"/h1", "/rp"}},
		{"lower case, odd commas", "GET", "connection: ,upgrade,,\r\nupgrade: WebSocket\r\n" + wsKey, "", []string{"/h1", "/rp"}},
		{"Connection on two lines", "GET", "Connection: keep-alive\r\nConnection: upgrade\r\nUpgrade: websocket\r\n" + wsKey, "", []string{"/h1", "/rp"}},
		{"h2c upgrade", "GET", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", "", []string{"/h1", "/rp", "/h1ws", "/rpws"}},
		{"HTTP2-Settings alone", "GET", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", "", []string{"/h1", "/rp", "/h1ws", "/rpws"}},
		{"HTTP2_Settings spelling", "GET", "HTTP2_Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", "", []string{"/h1", "/rp"}},
		{"Upgrade without Connection", "GET", "Upgrade: websocket\r\n" + wsKey, "", []string{"/h1", "/rp", "/h1ws", "/rpws"}},
		{"two protocols", "GET", "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n" + wsKey, "", []string{"/h1ws", "/rpws"}},
		{"two Upgrade lines", "GET", "Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n" + wsKey, "", []string{"/h1ws", "/rpws"}},
		{"websocket with a body", "GET", "Connection: Upgrade\r\nUpgrade: websocket\r\n" + wsKey + "Content-Length: 18\r\n", "GET /x HTTP/1.1\r\n\r", []string{"/h1ws", "/rpws"}},
		{"websocket on POST", "POST", "Connection: Upgrade\r\nUpgrade: websocket\r\n" + wsKey + "Content-Length: 0\r\n", "", []string{"/h1ws", "/rpws"}},
	}
	for _, tc := range plain {
		for _, prefix := range tc.routes {
			t.Run(tc.name+prefix, func(t *testing.T) {
				up := sg.upstreamOf(prefix)
				up.drain()
				ex := send(t, sg.addr, tc.method+" "+prefix+"/x HTTP/1.1\r\nHost: gw\r\n"+auth+tc.fields+"\r\n"+tc.body)
				if ex.res.StatusCode != 200 {
					t.Fatalf("status %d, want 200 (the upstream's): %s", ex.res.StatusCode, ex.body)
				}
				s := up.next(t)
				f := fieldNames(s.headerSection())
				for _, name := range []string{"upgrade", "http2-settings", "http2_settings"} {
					if v, ok := f[name]; ok {
						t.Errorf("the upstream received %s: %q\n%s", name, v, s.raw)
					}
				}
				for _, v := range f["connection"] {
					if strings.Contains(strings.ToLower(v), "upgrade") || strings.Contains(strings.ToLower(v), "settings") {
						t.Errorf("the upstream received Connection: %s\n%s", v, s.raw)
					}
				}
				if s.req.Method != tc.method || string(s.body) != tc.body {
					t.Errorf("the upstream received %s with body %q, want %s with %q", s.req.Method, s.body, tc.method, tc.body)
				}
			})
		}
	}

	// To an h2c upstream (ReverseProxy, HTTP/2) the same requests go as
	// plain ones: HTTP/2 has no Upgrade, and http2's transport would
	// refuse to send one.
	for _, tc := range plain {
		if !slices.Contains(tc.routes, "/h1") {
			continue
		}
		t.Run(tc.name+"/h2c", func(t *testing.T) {
			ex := send(t, sg.addr, tc.method+" /h2c/x HTTP/1.1\r\nHost: gw\r\n"+auth+tc.fields+"\r\n"+tc.body)
			if ex.res.StatusCode != 200 {
				t.Fatalf("status %d, want 200 (the upstream's): %s", ex.res.StatusCode, ex.body)
			}
			var h http.Header
			select {
			case h = <-sg.h2c:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream received no request")
			}
			if h.Get(":proto") != "HTTP/2.0" {
				t.Errorf("the upstream was spoken to in %s", h.Get(":proto"))
			}
			for _, name := range []string{"Upgrade", "Http2-Settings", "Http2_settings", "Connection"} {
				if v := h.Values(name); len(v) > 0 {
					t.Errorf("the upstream received %s: %q", name, v)
				}
			}
		})
	}

	// A WebSocket handshake on a route that takes it passes, with its
	// Upgrade, and the tunnel carries bytes both ways; without the API
	// key, the chain refuses it and the upstream sees nothing.
	for _, prefix := range []string{"/h1ws", "/rpws"} {
		t.Run("websocket passes"+prefix, func(t *testing.T) {
			up := sg.upstreamOf(prefix)
			up.drain()
			up.setAnswer(func(*http.Request) string {
				return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
			})
			t.Cleanup(func() { up.setAnswer(nil) })
			ex := send(t, sg.addr, "GET "+prefix+"/chat HTTP/1.1\r\nHost: gw\r\n"+auth+"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+wsKey+"\r\n")
			if ex.res.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", ex.res.StatusCode)
			}
			s := up.next(t)
			f := fieldNames(s.headerSection())
			if got := f["upgrade"]; len(got) != 1 || !strings.EqualFold(got[0], "websocket") {
				t.Errorf("the upstream received Upgrade %q, want websocket", got)
			}
			if got := strings.Join(f["x-auth-subject"], ","); got != "billing-app" {
				t.Errorf("the upstream received X-Auth-Subject %q: the chain did not run", got)
			}
			if _, err := io.WriteString(ex.conn, "frame"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len("echo:frame"))
			if _, err := io.ReadFull(ex.br, buf); err != nil || string(buf) != "echo:frame" {
				t.Errorf("through the tunnel: %q, %v", buf, err)
			}
		})
		t.Run("websocket refused by the chain"+prefix, func(t *testing.T) {
			up := sg.upstreamOf(prefix)
			up.drain()
			ex := send(t, sg.addr, "GET "+prefix+"/chat HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+wsKey+"\r\n")
			if ex.res.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", ex.res.StatusCode)
			}
			up.none(t)
		})
	}

	// A 101 the client did not legitimately ask for: 502
	// upstream_protocol_error, the client's connection closed, and nothing
	// of the client's reaches the upstream past the 101.
	switches := []struct {
		name, fields, answer string
		routes               []string
	}{
		{"no upgrade asked", "", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", []string{"/h1", "/rp", "/h1ws", "/rpws"}},
		{"101 without Upgrade", "", "HTTP/1.1 101 Switching Protocols\r\n\r\n", []string{"/h1", "/rp", "/h1ws", "/rpws"}},
		{"h2c asked, not forwarded", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", []string{"/h1", "/rp", "/h1ws", "/rpws"}},
		{"websocket on a route without it", "Connection: Upgrade\r\nUpgrade: websocket\r\n" + wsKey, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", []string{"/h1", "/rp"}},
		{"websocket asked, h2c given", "Connection: Upgrade\r\nUpgrade: websocket\r\n" + wsKey, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", []string{"/h1ws", "/rpws"}},
	}
	for _, tc := range switches {
		for _, prefix := range tc.routes {
			t.Run("101: "+tc.name+prefix, func(t *testing.T) {
				up := sg.upstreamOf(prefix)
				up.drain()
				up.setAnswer(func(*http.Request) string { return tc.answer })
				t.Cleanup(func() { up.setAnswer(nil) })
				ex := send(t, sg.addr, "GET "+prefix+"/x HTTP/1.1\r\nHost: gw\r\n"+auth+tc.fields+"\r\nGET /h1/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n")
				if ex.res.StatusCode != http.StatusBadGateway || !bytes.Contains(ex.body, []byte("upstream_protocol_error")) {
					t.Errorf("status %d %s, want 502 upstream_protocol_error", ex.res.StatusCode, ex.body)
				}
				if !ex.closed() {
					t.Errorf("the gateway kept the client's connection open after the 502")
				}
				s := up.next(t)
				select {
				case after := <-s.after:
					if len(after) > 0 {
						t.Errorf("after the 101 the upstream received %q", after)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the upstream connection stayed open")
				}
				up.none(t) // the pipelined request was not served
			})
		}
	}

	// CONNECT is a tunnel too: refused before the chain and the upstream.
	for _, target := range []string{"/h1/x", "/rp/x", "127.0.0.1:443"} {
		t.Run("CONNECT "+target, func(t *testing.T) {
			sg.plain.drain()
			sg.tls.drain()
			ex := send(t, sg.addr, "CONNECT "+target+" HTTP/1.1\r\nHost: gw\r\n"+auth+"\r\n")
			if ex.res.StatusCode < 400 || ex.res.StatusCode >= 500 {
				t.Errorf("status %d, want a 4xx", ex.res.StatusCode)
			}
			sg.plain.none(t)
			sg.tls.none(t)
		})
	}
}

// TestSeamConnectHTTP2: CONNECT over HTTP/2 is refused like CONNECT over
// HTTP/1.1, before the chain and the upstream.
func TestSeamConnectHTTP2(t *testing.T) {
	sg := startFieldSeamGateway(t, "[]")
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodConnect, "http://"+sg.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", sg.apiKey)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("%s %d, want HTTP/2 405", res.Proto, res.StatusCode)
	}
	sg.plain.none(t)
	sg.tls.none(t)
}

// TestSeamTrailers: request trailers are dropped unless the route opts in,
// and then only announced fields that may be trailers pass; response
// trailers are filtered alike, on both paths.
func TestSeamTrailers(t *testing.T) {
	sg := startFieldSeamGateway(t, "[]")
	auth := "X-Api-Key: " + sg.apiKey + "\r\n"
	// Every field that must never be a trailer, in the spellings an
	// upstream reads alike.
	forbidden := []string{
		"Authorization", "Proxy-Authorization", "Cookie", "Host", "X-Request-Id", "x_request_id",
		"X-Forwarded-For", "X_Forwarded_For", "x-forwarded_host", "Forwarded", "X-Real-IP", "X_Real_IP",
		"True-Client-IP", "Via", "X-Auth-Subject", "x_auth_subject", "X-AUTH-SCOPES",
		"X-Gatehouse-Identity", "X_Gatehouse_Identity", "X-Admin", "X_Admin", "Set-Cookie",
		"Content-Type", "Content-Encoding", "Range", "If-Match", "Expect", "Max-Forwards",
		"X-HTTP-Method-Override", "Www-Authenticate", "Upgrade", "Connection",
	}
	announce := "X-Sum, " + strings.Join(forbidden, ", ")
	var trailer strings.Builder
	trailer.WriteString("X-Sum: 42\r\nX-Late: unannounced\r\n")
	for _, k := range forbidden {
		fmt.Fprintf(&trailer, "%s: forged\r\n", k)
	}
	req := func(prefix string) string {
		return "POST " + prefix + "/up HTTP/1.1\r\nHost: gw\r\n" + auth + "Te: trailers\r\nTrailer: " + announce +
			"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" + trailer.String() + "\r\n"
	}
	for _, tc := range []struct {
		prefix string
		want   string // the one trailer that passes; "" none
	}{
		{"/h1", ""}, {"/rp", ""}, {"/h1trl", "42"}, {"/rptrl", "42"},
	} {
		t.Run("request"+tc.prefix, func(t *testing.T) {
			up := sg.upstreamOf(tc.prefix)
			up.drain()
			ex := send(t, sg.addr, req(tc.prefix))
			if ex.res.StatusCode != 200 {
				t.Fatalf("status %d: %s", ex.res.StatusCode, ex.body)
			}
			s := up.next(t)
			if string(s.body) != "hello" {
				t.Errorf("body %q", s.body)
			}
			raw := strings.ToLower(string(s.raw))
			if strings.Contains(raw, "forged") || strings.Contains(raw, "unannounced") {
				t.Errorf("a forbidden or unannounced trailer reached the upstream:\n%s", s.raw)
			}
			if got := s.trailer.Get("X-Sum"); got != tc.want {
				t.Errorf("trailer X-Sum = %q, want %q\n%s", got, tc.want, s.raw)
			}
			f := fieldNames(s.headerSection())
			for _, v := range f["trailer"] {
				for name := range strings.SplitSeq(v, ",") {
					if name = strings.TrimSpace(name); !strings.EqualFold(name, "X-Sum") || tc.want == "" {
						t.Errorf("the upstream was announced trailer %q", name)
					}
				}
			}
			// The gateway's own fields arrive as it set them.
			if got := strings.Join(f["x-auth-subject"], ","); got != "billing-app" {
				t.Errorf("X-Auth-Subject = %q", got)
			}
		})
	}

	for _, prefix := range []string{"/h1", "/rp"} {
		t.Run("response"+prefix, func(t *testing.T) {
			up := sg.upstreamOf(prefix)
			up.drain()
			var tr strings.Builder
			tr.WriteString("X-Checksum: abc\r\nX-Late: unannounced\r\n")
			for _, k := range forbidden {
				fmt.Fprintf(&tr, "%s: forged\r\n", k)
			}
			up.setAnswer(func(*http.Request) string {
				return "HTTP/1.1 200 OK\r\nConnection: close\r\nTrailer: X-Checksum, " + strings.Join(forbidden, ", ") +
					"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + tr.String() + "\r\n"
			})
			t.Cleanup(func() { up.setAnswer(nil) })
			c, err := net.Dial("tcp", sg.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			io.WriteString(c, "GET "+prefix+"/x HTTP/1.1\r\nHost: gw\r\nTe: trailers\r\nConnection: close\r\n"+auth+"\r\n")
			raw, _ := io.ReadAll(c)
			res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, raw)
			}
			b, _ := io.ReadAll(res.Body)
			if string(b) != "ok" || res.StatusCode != 200 {
				t.Fatalf("status %d body %q", res.StatusCode, b)
			}
			if got := res.Trailer.Get("X-Checksum"); got != "abc" {
				t.Errorf("trailer X-Checksum = %q, want abc\n%s", got, raw)
			}
			if low := strings.ToLower(string(raw)); strings.Contains(low, "forged") || strings.Contains(low, "unannounced") {
				t.Errorf("a forbidden or unannounced response trailer reached the client:\n%s", raw)
			}
		})
	}
}

// TestSeamGatewayFields: a client cannot remove the fields the gateway
// sets by naming them in Connection, nor pass forwarding fields in another
// spelling; a trusted proxy's canonical fields are kept, its other
// spellings are not.
func TestSeamGatewayFields(t *testing.T) {
	sg := startFieldSeamGateway(t, "[]")
	auth := "X-Api-Key: " + sg.apiKey + "\r\n"
	connections := []string{
		"Connection: X-Request-Id, X-Auth-Subject, X-Gatehouse-Identity, X-Forwarded-For, Forwarded, X-Auth-Scopes\r\n",
		"connection: x-request-id,x-auth-subject , X-GATEHOUSE-IDENTITY,,x-forwarded-for,forwarded,x-forwarded-proto,x-forwarded-host\r\n",
		"Connection: keep-alive\r\nConnection: X-Request-Id\r\nConnection: X-Gatehouse-Identity, X-Auth-Subject, Forwarded\r\n",
		"Connection: close, X-Forwarded-For, X-Auth-Scopes, X-Request-Id, X-Gatehouse-Identity, X-Auth-Subject\r\n",
	}
	for _, prefix := range []string{"/h1", "/rp"} {
		for i, conn := range connections {
			t.Run(fmt.Sprintf("Connection %d%s", i, prefix), func(t *testing.T) {
				up := sg.upstreamOf(prefix)
				up.drain()
				ex := send(t, sg.addr, "GET "+prefix+"/x HTTP/1.1\r\nHost: gw\r\n"+auth+conn+"X-Auth-Subject: root\r\n\r\n")
				if ex.res.StatusCode != 200 {
					t.Fatalf("status %d %s", ex.res.StatusCode, ex.body)
				}
				f := fieldNames(up.next(t).headerSection())
				id := ex.res.Header.Get("X-Request-Id")
				for name, want := range map[string]string{
					"x-request-id": id, "x-auth-subject": "billing-app", "x-auth-scopes": "products:read",
					"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "gw",
				} {
					if got := f[name]; len(got) != 1 || got[0] != want {
						t.Errorf("the upstream received %s %q, want %q", name, got, want)
					}
				}
				if got := f["x-gatehouse-identity"]; len(got) != 1 || strings.Count(got[0], ".") != 2 {
					t.Errorf("the upstream received X-Gatehouse-Identity %q, want one JWT", got)
				}
				if got := f["forwarded"]; len(got) != 1 || !strings.HasPrefix(got[0], "for=127.0.0.1") {
					t.Errorf("the upstream received Forwarded %q", got)
				}
			})
		}
	}

	spoofed := "X_Forwarded_For: 6.6.6.6\r\nx-forwarded_for: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nX_Forwarded_Host: evil.example\r\n" +
		"X-Forwarded-Port: 6666\r\nX-Forwarded-Prefix: /evil\r\nx_forwarded_proto: https\r\nX-Real-IP: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n" +
		"x-real_ip: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nforwarded: for=6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nTrue_Client_IP: 6.6.6.6\r\n" +
		"X-Client-IP: 6.6.6.6\r\nX-Cluster-Client-IP: 6.6.6.6\r\nCF-Connecting-IP: 6.6.6.6\r\nFastly-Client-IP: 6.6.6.6\r\n" +
		"X-Original-URL: /evil\r\nX-Rewrite-URL: /evil\r\nX_Request_Id: evil-id\r\nx-request_id: evil-id\r\n" +
		"X_Auth_Subject: root\r\nx-auth_subject: root\r\nX_Gatehouse_Identity: evil.jwt.sig\r\nX_Admin: true\r\n" +
		"Proxy_Connection: keep-alive\r\nKeep_Alive: 1\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\n"
	for _, prefix := range []string{"/h1", "/rp"} {
		t.Run("spellings from an untrusted peer"+prefix, func(t *testing.T) {
			up := sg.upstreamOf(prefix)
			up.drain()
			ex := send(t, sg.addr, "GET "+prefix+"/x HTTP/1.1\r\nHost: gw\r\n"+auth+spoofed+"\r\n")
			if ex.res.StatusCode != 200 {
				t.Fatalf("status %d %s", ex.res.StatusCode, ex.body)
			}
			s := up.next(t)
			head := s.headerSection()
			for _, bad := range []string{"6.6.6.6", "evil", "6666", "root", "true", "_"} {
				if bad == "_" {
					for name := range fieldNames(head) {
						if strings.Contains(name, "_") {
							t.Errorf("the upstream received the field %q", name)
						}
					}
					continue
				}
				if strings.Contains(head, bad) {
					t.Errorf("the upstream received %q:\n%s", bad, head)
				}
			}
		})
	}
}

// TestSeamTrustedProxy: from a trusted proxy the canonical forwarding
// fields are kept (and extended), their other spellings are not.
func TestSeamTrustedProxy(t *testing.T) {
	sg := startFieldSeamGateway(t, "[127.0.0.1/32]")
	auth := "X-Api-Key: " + sg.apiKey + "\r\n"
	for _, prefix := range []string{"/h1", "/rp"} {
		t.Run(prefix, func(t *testing.T) {
			up := sg.upstreamOf(prefix)
			up.drain()
			ex := send(t, sg.addr, "GET "+prefix+"/x HTTP/1.1\r\nHost: gw\r\n"+auth+
				"X-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.7\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n"+
				"Connection: X-Forwarded-For\r\n\r\n")
			if ex.res.StatusCode != 200 {
				t.Fatalf("status %d %s", ex.res.StatusCode, ex.body)
			}
			s := up.next(t)
			f := fieldNames(s.headerSection())
			if got := f["x-real-ip"]; len(got) != 1 || got[0] != "198.51.100.7" {
				t.Errorf("X-Real-IP %q, want the trusted proxy's", got)
			}
			if strings.Contains(s.headerSection(), "6.6.6.6") {
				t.Errorf("a spelling with '_' passed:\n%s", s.headerSection())
			}
			// Named in Connection by the trusted proxy: its own hop's
			// field, removed; the gateway's hop is still added.
			if got := f["x-forwarded-for"]; len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For %q, want 127.0.0.1", got)
			}
		})
	}
}
