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
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the dlp policy.
var Unit = policy.Unit{Name: "dlp", New: New}

// Codes of the responses dlp replaces with 502.
const (
	// CodeBlocked: a blocking detector found something.
	CodeBlocked = "response_blocked"
	// CodeUnscannable: the response cannot be checked as the client
	// will read it: it is encoded (any Content-Encoding but identity, or
	// more than one), partial (206, multipart/byteranges), or larger than
	// max_buffer where a detector blocks.
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
	// every entry is set (env.Telemetry() is never nil).
	counters [][3]prometheus.Counter
	pool     sync.Pool
}

var (
	_ policy.Policy         = (*DLP)(nil)
	_ policy.ResponseFilter = (*DLP)(nil)
)

// New builds a DLP from cfg (see Config).
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	s, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	return newDLP(s, env), nil
}

func newDLP(s *settings, env *policy.Env) *DLP {
	d := &DLP{s: s, route: env.RouteName(), logger: env.Log()}
	for _, det := range s.dets {
		d.window = max(d.window, det.maxLen+1)
		if det.action == actBlock {
			d.blocking = true
		}
	}
	d.counters = make([][3]prometheus.Counter, len(s.dets))
	for i, det := range s.dets {
		for a := actMask; a <= actLog; a++ {
			d.counters[i][a] = env.Telemetry().DLPFinding(d.route, det.name, a.String())
		}
	}
	d.pool.New = func() any {
		w := &writer{d: d}
		w.found = w.onFound // made once per pooled writer, not per scan
		return w
	}
	return d
}

// Apply removes from the request what would let the response escape the
// scan: Accept-Encoding, so that the upstream answers uncompressed (a
// compressed body cannot be scanned); Range and If-Range, so that it
// answers whole (a value split over two ranges is never seen whole); and
// Upgrade, so that no tunnel replaces the response. It never refuses.
func (d *DLP) Apply(_ context.Context, ex *policy.Exchange) error {
	h := ex.Request.Header
	for _, k := range strippedRequestHeaders {
		delete(h, k)
	}
	return nil
}

// strippedRequestHeaders are the request fields Apply removes.
var strippedRequestHeaders = []string{"Accept-Encoding", "Range", "If-Range", "Upgrade"}

// FilterResponse routes the response through a scanner (see writer). The
// gateway's own responses (denials, errors) pass unscanned.
func (d *DLP) FilterResponse(ex *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	w := d.pool.Get().(*writer)
	w.ex, w.next = ex, next
	w.buf = append(w.buf[:0], ' ') // context byte before the first
	w.start, w.lo = 1, 1
	return w
}

// Window is how many bytes of a response d holds back while streaming.
func (d *DLP) Window() int { return d.window }

type state uint8

const (
	stInit    state = iota // WriteHeader not called yet
	stPass                 // not scanned
	stStream               // scanned; the status is sent; blocks become masks
	stHolding              // scanned; the status is held back
	stBlocked              // refused; the rest is dropped
	stSniff                // labelled binary; the status and first bytes are held
)

// writer scans one response: the policy.ResponseWriter FilterResponse
// returns.
type writer struct {
	d    *DLP
	ex   *policy.Exchange
	next policy.ResponseWriter
	st   state

	status int
	sent   bool // the status went to next
	// dropTrailers: the response's trailers are dropped, those declared
	// in trailers among them.
	dropTrailers bool
	trailers     []string

	// buf[start-1] is the last byte passed on (context for boundary
	// checks); buf[start:] is scanned but held back; matches may start
	// at lo or later.
	buf       []byte
	start, lo int
	held      []byte // in stHolding: scanned bytes not yet sent; in stSniff: the first bytes
	err       error  // the next writer's failure

	// The detectors report matches to found (w.onFound), which reads
	// what it needs from these fields rather than from a closure's
	// captured variables: a closure passed to a detector's scan escapes,
	// and one per scan was most of a small response's allocations.
	found    func(s, e int)
	inHeader bool   // scanHeader's scan: see onFound
	det      int    // index of the detector scanning
	scanned  []byte // the bytes it scans
	end      int    // feed: the furthest end of a match so far
	hdrBlock string // scanHeader: the name of a blocking detector that found a value
	hdrDrop  bool   // scanHeader: the field being scanned goes
}

// release gives w back to the pool. A writer not given back (an aborted
// response) is only garbage.
func (w *writer) release() {
	w.ex, w.next, w.err = nil, nil, nil
	w.st, w.status, w.sent, w.dropTrailers = stInit, 0, false, false
	clear(w.trailers)
	w.trailers = w.trailers[:0]
	if cap(w.buf) > 4*w.d.window+64<<10 {
		w.buf = nil
	}
	if cap(w.held) > 64<<10 {
		w.held = nil
	}
	w.buf, w.held = w.buf[:0], w.held[:0]
	w.d.pool.Put(w)
}

func (w *writer) Header() http.Header { return w.next.Header() }

// WriteHeader decides, from the status and headers, whether and how the
// body is scanned, or refuses a response that cannot be.
func (w *writer) WriteHeader(status int) {
	if w.st != stInit {
		return
	}
	w.status = status
	if w.ex.GatewayResponse {
		w.st = stPass
		w.sendHeader()
		return
	}
	header := w.next.Header()
	// Trailers come after the body was scanned and passed: dropped, now
	// and at End. The declared names are kept for End: the proxy sets
	// their values after the body, and a held status would send them as
	// header fields.
	w.dropTrailers = true
	for _, v := range header["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
			}
		}
	}
	policy.DropTrailers(header)
	if w.scanHeader(header); w.st == stBlocked {
		return
	}
	r := w.ex.Request
	if r.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		w.st = stPass // no body
		w.sendHeader()
		return
	}
	if why := unscannable(status, header); why != "" {
		w.block(CodeUnscannable, "the response could not be inspected", why)
		return
	}
	if !w.d.s.scannableHeader(header) {
		// Binary media, by its label: the status waits for the first
		// bytes to show it (see sniffed).
		w.st = stSniff
		return
	}
	w.scan()
}

// scan starts scanning the body: streamed, or held back when a detector
// blocks.
func (w *writer) scan() {
	if !w.d.blocking {
		w.st = stStream
		w.sendHeader()
		return
	}
	w.st = stHolding
	if n, ok := parseLength(w.next.Header().Get("Content-Length")); ok && n > int64(w.d.s.maxBuffer) {
		w.oversize()
	}
}

// sniffLen is how much of a body labelled as binary media is looked at
// before it passes unscanned: what http.DetectContentType reads.
const sniffLen = 512

// sniffed decides, from the first bytes held in stSniff, whether a body
// labelled as binary media is scanned after all: when it looks like text
// (as a client sniffing it would take it), it is.
func (w *writer) sniffed() {
	b := w.held
	w.held = nil // b is passed on or fed below: not reused meanwhile
	if strings.HasPrefix(http.DetectContentType(b), "text/") {
		w.scan()
		if w.st != stBlocked {
			w.feed(b, false)
		}
	} else {
		w.st = stPass
		w.sendHeader()
		w.pass(b)
	}
	if w.held == nil {
		w.held = b[:0] // else feed holds bytes in a buffer of its own
	}
}

// unscannedFields are the response fields whose values are not scanned:
// framing, dates, validators and trace ids, set by HTTP machinery rather
// than the application, where a run of hex digits would be a false
// finding.
var unscannedFields = map[string]bool{
	"Content-Length": true, "Content-Type": true, "Content-Encoding": true, "Content-Range": true,
	"Date": true, "Last-Modified": true, "Expires": true, "Age": true, "Etag": true,
	"Cache-Control": true, "Vary": true, "Accept-Ranges": true, "Connection": true,
	"X-Request-Id": true, "Traceparent": true, "Tracestate": true,
}

// scanHeader scans the response's field values as a body is scanned, so
// that a value the upstream put in a field (a Location, a cookie, an
// X-Debug) is masked, logged or blocks the response like one in its
// body. The status has not been sent: a blocking finding refuses.
func (w *writer) scanHeader(h http.Header) {
	b := w.buf[:0] // scratch; the body's window starts after
	w.inHeader, w.hdrBlock = true, ""
	for k, vs := range h {
		if unscannedFields[k] {
			continue
		}
		cloned := false
		w.hdrDrop = false
		for i, v := range vs {
			b = append(append(b[:0], ' '), v...) // a context byte first, as in feed
			w.scanned = b
			for di, det := range w.d.s.dets {
				w.det = di
				det.scan(b, 1, len(b), w.found)
			}
			if string(b[1:]) != v {
				if !cloned {
					// Values may share an array with another
					// response's (a policy's precomputed ones).
					vs, cloned = slices.Clone(vs), true
					h[k] = vs
				}
				vs[i] = string(b[1:])
			}
		}
		if w.hdrDrop {
			delete(h, k)
		}
	}
	w.inHeader, w.scanned = false, nil
	w.buf = append(b[:0], ' ') // the context byte before the body's first
	w.start, w.lo = 1, 1
	if w.hdrBlock != "" {
		w.st = stHolding
		w.block(CodeBlocked, "the response held data this route does not send", "detector "+w.hdrBlock+" found a value in a header field")
	}
}

// unscannable says why a response's body cannot be scanned as the client
// will read it, or "". Apply asked for an uncompressed, whole body; an
// upstream that answers otherwise would have its body pass unread.
func unscannable(status int, h http.Header) string {
	if status == http.StatusPartialContent || (h["Content-Range"] != nil && status < 300) {
		return "a partial response"
	}
	for _, v := range h["Content-Type"] {
		mt, _, _ := strings.Cut(v, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "multipart/byteranges") {
			return "a partial response"
		}
	}
	// Content-Encoding: any coding but identity, or more than one
	// (repeated fields and lists alike: which one a client applies
	// is not ours to guess).
	n := 0
	for _, v := range h["Content-Encoding"] {
		for c := range strings.SplitSeq(v, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			if n++; n > 1 || !strings.EqualFold(c, "identity") {
				return "an encoded response (Content-Encoding: " + strings.Join(h["Content-Encoding"], ", ") + ")"
			}
		}
	}
	return ""
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
		w.next.WriteHeader(w.status)
	}
}

// oversize handles a held response that outgrew max_buffer.
func (w *writer) oversize() {
	if w.d.s.oversize == actBlock {
		w.block(CodeUnscannable, "the response is too large to inspect", "larger than max_buffer")
		return
	}
	w.st = stStream
	w.sendHeader()
	if len(w.held) > 0 {
		w.pass(w.held)
		w.held = w.held[:0]
	}
}

// block has the response refused with 502, if its status is still held,
// and drops the rest of the body. Once the status is sent (stream) findings
// are masked instead and block is not called.
func (w *writer) block(code, detail, why string) {
	w.st = stBlocked
	w.held = w.held[:0]
	w.buf = w.buf[:w.start]
	if w.sent {
		return
	}
	w.sent = true
	w.next.Refuse(policy.Deny(http.StatusBadGateway, code, detail).WithErr(errors.New("dlp: " + why)))
}

// Flush passes on a flush unless the response is held.
func (w *writer) Flush() {
	switch w.st {
	case stPass, stStream:
		w.next.Flush()
	}
}

// Refuse passes a refusal on.
func (w *writer) Refuse(d *policy.Denial) {
	w.st, w.sent = stBlocked, true
	w.next.Refuse(d)
}

// Write scans b. It reports len(b) unless the writer it passes bytes on to
// failed, whose error it returns.
func (w *writer) Write(b []byte) (int, error) {
	if w.st == stInit {
		w.WriteHeader(http.StatusOK)
	}
	switch w.st {
	case stPass:
		return w.next.Write(b)
	case stBlocked:
		return len(b), nil
	case stSniff:
		n := min(len(b), sniffLen-len(w.held))
		w.held = append(w.held, b[:n]...)
		if len(w.held) < sniffLen {
			return len(b), nil
		}
		w.sniffed()
		if n == len(b) {
			if w.err != nil {
				return 0, w.err
			}
			return len(b), nil
		}
		if _, err := w.Write(b[n:]); err != nil {
			return 0, err
		}
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

// End scans and passes on what is held back, and the status if it still
// is, then ends the response below and gives the writer back.
func (w *writer) End() {
	if w.dropTrailers {
		// Set since the status (the proxy sets them after the body), and
		// not scanned: before a held status goes out with them.
		h := w.next.Header()
		for _, k := range w.trailers {
			delete(h, k)
		}
		policy.DropTrailers(h)
	}
	if w.st == stSniff {
		w.sniffed()
	}
	switch w.st {
	case stInit:
	case stPass, stBlocked:
	default:
		w.feed(nil, true)
		if w.st == stBlocked {
			break
		}
		w.sendHeader()
		if len(w.held) > 0 {
			w.pass(w.held)
			w.held = w.held[:0]
		}
	}
	next := w.next
	w.release()
	next.End()
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
		w.end, w.scanned = w.lo, buf
		for i, det := range d.s.dets {
			w.det = i
			det.scan(buf, w.lo, e, w.found)
			if w.st == stBlocked {
				w.scanned = nil
				return
			}
		}
		w.lo = max(e, w.end)
		w.scanned = nil
	}
	w.emit(buf[w.start:e])
	w.start = e
}

// onFound handles a match b[s:e] of detector w.det in w.scanned: of a
// field value in scanHeader, of the body in feed.
func (w *writer) onFound(s, e int) {
	det := w.d.s.dets[w.det]
	if w.inHeader {
		w.record(w.det, det, det.action)
		switch det.action {
		case actMask:
			det.mask(w.scanned, s, e)
		case actBlock:
			// The field goes too: the refusal keeps the fields that
			// are not the body's.
			w.hdrBlock, w.hdrDrop = det.name, true
		}
		return
	}
	if w.st == stBlocked {
		return
	}
	w.end = max(w.end, e)
	w.finding(w.det, det, w.scanned, s, e)
}

// finding handles one match of det in buf[s:e].
func (w *writer) finding(i int, det *detector, buf []byte, s, e int) {
	a := det.action
	if a == actBlock && w.st != stHolding {
		// The status is sent: too late to block; mask.
		a = actMask
	}
	w.record(i, det, a)
	switch a {
	case actMask:
		det.mask(buf, s, e)
	case actBlock:
		w.block(CodeBlocked, "the response held data this route does not send", "detector "+det.name+" found a value")
	}
}

// record counts and logs a finding of detector i handled with a.
func (w *writer) record(i int, det *detector, a action) {
	w.d.counters[i][a].Inc()
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
