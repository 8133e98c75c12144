package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"io"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// serveH1 forwards r over the upstream's own HTTP/1.1 connections. It does
// what httputil.ReverseProxy does in Rewrite mode, step for step: the same
// outbound request (hop-by-hop headers removed, forwarding headers rebuilt,
// unparsable query parameters dropped, no Go User-Agent added), 1xx
// responses passed on, hop-by-hop response headers removed, streaming
// responses flushed as they come, and a response the upstream cuts short
// aborted with http.ErrAbortHandler. Trailers pass as on the ReverseProxy
// path: only those announced and allowed (trailerNames).
func (u *Upstream) serveH1(w http.ResponseWriter, r *http.Request) {
	out := outbound{u: u, in: r}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		out.body = &sentBody{r: r.Body}
	}
	ex, err := u.h1.roundTrip(r.Context(), &out, w)
	if err != nil {
		u.onError(w, r, err)
		return
	}
	// Whatever ends this function, a panic of the client's writer (a
	// response policy's) included, the writer goroutine has ended and the
	// connection is closed or pooled before it returns: the writer reads
	// the client's request body, which is not ours after the handler.
	defer func() {
		if !ex.ended {
			ex.fail()
		}
	}()
	res := ex.res
	removeHopByHop(res.Header)
	var trailers []string
	if len(res.Trailer) > 0 {
		trailers = trailerNames(res.Trailer, res.Header, u.protected)
	}
	dst := w.Header()
	for k, vv := range res.Header {
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vv...)
			continue
		}
		// The parsed response is ours alone and is not read again: its
		// value slices move over rather than being copied. They are
		// capacity-limited (textproto), so an append to one never
		// writes into another's.
		dst[k] = vv
	}
	if len(trailers) > 0 {
		dst.Add("Trailer", strings.Join(trailers, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := copyResponse(w, res.Body, streaming(res), res.ContentLength, ex.pc.br.Buffered); err != nil {
		ex.finish(false)
		panic(http.ErrAbortHandler)
	}
	// The body is at its end: Close only reads the trailer, if any.
	if err := res.Body.Close(); err != nil {
		ex.finish(false)
		panic(http.ErrAbortHandler)
	}
	ex.finish(true)

	if len(trailers) == 0 {
		// The reader added every field of the upstream's trailer,
		// announced or not: none passes unannounced.
		return
	}
	// Chunked, so that the trailer can follow the body.
	_ = http.NewResponseController(w).Flush()
	keepTrailers(res.Trailer, trailers)
	for k, vv := range res.Trailer {
		dst[k] = append(dst[k], vv...)
	}
}

// outbound is the request to send upstream: the client's request as
// ReverseProxy would rewrite it, written straight from the inbound request
// rather than from a clone of it.
type outbound struct {
	u    *Upstream
	in   *http.Request
	body *sentBody // nil: no body
}

// maxInMemory bounds a body written with its head on the handler's
// goroutine: far below what a loopback or LAN connection's socket buffers
// take, so that the write never waits for the upstream to read.
const maxInMemory = 64 << 10

// inMemory reports a body the gateway already holds whole (a policy read
// it; GetBody is set then, as the standard library marks such bodies) and
// small enough to write with the head at once.
func (o *outbound) inMemory() bool {
	return o.body != nil && o.in.GetBody != nil && o.in.ContentLength > 0 && o.in.ContentLength <= maxInMemory
}

// replayable reports a request that may be sent again after a stale
// connection failed it: one without a body, of an idempotent method or
// with an idempotency key (the rule of http.Transport).
func (o *outbound) replayable() bool {
	if o.body != nil {
		return false
	}
	switch o.in.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	h := o.in.Header
	return h["Idempotency-Key"] != nil || h["X-Idempotency-Key"] != nil
}

// errInvalidHeader refuses a header no HTTP/1.1 message may carry. The
// server parsed the client's, so only a value a policy set can fail here;
// it is refused rather than rewritten, so that nothing can split the
// request.
type errInvalidHeader struct{ name string }

func (e errInvalidHeader) Error() string {
	return fmt.Sprintf("invalid header field %q for the upstream request", e.name)
}

// Unsendable reports that err, given to the ErrorHandler, is a request the
// proxy refused to send because no HTTP/1.1 message may carry it (a header
// value with a line break, say): nothing reached the upstream.
func Unsendable(err error) bool {
	var ih errInvalidHeader
	return errors.As(err, &ih)
}

// write writes the request line, the header and the body to bw (not
// flushed). The header is the client's with hop-by-hop fields (those the
// Connection header names included) and the framing fields removed,
// forwarding fields rebuilt (setForwarded), and the framing of the body
// the client sent: its Content-Length, or chunked when it had none.
func (o *outbound) write(bw *bufio.Writer) error {
	u, in := o.u, o.in
	h := in.Header

	uri, host := o.target()
	// All is checked before a byte is written: a refusal half way
	// through could leave part of a head on the wire.
	named, err := o.check(uri, host)
	if err != nil {
		return err
	}
	bw.WriteString(in.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	other := otherHeader(u.src)
	for k, vv := range h {
		if skipOutbound(k) || slices.Contains(named, k) || isOtherHeader(k, other) {
			continue
		}
		for _, v := range vv {
			if k == "User-Agent" && v == "" {
				continue
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if httpguts.HeaderValuesContainsToken(h["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	writeForwarded(bw, in, u.src)

	switch {
	case o.body == nil:
		if in.Method != http.MethodGet && in.Method != http.MethodHead {
			// As Request.Write: many servers want a length on a POST,
			// PUT or DELETE even when there is no body.
			bw.WriteString("Content-Length: 0\r\n")
		}
		_, err := bw.WriteString("\r\n")
		return err
	case in.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(in.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if !o.inMemory() {
			// The head goes out before a body still to come from the
			// client, as Request.Write sends it: the upstream may answer
			// (401, 413) before the body is all there.
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		bp := buffers.Get().(*[]byte)
		defer buffers.Put(bp)
		// Hiding bw's ReadFrom keeps the copy in the pooled buffer: past
		// bw's own buffer, ReadFrom would go to the connection's, which
		// allocates one of its own for each body.
		n, err := io.CopyBuffer(writerOnly{bw}, io.LimitReader(o.body, in.ContentLength), *bp)
		if err == nil && n < in.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			// A body longer than its Content-Length (a policy that
			// rewrote it and not the length) is refused, as
			// Request.Write refuses it, rather than cut short.
			var one [1]byte
			if m, _ := o.body.Read(one[:]); m > 0 {
				err = fmt.Errorf("request body longer than its Content-Length of %d", in.ContentLength)
			}
		}
		return err
	}
	// A body of unknown length, sent chunked, with the client's trailer
	// after it when the upstream takes trailers: the fields the client
	// announced that may be trailers (trailerNames); the rest are dropped.
	bw.WriteString("Transfer-Encoding: chunked\r\n")
	var trailers []string
	if u.requestTrailers && len(in.Trailer) > 0 {
		trailers = trailerNames(in.Trailer, h, u.protected)
	}
	if len(trailers) > 0 {
		writeField(bw, "Trailer", strings.Join(trailers, ", "))
	}
	bw.WriteString("\r\n")
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	cw := httputil.NewChunkedWriter(bw)
	// Each chunk goes out as it comes, as Request.Write sends them: a
	// body of unknown length may be a stream the upstream answers as it
	// goes.
	if _, err := io.CopyBuffer(flushAfter{cw, bw}, o.body, *bp); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	for _, k := range trailers {
		// The values came with the body's end; a field with a value no
		// message may carry is dropped, as one not announced is.
		vv := in.Trailer[k]
		if !slices.ContainsFunc(vv, func(v string) bool { return !httpguts.ValidHeaderFieldValue(v) }) {
			for _, v := range vv {
				writeField(bw, k, v)
			}
		}
	}
	_, err = bw.WriteString("\r\n")
	return err
}

// check refuses a request that no HTTP/1.1 message may carry as it stands:
// a header name or value (a policy's: the server parsed the client's), a
// request-target or Host with bytes that would split the request line, or
// a trusted peer's forwarding field that would split the header. (Trailer
// fields that may not pass are dropped, not refused: see write.) It
// returns the fields the Connection header names, which are hop-by-hop
// too, less those the gateway and the route's policies set.
func (o *outbound) check(uri, host string) (named []string, err error) {
	in := o.in
	h := in.Header
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c == 0x7f {
			return nil, errInvalidHeader{":path"}
		}
	}
	if !httpguts.ValidHostHeader(host) {
		return nil, errInvalidHeader{"Host"}
	}
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				if k := textproto.CanonicalMIMEHeaderKey(sf); !slices.Contains(o.u.protected, k) {
					named = append(named, k)
				}
			}
		}
	}
	trustedPeer := false
	if peer, err := netip.ParseAddrPort(in.RemoteAddr); err == nil {
		trustedPeer = inPrefixes(peer.Addr().Unmap().WithZone(""), o.u.trusted)
	}
	// The client's own, replaced by the resolved address (writeForwarded).
	other := otherHeader(o.u.src)
	for k, vv := range h {
		if forwardingField(k) && trustedPeer {
			// A trusted peer's are passed on, before ours, whatever
			// the Connection header names (as on the ReverseProxy
			// path, which reads them from the inbound request).
		} else if skipOutbound(k) || slices.Contains(named, k) || isOtherHeader(k, other) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, errInvalidHeader{k}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, errInvalidHeader{k}
			}
		}
	}
	if !httpguts.ValidHeaderFieldValue(in.Host) {
		return nil, errInvalidHeader{"X-Forwarded-Host"}
	}
	return named, nil
}

// forwardingField reports the fields a trusted peer's values of are passed
// on in ours.
func forwardingField(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// target returns the request-target and the Host of the upstream request:
// the upstream's base URL joined with the client's path and query, as
// httputil.ProxyRequest.SetURL joins them.
func (o *outbound) target() (uri, host string) {
	u, in := o.u, o.in
	host = u.target.Host
	if u.preserveHost && in.Host != "" {
		host = in.Host
	}
	if u.plainTarget && in.URL.Opaque == "" {
		// The common case, without the copy: the base URL has no path
		// or query of its own.
		uri = in.URL.EscapedPath()
		if uri == "" {
			uri = "/"
		}
		if q := cleanQuery(in.URL.RawQuery); q != "" || in.URL.ForceQuery {
			uri += "?" + q
		}
		return uri, host
	}
	outURL := *in.URL
	outURL.RawQuery = cleanQuery(outURL.RawQuery)
	tmp := http.Request{URL: &outURL}
	(&httputil.ProxyRequest{In: in, Out: &tmp}).SetURL(u.target)
	return outURL.RequestURI(), host
}

// skipOutbound reports the fields of the client's request that are not
// passed on as they are: hop-by-hop fields, the framing (sent as the body
// is sent), Host (from the request line's target), and the forwarding
// fields (rebuilt).
func skipOutbound(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Http2-Settings", "Host", "Content-Length",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// writeAddr writes a's text straight into bw's buffer: a stack buffer
// handed to bw.Write would escape, an allocation every request.
func writeAddr(bw *bufio.Writer, a netip.Addr) {
	bw.Write(a.AppendTo(bw.AvailableBuffer()))
}

// writeForwarded writes the fields forwardedValues computes, without
// building them as strings first (they were a sixth of a proxied request's
// allocations).
func writeForwarded(bw *bufio.Writer, in *http.Request, src clientip.Source) {
	peer, err := netip.ParseAddrPort(in.RemoteAddr)
	if err != nil {
		return
	}
	ip := peer.Addr().Unmap().WithZone("")
	trustedPeer := inPrefixes(ip, src.Trusted)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	h := in.Header
	client := ip
	if trustedPeer {
		client = src.Resolve(in.RemoteAddr, h)
	}
	xffSource := src.Header == "" || src.Header == clientip.XForwardedFor
	fwdSource := src.Header == clientip.Forwarded
	if other := otherHeader(src); other != "" {
		bw.WriteString(other)
		bw.WriteString(": ")
		writeAddr(bw, client)
		bw.WriteString("\r\n")
	}

	bw.WriteString("X-Forwarded-For: ")
	if prior := h["X-Forwarded-For"]; trustedPeer && xffSource && len(prior) > 0 {
		for _, v := range prior {
			bw.WriteString(v)
			bw.WriteString(", ")
		}
	} else if !xffSource && client != ip {
		writeAddr(bw, client)
		bw.WriteString(", ")
	}
	writeAddr(bw, ip)
	host, fproto := in.Host, proto
	if trustedPeer {
		if v := h.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		if v := h.Get("X-Forwarded-Proto"); v != "" {
			fproto = v
		}
	}
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.WriteString(host)
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	bw.WriteString(fproto)

	bw.WriteString("\r\nForwarded: ")
	if prior := h["Forwarded"]; trustedPeer && fwdSource && len(prior) > 0 {
		for _, v := range prior {
			bw.WriteString(v)
			bw.WriteString(", ")
		}
	} else if !fwdSource && client != ip {
		bw.WriteString("for=")
		if client.Is6() {
			bw.WriteString(`"[`)
			writeAddr(bw, client)
			bw.WriteString(`]"`)
		} else {
			writeAddr(bw, client)
		}
		bw.WriteString(", ")
	}
	bw.WriteString("for=")
	if ip.Is6() {
		bw.WriteString(`"[`)
		writeAddr(bw, ip)
		bw.WriteString(`]"`)
	} else {
		writeAddr(bw, ip)
	}
	if in.Host != "" {
		bw.WriteString(";host=")
		writeQuotedIfNeeded(bw, in.Host)
	}
	bw.WriteString(";proto=")
	bw.WriteString(proto)
	bw.WriteString("\r\n")
}

// writeQuotedIfNeeded writes v as quoteIfNeeded returns it.
func writeQuotedIfNeeded(bw *bufio.Writer, v string) {
	token := true
	for i := 0; i < len(v) && token; i++ {
		token = isTokenChar(v[i])
	}
	if token {
		bw.WriteString(v)
		return
	}
	writeQuoted(bw, v)
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// isUpgrade reports a request to switch protocols (WebSocket), which
// ReverseProxy's upgrade handling serves.
func isUpgrade(r *http.Request) bool {
	return r.Header["Upgrade"] != nil && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// hopHeaders are removed in both directions besides those the Connection
// header names (RFC 9110 §7.6.1), as ReverseProxy removes them, and
// HTTP2-Settings, which belongs to an h2c upgrade.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Http2-Settings",
}

func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f)
	}
}

// cleanQuery drops query parameters Go's URL parsing would not read (a
// semicolon separator, a bad escape), re-encoding the rest, so that the
// gateway's policies and the upstream read the same parameters.
// ReverseProxy does the same.
func cleanQuery(s string) string {
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func reencode(s string) string {
	v, _ := url.ParseQuery(s)
	return v.Encode()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// informational passes a 1xx response (103 Early Hints) on to the client,
// with its own headers only, less the hop-by-hop ones.
func informational(w http.ResponseWriter, code int, h http.Header) {
	removeHopByHop(h)
	dst := w.Header()
	saved := dst.Clone()
	for k, vv := range h {
		dst[k] = append(dst[k], vv...)
	}
	w.WriteHeader(code)
	clear(dst)
	for k, vv := range saved {
		dst[k] = vv
	}
}

// streaming reports a response to pass on as it comes rather than through
// the server's buffer: server-sent events, and bodies of unknown length.
func streaming(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header.Get("Content-Type")
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// copyResponse copies the upstream's body to the client, flushing after
// each write when flush is set. Whether or not it is, it flushes when the
// upstream pauses: when no byte of the body is waiting in buffered (the
// connection's reader) and more is to come (length, -1 if unknown, is not
// reached), so that a response whose head has arrived reaches the client
// before the upstream sends the rest (clients and health checks see a
// slow upstream as slow, not as hung), without a write of its own for the
// head when the body came with it.
func copyResponse(w http.ResponseWriter, body io.Reader, flush bool, length int64, buffered func() int) error {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	pause, _ := w.(http.Flusher) // the gateway's writer: no allocation
	var copied int64
	for {
		if pause != nil && buffered() == 0 && (length < 0 || copied < length) {
			// The next read waits for the upstream: let what the
			// client can have go now (the head, the body so far).
			pause.Flush()
		}
		n, rerr := body.Read(buf)
		if n > 0 {
			copied += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// sentBody is the client's body on its way upstream. It remembers the first
// error reading it, which Request.Write reports only wrapped in a type of
// its own, so that a body too large or cut short is told apart from the
// upstream failing. Its Close does nothing: Request.Write closes the body
// it sent, and the client's stays the server's to close.
type sentBody struct {
	r   io.Reader
	err error
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (*sentBody) Close() error { return nil }

// flushAfter flushes bw after each write to w, which writes into bw.
type flushAfter struct {
	w  io.Writer
	bw *bufio.Writer
}

func (f flushAfter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.bw.Flush()
	}
	return n, err
}

// writerOnly hides all but Write.
type writerOnly struct{ io.Writer }
