package proxy

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// serveH1 forwards r over the upstream's own HTTP/1.1 connections. It does
// what httputil.ReverseProxy does in Rewrite mode, step for step: the same
// outbound request (hop-by-hop headers removed, forwarding headers rebuilt,
// unparsable query parameters dropped, no Go User-Agent added), 1xx
// responses passed on, hop-by-hop response headers removed, trailers
// forwarded, streaming responses flushed as they come, and a response the
// upstream cuts short aborted with http.ErrAbortHandler.
func (u *Upstream) serveH1(w http.ResponseWriter, r *http.Request) {
	out := u.outRequest(r)
	ex, err := u.h1.roundTrip(r.Context(), out, func(code int, h http.Header) {
		informational(w, code, h)
	})
	if err != nil {
		u.onError(w, r, err)
		return
	}
	res := ex.res
	removeHopByHop(res.Header)
	dst := w.Header()
	for k, vv := range res.Header {
		dst[k] = append(dst[k], vv...)
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := copyResponse(w, res.Body, streaming(res)); err != nil {
		ex.finish(false)
		panic(http.ErrAbortHandler)
	}
	// The body is at its end: Close only reads the trailer, if any.
	if err := res.Body.Close(); err != nil {
		ex.finish(false)
		panic(http.ErrAbortHandler)
	}
	ex.finish(true)

	if len(res.Trailer) > 0 {
		// Chunked, so that the trailer can follow the body.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// outRequest is the request to send upstream, as ReverseProxy builds it.
func (u *Upstream) outRequest(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Close = false
	if r.ContentLength == 0 || r.Body == http.NoBody {
		out.Body = nil
	} else if out.Body != nil {
		out.Body = &sentBody{r: out.Body}
	}
	removeHopByHop(out.Header)
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		out.Header["Te"] = []string{"trailers"}
	}
	// The client's forwarding headers; setForwarded decides what of them
	// to keep.
	delete(out.Header, "Forwarded")
	delete(out.Header, "X-Forwarded-For")
	delete(out.Header, "X-Forwarded-Host")
	delete(out.Header, "X-Forwarded-Proto")
	out.URL.RawQuery = cleanQuery(out.URL.RawQuery)
	u.rewrite(&httputil.ProxyRequest{In: r, Out: out})
	if _, ok := out.Header["User-Agent"]; !ok {
		// An empty value keeps Request.Write from sending Go's own.
		out.Header["User-Agent"] = []string{""}
	}
	return out
}

// isUpgrade reports a request to switch protocols (WebSocket), which
// ReverseProxy's upgrade handling serves.
func isUpgrade(r *http.Request) bool {
	return r.Header["Upgrade"] != nil && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// hopHeaders are removed in both directions besides those the Connection
// header names (RFC 9110 §7.6.1), as ReverseProxy removes them.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
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
// with its own headers only.
func informational(w http.ResponseWriter, code int, h http.Header) {
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
// each write when flush is set.
func copyResponse(w http.ResponseWriter, body io.Reader, flush bool) error {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if rc != nil {
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
