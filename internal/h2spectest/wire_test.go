package h2spectest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// rawUpstream is an HTTP/1.1 upstream on a raw TCP listener that records
// the bytes of each request head it receives and answers every request
// with response.
type rawUpstream struct {
	addr     string
	response string
	mu       sync.Mutex
	heads    []string
}

func startRawUpstream(t *testing.T, response string) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{addr: ln.Addr().String(), response: response}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { u.serve(c) })
		}
	})
	return u
}

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var head bytes.Buffer
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(head.Bytes()), br)))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		u.mu.Lock()
		u.heads = append(u.heads, head.String())
		u.mu.Unlock()
		if _, err := io.WriteString(c, u.response); err != nil {
			return
		}
	}
}

func (u *rawUpstream) received() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.heads...)
}

// h2Response is what came back on one stream.
type h2Response struct {
	fields []hpack.HeaderField
	body   string
	reset  http2.ErrCode // RST_STREAM's code, if the stream was reset
	resetd bool
}

func (r h2Response) status() string {
	for _, f := range r.fields {
		if f.Name == ":status" {
			return f.Value
		}
	}
	return ""
}

// h2Do opens a TLS connection with ALPN h2 to addr, sends one request made
// of fields (pseudo-header fields first, in the order given, nothing
// added), with body as one DATA frame if not empty, and reads the
// response or the stream's reset.
func h2Do(t *testing.T, addr string, fields []hpack.HeaderField, body string) h2Response {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN: %q, want h2", p)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range fields {
		enc.WriteField(f)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: body == ""}); err != nil {
		t.Fatal(err)
	}
	if body != "" {
		if err := fr.WriteData(1, true, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var res h2Response
	var b strings.Builder
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				if res.fields == nil {
					res.fields = f.Fields
				}
				if f.StreamEnded() {
					res.body = b.String()
					return res
				}
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				b.Write(f.Data())
				if f.StreamEnded() {
					res.body = b.String()
					return res
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				res.reset, res.resetd = f.ErrCode, true
				res.body = b.String()
				return res
			}
		case *http2.GoAwayFrame:
			res.reset, res.resetd = f.ErrCode, true
			return res
		}
	}
}

// TestHTTP2Wire sends HTTP/2 requests that h2spec does not (CONNECT,
// extended CONNECT, a host field besides :authority, split cookies) and
// answers with fields HTTP/2 forbids, through a real gateway to an
// upstream that records what it receives.
func TestHTTP2Wire(t *testing.T) {
	body := "hello"
	up := startRawUpstream(t, "HTTP/1.1 200 OK\r\n"+
		"Connection: X-Hop, keep-alive\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"X-Hop: secret\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Upgrade: h2c\r\n"+
		"Transfer-Encoding: chunked\r\n"+
		"Content-Type: text/plain\r\n"+
		"X-Kept: yes\r\n"+
		"\r\n"+
		"5\r\n"+body+"\r\n0\r\n\r\n")
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "wire test CA")
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	g := gatewaytest.Start(t, `
listeners:
  - name: main
    address: 127.0.0.1:0
    tls: {cert_file: "`+certFile+`", key_file: "`+keyFile+`"}
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: root
    match: {path: /}
    upstream: {url: "http://`+up.addr+`"}
`, gateway.Options{BaseDir: dir, Registry: builtin.Registry()})
	addr := g.Addr("main").String()
	hf := func(kv ...string) []hpack.HeaderField {
		var out []hpack.HeaderField
		for i := 0; i < len(kv); i += 2 {
			out = append(out, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}

	t.Run("response fields HTTP/2 forbids are not sent", func(t *testing.T) {
		res := h2Do(t, addr, hf(":method", "GET", ":scheme", "https", ":authority", addr, ":path", "/"), "")
		if res.status() != "200" || res.body != body {
			t.Fatalf("status %q body %q, want 200 %q", res.status(), res.body, body)
		}
		kept := false
		for _, f := range res.fields {
			switch f.Name {
			case "connection", "keep-alive", "x-hop", "proxy-connection", "upgrade", "transfer-encoding":
				t.Errorf("response has %s: %s", f.Name, f.Value)
			case "x-kept":
				kept = true
			}
			if f.Name != strings.ToLower(f.Name) {
				t.Errorf("response field name %q is not lower case", f.Name)
			}
		}
		if !kept {
			t.Errorf("an end-to-end field was lost: %v", res.fields)
		}
	})

	t.Run("a host field besides :authority", func(t *testing.T) {
		n := len(up.received())
		res := h2Do(t, addr, hf(":method", "GET", ":scheme", "https", ":authority", addr, ":path", "/", "host", "evil.example"), "")
		heads := up.received()[n:]
		if res.status() != "200" || len(heads) != 1 {
			t.Fatalf("status %q, %d requests upstream", res.status(), len(heads))
		}
		if c := strings.Count(strings.ToLower(heads[0]), "\r\nhost:"); c != 1 || strings.Contains(heads[0], "evil.example") {
			t.Errorf("the upstream received %d Host fields or the client's host field:\n%s", c, heads[0])
		}
	})

	t.Run("split cookie fields arrive as one Cookie", func(t *testing.T) {
		n := len(up.received())
		res := h2Do(t, addr, hf(":method", "GET", ":scheme", "https", ":authority", addr, ":path", "/", "cookie", "a=1", "cookie", "b=2"), "")
		heads := up.received()[n:]
		if res.status() != "200" || len(heads) != 1 {
			t.Fatalf("status %q, %d requests upstream", res.status(), len(heads))
		}
		if c := strings.Count(strings.ToLower(heads[0]), "\r\ncookie:"); c != 1 || !strings.Contains(heads[0], "a=1; b=2") {
			t.Errorf("RFC 9113 8.2.3: the cookie crumbs must reach an HTTP/1.1 upstream as one Cookie field \"a=1; b=2\"; it received %d:\n%s", c, heads[0])
		}
	})

	t.Run("an absolute URI as :path", func(t *testing.T) {
		for _, path := range []string{"http://evil.example/", "https://evil.example/x?y=1", "evil.example/x"} {
			n := len(up.received())
			res := h2Do(t, addr, hf(":method", "GET", ":scheme", "https", ":authority", addr, ":path", path), "")
			if heads := up.received()[n:]; len(heads) != 0 {
				t.Errorf(":path %s: the upstream received:\n%s", path, heads[0])
			}
			// Go's server resets the stream for some (no scheme, no
			// leading "/"); what it lets through, the gateway refuses.
			if !res.resetd && (res.status() != "400" || !strings.Contains(res.body, "invalid_path")) {
				t.Errorf(":path %s: status %q %s, want 400 invalid_path or a reset stream", path, res.status(), res.body)
			}
		}
	})

	for _, c := range []struct {
		name   string
		fields []hpack.HeaderField
	}{
		{"CONNECT", hf(":method", "CONNECT", ":authority", "127.0.0.1:22")},
		{"extended CONNECT", hf(":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", addr, ":path", "/")},
	} {
		t.Run(c.name+" is not proxied", func(t *testing.T) {
			n := len(up.received())
			res := h2Do(t, addr, c.fields, "")
			if heads := up.received()[n:]; len(heads) != 0 {
				t.Errorf("the upstream received:\n%s", heads[0])
			}
			if st := res.status(); !res.resetd && (len(st) != 3 || st[0] != '4') {
				t.Errorf("status %q, want a 4xx or a reset stream", st)
			}
		})
	}
}

// TestHTTP2Stalls holds HTTP/2 connections open the ways a slow client
// can (the preface only; a header block never ended; a request body never
// sent) and requires that the listener's timeouts end each: the
// connection is closed (GOAWAY or EOF) well before the test's 20 s
// deadline, and a request whose body stalls is answered 408
// request_timeout first.
func TestHTTP2Stalls(t *testing.T) {
	up := startRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "stall test CA")
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	g := gatewaytest.Start(t, `
listeners:
  - name: main
    address: 127.0.0.1:0
    tls: {cert_file: "`+certFile+`", key_file: "`+keyFile+`"}
    read_header_timeout: 1s
    read_timeout: 1s
    idle_timeout: 2s
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: root
    match: {path: /}
    upstream: {url: "http://`+up.addr+`"}
`, gateway.Options{BaseDir: dir, Registry: builtin.Registry()})
	addr := g.Addr("main").String()
	for _, stall := range []string{"preface only", "header block never ended", "request body never sent"} {
		t.Run(stall, func(t *testing.T) {
			t.Parallel()
			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(conn, http2.ClientPreface)
			fr := http2.NewFramer(conn, conn)
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			fr.WriteSettings()
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, f := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: addr}, {Name: ":path", Value: "/"}} {
				enc.WriteField(f)
			}
			switch stall {
			case "header block never ended":
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: false})
			case "request body never sent":
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
			}
			status := ""
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatalf("the connection is still open after 20 s")
					}
					break // closed
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						fr.WriteSettingsAck()
					}
				case *http2.MetaHeadersFrame:
					status = f.PseudoValue("status")
				}
			}
			want := ""
			if stall == "request body never sent" {
				want = "408"
			}
			if status != want {
				t.Errorf("answered %q before the close, want %q", status, want)
			}
		})
	}
}
