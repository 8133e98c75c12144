package gateway

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestSanitizeInbound: the entry's view of a request's header, field by
// field, for an untrusted and a trusted peer.
func TestSanitizeInbound(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		method string
		http10 bool
		peer   string
		in     http.Header
		want   http.Header
	}{
		{
			name: "Connection names are removed, the option list itself too",
			in: http.Header{
				"Connection":   {"X-Request-Id, x-auth-subject", "keep-alive,,close"},
				"X-Request-Id": {"forged"}, "X-Auth-Subject": {"root"}, "Keep-Alive": {"300"}, "X-Kept": {"1"},
			},
			want: http.Header{"X-Kept": {"1"}},
		},
		{
			name: "framing fields named in Connection stay (net/http's, the proxy rewrites them)",
			in:   http.Header{"Connection": {"Content-Length"}, "Content-Length": {"3"}},
			want: http.Header{"Content-Length": {"3"}},
		},
		{
			name: "websocket handshake keeps Connection: Upgrade",
			in:   http.Header{"Connection": {"keep-alive, UPGRADE"}, "Upgrade": {" WebSocket "}, "Sec-Websocket-Key": {"k"}},
			want: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}},
		},
		{
			name:   "websocket over HTTP/1.0 is no handshake",
			http10: true,
			in:     http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}},
			want:   http.Header{},
		},
		{
			name:   "websocket on POST is no handshake",
			method: http.MethodPost,
			in:     http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}},
			want:   http.Header{},
		},
		{
			name: "h2c, HTTP2-Settings and two protocols go",
			in:   http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c, websocket"}, "Http2-Settings": {"AAA"}, "Http2_settings": {"AAA"}},
			want: http.Header{},
		},
		{
			name: "TE stays as trailers only",
			in:   http.Header{"Connection": {"TE"}, "Te": {"gzip;q=1, Trailers;q=0.5"}},
			want: http.Header{"Te": {"trailers"}},
		},
		{
			name: "forwarding fields of an untrusted peer go in every spelling",
			in: http.Header{
				"X-Forwarded-For": {"6.6.6.6"}, "X_forwarded_for": {"6.6.6.6"}, "X-Forwarded_host": {"e"},
				"X-Real-Ip": {"6.6.6.6"}, "X_real_ip": {"6.6.6.6"}, "Forwarded": {"for=6.6.6.6"},
				"True-Client-Ip": {"6.6.6.6"}, "X-Client-Ip": {"6.6.6.6"}, "X-Forwarded-Client-Cert": {"c"},
				"X-Original-Url": {"/admin"}, "X_request_id": {"x"}, "Proxy_authorization": {"p"}, "Content_length": {"1"},
				"Via": {"1.1 a"},
			},
			want: http.Header{"Via": {"1.1 a"}},
		},
		{
			name: "a trusted peer's canonical forwarding fields stay, other spellings go",
			peer: "10.1.2.3:4000",
			in: http.Header{
				"X-Forwarded-For": {"198.51.100.1"}, "X_forwarded_for": {"6.6.6.6"}, "X-Real-Ip": {"198.51.100.1"},
				"X_real_ip": {"6.6.6.6"}, "Forwarded": {"for=198.51.100.1"},
			},
			want: http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Real-Ip": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Method: http.MethodGet, ProtoMajor: 1, ProtoMinor: 1, Header: tc.in, RemoteAddr: "192.0.2.7:4000", Body: http.NoBody}
			if tc.method != "" {
				r.Method = tc.method
			}
			if tc.http10 {
				r.ProtoMinor = 0
			}
			if tc.peer != "" {
				r.RemoteAddr = tc.peer
			}
			sanitizeInbound(r, trusted)
			if diff := cmp.Diff(tc.want, r.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSanitizeInboundTrailers: at the body's end, only the fields the
// Trailer field announced remain in r.Trailer.
func TestSanitizeInboundTrailers(t *testing.T) {
	for _, declared := range []http.Header{nil, {"X-Sum": nil}} {
		r := &http.Request{Method: http.MethodPost, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			RemoteAddr: "192.0.2.7:4000", TransferEncoding: []string{"chunked"}, ContentLength: -1, Trailer: declared}
		// As net/http's reader: at the end of the body, every field of
		// the trailer is merged into r.Trailer.
		r.Body = io.NopCloser(&trailerAtEOF{r: strings.NewReader("body"), req: r,
			trailer: http.Header{"X-Sum": {"1"}, "X-Auth-Subject": {"root"}}})
		sanitizeInbound(r, nil)
		if b, err := io.ReadAll(r.Body); err != nil || string(b) != "body" {
			t.Fatalf("body %q, %v", b, err)
		}
		var want http.Header
		if declared != nil {
			want = http.Header{"X-Sum": {"1"}}
		}
		if diff := cmp.Diff(want, r.Trailer, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("declared %v: trailer (-want +got):\n%s", declared, diff)
		}
	}
}

type trailerAtEOF struct {
	r       io.Reader
	req     *http.Request
	trailer http.Header
}

func (t *trailerAtEOF) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		if t.req.Trailer == nil {
			t.req.Trailer = t.trailer
		} else {
			for k, v := range t.trailer {
				t.req.Trailer[k] = v
			}
		}
	}
	return n, err
}

// TestSanitizeInboundAllocs: a common request (no Connection field, no
// trailer) costs the entry no allocation.
func TestSanitizeInboundAllocs(t *testing.T) {
	h := http.Header{
		"Accept": {"application/json"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"curl/8"},
		"Authorization": {"Bearer x"}, "Content-Type": {"application/json"}, "Content-Length": {"2"},
		"X-Api-Key": {"k"}, "Cookie": {"a=b"},
	}
	r := &http.Request{Method: http.MethodPost, ProtoMajor: 1, ProtoMinor: 1, Header: h, RemoteAddr: "192.0.2.7:4000", Body: http.NoBody}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if n := testing.AllocsPerRun(100, func() { sanitizeInbound(r, trusted) }); n != 0 {
		t.Errorf("%v allocations a request, want 0", n)
	}
}
