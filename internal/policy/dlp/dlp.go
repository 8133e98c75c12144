// Package dlp is the "dlp" policy: it scans responses on their way to the
// client for sensitive data (credit card numbers, IBANs, national ids,
// private keys, access tokens, custom patterns) and masks, blocks or logs
// what it finds.
//
// Responses stream through a sliding window: the policy holds back only
// the last few bytes of what it has seen (as many as the longest match of
// its detectors: 37 for card numbers, 8KiB for private keys and JWTs), so
// a value split across writes is still found, and memory stays bounded
// whatever the response's size. Masking keeps lengths, so Content-Length
// stays right. Blocking must decide before the status line is sent, so a
// route with a blocking detector holds the response back, up to
// max_buffer, until it has been scanned whole.
package dlp

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/render"
)

// Unit registers the dlp policy.
var Unit = policy.Unit{Name: "dlp", New: New}

// Codes of the responses dlp replaces with 502.
const (
	// CodeBlocked: a blocking detector found something.
	CodeBlocked = "response_blocked"
	// CodeUnscannable: the response is compressed (or larger than
	// max_buffer where a detector blocks), so it cannot be checked.
	CodeUnscannable = "response_unscannable"
)

// DLP scans a route's responses. It is immutable and safe for concurrent
// use; the per-response state lives in pooled writers.
type DLP struct {
	s        *settings
	route    string
	logger   *slog.Logger
	window   int  // bytes held back: the longest match plus one
	blocking bool // some detector blocks: responses are held back
	// counters[i][a] counts detector i's findings handled with action a;
	// nil entries count nothing.
	counters [][3]prometheus.Counter
	pool     sync.Pool
}

var _ policy.Policy = (*DLP)(nil)

// New builds a DLP from cfg (see Config).
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	s, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	return newDLP(s, env), nil
}

func newDLP(s *settings, env *policy.Env) *DLP {
	d := &DLP{s: s, route: env.Route.Name, logger: env.Logger}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	for _, det := range s.dets {
		d.window = max(d.window, det.maxLen+1)
		if det.action == actBlock {
			d.blocking = true
		}
	}
	d.counters = make([][3]prometheus.Counter, len(s.dets))
	for i, det := range s.dets {
		for a := actMask; a <= actLog; a++ {
			d.counters[i][a] = env.Metrics.DLPFinding(d.route, det.name, a.String())
		}
	}
	d.pool.New = func() any { return &writer{d: d} }
	return d
}

// Apply removes Accept-Encoding from the request, so that the upstream
// answers uncompressed (a compressed body cannot be scanned), and routes
// the response body through the scanner. Outside the gateway (no
// ResponseBody) it only removes the header.
func (d *DLP) Apply(_ context.Context, ex *policy.Exchange) error {
	ex.Request.Header.Del("Accept-Encoding")
	if ex.ResponseBody == nil {
		return nil
	}
	w := d.pool.Get().(*writer)
	w.ex, w.next = ex, ex.ResponseBody
	w.buf = append(w.buf[:0], ' ') // context byte before the first
	w.start, w.lo = 1, 1
	ex.ResponseBody = w
	ex.HoldHeader = w.hold
	ex.OnResponseEnd(w.end)
	ex.OnDone(w.release)
	return nil
}

// Window is how many bytes of a response d holds back while streaming.
func (d *DLP) Window() int { return d.window }

type state uint8

const (
	// stNoHeader: hold has not been called (another policy replaced
	// HoldHeader): scan and mask, never block.
	stNoHeader state = iota
	stPass           // not scanned
	stStream         // scanned; the status is sent; blocks become masks
	stHolding        // scanned; the status is held back
	stBlocked        // replaced by a 502; the rest is dropped
)

// writer scans one response. It is the Exchange's ResponseBody.
type writer struct {
	d    *DLP
	ex   *policy.Exchange
	next interface{ Write([]byte) (int, error) }
	st   state

	status int
	header http.Header
	send   func(int)
	sent   bool

	// buf[start-1] is the last byte passed on (context for boundary
	// checks); buf[start:] is scanned but held back; matches may start
	// at lo or later.
	buf       []byte
	start, lo int
	held      []byte // in stHolding: scanned bytes not yet sent
	err       error  // the next writer's failure
}

func (w *writer) release() {
	w.ex, w.next, w.header, w.send, w.err = nil, nil, nil, nil, nil
	w.st, w.status, w.sent = stNoHeader, 0, false
	if cap(w.buf) > 4*w.d.window+64<<10 {
		w.buf = nil
	}
	if cap(w.held) > 64<<10 {
		w.held = nil
	}
	w.buf, w.held = w.buf[:0], w.held[:0]
	w.d.pool.Put(w)
}

// hold decides, from the status and headers, whether and how the body is
// scanned.
func (w *writer) hold(status int, header http.Header, send func(int)) {
	w.status, w.header, w.send = status, header, send
	r := w.ex.Request
	if r.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified ||
		!w.d.s.scannable(header.Get("Content-Type")) {
		w.st = stPass
		w.sendHeader()
		return
	}
	if ce := header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		// Accept-Encoding was removed from the request; an upstream that
		// compresses anyway would have its body pass unread.
		w.block(CodeUnscannable, "the response could not be inspected")
		return
	}
	if !w.d.blocking {
		w.st = stStream
		w.sendHeader()
		return
	}
	if n, ok := parseLength(header.Get("Content-Length")); ok && n > int64(w.d.s.maxBuffer) {
		w.oversize()
		return
	}
	w.st = stHolding
}

func parseLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || n > 1<<50 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (w *writer) sendHeader() {
	if !w.sent {
		w.sent = true
		w.send(w.status)
	}
}

// oversize handles a held response that outgrew max_buffer.
func (w *writer) oversize() {
	if w.d.s.oversize == actBlock {
		w.block(CodeUnscannable, "the response is too large to inspect")
		return
	}
	w.st = stStream
	w.sendHeader()
	if len(w.held) > 0 {
		w.pass(w.held)
		w.held = w.held[:0]
	}
}

// entityHeaders are the upstream's headers that describe its body and do
// not apply to the 502 that replaces it.
var entityHeaders = []string{
	"Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Content-Disposition",
	"Content-Language", "Content-Location", "Etag", "Last-Modified", "Accept-Ranges", "Location",
	"Set-Cookie", "Trailer", "Expires", "Age", "Cache-Control", "Vary", "Link", "Refresh",
}

// block replaces the response with a 502, if its status is still held,
// and drops the rest of the body. Once the status is sent (stNoHeader,
// stream) findings are masked instead and block is not called.
func (w *writer) block(code, detail string) {
	w.st = stBlocked
	w.held = w.held[:0]
	w.buf = w.buf[:w.start]
	if w.sent {
		return
	}
	for _, k := range entityHeaders {
		delete(w.header, k)
	}
	w.sent = true
	route := w.ex.Route
	proto := policy.REST
	if route != nil {
		proto = route.Protocol
	}
	render.Error(replacement{w}, w.ex.Request, proto, w.ex.RequestID, http.StatusBadGateway, code, detail)
}

// replacement is the http.ResponseWriter the 502 is rendered into.
type replacement struct{ w *writer }

func (r replacement) Header() http.Header { return r.w.header }
func (r replacement) WriteHeader(code int) {
	r.w.status = code
	r.w.send(code)
}
func (r replacement) Write(b []byte) (int, error) { return r.w.next.Write(b) }

// Write scans b. It reports len(b) unless the writer it passes bytes on to
// failed, whose error it returns.
func (w *writer) Write(b []byte) (int, error) {
	switch w.st {
	case stPass:
		return w.next.Write(b)
	case stBlocked:
		return len(b), nil
	}
	if w.err != nil {
		return 0, w.err
	}
	w.feed(b, false)
	if w.err != nil {
		return 0, w.err
	}
	return len(b), nil
}

// end scans and passes on what is held back, and the status if it still
// is.
func (w *writer) end() {
	switch w.st {
	case stPass, stBlocked:
		return
	}
	w.feed(nil, true)
	if w.st == stBlocked {
		return
	}
	if w.send != nil {
		w.sendHeader()
	}
	if len(w.held) > 0 {
		w.pass(w.held)
		w.held = w.held[:0]
	}
}

// feed appends b to the window, scans what can no longer be part of a
// match starting later, and passes it on. final scans everything.
func (w *writer) feed(b []byte, final bool) {
	d := w.d
	if w.start > 1 && (len(w.buf)+len(b) > cap(w.buf)) {
		// Compact: keep the context byte and the held-back tail.
		n := copy(w.buf, w.buf[w.start-1:])
		w.buf = w.buf[:n]
		w.lo -= w.start - 1
		w.start = 1
	}
	w.buf = append(w.buf, b...)
	n := len(w.buf)
	e := n - d.window
	if final {
		e = n
	}
	if e <= w.start {
		return
	}
	buf := w.buf
	if e > w.lo {
		end := w.lo
		for i, det := range d.s.dets {
			det.scan(buf, w.lo, e, func(s, f int) {
				if w.st == stBlocked {
					return
				}
				end = max(end, f)
				w.finding(i, det, buf, s, f)
			})
			if w.st == stBlocked {
				return
			}
		}
		w.lo = max(e, end)
	}
	w.emit(buf[w.start:e])
	w.start = e
}

// finding handles one match of det in buf[s:e].
func (w *writer) finding(i int, det *detector, buf []byte, s, e int) {
	a := det.action
	if a == actBlock && w.st != stHolding {
		// The status is sent: too late to block; mask.
		a = actMask
	}
	if c := w.d.counters[i][a]; c != nil {
		c.Inc()
	}
	// Never the value: which detector, where, what was done. Masks are
	// routine (counted, logged at debug); a block or a log action is what
	// an operator asked to hear about.
	level := slog.LevelWarn
	if a == actMask {
		level = slog.LevelDebug
	}
	w.d.logger.LogAttrs(context.Background(), level, "dlp finding",
		slog.String("detector", det.name), slog.String("route", w.d.route),
		slog.String("request_id", w.ex.RequestID), slog.String("action", a.String()))
	switch a {
	case actMask:
		det.mask(buf, s, e)
	case actBlock:
		w.block(CodeBlocked, "the response held data this route does not send")
	}
}

// emit passes scanned bytes on, or holds them while the status is held.
func (w *writer) emit(b []byte) {
	if len(b) == 0 {
		return
	}
	if w.st == stHolding {
		if len(w.held)+len(b) > w.d.s.maxBuffer {
			w.oversize()
			if w.st == stBlocked {
				return
			}
		} else {
			w.held = append(w.held, b...)
			return
		}
	}
	w.pass(b)
}

func (w *writer) pass(b []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.next.Write(b); err != nil {
		w.err = err
	}
}
