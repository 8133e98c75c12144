package gateway_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/proxy"
)

// FuzzGatewaySeams sends arbitrary bytes to a real gateway as one client
// connection and checks every request its upstreams then read (both proxy
// paths: /h1* the HTTP/1.1 client, /rp* ReverseProxy over TLS):
//
//   - it passed the chain: exactly one X-Auth-Subject (the API key's
//     consumer), one identity token, one X-Request-Id, one
//     X-Forwarded-For naming the real peer;
//   - no Upgrade, HTTP2-Settings or upgrade Connection option, unless the
//     route takes WebSocket and the request is a handshake (GET, no
//     body, Upgrade exactly websocket);
//   - no field spelled with '_' that an upstream would read as a
//     forwarding, hop-by-hop, request-id or identity field;
//   - no trailer field that may not be one, no trailer at all on routes
//     without request_trailers, and only announced ones.
//
// "{{KEY}}" in the input is replaced by the gateway's API key, so that
// inputs get past authentication.
func FuzzGatewaySeams(f *testing.F) {
	seeds := []string{
		"GET /h1/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\n\r\n",
		"GET /rpws/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"GET /h1/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"GET /rp/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\nConnection: X-Request-Id, X-Auth-Subject, X-Gatehouse-Identity\r\nX_Forwarded_For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\r\n",
		"POST /h1trl/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\nTrailer: X-Sum, X-Auth-Subject\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Sum: 1\r\nX-Auth-Subject: root\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n",
		"POST /rptrl/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\nTrailer: x_request_id\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx_request_id: forged\r\n\r\nGET /h1/y HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\n\r\n",
		"GET /h1ws/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: {{KEY}}\r\nconnection: keep-alive, upgrade\r\nupgrade: websocket\r\nContent-Length: 4\r\n\r\nabcd",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	sg := startFieldSeamGateway(f, "[]")
	f.Fuzz(func(t *testing.T, in []byte) {
		in = bytes.ReplaceAll(in, []byte("{{KEY}}"), []byte(sg.apiKey))
		sg.plain.drain()
		sg.tls.drain()
		c, err := net.Dial("tcp", sg.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write(in)
		_ = c.(*net.TCPConn).CloseWrite()
		// Every response read (or the gateway gone): the upstreams have
		// read every request forwarded, since they record a request
		// before answering it.
		_, _ = io.Copy(io.Discard, c)
		for _, up := range []*rawUpstream{sg.plain, sg.tls} {
			for {
				var s *seen
				select {
				case s = <-up.got:
				default:
				}
				if s == nil {
					break
				}
				checkSeam(t, sg, s)
			}
		}
	})
}

// checkSeam checks one request an upstream read against the invariants of
// FuzzGatewaySeams.
func checkSeam(t *testing.T, sg *seamGateway, s *seen) {
	t.Helper()
	if s.req == nil {
		t.Fatalf("the upstream read a request it cannot parse:\n%q", s.raw)
	}
	head := s.headerSection()
	f := fieldNames(head)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nthe upstream read:\n%q", append(args, s.raw)...)
	}
	if v := f["x-auth-subject"]; len(v) != 1 || v[0] != "billing-app" {
		fail("X-Auth-Subject %q, want billing-app once", v)
	}
	if v := f["x-gatehouse-identity"]; len(v) != 1 || strings.Count(v[0], ".") != 2 {
		fail("X-Gatehouse-Identity %q, want one token", v)
	}
	if v := f["x-request-id"]; len(v) != 1 || len(v[0]) != 32 {
		fail("X-Request-Id %q, want the gateway's, once", v)
	}
	if v := f["x-forwarded-for"]; len(v) != 1 || v[0] != "127.0.0.1" {
		fail("X-Forwarded-For %q, want 127.0.0.1", v)
	}
	path := s.req.URL.Path
	wsRoute := strings.HasPrefix(path, "/h1ws") || strings.HasPrefix(path, "/rpws")
	upgrade := f["upgrade"]
	if len(upgrade) > 0 {
		handshake := wsRoute && s.req.Method == http.MethodGet && s.req.ContentLength == 0 && len(s.req.TransferEncoding) == 0 &&
			len(upgrade) == 1 && strings.EqualFold(upgrade[0], "websocket")
		if !handshake {
			fail("Upgrade %q reached the upstream of %s %s", upgrade, s.req.Method, path)
		}
	}
	for _, v := range f["connection"] {
		if strings.Contains(strings.ToLower(v), "upgrade") && len(upgrade) == 0 {
			fail("Connection %q without an Upgrade", v)
		}
		if strings.Contains(strings.ToLower(v), "settings") {
			fail("Connection %q", v)
		}
	}
	for name := range f {
		if name == "http2-settings" || strings.ContainsRune(name, '_') && (proxy.ForwardingField(name) || proxy.HopByHopField(name) ||
			proxy.SameField(name, "X-Request-Id") || inNames(name, sg.identity)) {
			fail("the field %q reached the upstream", name)
		}
	}
	trailerRoute := strings.HasPrefix(path, "/h1trl") || strings.HasPrefix(path, "/rptrl")
	for k := range s.trailer {
		if !trailerRoute {
			fail("trailer %q on a route without request_trailers", k)
		}
		if !proxy.TrailerAllowed(k, sg.identity) {
			fail("trailer %q may not be one", k)
		}
	}
	if len(s.trailer) > 0 {
		// Only announced fields: whatever the trailer section holds was
		// announced in the head (http.ReadRequest merges them all).
		announced := strings.ToLower(strings.Join(f["trailer"], ","))
		for k := range s.trailer {
			if !strings.Contains(announced, strings.ToLower(k)) {
				fail("trailer %q was not announced (%q)", k, announced)
			}
		}
	}
}

func inNames(name string, names []string) bool {
	for _, n := range names {
		if proxy.SameField(name, n) {
			return true
		}
	}
	return false
}
