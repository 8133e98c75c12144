// Package proxy forwards allowed requests to a route's upstream, over its
// own HTTP/1.1 client or httputil.ReverseProxy in Rewrite mode: hop-by-hop
// headers are removed, X-Forwarded-* and Forwarded (RFC 7239) are rebuilt
// from what the gateway saw and what trusted proxies said, bodies stream
// both ways, trailers pass only when announced and allowed
// (TrailerAllowed), and a WebSocket upgrade passes only to an upstream
// configured for it; h2c and every other upgrade never do.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"golang.org/x/net/http/httpguts"
)

// ErrorHandler is called when the exchange with the upstream fails before a
// response was forwarded. w is the writer the gateway handed to ServeHTTP.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// Upstream proxies to one backend. It is safe for concurrent use.
type Upstream struct {
	target       *url.URL
	preserveHost bool
	timeout      time.Duration
	trusted      []netip.Prefix
	// src is where the gateway read the client address from; the
	// forwarding fields the upstream gets say the same (forwardedValues).
	src       clientip.Source
	transport *http.Transport
	// rp carries what h1 does not; it is built on first use (reverseProxy),
	// which for most routes, plain http:// ones, is never.
	rpOnce    sync.Once
	rp        *httputil.ReverseProxy
	newErrLog func() *log.Logger
	// h1 carries plain HTTP/1.1 exchanges (all but protocol upgrades) to
	// http:// upstreams; nil for https:// and h2c upstreams, which go
	// through transport.
	h1      *h1Client
	onError ErrorHandler
	// plainTarget: the upstream URL has no path or query of its own, so
	// the client's path and query are forwarded as they are.
	plainTarget bool
	// websocket: WebSocket upgrades may pass (config websocket).
	websocket bool
	// requestTrailers: the client's trailers may pass (config
	// request_trailers), those TrailerAllowed allows.
	requestTrailers bool
	// protected are the fields the route's policies set or strip (the
	// identity headers): never a trailer, never removed because the
	// client's Connection named them.
	protected []string
}

// Options are what New needs besides the upstream's config.
type Options struct {
	// TrustedProxies are the peers whose forwarding headers are kept and
	// appended to. Others' are replaced.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the header the gateway reads the client address
	// from (clientip.Source.Header); empty: X-Forwarded-For.
	ClientIPHeader string
	// OnError renders a failed exchange. Required.
	OnError ErrorHandler
	// ErrorLog returns the logger of the reverse proxy's own diagnostics.
	// It is called once, when the upstream first forwards a request
	// through httputil.ReverseProxy (an https:// or h2c upstream, a
	// WebSocket upgrade), and never for an upstream that never does. Nil:
	// discarded.
	ErrorLog func() *log.Logger
	// BaseDir resolves relative certificate paths. Empty: the working directory.
	BaseDir string
	// Protected are the request fields the route's policies set or
	// strip (the identity policy's headers and token): they never pass as
	// trailers either way, and the proxy never removes them because a
	// Connection field names them.
	Protected []string
	// Clients, when set, provides the upstream's transport and HTTP/1.1
	// client, shared with the other upstreams of the same settings (see
	// Clients). Nil: the upstream has its own.
	Clients *Clients
}

// New builds the proxy of an upstream. Certificate files are read now, so a
// bad file fails the config load, not a request. The returned error names
// the field at fault (as "field: cause") for the caller to place in the file.
func New(cfg config.Upstream, opt Options) (*Upstream, error) {
	var target *url.URL
	var err error
	if opt.Clients != nil {
		target, err = opt.Clients.target(cfg.URL)
	} else {
		target, err = url.Parse(cfg.URL)
	}
	if err != nil {
		return nil, &FieldError{Field: "url", Err: err}
	}
	var tr *http.Transport
	if opt.Clients != nil {
		tr, err = opt.Clients.transport(cfg, target, opt.BaseDir)
	} else {
		tr, err = newTransport(cfg, target, opt.BaseDir, newDialer(cfg.ConnectTimeout.Std()))
	}
	if err != nil {
		return nil, err
	}
	u := &Upstream{
		target:       target,
		preserveHost: cfg.PreserveHost,
		timeout:      cfg.Timeout.Std(),
		trusted:      opt.TrustedProxies,
		src:          clientip.Source{Trusted: opt.TrustedProxies, Header: opt.ClientIPHeader},
		transport:    tr,
		onError:      opt.OnError,
		plainTarget:  (target.Path == "" || target.Path == "/") && target.RawPath == "" && target.RawQuery == "" && !target.ForceQuery,

		websocket:       cfg.WebSocket,
		requestTrailers: cfg.RequestTrailers,
		protected:       protectedFields(opt.Protected),
		newErrLog:       opt.ErrorLog,
	}
	if target.Scheme == "http" && !cfg.H2C {
		if opt.Clients != nil {
			u.h1 = opt.Clients.h1Client(cfg, target)
		} else {
			u.h1 = newH1Client(cfg, target, newDialer(cfg.ConnectTimeout.Std()))
		}
	}
	return u, nil
}

// reverseProxy returns the upstream's httputil.ReverseProxy, building it
// on first use: ten thousand routes to plain http:// upstreams would
// otherwise each hold one, with its error logger, that they never use
// (issue 23). Building cannot fail, and every request waits for it.
func (u *Upstream) reverseProxy() *httputil.ReverseProxy {
	u.rpOnce.Do(func() {
		var errLog *log.Logger
		if u.newErrLog != nil {
			errLog = u.newErrLog()
		}
		if errLog == nil {
			errLog = log.New(io.Discard, "", 0)
		}
		u.rp = &httputil.ReverseProxy{
			Rewrite:        u.rewrite,
			ModifyResponse: u.modifyResponse,
			Transport:      u.transport,
			ErrorHandler:   u.rpError,
			ErrorLog:       errLog,
			BufferPool:     bufferPool{},
			// -1 would flush after every write; 0 lets the server buffer, and
			// ReverseProxy already flushes streaming responses (SSE, unknown
			// length) at once.
			FlushInterval: 0,
		}
		u.newErrLog = nil
	})
	return u.rp
}

// requestIDOnly is the protected fields of the upstreams whose policies
// protect none, most of them: shared, as nothing writes to it.
var requestIDOnly = []string{RequestIDField}

// protectedFields is the request id and the fields the route's policies
// protect.
func protectedFields(policies []string) []string {
	if len(policies) == 0 {
		return requestIDOnly[:1:1]
	}
	return append([]string{RequestIDField}, policies...)
}

// FieldError is a problem with one field of the upstream config.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "proxy: " + e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// newDialer returns the dialer of upstream connections.
func newDialer(connectTimeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
}

func newTransport(cfg config.Upstream, target *url.URL, baseDir string, dialer *net.Dialer) (*http.Transport, error) {
	tr := &http.Transport{
		// Never honour HTTP_PROXY and friends: where upstream traffic goes
		// is the gateway's config, not the environment's.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout.Std(),
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout.Std(),
		IdleConnTimeout:       cfg.IdleConnTimeout.Std(),
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		ExpectContinueTimeout: time.Second,
		// The same bound as the h1 client's (maxResponseHead).
		MaxResponseHeaderBytes: maxResponseHead,
		// The client's Accept-Encoding goes through untouched and the body
		// comes back as the upstream sent it.
		DisableCompression: true,
	}
	switch {
	case target.Scheme == "https":
		tc, err := clientTLS(cfg.TLS, baseDir)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
		tr.ForceAttemptHTTP2 = true
	case cfg.H2C:
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return tr, nil
}

func clientTLS(cfg *config.UpstreamTLS, baseDir string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg == nil {
		return tc, nil
	}
	tc.ServerName = cfg.ServerName
	tc.InsecureSkipVerify = cfg.InsecureSkipVerify
	if cfg.CAFile != "" {
		pemBytes, err := os.ReadFile(resolve(baseDir, cfg.CAFile))
		if err != nil {
			return nil, &FieldError{Field: "tls.ca_file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, &FieldError{Field: "tls.ca_file", Err: errors.New("no PEM certificate found")}
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(resolve(baseDir, cfg.CertFile), resolve(baseDir, cfg.KeyFile))
		if err != nil {
			return nil, &FieldError{Field: "tls.cert_file", Err: err}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func resolve(baseDir, p string) string {
	if baseDir == "" || p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	return baseDir + "/" + p
}

// ServeHTTP forwards r to the upstream and copies the response to w. The
// request's URL path must already be cleaned by the gateway.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u.timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), u.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	upgrade := u.upgradeAllowed(r)
	if !upgrade && (r.Header["Upgrade"] != nil || r.Header["Http2-Settings"] != nil) {
		// Not an upgrade this upstream takes: the request goes on as a
		// plain one (RFC 9110 §7.8 lets a server ignore Upgrade), and
		// ReverseProxy must not see it as one either.
		stripUpgrade(r.Header)
	}
	if u.h1 != nil && !upgrade {
		u.serveH1(w, r)
		return
	}
	r = rpTrace(r)
	defer closeResponse(r)
	u.reverseProxy().ServeHTTP(headFlusher{w}, r)
}

// headFlusher sends a final response's head as soon as ReverseProxy
// writes it, rather than with the first body bytes: ReverseProxy copies
// the body only as it arrives, so without this a slow upstream's answer
// looks hung to the client. (The h1 client flushes when the upstream
// pauses, saving the head's own write when the body came with it; an
// https or h2c upstream's body gives no such view.)
type headFlusher struct{ http.ResponseWriter }

func (h headFlusher) WriteHeader(code int) {
	h.ResponseWriter.WriteHeader(code)
	if code >= 200 {
		if f, ok := h.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// Unwrap lets http.ResponseController reach the writer (flushes, the
// WebSocket hijack).
func (h headFlusher) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// upgradeAllowed reports a WebSocket handshake (RFC 6455 §4.1: a GET over
// HTTP/1.1, without a body, asking for exactly "websocket") to an upstream
// that takes WebSocket. No other protocol is ever switched to: h2c would
// hand the upstream connection to a client whose later requests no
// policy sees.
func (u *Upstream) upgradeAllowed(r *http.Request) bool {
	if !u.websocket || !isUpgrade(r) || r.Method != http.MethodGet || r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	up := r.Header["Upgrade"]
	return len(up) == 1 && strings.EqualFold(textproto.TrimString(up[0]), "websocket")
}

// stripUpgrade removes a request's Upgrade, its HTTP2-Settings and the
// Connection options naming them.
func stripUpgrade(h http.Header) {
	delete(h, "Upgrade")
	delete(h, "Http2-Settings")
	conn := h["Connection"]
	if conn == nil {
		return
	}
	var keep []string
	for _, f := range conn {
		for sf := range strings.SplitSeq(f, ",") {
			sf = textproto.TrimString(sf)
			if sf != "" && !strings.EqualFold(sf, "upgrade") && !strings.EqualFold(sf, "http2-settings") {
				keep = append(keep, sf)
			}
		}
	}
	if len(keep) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(keep, ", ")}
}

// Target returns the upstream's URL (url).
func (u *Upstream) Target() string { return u.target.String() }

// Close releases the upstream's idle connections (with Options.Clients,
// those of the clients it shares). Requests in flight finish; their
// connections are closed after them.
func (u *Upstream) Close() {
	u.transport.CloseIdleConnections()
	if u.h1 != nil {
		u.h1.close()
	}
}

// maxResponseHead bounds an upstream's response head (status line and
// headers, 1xx responses included), as http.Transport's
// MaxResponseHeaderBytes does (there 10 MB by default).
const maxResponseHead = 1 << 20

// pollFor is connReader's poll: pollInterval, or the head's timeout if
// shorter, so that the first deadline never overshoots it.
func pollFor(headerTimeout time.Duration) time.Duration {
	if headerTimeout > 0 && headerTimeout < pollInterval {
		return headerTimeout
	}
	return pollInterval
}

// h1Addr is the host:port the HTTP/1.1 client dials for target.
func h1Addr(target *url.URL) string {
	if target.Port() == "" {
		return net.JoinHostPort(target.Hostname(), "80")
	}
	return target.Host
}

func newH1Client(cfg config.Upstream, target *url.URL, dialer *net.Dialer) *h1Client {
	return &h1Client{
		addr:          h1Addr(target),
		dial:          dialer.DialContext,
		headerTimeout: cfg.ResponseHeaderTimeout.Std(),
		idleTimeout:   cfg.IdleConnTimeout.Std(),
		maxIdle:       cfg.MaxIdleConnsPerHost,
		maxHeader:     maxResponseHead,
		poll:          pollFor(cfg.ResponseHeaderTimeout.Std()),
	}
}

func (u *Upstream) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(u.target)
	if u.preserveHost {
		pr.Out.Host = pr.In.Host
	}
	setForwarded(pr.In, pr.Out, u.src)
	delete(pr.Out.Header, "Http2-Settings")
	// ReverseProxy removed what the Connection field named; the fields
	// the gateway and the route's policies set are theirs, not the
	// client's to remove (the gateway removed the client's own named
	// fields at its entry, before it set these).
	for _, k := range u.protected {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
	u.setRequestTrailers(pr)
}

// setRequestTrailers sets the trailer of the upstream request: the client's
// announced trailers that may pass (trailerNames), when the upstream takes
// them and the body is of unknown length (so chunked, or HTTP/2), filled
// in when the client's body ends. Otherwise none.
func (u *Upstream) setRequestTrailers(pr *httputil.ProxyRequest) {
	pr.Out.Trailer = nil
	if !u.requestTrailers || pr.Out.Body == nil || pr.Out.ContentLength >= 0 || len(pr.In.Trailer) == 0 {
		return
	}
	names := trailerNames(pr.In.Trailer, pr.In.Header, u.protected)
	if len(names) == 0 {
		return
	}
	pr.Out.Trailer = make(http.Header, len(names))
	for _, k := range names {
		pr.Out.Trailer[k] = nil
	}
	pr.Out.Body = &trailerCopy{ReadCloser: pr.Out.Body, in: pr.In, out: pr.Out.Trailer, names: names}
}

// trailerCopy copies the allowed trailer values of in into out when in's
// body ends: the server fills in.Trailer then, and the transport writes
// out, the outbound request's Trailer, after the body it read through
// here, on the same goroutine.
type trailerCopy struct {
	io.ReadCloser
	in    *http.Request
	out   http.Header
	names []string
	done  bool
}

func (t *trailerCopy) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF && !t.done {
		t.done = true
		got := t.in.Trailer.Clone()
		keepTrailers(got, t.names)
		for k, vv := range got {
			t.out[k] = vv
		}
	}
	return n, err
}

// modifyResponse checks a 101 against what the client asked for and
// filters the response's trailer.
func (u *Upstream) modifyResponse(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols {
		recordResponse(res)
		return u.checkSwitch(res)
	}
	// A status or header no client may be given (protocol.go).
	if err := checkResponse(res); err != nil {
		return err
	}
	filterResponseTrailers(res, u.protected)
	return nil
}

// checkSwitch accepts a 101 only as the answer to a WebSocket upgrade this
// upstream takes and that was forwarded, switching to websocket.
// ReverseProxy alone would tunnel a 101 without any Upgrade to a request
// that asked for none.
func (u *Upstream) checkSwitch(res *http.Response) error {
	req := res.Request
	asked := req != nil && u.websocket && httpguts.HeaderValuesContainsToken(req.Header["Connection"], "upgrade") &&
		strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
	got := httpguts.HeaderValuesContainsToken(res.Header["Connection"], "upgrade") &&
		len(res.Header["Upgrade"]) == 1 && strings.EqualFold(textproto.TrimString(res.Header["Upgrade"][0]), "websocket")
	if !asked {
		return protocolError{"upstream switched protocols (101) unasked"}
	}
	if !got {
		return protocolError{"upstream switched to a protocol other than the websocket asked for"}
	}
	return nil
}

// filterResponseTrailers keeps of res's trailer the fields that were
// announced and may pass (trailerNames): now, for the announcement the
// client gets, and again when the body ends, since the transport adds
// every field the upstream sent in its trailer, announced or not.
func filterResponseTrailers(res *http.Response, protected []string) {
	if res.Trailer == nil && res.ContentLength >= 0 && res.ProtoMajor == 1 {
		return // no trailer can follow a body of known length in HTTP/1.1
	}
	names := trailerNames(res.Trailer, res.Header, protected)
	for k := range res.Trailer {
		if !slices.Contains(names, k) {
			delete(res.Trailer, k)
		}
	}
	res.Body = &responseTrailers{ReadCloser: res.Body, res: res, names: names}
}

// responseTrailers filters res.Trailer to names at the end of the body and
// at Close, after which ReverseProxy reads it.
type responseTrailers struct {
	io.ReadCloser
	res   *http.Response
	names []string
}

func (t *responseTrailers) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		t.filter()
	}
	return n, err
}

func (t *responseTrailers) Close() error {
	err := t.ReadCloser.Close()
	t.filter()
	return err
}

func (t *responseTrailers) filter() {
	if len(t.names) == 0 {
		t.res.Trailer = nil
		return
	}
	keepTrailers(t.res.Trailer, t.names)
}

// setForwarded rebuilds the forwarding headers. ReverseProxy's Rewrite mode
// has already removed the inbound ones from out; a trusted peer's are put
// back and extended, an untrusted peer's are dropped, so a client cannot
// forge its address for the upstream.
func setForwarded(in, out *http.Request, src clientip.Source) {
	fw := forwardedValues(in, src)
	if h := otherHeader(src); h != "" {
		for k := range out.Header {
			if isOtherHeader(k, h) {
				delete(out.Header, k)
			}
		}
		if fw.client != "" {
			out.Header[h] = []string{fw.client}
		}
	}
	if fw.xff == "" {
		return
	}
	out.Header["X-Forwarded-For"] = []string{fw.xff}
	out.Header["X-Forwarded-Host"] = []string{fw.host}
	out.Header["X-Forwarded-Proto"] = []string{fw.proto}
	out.Header["Forwarded"] = []string{fw.forwarded}
}

// forwarded are the forwarding fields of the upstream request; client is
// the client address the gateway resolved, for the header otherHeader
// names.
type forwarded struct {
	xff, host, proto, forwarded, client string
}

// otherHeader is the header src names when it is neither X-Forwarded-For
// nor Forwarded (X-Real-IP and the like): the upstream gets it set to the
// client address the gateway resolved, never the client's own. "" when
// none.
func otherHeader(src clientip.Source) string {
	switch src.Header {
	case "", clientip.XForwardedFor, clientip.Forwarded:
		return ""
	}
	return src.Header
}

// isOtherHeader reports a client's field that stands for other, the header
// otherHeader names: the same name in any case, or with '_' for '-'
// (X_Real_IP), which CGI-style servers read as the same variable.
func isOtherHeader(k, other string) bool {
	if other == "" || len(k) != len(other) {
		return false
	}
	for i := 0; i < len(k); i++ {
		a, b := lowerASCII(k[i]), lowerASCII(other[i])
		if a == '_' {
			a = '-'
		}
		if a != b {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// forwardedValues computes the forwarding fields for in: this hop appended
// to a trusted peer's, or alone. All are empty when in's peer address does
// not parse (never, under net/http's server).
//
// Only the header the gateway read the client address from (src.Header)
// is passed on from a trusted peer and extended. The other kind would be
// the client's own words, passed on untouched by a proxy that writes only
// the first, and an upstream reading it would take another client address
// than the gateway did; it starts instead with the client address the
// gateway resolved, followed by this hop.
func forwardedValues(in *http.Request, src clientip.Source) forwarded {
	peer, err := netip.ParseAddrPort(in.RemoteAddr)
	if err != nil {
		return forwarded{}
	}
	ip := peer.Addr().Unmap().WithZone("")
	trustedPeer := inPrefixes(ip, src.Trusted)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	client := ip
	if trustedPeer {
		client = src.Resolve(in.RemoteAddr, in.Header)
	}
	xffSource := src.Header == "" || src.Header == clientip.XForwardedFor

	fw := forwarded{xff: ip.String(), host: in.Host, proto: proto, client: client.String()}
	if trustedPeer {
		if prior := in.Header["X-Forwarded-For"]; xffSource && len(prior) > 0 {
			fw.xff = strings.Join(prior, ", ") + ", " + fw.xff
		} else if !xffSource && client != ip {
			fw.xff = client.String() + ", " + fw.xff
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			fw.host = v
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			fw.proto = v
		}
	}
	fw.forwarded = forwardedElement(ip, in.Host, proto)
	if trustedPeer {
		if prior := in.Header["Forwarded"]; src.Header == clientip.Forwarded && len(prior) > 0 {
			fw.forwarded = strings.Join(prior, ", ") + ", " + fw.forwarded
		} else if src.Header != clientip.Forwarded && client != ip {
			fw.forwarded = forNode(client) + ", " + fw.forwarded
		}
	}
	return fw
}

// forNode is a forwarded-element naming only the address ip.
func forNode(ip netip.Addr) string {
	if ip.Is6() {
		return `for="[` + ip.String() + `]"`
	}
	return "for=" + ip.String()
}

// forwardedElement is one RFC 7239 forwarded-element for this hop.
func forwardedElement(ip netip.Addr, host, proto string) string {
	var b strings.Builder
	b.WriteString("for=")
	if ip.Is6() {
		b.WriteString(`"[` + ip.String() + `]"`)
	} else {
		b.WriteString(ip.String())
	}
	if host != "" {
		b.WriteString(";host=")
		b.WriteString(quoteIfNeeded(host))
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	return b.String()
}

// quoteIfNeeded returns v as an RFC 7239 value: a token as is, anything else
// as a quoted-string (RFC 9110 §5.6.4), with '"' and '\\' escaped.
func quoteIfNeeded(v string) string {
	for i := 0; i < len(v); i++ {
		if !isTokenChar(v[i]) {
			return quote(v)
		}
	}
	return v
}

func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	writeQuoted(&b, v)
	return b.String()
}

// writeQuoted writes v as a quoted-string, '"' and '\\' escaped, to a
// strings.Builder or a bufio.Writer.
func writeQuoted(w io.ByteWriter, v string) {
	_ = w.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || c == '\\' {
			_ = w.WriteByte('\\')
		}
		_ = w.WriteByte(v[i])
	}
	_ = w.WriteByte('"')
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func inPrefixes(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// bufferPool recycles the 32 KiB copy buffers of ReverseProxy.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
