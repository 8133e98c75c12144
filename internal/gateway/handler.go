package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"

	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/render"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// exchange is the pooled per-request state: the policy Exchange, the
// response writer wrapper and fixed buffers, so a request through an empty
// chain allocates nothing of its own.
type exchange struct {
	policy.Exchange
	w       responseWriter
	route   *route
	params  [8]router.Param
	timings [16]policy.Timing

	// decision is what the gateway did: allow, deny, error, no_route.
	decision string
	code     string // stable error code of a denial or gateway error
	denier   string // the policy that denied
	detail   string // what a denial told the client
	cause    error  // internal cause, for the log and the admin API only
	upstream bool   // the response (or its failure) came from the upstream
	// body wraps the request body on its way to the upstream, so that a
	// failure to read it (a malformed chunk, a client too slow for
	// read_timeout) is told apart from the upstream failing. Nil without
	// a body.
	body *trackedBody
	// idle bounds the pauses in the request body (bodyidle.go).
	idle idleBody
	// tracer and span are the request's tracing (trace.go): nil when
	// tracing is off, the only thing the request path checks then.
	tracer *tracing.Tracer
	span   trace.Span
}

// trackedBody remembers the first error, other than io.EOF, of reading the
// client's request body. The transport reads the body on a goroutine of
// its own, hence the atomics.
//
// It is made for one request and never pooled: http.Transport may read a
// request body after RoundTrip returned (its write loop goes on while the
// response is read), so a reader may come after the handler has returned
// and the exchange was recycled. Such a reader holds this request's
// handle, which after release refuses every read without touching the
// client's body, and never the next request's state. A read already under
// way when the request ends may still be in the readers below, which can
// be the exchange's own: release reports it, and the exchange is then
// left to the garbage collector instead of the pool.
type trackedBody struct {
	rc       io.ReadCloser
	err      atomic.Pointer[error]
	released atomic.Bool
	inflight atomic.Int32 // reads under way
}

// errBodyReleased is what a read of a request body gets once the request's
// handler has returned.
var errBodyReleased = errors.New("gateway: read of a request body after its request ended")

func newTrackedBody(rc io.ReadCloser) *trackedBody { return &trackedBody{rc: rc} }

func (b *trackedBody) Read(p []byte) (n int, err error) {
	// Counted before released is looked at: release either sees this
	// read, or this read sees the release (see release).
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	if b.released.Load() {
		return 0, errBodyReleased
	}
	// The proxy reads the body on goroutines of its own (the h1 client's
	// writer, http.Transport's write loop), where a panic of a policy's
	// body reader would end the process: it becomes this body's error.
	defer recoverBodyPanic(b, &n, &err)
	n, err = b.rc.Read(p)
	if err != nil && err != io.EOF {
		first := err // only a failing read pays for the pointer
		b.err.CompareAndSwap(nil, &first)
	}
	return n, err
}

// readErr returns the first error reading the body, or nil (also for a nil
// body).
func (b *trackedBody) readErr() error {
	if b == nil {
		return nil
	}
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (b *trackedBody) Close() error {
	if b.released.Load() {
		return nil
	}
	return b.rc.Close()
}

// release ends the handle's use: later reads fail with errBodyReleased
// without touching anything below. It reports whether no read is under
// way, that is whether the readers below (and the exchange holding them)
// may be reused.
func (b *trackedBody) release() (quiet bool) {
	if b == nil {
		return true
	}
	b.released.Store(true)
	return b.inflight.Load() == 0
}

var exchanges = sync.Pool{New: func() any {
	x := new(exchange)
	x.Params = x.params[:0]
	x.Timings = x.timings[:0]
	x.w.x = x
	x.w.client.w = &x.w
	return x
}}

func getExchange() *exchange { return exchanges.Get().(*exchange) }

func putExchange(x *exchange) {
	if !x.body.release() {
		// A read of the request body is still under way on a goroutine
		// of the proxy's: it may touch this exchange, which is left to
		// the garbage collector rather than reset under it.
		return
	}
	x.Exchange.Reset()
	x.route, x.decision, x.code, x.denier, x.detail, x.cause, x.upstream = nil, "", "", "", "", nil, false
	x.body = nil
	x.idle = idleBody{}
	x.tracer, x.span = nil, nil
	x.w.reset()
	exchanges.Put(x)
}

// ServeHTTP handles one client request: route, run the chain, proxy.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := g.acquire()
	defer rt.release()
	g.metrics.Inflight().Inc()
	defer g.metrics.Inflight().Dec()

	x := getExchange()
	defer putExchange(x)
	// Deferred so that it also runs when a failed response aborts.
	defer x.Exchange.Done()
	g.begin(rt, x, w, r)
	if g.tracer != nil {
		r = g.startTrace(rt, x, r)
	}
	finished := false
	defer func() {
		if finished {
			return // counted and logged; a panic of ours goes on as it is
		}
		if v := recover(); v != nil {
			// ReverseProxy aborts a response the upstream cut short with
			// http.ErrAbortHandler; the request is still logged and
			// counted before net/http drops the connection.
			if x.decision == "" || x.decision == "allow" {
				x.decision, x.code = "error", "response_aborted"
			}
			g.finish(rt, x, r)
			panic(v)
		}
	}()

	g.handleRecovered(rt, x, r)
	// Response filters holding bytes back (dlp) pass them on before the
	// status and byte count are logged.
	x.w.end()
	finished = true
	if status := g.finish(rt, x, r); status == 499 && !x.w.written() {
		// Nothing was written because the request's context ended (the
		// client went away, or a read timeout cut its body): abort, or
		// net/http would answer an empty 200 to what may be a live client.
		panic(http.ErrAbortHandler)
	}
}

// begin takes r in: the steps before dispatch, shared by the handler and
// the dry run so that both decide on the same request. The client's
// fields are cleaned before anything reads or sets one (inbound.go), then
// the client address and request id are settled.
func (g *Gateway) begin(rt *runtime, x *exchange, w http.ResponseWriter, r *http.Request) {
	x.Start = g.now()
	x.wrapIdleBody(w, r)
	x.Request = r
	x.TLS = r.TLS != nil
	sanitizeInbound(r, rt.trusted)
	x.ClientIP = rt.clientIP.Resolve(r.RemoteAddr, r.Header)
	x.RequestID = requestID(r, x, rt)
	x.w.ResponseWriter = w
	// One allocation for both fields, each its own capacity-limited
	// slice, so that a change to one never shows in the other.
	ids := &[2]string{x.RequestID, x.RequestID}
	w.Header()["X-Request-Id"] = ids[0:1:1]
	r.Header["X-Request-Id"] = ids[1:2:2]
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http frames a chunked request by its Transfer-Encoding and
		// drops any Content-Length before we see it. RFC 9112 §6.1 asks to
		// close the connection after such a request, so that bytes a front
		// proxy framed differently (CL.TE, TE.CL) can never be read here
		// as a second request.
		w.Header()["Connection"] = []string{"close"}
	}
}

// finish counts, logs and records the request, and returns its status as
// counted.
func (g *Gateway) finish(rt *runtime, x *exchange, r *http.Request) int {
	status := x.w.client.status
	if status == 0 {
		// Nothing was written (the client went away mid-request): count
		// it as nginx does, as 499.
		status = 499
	}
	metrics := rt.metricsOf(x)
	metrics.Count(status)
	metrics.ObserveDuration(r.Context(), g.now().Sub(x.Start).Seconds())
	g.logAccess(r, x, status)
	g.observe(x, status)
	if x.span != nil {
		tracing.EndServer(x.span, status, x.decision, x.code, x.denier)
	}
	return status
}

// handle answers r as dispatch decides (dispatch.go): the gateway's own
// refusal, a token service, the chain's denial, or the upstream.
func (g *Gateway) handle(rt *runtime, x *exchange, r *http.Request) {
	d := g.dispatch(rt, x, r)
	if x.span != nil {
		x.routed(r)
	}
	if d.verdict != allowed {
		g.answer(rt, x, r, d)
		return
	}
	x.upstream = true
	if r.Body != nil && r.Body != http.NoBody {
		x.body = newTrackedBody(r.Body)
		r.Body = x.body
	}
	if x.span != nil {
		x.proxyTraced(r)
		return
	}
	x.route.upstream.ServeHTTP(&x.w, r)
}

// answer writes the gateway's own answer to a request dispatch did not
// allow: its refusal, a token service, or the chain's denial. The
// handler and Decide (decide.go) answer through it alike.
func (g *Gateway) answer(rt *runtime, x *exchange, r *http.Request, d dispatched) {
	switch d.verdict {
	case refused:
		if d.allow != "" {
			x.w.Header().Set("Allow", d.allow)
		}
		render.Error(&x.w, r, policy.REST, x.RequestID, d.status, x.code, d.detail)
	case authServer:
		if x.span != nil {
			g.serveTraced(x, r, "authorization_server", rt.auth)
			return
		}
		rt.auth.ServeHTTP(&x.w, r)
	case tokenService:
		if x.span != nil {
			g.serveTraced(x, r, "sts", rt.sts)
			return
		}
		rt.sts.ServeHTTP(&x.w, r)
	case denied:
		info := &x.route.info
		if d.denial == nil {
			render.RouteError(&x.w, r, info, x.RequestID, http.StatusInternalServerError, "internal_error", "the gateway could not process this request")
			return
		}
		g.metrics.Denied(info.Name, x.denier, d.denial.Code)
		render.RouteDenial(&x.w, r, info, x.RequestID, d.denial)
	}
}

// runChain runs the policies in order and returns the first refusal (a
// *Denial) or failure, with x.denier naming the policy; nil when all allow.
// Each policy's verdict and time are recorded in x.Timings and its histogram.
func (x *exchange) runChain(ctx context.Context, chain []link) error {
	if len(chain) == 0 {
		return nil
	}
	// One clock read a policy: each one's end is the next one's start.
	t0 := time.Now()
	for i := range chain {
		l := &chain[i]
		var err error
		if x.span != nil {
			err = x.applyTraced(ctx, l)
		} else {
			err = l.policy.Apply(ctx, &x.Exchange)
		}
		t1 := time.Now()
		d := t1.Sub(t0)
		t0 = t1
		l.duration.ObserveContext(ctx, d.Seconds())
		if err == nil {
			x.record(l.name, d, "allow")
			continue
		}
		x.denier = l.name
		if _, ok := policy.AsDenial(err); ok {
			x.record(l.name, d, "deny")
		} else {
			x.record(l.name, d, "error")
		}
		return err
	}
	for i := range chain {
		l := &chain[i]
		if f, ok := l.policy.(policy.Finisher); ok {
			if err := f.FinishRequest(ctx, &x.Exchange); err != nil {
				x.denier = l.name
				return err
			}
		}
	}
	return nil
}

func (x *exchange) record(name string, d time.Duration, verdict string) {
	x.Timings = append(x.Timings, policy.Timing{Policy: name, Duration: d, Verdict: verdict})
}

// proxyError renders a failed upstream exchange for the proxy. w is always
// the exchange's responseWriter, which is how the error finds its request
// without passing state through the context.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	rw, ok := w.(*responseWriter)
	if !ok {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	x := rw.x
	status, code, kind := http.StatusBadGateway, "upstream_unavailable", "other"
	var mbe *http.MaxBytesError
	var nerr net.Error
	bodyErr := x.body.readErr()
	if proxy.Abandoned(err) {
		// The proxy cut the body off itself, after the upstream failed.
		bodyErr = nil
	}
	switch {
	case g.bodyPanicked(x, bodyErr):
		// A policy's body reader panicked (recover.go): the gateway's
		// fault.
		status, code, kind, err = http.StatusInternalServerError, "internal_error", "", bodyErr
	case proxy.ProtocolError(err):
		// A 101 the client did not ask for: nothing more is read from
		// or sent on this client connection.
		status, code, kind = http.StatusBadGateway, "upstream_protocol_error", "protocol"
		rw.Header()["Connection"] = []string{"close"}
	case proxy.Unsendable(err):
		// What the chain left in the request cannot go out as HTTP/1.1:
		// the gateway's fault, not the upstream's nor the client's.
		status, code, kind = http.StatusInternalServerError, "internal_error", ""
	case proxy.UpstreamProtocol(err):
		// A response that breaks HTTP (a status outside 200-599, a
		// header that does not parse): nothing of it was passed on.
		code, kind = "upstream_protocol_error", "protocol"
	case errors.Is(err, policy.ErrBodyTooLarge) || errors.As(err, &mbe) || errors.As(bodyErr, &mbe):
		status, code, kind = http.StatusRequestEntityTooLarge, "body_too_large", ""
	case bodyErr != nil && (r.Context().Err() == nil || errors.As(bodyErr, &nerr) && nerr.Timeout()):
		// (A body read that timed out, by read_timeout or
		// body_idle_timeout, also cancels the request's context: net/http
		// does so on any read error of the connection. It is still the
		// client's slowness, not the client leaving.)
		// The client's body, not the upstream, failed: it is the client's
		// error, and not counted against the upstream.
		err = fmt.Errorf("reading the request body: %w", bodyErr)
		status, code, kind = http.StatusBadRequest, "invalid_request_body", ""
		if errors.As(bodyErr, &nerr) && nerr.Timeout() {
			status, code = http.StatusRequestTimeout, "request_timeout"
		}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads what we write.
		status, code, kind = 499, "client_closed_request", "canceled"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()):
		status, code, kind = http.StatusGatewayTimeout, "upstream_timeout", "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "connect"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		kind = "reset"
	}
	if kind != "" {
		g.metrics.UpstreamError(x.route.info.Name, kind)
	}
	x.decision, x.code, x.cause = "error", code, err
	if status == 499 {
		x.w.client.status = 499
		return
	}
	if rw.wroteHeader {
		// The upstream's response had begun; it cannot be replaced. Abort
		// so the client sees a truncated response, not a complete one.
		panic(http.ErrAbortHandler)
	}
	render.RouteError(rw, r, &x.route.info, x.RequestID, status, code, upstreamDetail(status, code))
}

func upstreamDetail(status int, code string) string {
	if code == "upstream_protocol_error" {
		return "the upstream sent an invalid response"
	}
	switch status {
	case http.StatusBadRequest:
		return "the request body could not be read"
	case http.StatusRequestTimeout:
		return "the request body did not arrive in time"
	case http.StatusGatewayTimeout:
		return "the upstream did not answer in time"
	case http.StatusRequestEntityTooLarge:
		return "request body too large"
	case http.StatusInternalServerError:
		return "the gateway could not process this request"
	}
	return "the upstream is unavailable"
}

// requestID keeps a trusted proxy's X-Request-Id and otherwise makes one.
func requestID(r *http.Request, x *exchange, rt *runtime) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && len(rt.trusted) > 0 && validRequestID(v) {
		if peer, err := netipAddr(r.RemoteAddr); err == nil && inPrefixes(peer, rt.trusted) {
			return v
		}
	}
	var raw [16]byte
	var out [32]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		raw[i], raw[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	hex.Encode(out[:], raw[:])
	return string(out[:])
}

func validRequestID(v string) bool {
	if len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// logAccess writes the access log line of a finished request.
func (g *Gateway) logAccess(r *http.Request, x *exchange, status int) {
	if g.access == nil || !g.access.Enabled(context.Background(), slog.LevelInfo) {
		// Nothing to build the line for (a logger whose handler drops
		// info, as slog.DiscardHandler does).
		return
	}
	routeName := ""
	if x.route != nil {
		routeName = x.route.info.Name
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", x.RequestID),
		slog.String("client_ip", x.ClientIP.String()),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("proto", r.Proto),
		slog.String("route", routeName),
		slog.Int("status", status),
		slog.Bool("upstream", x.upstream && x.cause == nil),
		slog.Int64("bytes_out", x.w.client.bytes),
		slog.Float64("duration_ms", float64(g.now().Sub(x.Start).Microseconds())/1000),
		slog.String("principal", principalName(x.Principal)),
		slog.String("decision", x.decision),
		slog.String("code", x.code),
		slog.String("policy", x.denier),
	}
	n := len(attrs)
	var cause slog.Attr
	if x.cause != nil {
		cause = slog.String("cause", x.cause.Error())
	}
	if x.span != nil {
		// Tracing on: the ids tie the line to the trace.
		all := attrs[:n:n]
		if x.cause != nil {
			all = append(all, cause)
		}
		traceID, spanID := tracing.IDs(x.span)
		all = append(all, slog.String("trace_id", traceID), slog.String("span_id", spanID))
		g.access.LogAttrs(context.Background(), slog.LevelInfo, "request", all...)
		return
	}
	if x.cause != nil {
		g.access.LogAttrs(context.Background(), slog.LevelInfo, "request", append(attrs[:n:n], cause)...)
		return
	}
	g.access.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:]...)
}

func principalName(p *policy.Principal) string {
	if p == nil {
		return ""
	}
	return p.Subject
}
