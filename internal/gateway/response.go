package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/render"
)

// The response side. Every response, the upstream's and the gateway's own,
// is written to the exchange's responseWriter. When its status comes, the
// route's response filters are wrapped around the client's writer in chain
// order (policy.ResponseFilter), with a gateway-owned link between each
// filter and the next one down; the status and body then go through them.
//
//	proxy / render -> responseWriter -> filter n-1 -> link n-1 -> ... -> filter 0 -> link 0 -> clientWriter -> client
//
// The links are what lets any number of filters hold the response and any
// of them refuse it: a filter refusing (ResponseWriter.Refuse) has its
// link render the refusal into the filters below, as a response of the
// gateway's own, so the security headers and byte counts below still
// apply, and no policy renders anything. The gateway's writers hold
// nothing back themselves.

// filter is one response filter of a route, with the name of its policy.
type filter struct {
	name   string
	filter policy.ResponseFilter
}

// responseWriter is the http.ResponseWriter the proxy and the gateway's own
// renderer write to. It passes 1xx responses on, adds the gateway's headers
// (X-Request-Id, the policies' Exchange.ResponseHeader), builds the route's
// filter chain when the status comes, and writes through it.
type responseWriter struct {
	// ResponseWriter is the client's (net/http's) writer.
	http.ResponseWriter
	x *exchange
	// filters are the route's response filters; nil before a route matched.
	filters []filter
	// next is the top of the filter chain (the client's writer when there
	// are no filters), built when the status comes; nil before.
	next        policy.ResponseWriter
	wroteHeader bool
	// status is the final status WriteHeader was given, before the
	// response filters: the upstream's on a proxied response.
	status int
	// ending: the body is complete; a status the filters held back is
	// only now going out.
	ending bool
	client clientWriter
	links  [4]filterLink // the first filters' links; more are allocated
}

func (w *responseWriter) reset() {
	w.ResponseWriter, w.filters, w.next, w.wroteHeader, w.ending, w.status = nil, nil, nil, false, false, 0
	w.client = clientWriter{w: w}
	clear(w.links[:])
}

// WriteHeader sends the status through the route's response filters; a
// second call does nothing. An informational response (103 Early Hints)
// goes straight to the client on a route without response filters, and is
// dropped on one with them: no filter would see its header fields.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Not to an HTTP/1.0 client either, which has none (RFC 9110
		// §15.2).
		if len(w.filters) == 0 && w.x.Request.ProtoAtLeast(1, 1) {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	w.wroteHeader, w.status = true, code
	x := w.x
	h := w.ResponseWriter.Header()
	if v := h["X-Request-Id"]; len(v) != 1 || v[0] != x.RequestID {
		// The upstream echoed or replaced it; the gateway's id is the one
		// its logs know.
		h["X-Request-Id"] = []string{x.RequestID}
	}
	if r := x.Request; r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// ServeHTTP asked for it, but ReverseProxy clears the header map
		// after each 1xx it passes on (TestInformationalKeepsGatewayHeaders).
		h["Connection"] = []string{"close"}
	}
	for k, v := range x.ResponseHeader {
		h[k] = append(h[k], v...)
	}
	// The same test the access log's "upstream" makes: anything but a
	// proxied response that did not fail is the gateway's own.
	x.GatewayResponse = !x.upstream || x.cause != nil
	w.next = w.chain()
	w.next.WriteHeader(code)
}

// chain wraps the route's filters around the client's writer, the first
// filter nearest the client.
func (w *responseWriter) chain() policy.ResponseWriter {
	var next policy.ResponseWriter = &w.client
	for i := range w.filters {
		f := &w.filters[i]
		var l *filterLink
		if i < len(w.links) {
			l = &w.links[i]
		} else {
			l = new(filterLink)
		}
		*l = filterLink{x: w.x, next: next, name: f.name}
		next = f.filter.FilterResponse(&w.x.Exchange, l)
	}
	return next
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.next.Write(b)
}

// Flush sends what the filters passed on to the client (streaming
// responses, SSE); a filter holding the response keeps it.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.next.Flush()
}

// end tells the filters the body is complete, so that what they hold is
// passed on. Not called for a response that aborted.
func (w *responseWriter) end() {
	if w.next != nil {
		w.ending = true
		w.next.End()
	}
}

// written reports whether the client was sent a status.
func (w *responseWriter) written() bool { return w.client.wrote }

// Hijack hands the connection over for a protocol upgrade (WebSocket).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.wroteHeader = true
		w.client.wrote, w.client.status = true, http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clientWriter is the end of the filter chain: the client. It records the
// status and the bytes the client was sent.
type clientWriter struct {
	w      *responseWriter
	status int
	bytes  int64
	wrote  bool
}

func (c *clientWriter) Header() http.Header { return c.w.ResponseWriter.Header() }

func (c *clientWriter) WriteHeader(code int) {
	if c.wrote {
		return
	}
	c.wrote, c.status = true, code
	if c.w.ending {
		heldTrailers(c.Header())
	}
	c.w.ResponseWriter.WriteHeader(code)
}

// heldTrailers keeps the trailers of a response whose status a filter
// held back until its body was complete trailers: the proxy set their
// values, after the body, under their declared names, which net/http
// would now send as header fields. They move under http.TrailerPrefix.
func heldTrailers(h http.Header) {
	for _, v := range h["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if vs, ok := h[k]; ok && k != "" {
				h[http.TrailerPrefix+k] = vs
				delete(h, k)
			}
		}
	}
}

func (c *clientWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	n, err := c.w.ResponseWriter.Write(b)
	c.bytes += int64(n)
	return n, err
}

func (c *clientWriter) Flush() {
	if c.wrote {
		_ = http.NewResponseController(c.w.ResponseWriter).Flush()
	}
}

func (c *clientWriter) End() {}

// Refuse is reached only through a link; a filter-less chain is never
// refused. Rendered as a link would, for the contract's sake.
func (c *clientWriter) Refuse(d *policy.Denial) {
	if c.wrote {
		panic(http.ErrAbortHandler)
	}
	c.w.x.refuse(c, "", d)
}

// filterLink is the writer a filter is given as next: it passes the response on
// to the filter below (or the client) and renders the filter's refusal.
type filterLink struct {
	x    *exchange
	next policy.ResponseWriter
	name string // the filter's policy
	// wrote: a status went down; refused: it was a refusal, and what the
	// filter writes after is dropped.
	wrote, refused, ended bool
}

func (l *filterLink) Header() http.Header { return l.next.Header() }

func (l *filterLink) WriteHeader(code int) {
	if l.wrote {
		return
	}
	l.wrote = true
	l.next.WriteHeader(code)
}

func (l *filterLink) Write(b []byte) (int, error) {
	if l.refused {
		return len(b), nil
	}
	if !l.wrote {
		l.WriteHeader(http.StatusOK)
	}
	return l.next.Write(b)
}

func (l *filterLink) Flush() {
	if l.wrote && !l.refused {
		l.next.Flush()
	}
}

func (l *filterLink) End() {
	if l.ended {
		return
	}
	l.ended = true
	if l.refused {
		// The proxy sets the refused response's trailers after its body.
		policy.DropTrailers(l.next.Header())
	}
	l.next.End()
}

// Refuse renders d into the filters below. After a status went down the
// client may have part of the response: it is aborted, so that it is
// never taken as complete.
func (l *filterLink) Refuse(d *policy.Denial) {
	if l.refused {
		return
	}
	if l.wrote {
		l.x.decision, l.x.code, l.x.denier = "error", "response_aborted", l.name
		panic(http.ErrAbortHandler)
	}
	l.wrote, l.refused = true, true
	l.x.refuse(l.next, l.name, d)
}

// errRefused is the cause logged for a refusal without one of its own, so
// that the access log does not call the response the upstream's.
var errRefused = errors.New("a response filter refused the upstream's response")

// refuse renders d, a response filter's refusal, into next, after
// removing the refused response's entity headers, and records it as the
// request's decision.
func (x *exchange) refuse(next policy.ResponseWriter, by string, d *policy.Denial) {
	if d == nil {
		d = &policy.Denial{Status: http.StatusInternalServerError, Code: "internal_error"}
	}
	x.decision, x.code, x.denier, x.detail, x.cause = "deny", d.Code, by, d.Detail, d.Err
	if x.cause == nil {
		x.cause = errRefused
	}
	var info *policy.Route
	if r := x.route; r != nil {
		info = &r.info
		if r.telemetry != nil {
			r.telemetry.Denied(r.info.Name, by, d.Code)
		}
	}
	x.GatewayResponse = true
	h := next.Header()
	for _, k := range entityHeaders {
		delete(h, k)
	}
	policy.DropTrailers(h)
	render.RouteDenial(next, x.Request, info, x.RequestID, d)
}

// entityHeaders are the refused response's fields that describe it and
// not the refusal that replaces it.
var entityHeaders = []string{
	"Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Content-Disposition",
	"Content-Language", "Content-Location", "Content-Md5", "Digest", "Content-Digest", "Repr-Digest",
	"Etag", "Last-Modified", "Accept-Ranges", "Location", "Set-Cookie", "Expires", "Age",
	"Cache-Control", "Vary", "Link", "Refresh", "Retry-After", "Www-Authenticate",
}
