package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// hostileUpstream is a raw TCP listener (TLS when tlsCfg is set) that
// reads each request's head and answers with responses[last path
// segment] as it is, before reading the body; then it reads the body and
// the next request on the connection, for as long as the gateway keeps it
// (closing with unread bytes would reset the connection and could destroy
// the answer before the gateway reads it).
type hostileUpstream struct {
	ln        net.Listener
	responses map[string]string
	wg        sync.WaitGroup
}

func newHostileUpstream(t *testing.T, responses map[string]string, tlsCfg *tls.Config) *hostileUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	h := &hostileUpstream{ln: ln, responses: responses}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				h.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.wg.Wait()
	})
	return h
}

func (h *hostileUpstream) serve(c net.Conn) {
	defer c.Close()
	// Bounded, so that a gateway that never closes cannot hang the test.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		// The last segment names the answer: /h1/status-600 is status-600.
		p := req.URL.Path
		resp := h.responses[p[strings.LastIndexByte(p, '/')+1:]]
		if resp == "" {
			return // closed without a word
		}
		// The answer goes out before the body is read, as an upstream
		// answers that refuses a request early; the body is read after
		// it, so that the connection may carry the next request.
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
	}
}

func (h *hostileUpstream) addr() string { return h.ln.Addr().String() }

// slowBody is a chunked request body sent a piece at a time until stop is
// closed (or many pieces went), the way a client streams an upload.
type slowBody struct {
	n    int
	stop <-chan struct{}
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.n >= 200 {
		return 0, io.EOF
	}
	if b.n > 0 {
		select {
		case <-b.stop:
			return 0, io.EOF
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.n++
	return copy(p, "chunk of a streamed body\n"), nil
}

// hostileResponses are an upstream's answers that break HTTP, each with
// the stable code the gateway must answer 502 with ("" for any code: a 101
// nobody asked for is judged by the upgrade handling).
var hostileResponses = []struct {
	name, raw, code string
}{
	{"status-600", "HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nhi", "upstream_protocol_error"},
	{"status-999", "HTTP/1.1 999 Way Beyond\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"status-099", "HTTP/1.1 099 Below\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"status-000", "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"status-negative", "HTTP/1.1 -99 Negative\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"status-two-digits", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"status-word", "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"not-http", "SSH-2.0-OpenSSH_9.6\r\n\r\n", "upstream_protocol_error"},
	{"bad-version", "HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"1xx-storm", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 10) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "upstream_protocol_error"},
	{"1xx-endless", strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", 500), "upstream_protocol_error"},
	{"1xx-then-600", "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 600 Beyond\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"101-unasked", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: evil\r\n\r\n", ""},
	{"content-length-negative", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "upstream_protocol_error"},
	{"content-length-overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nx", "upstream_protocol_error"},
	{"content-length-twice", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "upstream_protocol_error"},
	{"content-length-list", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nxy", "upstream_protocol_error"},
	{"header-nul", "HTTP/1.1 200 OK\r\nX-Evil: a\x00b\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"header-cr", "HTTP/1.1 200 OK\r\nX-Evil: a\rb\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"header-del", "HTTP/1.1 200 OK\r\nX\x7fEvil: 1\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"header-name-space", "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"header-no-colon", "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"header-folded-first", "HTTP/1.1 200 OK\r\n X-Fold: y\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"transfer-encoding-unknown", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "upstream_protocol_error"},
	{"head-too-large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\nContent-Length: 0\r\n\r\n", "upstream_protocol_error"},
	{"closed-silently", "", "upstream_unavailable"},
}

// TestHostileUpstream drives a real gateway at upstreams that break HTTP,
// over the h1 client (http://) and http.Transport with ReverseProxy
// (https://), with no body and with a slow streamed chunked body the
// upstream answers early: every one is a 502 with its stable code, the
// gateway goes on serving, and (under -race) nothing touches a request's
// state after its handler returned.
func TestHostileUpstream(t *testing.T) {
	responses := map[string]string{}
	for _, tc := range hostileResponses {
		responses[tc.name] = tc.raw
	}
	plain := newHostileUpstream(t, responses, nil)
	ca := tlstest.NewCA(t, "hostile CA")
	secure := newHostileUpstream(t, responses, &tls.Config{
		Certificates: []tls.Certificate{ca.Server(t).TLS},
		NextProtos:   []string{"http/1.1"},
	})
	good := echoUpstream(t)
	dir := t.TempDir()
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: h1
    match: {path_prefix: /h1/}
    upstream: {url: "http://`+plain.addr()+`", timeout: 10s}
  - name: rp
    match: {path_prefix: /rp/}
    upstream:
      url: "https://`+secure.addr()+`"
      timeout: 10s
      tls: {ca_file: "`+ca.WriteFile(t, dir, "ca.pem")+`", server_name: localhost}
  - name: good
    match: {path_prefix: /good}
    upstream: {url: "`+good.URL+`"}
`, nil)

	client := &http.Client{Timeout: 30 * time.Second}
	for _, path := range []string{"h1", "rp"} {
		for _, tc := range hostileResponses {
			for _, streamed := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/streamed=%v", path, tc.name, streamed)
				t.Run(name, func(t *testing.T) {
					var req *http.Request
					stop := make(chan struct{})
					if streamed {
						req = newReq(t, "POST", g.base+"/"+path+"/"+tc.name, &slowBody{stop: stop})
					} else {
						req = newReq(t, "GET", g.base+"/"+path+"/"+tc.name, nil)
					}
					resp, err := client.Do(req)
					if err != nil {
						close(stop)
						t.Fatalf("%s: %v", name, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					close(stop)
					if resp.StatusCode != http.StatusBadGateway {
						t.Fatalf("status %d, want 502; body %q; log %s", resp.StatusCode, b, grep([]byte(g.access.String()), resp.Header.Get("X-Request-Id")))
					}
					if code := problemCode(t, b); tc.code != "" && code != tc.code {
						t.Errorf("code %q, want %q; log %s", code, tc.code, grep([]byte(g.access.String()), resp.Header.Get("X-Request-Id")))
					}
					if resp.Header.Get("X-Request-Id") == "" {
						t.Error("no X-Request-Id on the 502")
					}
					// The gateway goes on serving.
					resp, b = do(t, client, newReq(t, "GET", g.base+"/good/after", nil))
					if resp.StatusCode != 200 || decodeEcho(t, b).Path != "/good/after" {
						t.Fatalf("next request: status %d body %q", resp.StatusCode, b)
					}
				})
			}
		}
	}
}

// TestInformationalKeepsGatewayHeaders: an upstream's 103 before its
// answer leaves the headers the gateway set for the final response in
// place on both proxy paths (ReverseProxy clears the header map after each
// 1xx): X-Request-Id, and Connection: close after a chunked HTTP/1 request
// (RFC 9112 §6.1, the smuggling defence).
func TestInformationalKeepsGatewayHeaders(t *testing.T) {
	responses := map[string]string{"hints": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}
	plain := newHostileUpstream(t, responses, nil)
	ca := tlstest.NewCA(t, "hints CA")
	secure := newHostileUpstream(t, responses, &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS}, NextProtos: []string{"http/1.1"}})
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: h1
    match: {path_prefix: /h1/}
    upstream: {url: "http://`+plain.addr()+`"}
  - name: rp
    match: {path_prefix: /rp/}
    upstream: {url: "https://`+secure.addr()+`", tls: {ca_file: "`+ca.WriteFile(t, t.TempDir(), "ca.pem")+`", server_name: localhost}}
`, nil)
	for _, path := range []string{"h1", "rp"} {
		t.Run(path, func(t *testing.T) {
			stop := make(chan struct{})
			defer close(stop)
			resp, b := do(t, nil, newReq(t, "POST", g.base+"/"+path+"/hints", &slowBody{n: 195, stop: stop}))
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("status %d body %q", resp.StatusCode, b)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("X-Request-Id lost after a 103")
			}
			if !resp.Close {
				t.Errorf("no Connection: close after a chunked request with a 103 on the way: %v", resp.Header)
			}
			// HTTP/1.0 has no 1xx (RFC 9110 §15.2): such a client gets the
			// final response only.
			c, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, "GET /"+path+"/hints HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(raw), "HTTP/1.0 200 ") || strings.Contains(string(raw), " 103 ") {
				t.Errorf("HTTP/1.0 client got %q", raw)
			}
		})
	}
}
