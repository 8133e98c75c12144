package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The bits of FuzzOutboundRequest's sel argument: how the inbound request
// and the upstream are set up.
const (
	selMethod       = 7      // bits 0-2: index into fuzzMethods
	selBodyShift    = 3      // bits 3-4: fuzzNoBody, fuzzLength, fuzzStreamed, fuzzChunked
	selTrailer      = 1 << 5 // chunked only: a trailer (tname, tval)
	selConnection   = 1 << 6 // a Connection header with the value conn
	selPreserveHost = 1 << 7 // the upstream sends the client's Host
	selBasePath     = 1 << 8 // the upstream URL has a path and query of its own
	selRemoteShift  = 9      // bits 9-10: index into fuzzRemotes
	selTLS          = 1 << 11
	selPolicyPath   = 1 << 12 // a policy set URL.Path: any decoded path, no RawPath
	selMismatch     = 3 << 13 // Content-Length modes: fuzzShort or fuzzLong
	selSmallReads   = 1 << 15 // the body arrives a byte a read (one chunk each)
)

// Body modes (sel bits 3-4).
const (
	fuzzNoBody   = iota
	fuzzLength   // Content-Length, the body held in memory (GetBody set)
	fuzzStreamed // Content-Length, the body still to come from the client
	fuzzChunked  // ContentLength -1: chunked, with the trailer if any
)

// Length mismatches (sel bits 13-14): a policy that replaced the body and
// not its ContentLength.
const (
	fuzzShort = 1 << 13 // ContentLength one more than the body
	fuzzLong  = 2 << 13 // ContentLength one less than the body
)

var fuzzMethods = [8]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace,
}

// fuzzTrusted and fuzzRemotes: an untrusted peer, trusted IPv4 and IPv6
// peers (their forwarding fields are kept and extended), and an address
// that does not parse (no forwarding fields at all).
var (
	fuzzTrusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	fuzzRemotes = [4]string{"192.0.2.7:4000", "10.1.2.3:4000", "[::1]:4000", "not an address"}
)

// hopByHop are the fields no proxy passes on (RFC 9110 §7.6.1 and the
// list httputil.ReverseProxy removes), framing and forwarding are the
// fields the proxy writes itself: none of the client's arrive as sent.
var (
	hopByHop   = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings"}
	framing    = []string{"Host", "Content-Length"}
	forwarding = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"}
	// notTrailer are the fields that never pass as trailers, compared in
	// any case and with '_' for '-' (proxy.TrailerAllowed's contract):
	// those RFC 9110 §6.5.1 keeps out of trailers (framing, routing,
	// request modifiers, authentication, response controls, content
	// metadata), cookies, forwarding fields, the gateway's request id and
	// identity token, method overrides; notTrailerPrefix the families.
	notTrailer = []string{
		"Authorization", "Cache-Control", "Connection", "Content-Encoding",
		"Content-Length", "Content-Range", "Content-Type", "Expect", "Host",
		"Keep-Alive", "Max-Forwards", "Pragma", "Proxy-Authenticate",
		"Proxy-Authorization", "Proxy-Connection", "Range", "Realm", "Te",
		"Trailer", "Transfer-Encoding", "Www-Authenticate", "Upgrade", "Http2-Settings",
		"Authentication-Info", "Dpop", "X-Api-Key", "Cookie", "Cookie2", "Set-Cookie", "Set-Cookie2",
		"Age", "Expires", "Date", "Location", "Retry-After", "Vary", "Warning",
		"Strict-Transport-Security", "Content-Security-Policy",
		"Content-Language", "Content-Location", "Content-Disposition",
		"Forwarded", "Via", "X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "X-Cluster-Client-Ip",
		"Client-Ip", "Cf-Connecting-Ip", "Cf-Connecting-Ipv6", "Fastly-Client-Ip", "X-Original-Forwarded-For",
		"X-Originating-Ip", "X-Remote-Ip", "X-Remote-Addr", "X-Original-Url", "X-Rewrite-Url",
		"X-Request-Id", "X-Gatehouse-Identity",
		"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	}
	notTrailerPrefix = []string{"x-forwarded-", "proxy-", "if-", "access-control-", "sec-"}
)

// mayTrail reports whether the field k may pass as a trailer of a message
// whose header section is h, by the rules of proxy.TrailerAllowed written
// out again: a valid name, none of notTrailer or notTrailerPrefix in any
// case or spelling, and not a field of the header section.
func mayTrail(k string, h http.Header) bool {
	if k == "" || k[0] == ':' || !httpguts.ValidHeaderFieldName(k) {
		return false
	}
	n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
	for _, p := range notTrailerPrefix {
		if strings.HasPrefix(n, p) {
			return false
		}
	}
	for _, d := range notTrailer {
		if n == strings.ToLower(d) {
			return false
		}
	}
	for hk := range h {
		if strings.ToLower(strings.ReplaceAll(hk, "_", "-")) == n {
			return false
		}
	}
	return true
}

// FuzzOutboundRequest writes the upstream request of an inbound request
// built from the fuzzer's input, as the server and then a policy might
// leave it, and reads it back with http.ReadRequest:
//
//   - write succeeds: the bytes are exactly one request (nothing after its
//     body), with the method, target and Host the upstream should get;
//     every field of the client's that is not hop-by-hop, framing or
//     forwarding arrives with exactly its values (less the surrounding
//     whitespace HTTP strips), the proxy adds only the forwarding fields
//     (the very values of the ReverseProxy path), Te: trailers and the
//     framing, and the body and the trailer arrive as sent;
//   - write fails: with errInvalidHeader naming a field that is to be
//     passed on (or a trusted peer's forwarding field, to be extended)
//     and really is invalid (httpguts), or a trailer that must not be one,
//     or with the body-length error for a body that does not match its
//     ContentLength; and whatever had already reached the connection
//     holds no forged field and no second request;
//   - write never panics.
//
// The request target is what the server would have parsed from a client
// (no space or control byte; url.ParseRequestURI), or a path a policy set
// (any bytes after the "/", with no RawPath); header names and values are
// anything, as a policy could set them with Header.Add.
func FuzzOutboundRequest(f *testing.F) {
	type pair = [2]string
	add := func(sel uint16, target string, h [4]pair, conn string, body []byte, tname, tval, host string) {
		f.Add(sel, target, h[0][0], h[0][1], h[1][0], h[1][1], h[2][0], h[2][1], h[3][0], h[3][1], conn, body, tname, tval, host)
	}
	const (
		get, head, post, put = 0, 1, 2, 3
		withLength           = fuzzLength << selBodyShift
		streamed             = fuzzStreamed << selBodyShift
		chunked              = fuzzChunked << selBodyShift
		trusted4, trusted6   = 1 << selRemoteShift, 2 << selRemoteShift
		unparsable           = 3 << selRemoteShift
	)
	noHeaders := [4]pair{}
	// A plain GET.
	add(get, "/products/p-1?id=7&x=", [4]pair{{"Accept", "application/json"}, {"User-Agent", "curl/8.5"}}, "", nil, "", "", "api.example.com")
	// A POST with a body, held in memory and streamed.
	add(post|withLength, "/orders", [4]pair{{"Content-Type", "application/json"}}, "", []byte(`{"q":1}`), "", "", "api.example.com")
	add(put|streamed|selTLS, "/orders/7", [4]pair{{"Content-Type", "text/plain"}}, "", []byte("line 1\r\nline 2\r\n\r\nGET /admin HTTP/1.1\r\n\r\n"), "", "", "api.example.com")
	// Chunked with a trailer, the client having asked for trailers.
	add(post|chunked|selTrailer|selSmallReads, "/upload", [4]pair{{"Te", "trailers"}}, "", []byte("0\r\n\r\nabc"), "X-Checksum", "sha256=abc", "api.example.com")
	add(post|chunked, "/upload", noHeaders, "", nil, "", "", "api.example.com")
	add(post|chunked|selTrailer, "/upload", noHeaders, "", []byte("abc"), "Content-Type", "text/plain", "api.example.com") // RFC 9110 §6.5.1
	// CRLF injection, bare LF, NUL in a value.
	add(get, "/", [4]pair{{"X-A", "a\r\nX-Evil: 1"}}, "", nil, "", "", "api.example.com")
	add(get, "/", [4]pair{{"X-A", "a\nX-Evil: 1"}}, "", nil, "", "", "api.example.com")
	add(get, "/", [4]pair{{"X-A", "a\x00b"}}, "", nil, "", "", "api.example.com")
	add(post|chunked|selTrailer, "/t", noHeaders, "", []byte("x"), "X-T", "a\r\n\r\nGET /admin HTTP/1.1", "api.example.com")
	// A name with a space, with a colon, non-ASCII, empty.
	add(get, "/", [4]pair{{"X Bad", "1"}}, "", nil, "", "", "api.example.com")
	add(get, "/", [4]pair{{"X-Bad:", "1"}}, "", nil, "", "", "api.example.com")
	add(get, "/", [4]pair{{"X-Bäd", "1"}, {"", "v"}}, "", nil, "", "", "api.example.com")
	// Connection naming headers (one invalid, not sent so not refused).
	add(get|selConnection, "/", [4]pair{{"X-Secret", "s"}, {"Keep-Alive", "300"}, {"X Bad", "1"}, {"X-Kept", "k"}}, "x-secret, keep-alive,, X Bad", nil, "", "", "api.example.com")
	// Values with surrounding whitespace, non-ASCII, an empty User-Agent
	// (dropped, as ReverseProxy drops it).
	add(get, "/", [4]pair{{"X-Ws", " \tpadded\t "}, {"X-Utf8", "héllo"}, {"User-Agent", ""}, {"X-Empty", ""}}, "", nil, "", "", "api.example.com")
	// Hop-by-hop, framing and forwarding fields from the client are not
	// passed on.
	add(put|withLength, "/", [4]pair{{"Upgrade", "h2c"}, {"Keep-Alive", "timeout=5"}, {"Proxy-Connection", "keep-alive"}, {"Proxy-Authorization", "Basic eDp5"}}, "", []byte("abc"), "", "", "api.example.com")
	add(post|chunked, "/", [4]pair{{"Te", "gzip"}, {"Trailer", "X-T"}, {"Proxy-Authenticate", "Basic"}, {"X-Kept", "1"}}, "", []byte("abc"), "", "", "api.example.com")
	add(post|withLength, "/", [4]pair{{"Content-Length", "100"}, {"Transfer-Encoding", "chunked"}, {"Host", "evil"}, {"X-Forwarded-For", "6.6.6.6"}}, "", []byte("abc"), "", "", "api.example.com")
	// A trusted peer's forwarding fields are extended.
	add(get|trusted4, "/", [4]pair{{"X-Forwarded-For", "198.51.100.1"}, {"Forwarded", "for=198.51.100.1"}, {"X-Forwarded-Host", "public.example.com"}, {"X-Forwarded-Proto", "https"}}, "", nil, "", "", "api.example.com:8443")
	add(get|trusted4|selConnection, "/", [4]pair{{"X-Forwarded-For", "198.51.100.1"}, {"X-Forwarded-Host", "public.example.com"}}, "X-Forwarded-For, x-forwarded-host", nil, "", "", "api.example.com")
	add(get|trusted6|selTLS, "/", noHeaders, "", nil, "", "", "[::1]:8443") // quoted in Forwarded
	add(head|unparsable, "/", noHeaders, "", nil, "", "", "")
	// An upstream with a base path, the client's Host preserved.
	add(get|selBasePath|selPreserveHost, "/a/%2fb/c?q=1;r=2&s=%zz", noHeaders, "", nil, "", "", "api.example.com")
	// Queries re-encoded, paths escaped, a path a policy set.
	add(get, "/%e2%82%ac/x?a=%41&b=c+d&", noHeaders, "", nil, "", "", "h")
	add(get, "/q?a=1;b=2&c=3", noHeaders, "", nil, "", "", "h")
	add(get|selPolicyPath, "/a b\r\n?x=1", noHeaders, "", nil, "", "", "h")
	add(get, "//evil.example/x?", noHeaders, "", nil, "", "", "h")
	// Trailers that must not pass: forwarding and cookie fields in any
	// spelling, a field of the header section again, and X-Request-Id,
	// which the Connection field cannot remove either.
	add(post|chunked|selTrailer, "/t", noHeaders, "", []byte("x"), "X_Forwarded_For", "1.2.3.4", "h")
	add(post|chunked|selTrailer, "/t", noHeaders, "", []byte("x"), "set_cookie", "a=b", "h")
	add(post|chunked|selTrailer, "/t", [4]pair{{"X-Sum", "head"}}, "", []byte("x"), "X_sum", "trailer", "h")
	add(post|chunked|selTrailer, "/t", noHeaders, "", []byte("x"), "Content-Digest", "sha-256=:x:", "h")
	add(get|selConnection, "/", [4]pair{{"X-Request-Id", "gw-id"}, {"Http2-Settings", "AAMAAABkAAQAAP__"}}, "X-Request-Id, HTTP2-Settings", nil, "", "", "h")
	// Bodies that do not match their ContentLength.
	add(post|withLength|fuzzShort, "/", noHeaders, "", []byte("abc"), "", "", "h")
	add(post|streamed|fuzzLong, "/", noHeaders, "", []byte("abc"), "", "", "h")

	// The upstreams the requests go to, by selPreserveHost|selBasePath.
	// New dials nothing: write only reads their settings.
	var ups [4]*Upstream
	for i, raw := range []string{"http://127.0.0.1:8080", "http://127.0.0.1:8080/base/?k=v"} {
		for j, preserve := range []bool{false, true} {
			// Trailers on, to check which pass; off, none do
			// (TestTrailers).
			u, err := New(config.Upstream{URL: raw, PreserveHost: preserve, RequestTrailers: true}, Options{
				TrustedProxies: fuzzTrusted,
				OnError:        func(http.ResponseWriter, *http.Request, error) {},
			})
			if err != nil {
				f.Fatal(err)
			}
			f.Cleanup(u.Close)
			ups[i*2+j] = u
		}
	}

	f.Fuzz(func(t *testing.T, sel uint16, target, n1, v1, n2, v2, n3, v3, n4, v4, conn string, body []byte, tname, tval, host string) {
		in, ok := fuzzInbound(sel, target, [][2]string{{n1, v1}, {n2, v2}, {n3, v3}, {n4, v4}}, conn, body, tname, tval, host)
		if !ok {
			return // not a request the gateway would forward
		}
		i := 0
		if sel&selBasePath != 0 {
			i += 2
		}
		if sel&selPreserveHost != 0 {
			i++
		}
		up := ups[i]
		// As serveH1 builds it.
		out := outbound{u: up, in: in}
		if in.Body != nil && in.Body != http.NoBody && in.ContentLength != 0 {
			out.body = &sentBody{r: in.Body}
		}
		exp := expectOutbound(up, in, body, out.body != nil)

		// The connection's buffer size, so that what reaches the
		// connection before an error is what would reach the upstream.
		var wire bytes.Buffer
		bw := bufio.NewWriterSize(&wire, 4<<10)
		err := out.write(bw)
		if err != nil {
			checkRefusal(t, err, exp, wire.Bytes())
			return
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct {
			what string
			set  []string
		}{
			{"an invalid field", exp.invalid},
			{"a forwarding field with an invalid value", exp.invalidForwarding},
		} {
			if len(bad.set) > 0 {
				t.Errorf("write accepted %s %q; it wrote:\n%q", bad.what, bad.set, wire.String())
			}
		}
		if exp.mismatch {
			t.Errorf("write accepted a body of %d bytes with a ContentLength of %d", len(body), in.ContentLength)
		}
		checkWire(t, exp, wire.Bytes(), true)
	})
}

// fuzzInbound builds the inbound request, reporting false for one the
// server would have refused and no policy could produce.
func fuzzInbound(sel uint16, target string, hdrs [][2]string, conn string, body []byte, tname, tval, host string) (*http.Request, bool) {
	pathPart, query, hasQuery := strings.Cut(target, "?")
	if !strings.HasPrefix(pathPart, "/") {
		pathPart = "/" + pathPart
	}
	var u *url.URL
	if sel&selPolicyPath != 0 {
		if !requestTargetBytes(query) {
			return nil, false
		}
		u = &url.URL{Path: pathPart, RawQuery: query, ForceQuery: hasQuery && query == ""}
	} else {
		raw := pathPart
		if hasQuery {
			raw += "?" + query
		}
		// The server splits the request line at spaces and url.Parse
		// refuses control bytes.
		if !requestTargetBytes(raw) {
			return nil, false
		}
		var err error
		if u, err = url.ParseRequestURI(raw); err != nil {
			return nil, false
		}
	}
	if !httpguts.ValidHostHeader(host) {
		host = "gw.example" // the server refuses the rest
	}
	in := &http.Request{
		Method:     fuzzMethods[sel&selMethod],
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Host:       host,
		RemoteAddr: fuzzRemotes[sel>>selRemoteShift&3],
		Body:       http.NoBody,
	}
	if sel&selTLS != 0 {
		in.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	for _, h := range hdrs {
		if h[0] != "" || h[1] != "" {
			in.Header.Add(h[0], h[1])
		}
	}
	if sel&selConnection != 0 {
		in.Header.Add("Connection", conn)
	}
	var r io.Reader = bytes.NewReader(body)
	if sel&selSmallReads != 0 {
		r = iotest.OneByteReader(r)
	}
	switch sel >> selBodyShift & 3 {
	case fuzzLength, fuzzStreamed:
		in.ContentLength = int64(len(body))
		switch {
		case sel&selMismatch == fuzzShort:
			in.ContentLength++
		case sel&selMismatch == fuzzLong && len(body) > 1:
			in.ContentLength--
		}
		if in.ContentLength > 0 {
			in.Body = io.NopCloser(r)
		}
		if sel>>selBodyShift&3 == fuzzLength {
			// As a policy that read the body leaves it.
			in.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	case fuzzChunked:
		in.ContentLength = -1
		in.Body = io.NopCloser(r)
		if sel&selTrailer != 0 {
			in.Trailer = http.Header{}
			in.Trailer.Add(tname, tval)
		}
	}
	return in, true
}

// requestTargetBytes reports whether s holds only bytes a request line's
// target can carry past the server: no space, no control byte.
func requestTargetBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// expected is what the upstream should read, worked out from the inbound
// request by the rules write promises, not by its code.
type expected struct {
	in       *http.Request
	method   string
	uri      string // the request-target
	path     string // decoded; "" if not checked (an upstream base path)
	query    url.Values
	rawQuery *string // nil: the query is re-encoded, not passed as is
	host     string
	header   map[string][]string // the client's fields passed on
	fw       forwarded           // the ReverseProxy path's forwarding fields
	te       bool                // Te: trailers
	length   int64               // Content-Length; -1 chunked
	clHeader bool                // a Content-Length field
	body     []byte
	// announced are the trailer fields that may pass (mayTrail), trailer
	// those of them with values that any message may carry: exactly
	// these arrive; the others are dropped, not refused.
	announced []string
	trailer   map[string][]string
	// invalid are the fields to pass on that no HTTP/1.1 message may
	// carry; invalidForwarding the forwarding fields to write (a trusted
	// peer's, extended) that no message may carry either. Both must be
	// refused.
	invalid, invalidForwarding []string
	// refusable may be refused besides: a trusted peer's forwarding
	// field with an invalid value (even one not written, as a second
	// X-Forwarded-Host).
	refusable []string
	mismatch  bool // body and ContentLength differ
}

func expectOutbound(up *Upstream, in *http.Request, body []byte, hasBody bool) *expected {
	e := &expected{in: in, method: in.Method, header: map[string][]string{}}

	// The target: the client's path and query joined to the upstream's
	// URL as httputil.ProxyRequest.SetURL joins them, with the query
	// parameters Go would not parse dropped (ReverseProxy drops them).
	q, qerr := url.ParseQuery(in.URL.RawQuery)
	ref := *in.URL
	if qerr != nil {
		ref.RawQuery = q.Encode()
	} else {
		raw := in.URL.RawQuery
		e.rawQuery = &raw
	}
	tmp := http.Request{URL: &ref, Header: http.Header{}}
	(&httputil.ProxyRequest{In: in, Out: &tmp}).SetURL(up.target)
	e.uri = ref.RequestURI()
	if up.plainTarget {
		e.path, e.query = in.URL.Path, q
	} else {
		e.rawQuery = nil
	}
	e.host = up.target.Host
	if up.preserveHost && in.Host != "" {
		e.host = in.Host
	}

	var named []string
	for _, v := range in.Header["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			// X-Request-Id is the gateway's: never removed for the
			// Connection field naming it.
			if f = textproto.TrimString(f); f != "" && textproto.CanonicalMIMEHeaderKey(f) != "X-Request-Id" {
				named = append(named, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	for k, vv := range in.Header {
		if slices.Contains(hopByHop, k) || slices.Contains(framing, k) || slices.Contains(forwarding, k) || slices.Contains(named, k) {
			continue
		}
		if !validField(k, vv) {
			e.invalid = append(e.invalid, k)
			continue
		}
		for _, v := range vv {
			if k == "User-Agent" && v == "" {
				// ReverseProxy sends none rather than Go's own.
				continue
			}
			e.header[k] = append(e.header[k], textproto.TrimString(v))
		}
	}
	e.fw = forwardedValues(in, clientip.Source{Trusted: fuzzTrusted})
	if peer, err := netip.ParseAddrPort(in.RemoteAddr); err == nil && inPrefixes(peer.Addr().Unmap(), fuzzTrusted) {
		for _, k := range forwarding {
			if !validField(k, in.Header[k]) {
				e.refusable = append(e.refusable, k)
			}
		}
	}
	if e.fw.xff != "" {
		for _, kv := range [][2]string{{"X-Forwarded-For", e.fw.xff}, {"X-Forwarded-Host", e.fw.host}, {"X-Forwarded-Proto", e.fw.proto}, {"Forwarded", e.fw.forwarded}} {
			if !httpguts.ValidHeaderFieldValue(kv[1]) {
				e.invalidForwarding = append(e.invalidForwarding, kv[0])
			}
		}
	}
	e.te = httpguts.HeaderValuesContainsToken(in.Header["Te"], "trailers")

	switch {
	case !hasBody:
		e.length = 0
		e.clHeader = in.Method != http.MethodGet && in.Method != http.MethodHead
	case in.ContentLength > 0:
		e.length, e.clHeader, e.body = in.ContentLength, true, body
		e.mismatch = in.ContentLength != int64(len(body))
	default:
		e.length, e.body = -1, body
		e.trailer = map[string][]string{}
		for k, vv := range in.Trailer {
			if !mayTrail(k, in.Header) {
				continue
			}
			e.announced = append(e.announced, k)
			if !validField(k, vv) {
				continue // a value no message may carry: dropped
			}
			for _, v := range vv {
				e.trailer[k] = append(e.trailer[k], textproto.TrimString(v))
			}
		}
	}
	if e.body == nil {
		e.body = []byte{}
	}
	return e
}

func validField(k string, vv []string) bool {
	if !httpguts.ValidHeaderFieldName(k) {
		return false
	}
	for _, v := range vv {
		if !httpguts.ValidHeaderFieldValue(v) {
			return false
		}
	}
	return true
}

// checkRefusal checks an error of write: a refusal for a reason the input
// really gives, and nothing forged among what already went out.
func checkRefusal(t *testing.T, err error, e *expected, sent []byte) {
	t.Helper()
	var ih errInvalidHeader
	switch {
	case errors.As(err, &ih):
		if !slices.ContainsFunc([][]string{e.invalid, e.invalidForwarding, e.refusable}, func(set []string) bool { return slices.Contains(set, ih.name) }) {
			t.Fatalf("write refused the field %q, which is valid or not passed on (invalid: %q, forwarding %q, refusable %q): %v",
				ih.name, e.invalid, e.invalidForwarding, e.refusable, err)
		}
	case errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "longer than its Content-Length"):
		if !e.mismatch {
			t.Fatalf("write failed with a body-length error for a body of its length: %v", err)
		}
		if len(e.invalid) > 0 {
			t.Fatalf("write failed on the body (%v) past the invalid fields %q", err, e.invalid)
		}
	default:
		t.Fatalf("write failed: %v", err)
	}
	// The upstream reads whatever head went out before the refusal: it
	// must be the head it should be (the connection is closed after it,
	// so the body may be cut short).
	if bytes.Contains(sent, []byte("\r\n\r\n")) {
		t.Logf("write refused the request (%v) after sending its head", err)
		checkWire(t, e, sent, false)
	}
}

// checkWire reads wire as the upstream would and checks it against e. If
// whole, the request is all there; if not (write refused it), it may be
// cut short anywhere after its head, but what the upstream can read of
// it must still be true, and nothing may follow a request that reads as
// complete.
func checkWire(t *testing.T, e *expected, wire []byte, whole bool) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(wire))
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("the upstream cannot read the request: %v\n%q", err, wire)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\nwire: %q", fmt.Sprintf(format, args...), wire)
	}
	if req.Method != e.method {
		fail("method %q, want %q", req.Method, e.method)
	}
	if req.RequestURI != e.uri {
		fail("request-target %q, want %q", req.RequestURI, e.uri)
	}
	if e.path != "" && req.URL.Path != e.path {
		fail("path %q, want %q", req.URL.Path, e.path)
	}
	if e.query != nil && !maps.EqualFunc(req.URL.Query(), e.query, slices.Equal) {
		fail("query %q, want %q", req.URL.Query(), e.query)
	}
	if e.rawQuery != nil && req.URL.RawQuery != *e.rawQuery {
		fail("raw query %q, want %q as sent", req.URL.RawQuery, *e.rawQuery)
	}
	if req.Host != e.host {
		fail("Host %q, want %q", req.Host, e.host)
	}

	// Every field that arrives was the client's to pass on, or the
	// proxy's own; every one of the client's arrives.
	fwWant := map[string]string{}
	if e.fw.xff != "" {
		fwWant = map[string]string{"X-Forwarded-For": e.fw.xff, "X-Forwarded-Host": e.fw.host, "X-Forwarded-Proto": e.fw.proto, "Forwarded": e.fw.forwarded}
	}
	for k, vv := range req.Header {
		switch {
		case slices.Contains(forwarding, k):
			v, ok := fwWant[k]
			if !ok || !slices.Equal(vv, []string{textproto.TrimString(v)}) {
				fail("%s: %q, want %q (present: %v)", k, vv, v, ok)
			}
		case k == "Te":
			if !e.te || !slices.Equal(vv, []string{"trailers"}) {
				fail("Te: %q, want trailers: %v", vv, e.te)
			}
		case k == "Content-Length":
			if !e.clHeader || !slices.Equal(vv, []string{strconv.FormatInt(e.length, 10)}) {
				fail("Content-Length: %q, want %d (present: %v)", vv, e.length, e.clHeader)
			}
		default:
			want, ok := e.header[k]
			if !ok {
				fail("field %q: %q arrived, not sent (sent %q)", k, vv, e.in.Header)
			}
			if !slices.Equal(vv, want) {
				fail("field %q: %q, want %q", k, vv, want)
			}
		}
	}
	for k := range e.header {
		if req.Header[k] == nil {
			fail("field %q: lost (want %q)", k, e.header[k])
		}
	}
	for k := range fwWant {
		if req.Header[k] == nil {
			fail("%s: missing", k)
		}
	}
	if e.te && req.Header["Te"] == nil {
		fail("Te: trailers missing")
	}
	if e.clHeader && req.Header["Content-Length"] == nil {
		fail("Content-Length missing")
	}

	// The framing, and the announced trailer.
	if e.length >= 0 {
		if req.ContentLength != e.length || req.TransferEncoding != nil {
			fail("ContentLength %d, Transfer-Encoding %q; want %d, none", req.ContentLength, req.TransferEncoding, e.length)
		}
	} else {
		if req.ContentLength != -1 || !slices.Equal(req.TransferEncoding, []string{"chunked"}) {
			fail("ContentLength %d, Transfer-Encoding %q; want chunked", req.ContentLength, req.TransferEncoding)
		}
		announced := slices.Sorted(maps.Keys(req.Trailer))
		if want := slices.Sorted(slices.Values(e.announced)); !slices.Equal(announced, want) {
			fail("announced trailer %q, want %q", announced, want)
		}
	}

	got, err := io.ReadAll(req.Body)
	switch {
	case whole && err != nil:
		fail("reading the body: %v", err)
	case whole && !bytes.Equal(got, e.body):
		fail("body %q, want %q", got, e.body)
	case err != nil:
		// Cut short by the refusal: the upstream reads no request.
		return
	case !bytes.HasPrefix(e.body, got):
		// A request that reads as whole though refused: a body longer
		// than its ContentLength, cut to it as Request.Write cuts it.
		fail("body %q, want a prefix of %q", got, e.body)
	}
	for k, vv := range req.Trailer {
		if vv == nil {
			continue // announced only: checked with the head
		}
		want, ok := e.trailer[k]
		if !ok {
			fail("trailer %q: %q arrived, not sent", k, vv)
		}
		if !slices.Equal(vv, want) {
			fail("trailer %q: %q, want %q", k, vv, want)
		}
	}
	for k, want := range e.trailer {
		if whole && len(want) > 0 && req.Trailer[k] == nil {
			fail("trailer %q lost (want %q)", k, want)
		}
	}
	// One request and nothing after it: no second request for the
	// upstream to read on the connection.
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		fail("%d bytes after the request: %q", len(rest), rest)
	}
}
