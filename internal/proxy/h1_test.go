package proxy_test

// Adversarial tests of the HTTP/1.1 upstream client (h1.go, forward.go,
// alive_unix.go) as Upstream.ServeHTTP uses it for http:// upstreams. The
// client side is always a real net/http server (an httptest.Server in front
// of the Upstream); upstreams are httptest servers, or raw listeners where
// the exact bytes on the wire matter.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// patience bounds every wait for something that should happen promptly (a
// handler returning, a connection closing). It is never a measured timing:
// running into it is a failure, not a slow pass.
const patience = 5 * time.Second

// errRecorder is the Upstream's OnError: it keeps every error and answers
// 502 with a body that names it, so tests can tell its response apart.
type errRecorder struct {
	mu   sync.Mutex
	errs []error
	ch   chan error
}

func newErrRecorder() *errRecorder { return &errRecorder{ch: make(chan error, 64)} }

func (e *errRecorder) handle(w http.ResponseWriter, _ *http.Request, err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
	select {
	case e.ch <- err:
	default:
	}
	http.Error(w, "onerror: "+err.Error(), http.StatusBadGateway)
}

func (e *errRecorder) all() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}

// newUpstream builds the Upstream of rawURL with every duration set
// explicitly (the config defaults, Timeout none); mod adjusts the config.
func newUpstream(t *testing.T, rawURL string, mod func(*config.Upstream)) (*proxy.Upstream, *errRecorder) {
	t.Helper()
	cfg := config.Upstream{
		URL:                   rawURL,
		ConnectTimeout:        config.Duration(5 * time.Second),
		ResponseHeaderTimeout: config.Duration(60 * time.Second),
		IdleConnTimeout:       config.Duration(90 * time.Second),
		MaxIdleConnsPerHost:   256,
		Timeout:               0,
	}
	if mod != nil {
		mod(&cfg)
	}
	rec := newErrRecorder()
	up, err := proxy.New(cfg, proxy.Options{OnError: rec.handle})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	t.Cleanup(up.Close)
	return up, rec
}

// newFront serves h on 127.0.0.1: the client side of the Upstream.
func newFront(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// returned wraps h so that done receives once per request after h returned.
func returned(h http.Handler, done chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		h.ServeHTTP(w, r)
	})
}

// connTracker counts an httptest upstream's connections.
type connTracker struct {
	mu             sync.Mutex
	opened, closed int
}

func (c *connTracker) hook(_ net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		c.opened++
	case http.StateClosed, http.StateHijacked:
		c.closed++
	}
}

// counts returns the connections accepted so far and those still open.
func (c *connTracker) counts() (accepted, open int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.opened - c.closed
}

func newTrackedUpstream(t *testing.T, h http.Handler) (*httptest.Server, *connTracker) {
	t.Helper()
	ct := &connTracker{}
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = ct.hook
	s.Start()
	t.Cleanup(s.Close)
	return s, ct
}

// rawServer is an upstream that speaks bytes written by the test. handle
// runs per connection with its 1-based accept number; the connection is
// closed when it returns.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int32
	done     chan struct{} // closed when the test ends

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newRawServer(t *testing.T) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &rawServer{ln: ln, done: make(chan struct{})}
}

// serve accepts connections until the test ends, running handle on each.
// Separate from newRawServer so that handle may refer to the server.
func (rs *rawServer) serve(t *testing.T, handle func(n int, c net.Conn, br *bufio.Reader)) *rawServer {
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := rs.ln.Accept()
			if err != nil {
				return
			}
			n := int(rs.accepted.Add(1))
			rs.mu.Lock()
			rs.conns = append(rs.conns, c)
			rs.wg.Add(1)
			rs.mu.Unlock()
			go func() {
				defer rs.wg.Done()
				defer c.Close()
				handle(n, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		close(rs.done)
		rs.ln.Close()
		<-acceptDone
		rs.mu.Lock()
		for _, c := range rs.conns {
			c.Close()
		}
		rs.mu.Unlock()
		rs.wg.Wait()
	})
	return rs
}

func (rs *rawServer) url() string { return "http://" + rs.ln.Addr().String() }

// readRequest reads one request and its whole body.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err
}

func writeOK(c net.Conn, body string) error {
	_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return err
}

// serveOK answers every request on the connection with 200 and body.
func serveOK(c net.Conn, br *bufio.Reader, body string) {
	for {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		if writeOK(c, body) != nil {
			return
		}
	}
}

// waitFor polls cond until it holds or patience runs out.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// letFINArrive gives the kernel a moment to deliver a peer's FIN on
// loopback before the next request looks at the pooled connection.
func letFINArrive() { time.Sleep(20 * time.Millisecond) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// do sends a request and reads the whole response body.
func do(ctx context.Context, client *http.Client, method, url string, body io.Reader) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, "", err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// TestH1ReusesConnection: sequential exchanges share one upstream
// connection, with and without request bodies.
func TestH1ReusesConnection(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   []byte
	}{
		{"GET", http.MethodGet, nil},
		{"HEAD", http.MethodHead, nil},
		{"POST 8KiB", http.MethodPost, bytes.Repeat([]byte("p"), 8<<10)},
		{"POST 300KiB", http.MethodPost, bytes.Repeat([]byte("q"), 300<<10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			us, ct := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Length", strconv.Itoa(len("got ")+len(strconv.FormatInt(n, 10))))
				fmt.Fprintf(w, "got %d", n)
			}))
			up, rec := newUpstream(t, us.URL, nil)
			front := newFront(t, up)
			ctx := testContext(t)
			const n = 10
			for i := range n {
				var body io.Reader
				if tc.body != nil {
					body = bytes.NewReader(tc.body)
				}
				res, got, err := do(ctx, front.Client(), tc.method, front.URL+"/x", body)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				want := fmt.Sprintf("got %d", len(tc.body))
				if tc.method == http.MethodHead {
					want = ""
				}
				if res.StatusCode != http.StatusOK || got != want {
					t.Fatalf("request %d: %d %q, want 200 %q", i, res.StatusCode, got, want)
				}
			}
			if accepted, _ := ct.counts(); accepted != 1 {
				t.Errorf("%d sequential requests opened %d upstream connections, want 1", n, accepted)
			}
			if errs := rec.all(); len(errs) > 0 {
				t.Errorf("OnError called: %v", errs)
			}
		})
	}
}

// TestH1StaleIdleConnection: the upstream closes every connection after one
// response without saying so. A GET on the stale pooled connection is
// retried; a POST is not put on it at all (the liveness check), and its body
// reaches the upstream exactly once.
func TestH1StaleIdleConnection(t *testing.T) {
	type seen struct {
		conn   int
		method string
		body   []byte
	}
	var (
		mu       sync.Mutex
		requests []seen
	)
	closedConn := make(chan int, 8)
	rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
		defer func() { closedConn <- n }()
		req, body, err := readRequest(br)
		if err != nil {
			return
		}
		mu.Lock()
		requests = append(requests, seen{n, req.Method, body})
		mu.Unlock()
		_ = writeOK(c, "conn="+strconv.Itoa(n))
		c.Close() // no Connection: close: the client cannot know
	})
	up, rec := newUpstream(t, rs.url(), nil)
	front := newFront(t, up)
	ctx := testContext(t)
	client := front.Client()

	waitClosed := func() {
		select {
		case <-closedConn:
		case <-time.After(patience):
			t.Fatal("the upstream did not close its connection")
		}
		letFINArrive()
	}

	if _, got, err := do(ctx, client, "GET", front.URL+"/1", nil); err != nil || got != "conn=1" {
		t.Fatalf("first GET: %q, %v", got, err)
	}
	waitClosed()
	res, got, err := do(ctx, client, "GET", front.URL+"/2", nil)
	if err != nil || res.StatusCode != http.StatusOK || got != "conn=2" {
		t.Fatalf("GET after the upstream closed the idle connection: %v %q, %v; want 200 \"conn=2\"", res.Status, got, err)
	}
	waitClosed()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	res, got, err = do(ctx, client, "POST", front.URL+"/3", bytes.NewReader(payload))
	if err != nil || res.StatusCode != http.StatusOK || got != "conn=3" {
		t.Fatalf("POST after the upstream closed the idle connection: %v %q, %v; want 200 \"conn=3\"", res.Status, got, err)
	}

	mu.Lock()
	defer mu.Unlock()
	posts := 0
	for _, s := range requests {
		if s.method != "POST" {
			continue
		}
		posts++
		if !bytes.Equal(s.body, payload) {
			t.Errorf("the upstream got a POST body of %d bytes on conn %d, want the %d sent", len(s.body), s.conn, len(payload))
		}
	}
	if posts != 1 {
		t.Errorf("the upstream saw the POST %d times, want exactly once", posts)
	}
	if errs := rec.all(); len(errs) > 0 {
		t.Errorf("OnError called: %v", errs)
	}
}

// TestH1EarlyResponse: the upstream answers before it has read a large
// request body. The client gets that answer and the handler returns, whether
// the upstream then closes or keeps the connection open without reading.
func TestH1EarlyResponse(t *testing.T) {
	const (
		drain  = iota // the upstream closes its write side and reads the rest
		linger        // as net/http's server: closes its write side, waits, closes
		rst           // closes at once with the body unread: a RST follows
		open          // keeps the connection open and never reads
	)
	tests := []struct {
		name     string
		response string
		after    int
		code     int
		body     string
		size     int
	}{
		{
			name:     "413, upstream drains",
			response: "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large",
			after:    drain, code: 413, body: "too large", size: 8 << 20,
		},
		{
			name:     "401, upstream lingers and closes",
			response: "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 6\r\n\r\ndenied",
			after:    linger, code: 401, body: "denied", size: 8 << 20,
		},
		{
			name:     "413, upstream closes at once",
			response: "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large",
			after:    rst, code: 413, body: "too large", size: 8 << 20,
		},
		{
			name:     "401, connection kept open, body never read",
			response: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\ndenied",
			after:    open, code: 401, body: "denied", size: 32 << 20,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, tc.response); err != nil {
					return
				}
				switch tc.after {
				case drain:
					_ = c.(*net.TCPConn).CloseWrite()
					<-waitEOF(c, br)
				case linger:
					_ = c.(*net.TCPConn).CloseWrite()
					select {
					case <-time.After(500 * time.Millisecond): // net/http's rstAvoidanceDelay
					case <-waitEOF(c, br):
					}
				case rst:
				case open:
					<-waitEOF(c, br)
				}
			})
			up, rec := newUpstream(t, rs.url(), nil)
			handlerDone := make(chan struct{}, 1)
			front := newFront(t, returned(up, handlerDone))
			ctx := testContext(t)

			res, got, err := do(ctx, front.Client(), "POST", front.URL+"/upload", bytes.NewReader(make([]byte, tc.size)))
			if err != nil {
				t.Fatalf("POST of %d bytes: %v, want the upstream's %d", tc.size, err, tc.code)
			}
			if res.StatusCode != tc.code || got != tc.body {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, got, tc.code, tc.body)
			}
			select {
			case <-handlerDone:
			case <-time.After(patience):
				t.Fatal("the proxy's handler did not return after the early response")
			}
			if errs := rec.all(); len(errs) > 0 {
				t.Errorf("OnError called: %v", errs)
			}
		})
	}
}

// waitEOF reads and discards c until it fails, then closes the channel.
func waitEOF(c net.Conn, br *bufio.Reader) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		_, _ = io.Copy(io.Discard, br)
		_ = c.Close()
	}()
	return ch
}

// TestH1Informational: 103 Early Hints reach the client with their own
// headers only; a 100 Continue nobody asked for is swallowed.
func TestH1Informational(t *testing.T) {
	const link = "</style.css>; rel=preload; as=style"
	tests := []struct {
		name  string
		heads string // written before the final response
		want  []int  // 1xx codes the client sees
	}{
		{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: " + link + "\r\n\r\n", []int{103}},
		{"100 Continue unasked", "HTTP/1.1 100 Continue\r\n\r\n", nil},
		{"100 then 103", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: " + link + "\r\n\r\n", []int{103}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				for {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					if _, err := io.WriteString(c, tc.heads+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
						return
					}
				}
			})
			up, rec := newUpstream(t, rs.url(), nil)
			front := newFront(t, up)

			var (
				codes []int
				links []string
			)
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				codes = append(codes, code)
				links = append(links, h.Get("Link"))
				return nil
			}}
			ctx := httptrace.WithClientTrace(testContext(t), trace)
			res, got, err := do(ctx, front.Client(), "GET", front.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || got != "ok" {
				t.Errorf("final response %d %q, want 200 \"ok\"", res.StatusCode, got)
			}
			if fmt.Sprint(codes) != fmt.Sprint(tc.want) {
				t.Errorf("client saw 1xx %v, want %v", codes, tc.want)
			}
			for i, l := range links {
				if codes[i] == 103 && l != link {
					t.Errorf("103 Link = %q, want %q", l, link)
				}
			}
			if l := res.Header.Values("Link"); len(l) > 0 {
				t.Errorf("final response carries the 103's Link: %q", l)
			}
			if errs := rec.all(); len(errs) > 0 {
				t.Errorf("OnError called: %v", errs)
			}
		})
	}
}

// TestTrailers: of a chunked upstream response, the announced trailer
// fields that may be trailers reach the client, and no other (one not
// announced, an announced Set-Cookie); of a chunked request, with
// request_trailers, the announced allowed fields reach the upstream and
// no other (a protected identity header, X-Forwarded-For, one not
// announced), and none at all without it. On both paths: the proxy's own
// HTTP/1.1 client and ReverseProxy (h2c).
func TestTrailers(t *testing.T) {
	for _, mode := range []string{"h1", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			for _, reqTrailers := range []bool{true, false} {
				testTrailers(t, mode, reqTrailers)
			}
		})
	}
}

func testTrailers(t *testing.T, mode string, reqTrailers bool) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Checksum, Set-Cookie")
		w.Header().Set("X-Request-Trailer", fmt.Sprint(r.Trailer))
		w.Header().Set("X-Request-Body", string(body))
		w.WriteHeader(200)
		io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set("Set-Cookie", "session=forged")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	var us *httptest.Server
	if mode == "h2c" {
		us = httptest.NewUnstartedServer(h)
		us.Config.Protocols = new(http.Protocols)
		us.Config.Protocols.SetUnencryptedHTTP2(true)
		us.Start()
		t.Cleanup(us.Close)
	} else {
		us, _ = newTrackedUpstream(t, h)
	}
	cfg := config.Upstream{
		URL: us.URL, H2C: mode == "h2c", RequestTrailers: reqTrailers,
		ConnectTimeout: config.Duration(5 * time.Second), ResponseHeaderTimeout: config.Duration(60 * time.Second),
		IdleConnTimeout: config.Duration(90 * time.Second), MaxIdleConnsPerHost: 256,
	}
	rec := newErrRecorder()
	up, err := proxy.New(cfg, proxy.Options{OnError: rec.handle, Protected: []string{"X-Auth-Subject"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	front := newFront(t, up)
	for i := range 3 { // the later ones on the pooled connection
		req, _ := http.NewRequestWithContext(testContext(t), "GET", front.URL+"/t", nil)
		if i == 2 {
			// Of unknown length, so chunked, with a trailer.
			req.Method = "POST"
			req.Body = io.NopCloser(io.MultiReader(strings.NewReader("req-body")))
			req.ContentLength = -1
			req.Trailer = http.Header{
				"X-Req-Sum": {"r1"}, "X-Auth-Subject": {"admin"}, "X_auth_subject": {"admin"},
				"X-Forwarded-For": {"1.2.3.4"}, "Authorization": {"Bearer x"}, "X-Request-Id": {"forged"},
			}
		}
		res, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(b) != "part one, part two" {
			t.Errorf("request %d: body %q, %v", i, b, err)
		}
		if v := res.Trailer.Get("X-Checksum"); v != "abc123" {
			t.Errorf("request %d: announced trailer X-Checksum = %q, want abc123 (trailer %v)", i, v, res.Trailer)
		}
		for _, k := range []string{"X-Late", "Set-Cookie"} {
			if v := res.Trailer.Get(k); v != "" {
				t.Errorf("request %d: trailer %s = %q passed (trailer %v)", i, k, v, res.Trailer)
			}
		}
		if v := res.Header.Get("X-Checksum"); v != "" {
			t.Errorf("request %d: trailer leaked into the header: %q", i, v)
		}
		if i == 2 {
			want := "map[]"
			if reqTrailers {
				want = "map[X-Req-Sum:[r1]]"
			}
			if v := res.Header.Get("X-Request-Trailer"); v != want {
				t.Errorf("the upstream got request trailer %s, want %s", v, want)
			}
			if v := res.Header.Get("X-Request-Body"); v != "req-body" {
				t.Errorf("the upstream got request body %q, want req-body", v)
			}
		}
	}
	if errs := rec.all(); len(errs) > 0 {
		t.Errorf("OnError called: %v", errs)
	}
}

// padHeaders is n bytes, about, of header lines.
func padHeaders(n int) string {
	var b strings.Builder
	val := strings.Repeat("a", 1000)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "X-Pad-%05d: %s\r\n", i, val)
	}
	return b.String()
}

// TestH1ResponseHeadTooLarge: a response head beyond 1 MiB (1xx heads
// counted) fails the exchange through OnError; one below passes.
func TestH1ResponseHeadTooLarge(t *testing.T) {
	tests := []struct {
		name    string
		wire    string
		wantErr bool
	}{
		{"1.5 MiB of headers", "HTTP/1.1 200 OK\r\n" + padHeaders(1536<<10) + "Content-Length: 2\r\n\r\nok", true},
		{"600 KiB in a 103 and 600 KiB in the 200", "HTTP/1.1 103 Early Hints\r\n" + padHeaders(600<<10) + "\r\n" +
			"HTTP/1.1 200 OK\r\n" + padHeaders(600<<10) + "Content-Length: 2\r\n\r\nok", true},
		{"900 KiB of headers", "HTTP/1.1 200 OK\r\n" + padHeaders(900<<10) + "Content-Length: 2\r\n\r\nok", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.wire)
				<-waitEOF(c, br)
			})
			up, rec := newUpstream(t, rs.url(), nil)
			front := newFront(t, up)
			res, got, err := do(testContext(t), front.Client(), "GET", front.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			errs := rec.all()
			if !tc.wantErr {
				if res.StatusCode != 200 || got != "ok" || len(errs) > 0 {
					t.Errorf("got %d %q, OnError %v; want 200 \"ok\"", res.StatusCode, got, errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("OnError called %d times (%v), want once", len(errs), errs)
			}
			if res.StatusCode != http.StatusBadGateway || !strings.HasPrefix(got, "onerror: ") {
				t.Errorf("client got %d %.80q, want OnError's 502", res.StatusCode, got)
			}
		})
	}
}

// TestH1GarbageAfterResponse: bytes the upstream sends beyond a complete
// response must not answer the next request, whether they came with the
// response or arrived while the connection sat in the pool.
func TestH1GarbageAfterResponse(t *testing.T) {
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"
	tests := []struct {
		name    string
		garbage string
		later   bool // sent after the client has the first response
	}{
		{"response-like, same write", evil, false},
		{"junk, same write", "\r\nxyzzy", false},
		{"response-like, while idle in the pool", evil, true},
		{"junk, while idle in the pool", "xyzzy\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sendGarbage := make(chan struct{})
			rs := newRawServer(t)
			rs.serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				if n == 1 {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					resp := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
					if !tc.later {
						resp += tc.garbage
					}
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
					if tc.later {
						select {
						case <-sendGarbage:
						case <-rs.done:
							return
						}
						if _, err := io.WriteString(c, tc.garbage); err != nil {
							return
						}
					}
				}
				serveOK(c, br, "second-conn="+strconv.Itoa(n))
			})
			up, rec := newUpstream(t, rs.url(), nil)
			front := newFront(t, up)
			ctx := testContext(t)
			if _, got, err := do(ctx, front.Client(), "GET", front.URL+"/1", nil); err != nil || got != "first" {
				t.Fatalf("first GET: %q, %v", got, err)
			}
			if tc.later {
				close(sendGarbage)
				letFINArrive() // and the garbage
			}
			res, got, err := do(ctx, front.Client(), "GET", front.URL+"/2", nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || got != "second-conn=2" {
				t.Errorf("second GET got %d %q, want 200 \"second-conn=2\" (on a new connection); OnError: %v", res.StatusCode, got, rec.all())
			}
			if n := rs.accepted.Load(); n != 2 {
				t.Errorf("upstream accepted %d connections, want 2", n)
			}
		})
	}
}

// TestH1HopByHop: hop-by-hop headers stop at the proxy in both directions,
// forwarding headers of an untrusted client are replaced, and no Go
// User-Agent is made up.
func TestH1HopByHop(t *testing.T) {
	got := make(chan http.Header, 1)
	rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
		req, _, err := readRequest(br)
		if err != nil {
			return
		}
		got <- req.Header
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Connection: X-Upstream-Secret, keep-alive\r\n"+
			"X-Upstream-Secret: s3\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"Proxy-Authenticate: Basic realm=x\r\n"+
			"X-Kept: yes\r\n"+
			"Content-Length: 2\r\n\r\nok")
		<-waitEOF(c, br)
	})
	up, rec := newUpstream(t, rs.url(), nil)
	front := newFront(t, up)

	req, _ := http.NewRequestWithContext(testContext(t), "GET", front.URL+"/h", nil)
	req.Header["Connection"] = []string{"X-Secret"}
	req.Header.Set("X-Secret", "s1")
	req.Header.Set("Keep-Alive", "300")
	req.Header.Set("Te", "gzip, trailers")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	req.Header.Set("X-Visible", "v")
	req.Header["User-Agent"] = []string{""} // the client sends none
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	var upHeader http.Header
	select {
	case upHeader = <-got:
	default:
		t.Fatalf("the upstream saw no request; OnError: %v", rec.all())
	}

	tests := []struct {
		where  string
		h      http.Header
		key    string
		want   string
		absent bool
	}{
		{"upstream", upHeader, "X-Secret", "", true},
		{"upstream", upHeader, "Connection", "", true},
		{"upstream", upHeader, "Keep-Alive", "", true},
		{"upstream", upHeader, "Proxy-Authorization", "", true},
		{"upstream", upHeader, "Proxy-Connection", "", true},
		{"upstream", upHeader, "User-Agent", "", true},
		{"upstream", upHeader, "Te", "trailers", false},
		{"upstream", upHeader, "X-Forwarded-For", "127.0.0.1", false},
		{"upstream", upHeader, "X-Visible", "v", false},
		{"client", res.Header, "X-Upstream-Secret", "", true},
		{"client", res.Header, "Keep-Alive", "", true},
		{"client", res.Header, "Proxy-Authenticate", "", true},
		{"client", res.Header, "X-Kept", "yes", false},
	}
	for _, tc := range tests {
		v, ok := tc.h[textproto.CanonicalMIMEHeaderKey(tc.key)]
		switch {
		case tc.absent && ok:
			t.Errorf("%s got %s: %q, want none", tc.where, tc.key, v)
		case !tc.absent && strings.Join(v, ", ") != tc.want:
			t.Errorf("%s got %s: %q, want %q", tc.where, tc.key, v, tc.want)
		}
	}
	if fwd := upHeader.Get("Forwarded"); strings.Contains(fwd, "6.6.6.6") {
		t.Errorf("upstream got the untrusted client's Forwarded: %q", fwd)
	}
}

// TestH1UpstreamTimeouts: an upstream that never answers ends the exchange
// through OnError with a timeout, and the request is sent to it once.
func TestH1UpstreamTimeouts(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*config.Upstream)
		warm bool // a first request makes the connection a reused one
	}{
		{"timeout", func(c *config.Upstream) { c.Timeout = config.Duration(200 * time.Millisecond) }, false},
		{"response header timeout", func(c *config.Upstream) { c.ResponseHeaderTimeout = config.Duration(200 * time.Millisecond) }, false},
		{"timeout on a reused connection", func(c *config.Upstream) { c.Timeout = config.Duration(200 * time.Millisecond) }, true},
		{"response header timeout on a reused connection", func(c *config.Upstream) { c.ResponseHeaderTimeout = config.Duration(200 * time.Millisecond) }, true},
		{"response header timeout on a reused connection, POST", func(c *config.Upstream) { c.ResponseHeaderTimeout = config.Duration(200 * time.Millisecond) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var slow atomic.Int32
			rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				for {
					req, _, err := readRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path == "/warm" {
						if writeOK(c, "warm") != nil {
							return
						}
						continue
					}
					slow.Add(1)
					<-waitEOF(c, br) // never answers
					return
				}
			})
			up, rec := newUpstream(t, rs.url(), tc.mod)
			front := newFront(t, up)
			ctx := testContext(t)
			if tc.warm {
				if _, got, err := do(ctx, front.Client(), "GET", front.URL+"/warm", nil); err != nil || got != "warm" {
					t.Fatalf("warm-up: %q %v", got, err)
				}
			}
			method, body := "GET", io.Reader(nil)
			if strings.HasSuffix(tc.name, "POST") {
				method, body = "POST", strings.NewReader("once")
			}
			res, got, err := do(ctx, front.Client(), method, front.URL+"/slow", body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusBadGateway || !strings.HasPrefix(got, "onerror: ") {
				t.Errorf("client got %d %q, want OnError's 502", res.StatusCode, got)
			}
			errs := rec.all()
			if len(errs) != 1 {
				t.Fatalf("OnError called %d times: %v", len(errs), errs)
			}
			if !isTimeout(errs[0]) {
				t.Errorf("OnError got %v (%T), want context.DeadlineExceeded or a net.Error timeout", errs[0], errs[0])
			}
			if n := slow.Load(); n != 1 {
				t.Errorf("the upstream received the timed-out request %d times, want once", n)
			}
		})
	}
}

// TestH1ClientGoesAway: the client cancelling its request ends the upstream
// exchange: OnError sees context.Canceled if anything, the upstream
// connection is closed, and the next request goes on a new one.
func TestH1ClientGoesAway(t *testing.T) {
	tests := []struct {
		name    string
		partial string // what the upstream sends before stalling
	}{
		{"before the response head", ""},
		{"during the response body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"},
		{"during a chunked response body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotRequest := make(chan struct{}, 1)
			firstClosed := make(chan struct{})
			rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				if n > 1 {
					serveOK(c, br, "next")
					return
				}
				if _, _, err := readRequest(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, tc.partial); err != nil {
					return
				}
				gotRequest <- struct{}{}
				<-waitEOF(c, br)
				close(firstClosed)
			})
			up, rec := newUpstream(t, rs.url(), nil)
			handlerDone := make(chan struct{}, 4)
			front := newFront(t, returned(up, handlerDone))

			ctx, cancel := context.WithCancel(testContext(t))
			clientErr := make(chan error, 1)
			go func() {
				_, _, err := do(ctx, front.Client(), "GET", front.URL+"/hang", nil)
				clientErr <- err
			}()
			select {
			case <-gotRequest:
			case <-time.After(patience):
				t.Fatal("the upstream got no request")
			}
			cancel()
			if err := <-clientErr; err == nil {
				t.Error("the cancelled client got a complete response")
			}
			select {
			case <-handlerDone:
			case <-time.After(patience):
				t.Fatal("the proxy's handler did not return after the client went away")
			}
			select {
			case <-firstClosed:
			case <-time.After(patience):
				t.Fatal("the upstream connection of the cancelled exchange was not closed")
			}
			for _, err := range rec.all() {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("OnError got %v, want context.Canceled", err)
				}
			}
			_, got, err := do(testContext(t), front.Client(), "GET", front.URL+"/next", nil)
			if err != nil || got != "next" {
				t.Errorf("next request: %q, %v", got, err)
			}
			if n := rs.accepted.Load(); n != 2 {
				t.Errorf("upstream accepted %d connections, want 2", n)
			}
		})
	}
}

// TestH1StalledClientBody: a client sends its request head and part of its
// body, then nothing. The upstream still gets the request head at once (as
// Request.Write flushes it before a body that is not in memory), so that it
// can answer early; and the upstream's Timeout ends the exchange through
// OnError without waiting for the client.
func TestH1StalledClientBody(t *testing.T) {
	headSeen := make(chan struct{}, 1)
	upstreamGaveUp := make(chan error, 1)
	us, _ := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headSeen <- struct{}{}
		_, err := io.Copy(io.Discard, r.Body)
		upstreamGaveUp <- err
	}))
	up, rec := newUpstream(t, us.URL, func(c *config.Upstream) { c.Timeout = config.Duration(300 * time.Millisecond) })
	front := newFront(t, up)

	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // runs before front.Close, which waits for the handler
	if _, err := io.WriteString(c, "POST /stall HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	var early error // OnError's, when it came before the head reached the upstream
	select {
	case <-headSeen:
	case early = <-rec.ch:
		t.Error("the upstream did not get the request head before the exchange ended: it waited in the write buffer for the client's body")
	case <-time.After(patience):
		t.Error("the upstream did not get the request head while the client's body stalled")
	}
	if early != nil {
		if !isTimeout(early) {
			t.Errorf("OnError got %v (%T), want the upstream timeout", early, early)
		}
		return
	}
	select {
	case err := <-rec.ch:
		if !isTimeout(err) {
			t.Errorf("OnError got %v (%T), want the upstream timeout", err, err)
		}
	case <-time.After(patience):
		t.Errorf("OnError not called %v after the upstream's 300ms timeout: the exchange waits for the client's stalled body", patience)
		_ = c.(*net.TCPConn).CloseWrite() // the body read returns
		select {
		case err := <-rec.ch:
			if !isTimeout(err) {
				t.Errorf("OnError, after the client ended its body, got %v (%T), want the upstream timeout", err, err)
			}
		case <-time.After(patience):
			t.Fatal("OnError not called even after the client ended its body")
		}
	}
	select {
	case err := <-upstreamGaveUp:
		if err == nil {
			t.Error("the upstream read a complete body")
		}
	case <-headSeen:
	default:
		// The upstream never got the head (reported above), or it has
		// not noticed the close yet: nothing more to check.
	}
}

// TestH1HeaderInjection: header fields a policy set with CR or LF in them
// must not become fields of their own upstream: the request is refused
// (OnError) or the field sent harmless, never split.
func TestH1HeaderInjection(t *testing.T) {
	tests := []struct {
		name string
		set  func(h http.Header)
	}{
		{"CRLF in a value", func(h http.Header) { h["X-Evil"] = []string{"a\r\nX-Injected: 1"} }},
		{"LF in a value", func(h http.Header) { h["X-Evil"] = []string{"a\nX-Injected: 1"} }},
		{"CRLF in a name", func(h http.Header) { h["X-Ok: 1\r\nX-Injected"] = []string{"1"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan http.Header, 4)
			rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				for {
					req, _, err := readRequest(br)
					if err != nil {
						return
					}
					seen <- req.Header
					if writeOK(c, "ok") != nil {
						return
					}
				}
			})
			up, rec := newUpstream(t, rs.url(), nil)
			front := newFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.set(r.Header)
				up.ServeHTTP(w, r)
			}))
			res, _, err := do(testContext(t), front.Client(), "GET", front.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case h := <-seen:
				if v, ok := h["X-Injected"]; ok {
					t.Errorf("the upstream got an injected field X-Injected: %q", v)
				}
			default:
				if len(rec.all()) != 1 || res.StatusCode != http.StatusBadGateway {
					t.Errorf("the upstream got no request, yet OnError was not called: %d, %v", res.StatusCode, rec.all())
				} else if err := rec.all()[0]; !proxy.Unsendable(err) {
					t.Errorf("OnError got %v, which Unsendable does not report: the gateway would blame the upstream", err)
				}
			}
		})
	}
}

// TestH1HeaderTimeoutStartsAfterBody: ResponseHeaderTimeout counts from the
// end of the request, body included (as http.Transport's does): a client
// slower to send its body than that timeout still gets the response, also
// on a connection whose last exchange had a timeout running.
func TestH1HeaderTimeoutStartsAfterBody(t *testing.T) {
	const headerTimeout = 100 * time.Millisecond
	us, _ := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "got %d", len(b))
	}))
	up, rec := newUpstream(t, us.URL, func(c *config.Upstream) { c.ResponseHeaderTimeout = config.Duration(headerTimeout) })
	front := newFront(t, up)
	ctx := testContext(t)
	for i := range 2 {
		if _, got, err := do(ctx, front.Client(), "GET", front.URL+"/warm", nil); err != nil || got != "got 0" {
			t.Fatalf("warm-up GET: %q %v", got, err)
		}
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte("first half,"))
			// Slower than the header timeout, which must not run yet.
			time.Sleep(3 * headerTimeout)
			pw.Write([]byte("second half"))
			pw.Close()
		}()
		req, _ := http.NewRequestWithContext(ctx, "POST", front.URL+"/slow-upload", pr)
		req.ContentLength = int64(len("first half,second half"))
		res, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "got 22" {
			t.Errorf("upload %d: %d %q, want 200 \"got 22\"; OnError: %v", i, res.StatusCode, b, rec.all())
		}
	}
}

// recordingBody remembers the first error reading the client's body, as the
// gateway's own body wrapper does.
type recordingBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *recordingBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// TestH1RequestBodyErrors: when the client's body cannot be read, OnError
// gets that error, not a made-up upstream failure. When the body failed
// because the client's connection did (net/http then cancels the request's
// context), context.Canceled is right too, provided the body wrapper holds
// the body's error.
func TestH1RequestBodyErrors(t *testing.T) {
	rawTests := []struct {
		name        string
		wire        string
		hangUp      bool // the client half-closes after the bytes
		wantBodyErr error
		canceledOK  bool
	}{
		{"Content-Length 100, 10 bytes, client closes",
			"POST /short HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n0123456789", true, io.ErrUnexpectedEOF, true},
		{"bad chunk, client stays",
			"POST /chunk HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\nzz\r\n", false, nil, false},
	}
	for _, tc := range rawTests {
		t.Run(tc.name, func(t *testing.T) {
			var complete atomic.Int32
			us, _ := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := io.Copy(io.Discard, r.Body); err == nil {
					complete.Add(1)
				}
			}))
			up, rec := newUpstream(t, us.URL, nil)
			bodies := make(chan *recordingBody, 1)
			front := newFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rb := &recordingBody{ReadCloser: r.Body}
				bodies <- rb
				r.Body = rb
				up.ServeHTTP(w, r)
			}))
			c, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if _, err := io.WriteString(c, tc.wire); err != nil {
				t.Fatal(err)
			}
			if tc.hangUp {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			var got error
			select {
			case got = <-rec.ch:
			case <-time.After(patience):
				t.Fatal("OnError not called for a body that failed")
			}
			bodyErr := (<-bodies).readErr()
			if bodyErr == nil {
				t.Fatal("the client's body read without error")
			}
			if tc.wantBodyErr != nil && !errors.Is(bodyErr, tc.wantBodyErr) {
				t.Errorf("body error %v, want %v", bodyErr, tc.wantBodyErr)
			}
			switch {
			case errors.Is(got, bodyErr):
			case tc.canceledOK && errors.Is(got, context.Canceled):
			default:
				t.Errorf("OnError got %v (%T), want the body's error %v", got, got, bodyErr)
			}
			if !tc.hangUp {
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("reading the response: %v", err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusBadGateway {
					t.Errorf("client got %d, want OnError's 502", res.StatusCode)
				}
			}
			if n := complete.Load(); n != 0 {
				t.Errorf("the upstream got a complete body although the client's failed")
			}
		})
	}

	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("MaxBytesReader, chunked=%v", chunked), func(t *testing.T) {
			var complete atomic.Int32
			const size = 64 << 10
			us, _ := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n, err := io.Copy(io.Discard, r.Body); err == nil && n == size {
					complete.Add(1)
				}
			}))
			up, rec := newUpstream(t, us.URL, nil)
			front := newFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Body = http.MaxBytesReader(w, r.Body, 1024)
				up.ServeHTTP(w, r)
			}))
			var body io.Reader = bytes.NewReader(make([]byte, size))
			if chunked {
				body = io.MultiReader(body) // hides the length: chunked
			}
			res, got, err := do(testContext(t), front.Client(), "POST", front.URL+"/big", body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusBadGateway || !strings.HasPrefix(got, "onerror: ") {
				t.Errorf("client got %d %q, want OnError's 502", res.StatusCode, got)
			}
			errs := rec.all()
			if len(errs) != 1 {
				t.Fatalf("OnError called %d times: %v", len(errs), errs)
			}
			var mbe *http.MaxBytesError
			if !errors.As(errs[0], &mbe) || mbe.Limit != 1024 {
				t.Errorf("OnError got %v (%T), want the *http.MaxBytesError of limit 1024", errs[0], errs[0])
			}
			if n := complete.Load(); n != 0 {
				t.Errorf("the upstream got a complete body although the client's was cut at the limit")
			}
		})
	}
}

// TestH1TruncatedResponse: a response the upstream cuts short reaches the
// client as an aborted one, and its connection is not used again.
func TestH1TruncatedResponse(t *testing.T) {
	tests := []struct {
		name    string
		partial string
		stall   bool // the upstream keeps the connection open; the Timeout ends it
	}{
		{"Content-Length, upstream closes", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 40), false},
		{"chunked, upstream closes", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false},
		{"chunked, bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", true},
		{"Content-Length, upstream stalls", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 40), true},
		{"Content-Length 8 MiB, upstream stalls", "HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\n\r\n" + strings.Repeat("x", 100<<10), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			firstClosed := make(chan struct{})
			rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
				if n > 1 {
					serveOK(c, br, "fine")
					return
				}
				defer close(firstClosed)
				if _, _, err := readRequest(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, tc.partial); err != nil {
					return
				}
				if tc.stall {
					<-waitEOF(c, br)
				}
			})
			up, _ := newUpstream(t, rs.url(), func(c *config.Upstream) { c.Timeout = config.Duration(300 * time.Millisecond) })
			front := newFront(t, up)
			ctx := testContext(t)
			res, got, err := do(ctx, front.Client(), "GET", front.URL+"/cut", nil)
			if err == nil {
				t.Errorf("client read a complete response (%d, %d bytes) from a truncated one", res.StatusCode, len(got))
			}
			select {
			case <-firstClosed:
			case <-time.After(patience):
				t.Fatal("the truncated exchange's upstream connection was not closed")
			}
			_, got, err = do(ctx, front.Client(), "GET", front.URL+"/next", nil)
			if err != nil || got != "fine" {
				t.Errorf("next request: %q, %v", got, err)
			}
			if n := rs.accepted.Load(); n != 2 {
				t.Errorf("upstream accepted %d connections, want 2", n)
			}
		})
	}
}

// TestH1BodylessPOSTNotReplayed: a request that is not idempotent is not
// sent again when its connection fails after it was written, even without a
// body: the upstream may have acted on it (RFC 9110 §9.2.2; http.Transport
// does not retry it either).
func TestH1BodylessPOSTNotReplayed(t *testing.T) {
	var posts atomic.Int32
	rs := newRawServer(t).serve(t, func(n int, c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequest(br)
			if err != nil {
				return
			}
			if req.Method == "POST" {
				posts.Add(1)
				return // acted on it, then crashed before answering
			}
			if writeOK(c, "warm") != nil {
				return
			}
		}
	})
	up, rec := newUpstream(t, rs.url(), nil)
	front := newFront(t, up)
	ctx := testContext(t)
	if _, got, err := do(ctx, front.Client(), "GET", front.URL+"/warm", nil); err != nil || got != "warm" {
		t.Fatalf("warm-up: %q %v", got, err)
	}
	res, _, err := do(ctx, front.Client(), "POST", front.URL+"/transfer?amount=100", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("client got %d, want OnError's 502", res.StatusCode)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("the upstream received the POST %d times, want once; OnError: %v", n, rec.all())
	}
}

// TestH1PoolCap: the pool keeps at most MaxIdleConnsPerHost idle
// connections, and Close closes them.
func TestH1PoolCap(t *testing.T) {
	const concurrent = 8
	var arrived atomic.Int32
	all := make(chan struct{})
	us, ct := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hold every request until all have arrived, so that each has a
		// connection of its own.
		if arrived.Add(1) == concurrent {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(patience):
		}
		io.WriteString(w, "ok")
	}))
	up, rec := newUpstream(t, us.URL, func(c *config.Upstream) { c.MaxIdleConnsPerHost = 2 })
	front := newFront(t, up)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrent}}
	t.Cleanup(client.CloseIdleConnections)
	ctx := testContext(t)

	var wg sync.WaitGroup
	for range concurrent {
		wg.Go(func() {
			if _, got, err := do(ctx, client, "GET", front.URL+"/", nil); err != nil || got != "ok" {
				t.Errorf("request: %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	if accepted, _ := ct.counts(); accepted != concurrent {
		t.Fatalf("%d concurrent requests opened %d upstream connections, want %d", concurrent, accepted, concurrent)
	}
	if !waitFor(func() bool { _, open := ct.counts(); return open <= 2 }) {
		_, open := ct.counts()
		t.Errorf("%d upstream connections still open after the burst, want at most MaxIdleConnsPerHost=2", open)
	}
	if _, open := ct.counts(); open == 0 {
		t.Error("no idle connection was kept")
	}
	up.Close()
	if !waitFor(func() bool { _, open := ct.counts(); return open == 0 }) {
		_, open := ct.counts()
		t.Errorf("%d upstream connections still open after Close, want 0", open)
	}
	if errs := rec.all(); len(errs) > 0 {
		t.Errorf("OnError called: %v", errs)
	}
}

// TestH1ConcurrentRequestsMatch: under concurrency every client gets the
// response to its own request, bodies both ways, through pools of several
// shapes (run with -race).
func TestH1ConcurrentRequestsMatch(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*config.Upstream)
	}{
		{"default pool", nil},
		{"one idle connection", func(c *config.Upstream) { c.MaxIdleConnsPerHost = 1 }},
		{"idle timeout racing the requests", func(c *config.Upstream) { c.IdleConnTimeout = config.Duration(time.Millisecond) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			us, _ := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					return
				}
				id := r.Header.Get("X-Id")
				if id != r.URL.Query().Get("id") {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				io.WriteString(w, id+":")
				if len(id)%2 == 0 {
					w.(http.Flusher).Flush() // chunked for some
				}
				w.Write(body)
			}))
			up, rec := newUpstream(t, us.URL, tc.mod)
			front := newFront(t, up)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			t.Cleanup(client.CloseIdleConnections)
			ctx := testContext(t)

			const workers, each = 8, 50
			var wg sync.WaitGroup
			for g := range workers {
				wg.Go(func() {
					for i := range each {
						id := fmt.Sprintf("%d-%d", g, i)
						method, payload := "GET", ""
						if i%3 != 0 {
							method = "POST"
							payload = strings.Repeat(id+".", (i%5)*(i%5)*400)
						}
						req, _ := http.NewRequestWithContext(ctx, method, front.URL+"/echo?id="+id, strings.NewReader(payload))
						if method == "GET" {
							req.Body, req.ContentLength = nil, 0
						}
						req.Header.Set("X-Id", id)
						res, err := client.Do(req)
						if err != nil {
							t.Errorf("%s %s: %v", method, id, err)
							return
						}
						b, err := io.ReadAll(res.Body)
						res.Body.Close()
						if want := id + ":" + payload; err != nil || res.StatusCode != 200 || string(b) != want {
							t.Errorf("%s %s: %d %.60q (%d bytes), %v; want 200 %.60q (%d bytes)", method, id, res.StatusCode, b, len(b), err, want, len(want))
							return
						}
					}
				})
			}
			wg.Wait()
			if errs := rec.all(); len(errs) > 0 {
				t.Errorf("OnError called %d times, first %v", len(errs), errs[0])
			}
		})
	}
}

// TestH1InMemoryBody: a body a policy already read whole (GetBody set, as
// policy.Exchange.ReadBody leaves it) is written with its head on the
// handler's goroutine. The upstream gets it exactly, over a reused
// connection, and an upstream that answers without reading it and closes
// still has its answer passed on.
func TestH1InMemoryBody(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		early    bool // the upstream answers 413 without reading, and closes
		wantCode int
	}{
		{"small", 300, false, http.StatusOK},
		{"at the bound", 64 << 10, false, http.StatusOK},
		{"over the bound, through the writer", 64<<10 + 1, false, http.StatusOK},
		{"answered unread", 60 << 10, true, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			us, conns := newTrackedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.early {
					w.Header().Set("Connection", "close")
					w.WriteHeader(http.StatusRequestEntityTooLarge)
					return
				}
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("upstream reading the body: %v", err)
				}
				w.Header().Set("X-Sum", fmt.Sprintf("%x", sha256.Sum256(b)))
			}))
			up, rec := newUpstream(t, us.URL, nil)
			front := newFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("front reading the body: %v", err)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(b))
				r.ContentLength = int64(len(b))
				r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
				up.ServeHTTP(w, r)
			}))
			body := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16+1)[:tc.size]
			want := fmt.Sprintf("%x", sha256.Sum256(body))
			for i := range 3 {
				resp, err := http.Post(front.URL+"/in-memory", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.wantCode {
					t.Fatalf("request %d: status %d, want %d; OnError: %v", i, resp.StatusCode, tc.wantCode, rec.all())
				}
				if !tc.early && resp.Header.Get("X-Sum") != want {
					t.Fatalf("request %d: the upstream got a body with sum %s, want %s", i, resp.Header.Get("X-Sum"), want)
				}
			}
			if !tc.early {
				if n, _ := conns.counts(); n != 1 {
					t.Errorf("upstream accepted %d connections for 3 requests, want 1", n)
				}
			}
		})
	}
}
