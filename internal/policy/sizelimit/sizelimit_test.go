package sizelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/render"
)

func newLimit(t testing.TB, yaml string) *Limit {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*Limit)
}

func wantDenial(t *testing.T, err error, status int, code string) {
	t.Helper()
	if status == 0 {
		if err != nil {
			t.Fatalf("got %v, want no refusal", err)
		}
		return
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got %v, want a %d %s Denial", err, status, code)
	}
	if d.StatusCode() != status || d.Code != code {
		t.Errorf("got %d %s, want %d %s", d.StatusCode(), d.Code, status, code)
	}
}

func TestApplyRequestLine(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		target string
		status int
		code   string
	}{
		// "/abcdefghi?q=1" is 14 bytes.
		{"url at limit", "url: 14\n", "/abcdefghi?q=1", 0, ""},
		{"url over limit", "url: 13\n", "/abcdefghi?q=1", 414, CodeURITooLong},
		{"params at limit", "query_params: 2\n", "/?a=1&b=2", 0, ""},
		{"params over limit", "query_params: 2\n", "/?a=1&b=2&c=3", 400, CodeTooManyParams},
		{"empty fields are not params", "query_params: 2\n", "/?&a=1&&b&", 0, ""},
		{"zero params", "query_params: 0\n", "/x", 0, ""},
		{"zero params refuses any", "query_params: 0\n", "/x?a", 400, CodeTooManyParams},
		{"semicolons do not split", "query_params: 1\n", "/?a=1;b=2;c=3", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimit(t, tt.yaml)
			ex := policytest.Exchange(httptest.NewRequest(http.MethodGet, tt.target, nil))
			wantDenial(t, l.Apply(context.Background(), ex), tt.status, tt.code)
		})
	}
}

func TestApplyURLWithoutRequestURI(t *testing.T) {
	// A request built by code rather than read from the wire has no
	// RequestURI; the URL's own is measured instead.
	r := httptest.NewRequest(http.MethodGet, "/abcdefghi?q=1", nil)
	r.RequestURI = ""
	wantDenial(t, newLimit(t, "url: 13\n").Apply(context.Background(), policytest.Exchange(r)), 414, CodeURITooLong)
}

func TestApplyHeaders(t *testing.T) {
	// GET / with Host example.com and X-A: 1234 measures
	// len("/") + (4+11+4) + (3+4+4) = 31 bytes in 2 lines.
	tests := []struct {
		name   string
		yaml   string
		extra  http.Header
		status int
	}{
		{"size at limit", "headers: 31\n", nil, 0},
		{"size over limit", "headers: 30\n", nil, 431},
		{"count at limit", "header_count: 2\n", nil, 0},
		{"count over limit", "header_count: 1\n", nil, 431},
		{"each value is a line", "header_count: 3\n", http.Header{"X-B": {"1", "2"}}, 431},
		{"many headers", "headers: 16KiB\n", bigHeader(100, 200), 431},
		{"many headers within", "headers: 32KiB\nheader_count: 200\n", bigHeader(100, 200), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("X-A", "1234")
			for k, v := range tt.extra {
				r.Header[k] = v
			}
			err := newLimit(t, tt.yaml).Apply(context.Background(), policytest.Exchange(r))
			if tt.status == 0 {
				wantDenial(t, err, 0, "")
			} else {
				wantDenial(t, err, tt.status, CodeHeadersTooLarge)
			}
		})
	}
}

// bigHeader returns n headers with values of size bytes.
func bigHeader(n, size int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Set("X-Big-"+strings.Repeat("a", i%10)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("v", size))
	}
	return h
}

func TestApplyDeclaredBody(t *testing.T) {
	l := newLimit(t, "body: 10\n")

	over := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("01234567890"))
	orig := over.Body
	err := l.Apply(context.Background(), policytest.Exchange(over))
	wantDenial(t, err, 413, CodeBodyTooLarge)
	if !errors.Is(err, policy.ErrBodyTooLarge) {
		t.Errorf("errors.Is(%v, ErrBodyTooLarge) = false", err)
	}
	if over.Body != orig {
		t.Error("a refused request's body was wrapped")
	}

	at := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("0123456789"))
	wantDenial(t, l.Apply(context.Background(), policytest.Exchange(at)), 0, "")
	if b, err := io.ReadAll(at.Body); err != nil || string(b) != "0123456789" {
		t.Errorf("body at the limit read %q, %v", b, err)
	}
}

// chunked returns a request whose body length is unknown, as with
// Transfer-Encoding: chunked.
func chunked(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(body)))
	r.ContentLength = -1
	return r
}

func TestApplyStreamedBody(t *testing.T) {
	tests := []struct {
		name     string
		limit    string
		body     string
		wantRead string
		wantErr  bool
	}{
		{"under", "body: 10\n", "01234", "01234", false},
		{"exactly", "body: 10\n", "0123456789", "0123456789", false},
		{"one over", "body: 10\n", "0123456789X", "0123456789", true},
		{"far over", "body: 10\n", strings.Repeat("x", 100000), strings.Repeat("x", 10), true},
		{"zero allows empty", "body: 0\n", "", "", false},
		{"zero refuses a byte", "body: 0\n", "x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := chunked(tt.body)
			if err := newLimit(t, tt.limit).Apply(context.Background(), policytest.Exchange(r)); err != nil {
				t.Fatalf("Apply = %v, want the body left to stream", err)
			}
			got, err := io.ReadAll(r.Body)
			if string(got) != tt.wantRead {
				t.Errorf("read %d bytes, want %d", len(got), len(tt.wantRead))
			}
			if !tt.wantErr {
				if err != nil {
					t.Errorf("read error %v, want none", err)
				}
				return
			}
			if !errors.Is(err, policy.ErrBodyTooLarge) {
				t.Fatalf("read error %v, want ErrBodyTooLarge", err)
			}
			wantDenial(t, err, 413, CodeBodyTooLarge)
			// The error is sticky.
			if n, err2 := r.Body.Read(make([]byte, 8)); n != 0 || !errors.Is(err2, policy.ErrBodyTooLarge) {
				t.Errorf("read after refusal = %d, %v", n, err2)
			}
		})
	}
}

// TestStreamedBodyThroughProxy runs a chunked body over the limit through a
// real reverse proxy and checks that the transport hands the refusal back
// so that the proxy's error handler can answer 413.
func TestStreamedBodyThroughProxy(t *testing.T) {
	var upstreamGot atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		upstreamGot.Store(n)
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	const limit = 64 << 10
	l := newLimit(t, "body: 64KiB\n")
	var handlerErr atomic.Value
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			handlerErr.Store(err)
			if d, ok := policy.AsDenial(err); ok && errors.Is(err, policy.ErrBodyTooLarge) {
				render.Denial(w, r, policy.REST, "rid", d)
				return
			}
			render.Error(w, r, policy.REST, "rid", http.StatusBadGateway, "upstream_unavailable", "")
		},
	}
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := policytest.Exchange(r)
		if err := l.Apply(r.Context(), ex); err != nil {
			d, _ := policy.AsDenial(err)
			render.Denial(w, r, policy.REST, "rid", d)
			return
		}
		proxy.ServeHTTP(w, ex.Request)
	}))
	defer gateway.Close()

	for _, tt := range []struct {
		name   string
		size   int
		status int
	}{
		{"within", limit, http.StatusOK},
		{"over", 4 * limit, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// An io.Reader of unknown length makes the client send chunked.
			body := io.MultiReader(bytes.NewReader(make([]byte, tt.size)))
			resp, err := http.Post(gateway.URL, "application/octet-stream", body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (proxy error: %v)", resp.StatusCode, tt.status, handlerErr.Load())
			}
			if tt.status == http.StatusOK {
				if got := upstreamGot.Load(); got != int64(tt.size) {
					t.Errorf("upstream got %d bytes, want %d", got, tt.size)
				}
				return
			}
			var p struct{ Code string }
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Code != CodeBodyTooLarge {
				t.Errorf("body code = %q (%v), want %s", p.Code, err, CodeBodyTooLarge)
			}
		})
	}
}

func BenchmarkApply(b *testing.B) {
	l := newLimit(b, "body: 1MiB\nheaders: 16KiB\nheader_count: 100\nurl: 8KiB\nquery_params: 100\n")
	r := httptest.NewRequest(http.MethodGet, "/api/v1/products/42?fields=name,price&lang=en", nil)
	r.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 600))
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("X-Request-Id", "01JDQ3K6Z8T1V2W3X4Y5Z6A7B8")
	ex := policytest.Exchange(r)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Apply(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
}
