package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1Client sends requests to one plain-HTTP upstream over a pool of
// persistent HTTP/1.1 connections, on the calling goroutine.
//
// It exists for speed: http.Transport runs a read and a write goroutine per
// connection and hands every request and response between them and the
// caller over channels. Without them, and without ReverseProxy's request
// clone and Request.Write, a proxied request takes about a quarter less
// CPU under load (docs/performance.md). Responses are still parsed by
// http.ReadResponse; requests are written by outbound.write (forward.go),
// which checks every field before a byte goes out.
//
// A request with a body is written by a goroutine of its own while the
// response is read, so that an upstream may answer (413, 401) before it has
// read the whole body, as it may with http.Transport.
type h1Client struct {
	addr          string
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration // after the request is written; 0: none
	idleTimeout   time.Duration // 0: idle connections are kept until closed
	maxIdle       int
	maxHeader     int64         // bytes of response head (1xx heads included)
	poll          time.Duration // see connReader

	mu     sync.Mutex
	idle   []*h1Conn // the most recently used last
	closed bool
	sweep  *time.Timer
}

// h1Conn is one connection to the upstream.
type h1Conn struct {
	nc     net.Conn
	cr     connReader
	cw     connWriter
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool // it served a request before this one
	probe  probe
}

// connReader reads the connection for the exchange in progress. It bounds
// the response head (http.ReadResponse has no limit of its own), and it
// ends a read when the exchange's context is done.
//
// The context is watched by polling rather than with context.AfterFunc:
// a read deadline at most poll ahead (and never past hard, the exchange's
// own deadline) wakes a blocked read, which then looks at the context and
// goes on or gives up. A request that ends within poll, nearly all of
// them, pays one deadline update, where AfterFunc cost a registration
// with the request's context, a done channel and a map, a tenth of a
// proxied request's allocations. A client that went away is noticed
// within poll instead of at once.
type connReader struct {
	nc        net.Conn
	remaining int64 // bytes the head may still read; <0: unlimited
	ctx       context.Context
	poll      time.Duration
	hard      atomic.Int64 // the exchange's deadline, unix ns; 0: none
	// sw, when armed, sends the request at the first read (sendWait).
	sw sendWait
}

// connWriter is the connection under the request's write buffer. It notes
// that bytes went out, which tells whether the whole request is still in the
// buffer and its flush can be left to the first read of the response
// (sendWait).
type connWriter struct {
	nc    net.Conn
	wrote bool
}

func (w *connWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.nc.Write(p)
}

// flushError is the failure to send the buffered request, met by the read
// that was to send it (sendWait).
type flushError struct{ err error }

func (e flushError) Error() string { return e.err.Error() }
func (e flushError) Unwrap() error { return e.err }

var errHeadTooLarge = errors.New("upstream response head too large")

func (r *connReader) Read(p []byte) (int, error) {
	if r.remaining == 0 {
		return 0, errHeadTooLarge
	}
	if r.remaining > 0 && int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	for {
		var n int
		var err error
		if r.sw.armed {
			n, err = r.sw.read(p)
			if _, ok := err.(flushError); ok {
				// No deadline of a read: the request did not go out.
				return 0, err
			}
		} else {
			n, err = r.nc.Read(p)
		}
		if r.remaining > 0 {
			r.remaining -= int64(n)
		}
		if n > 0 || err == nil || r.ctx == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if cerr := r.ctx.Err(); cerr != nil {
			return 0, cerr
		}
		now := time.Now()
		if h := r.hard.Load(); h != 0 && now.UnixNano() >= h {
			return 0, err
		}
		_ = r.nc.SetReadDeadline(r.next(now))
	}
}

// next is the read deadline to set at now: poll ahead, or hard if sooner.
func (r *connReader) next(now time.Time) time.Time {
	d := now.Add(r.poll)
	if h := r.hard.Load(); h != 0 && h < d.UnixNano() {
		return time.Unix(0, h)
	}
	return d
}

// begin starts an exchange on the connection: ctx watched, hard its
// deadline (0: none), and both deadlines set, the write one for a request
// that is written at once.
func (r *connReader) begin(ctx context.Context, hard int64, now time.Time) {
	r.ctx = ctx
	r.hard.Store(hard)
	_ = r.nc.SetDeadline(r.next(now))
}

// maxRetries bounds how many stale pooled connections one request may meet
// before it fails.
const maxRetries = 4

// aLongTimeAgo is a deadline that has passed: setting it interrupts
// blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// pollInterval is the longest a read waits before it looks at the
// exchange's context (connReader).
const pollInterval = time.Second

// get returns an idle connection that is still open and has received
// nothing while idle, or a new one. Bytes that arrive on an idle connection
// answer no request of ours: a connection carrying them must never answer
// the next one (response queue poisoning), so it is closed, as
// http.Transport's read loop closes it.
func (c *h1Client) get(ctx context.Context, hard int64) (*h1Conn, error) {
	now := time.Now()
	c.mu.Lock()
	for n := len(c.idle); n > 0; n = len(c.idle) {
		pc := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		if c.idleTimeout > 0 && now.Sub(pc.idleAt) > c.idleTimeout {
			c.mu.Unlock()
			pc.nc.Close()
			c.mu.Lock()
			continue
		}
		c.mu.Unlock()
		// Before the liveness check, which a past deadline would fail.
		pc.cr.begin(ctx, hard, now)
		if !pc.probe.alive() {
			pc.nc.Close()
			c.mu.Lock()
			continue
		}
		return pc, nil
	}
	c.mu.Unlock()
	nc, err := c.dial(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	pc := &h1Conn{nc: nc}
	pc.probe.init(nc)
	pc.cr.nc, pc.cr.remaining, pc.cr.poll = nc, -1, c.poll
	pc.cr.begin(ctx, hard, now)
	pc.br = bufio.NewReaderSize(&pc.cr, 4<<10)
	pc.cw.nc = nc
	pc.bw = bufio.NewWriterSize(&pc.cw, 4<<10)
	pc.cr.sw.init(nc, pc.bw)
	return pc, nil
}

// put returns a connection whose exchange ended cleanly to the pool.
func (c *h1Client) put(pc *h1Conn) {
	if pc.br.Buffered() > 0 {
		// Bytes the upstream sent beyond its response: it is out of step
		// with us, and whatever it sent must not answer the next request.
		pc.nc.Close()
		return
	}
	pc.reused = true
	pc.idleAt = time.Now()
	pc.cr.ctx = nil // not to keep the request's context alive
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.maxIdle {
		c.mu.Unlock()
		pc.nc.Close()
		return
	}
	c.idle = append(c.idle, pc)
	if c.idleTimeout > 0 && c.sweep == nil {
		c.sweep = time.AfterFunc(c.idleTimeout, c.sweepIdle)
	}
	c.mu.Unlock()
}

// sweepIdle closes connections idle for longer than idleTimeout, so that a
// quiet gateway does not hold connections the upstream has long given up.
func (c *h1Client) sweepIdle() {
	now := time.Now()
	var stale []*h1Conn
	c.mu.Lock()
	keep := c.idle[:0]
	for _, pc := range c.idle {
		if now.Sub(pc.idleAt) > c.idleTimeout {
			stale = append(stale, pc)
		} else {
			keep = append(keep, pc)
		}
	}
	clear(c.idle[len(keep):])
	c.idle = keep
	c.sweep = nil
	if len(c.idle) > 0 && !c.closed {
		c.sweep = time.AfterFunc(c.idleTimeout, c.sweepIdle)
	}
	c.mu.Unlock()
	for _, pc := range stale {
		pc.nc.Close()
	}
}

// close closes the idle connections; connections in use are closed when
// their exchange ends.
func (c *h1Client) close() {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	if c.sweep != nil {
		c.sweep.Stop()
		c.sweep = nil
	}
	c.mu.Unlock()
	for _, pc := range idle {
		pc.nc.Close()
	}
}

// h1Exchange is one request on one connection, from the request written to
// the response body read.
type h1Exchange struct {
	c   *h1Client
	pc  *h1Conn
	res *http.Response
	// ctxDeadline is the context's deadline, unix ns; 0: none.
	ctxDeadline int64

	// With a request body only: the goroutine writing the request. The
	// caller's handler must not return before it ends, since it reads the
	// client's request body.
	wrote    chan error          // the writer's result, once
	out      outbound            // what the writer sends
	w        http.ResponseWriter // the client's, to abandon its body
	mu       sync.Mutex
	headDone bool // the response head was read
	aborted  bool // the exchange was given up
	// abandoned: the client's body was cut off by a read deadline of
	// ours; its read error is not the client's fault.
	abandoned bool
	cause     error // the writer's failure, when it ended the exchange
	// joined: the writer's result was received (werr), so that joining is
	// idempotent. Handler goroutine only.
	joined bool
	werr   error
	// ended: finish or fail ran; the connection is closed or pooled and
	// the writer, if any, has ended. Handler goroutine only.
	ended bool
}

// errNothingReceived wraps failures that happened before any byte of a
// response arrived. On a reused connection that is the sign of an upstream
// that closed it while it was idle, and a request that may be sent twice is
// sent again on another.
type errNothingReceived struct{ err error }

func (e errNothingReceived) Error() string { return e.err.Error() }
func (e errNothingReceived) Unwrap() error { return e.err }

// stale reports an error of a connection the upstream had closed: its FIN
// read as EOF, or its RST.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// bodyError is the failure to read or send the request body that ended an
// exchange.
type bodyError struct{ err error }

func (e bodyError) Error() string { return e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

// abandonedError marks the failure of an exchange that had to cut off the
// client's request body (see Abandoned).
type abandonedError struct{ err error }

func (e abandonedError) Error() string { return e.err.Error() }
func (e abandonedError) Unwrap() error { return e.err }

// Abandoned reports that err, given to the ErrorHandler, ended an exchange
// whose request body the proxy stopped reading with a read deadline on the
// client's connection, so that the handler would not wait on a client that
// sends nothing. A read error of that body is then the proxy's doing, not
// the client's.
func Abandoned(err error) bool {
	var a abandonedError
	return errors.As(err, &a)
}

// roundTrip sends out and reads the response head, passing 1xx responses
// other than 100 Continue on to w. On success the caller reads ex.res.Body
// and then calls ex.finish.
//
// A request that may be sent twice (out.replayable) and fails on a reused
// connection before any response byte came, the way a connection the
// upstream closed just as it was taken from the pool fails, is sent again
// on another connection, as http.Transport does.
func (c *h1Client) roundTrip(ctx context.Context, out *outbound, w http.ResponseWriter) (*h1Exchange, error) {
	replayable := out.replayable()
	var ctxDeadline int64
	if d, ok := ctx.Deadline(); ok {
		ctxDeadline = d.UnixNano()
	}
	for attempt := 0; ; attempt++ {
		pc, err := c.get(ctx, ctxDeadline)
		if err != nil {
			return nil, err
		}
		ex := &h1Exchange{c: c, pc: pc, ctxDeadline: ctxDeadline}
		err = ex.send(ctx, out, w)
		if err == nil {
			return ex, nil
		}
		var be bodyError
		if errors.As(err, &be) {
			// The client's body failed, whatever became of the context
			// after.
			return nil, be.err
		}
		var nr errNothingReceived
		if errors.As(err, &nr) {
			if replayable && pc.reused && stale(nr.err) && attempt < maxRetries && ctx.Err() == nil {
				continue
			}
			err = nr.err
		}
		if ctx.Err() != nil {
			// A deadline of ours may have surfaced first; what ended the
			// exchange is the context.
			err = ctx.Err()
		}
		if ex.abandoned {
			err = abandonedError{err}
		}
		return nil, err
	}
}

// send runs the exchange up to the response head. On error the connection
// is closed, the writer has ended and the exchange is over. So it is when
// the head's handling panics (a 1xx the client's writer refuses): the
// writer reads the client's request body, which the gateway recycles once
// the handler returns, so it is joined before the panic goes on.
func (ex *h1Exchange) send(ctx context.Context, out *outbound, w http.ResponseWriter) error {
	panicked := true
	defer func() {
		if panicked {
			ex.fail()
		}
	}()
	err := ex.sendHead(ctx, out, w)
	panicked = false
	return err
}

func (ex *h1Exchange) sendHead(ctx context.Context, out *outbound, w http.ResponseWriter) error {
	c, pc := ex.c, ex.pc
	if out.body == nil || out.inMemory() {
		// Nothing to wait for: the request is written at once, and the
		// connection's buffers take it whole (inMemory bounds the body),
		// so the write cannot block on an upstream that answers without
		// reading. When all of it is in the buffer, the first read of the
		// response sends it (sendWait), which saves a system call.
		pc.cw.wrote = false
		err := out.write(pc.bw)
		if err == nil && (pc.cw.wrote || !pc.cr.sw.arm()) {
			err = pc.bw.Flush()
		}
		if err != nil {
			ex.abort()
			var ih errInvalidHeader
			if errors.As(err, &ih) || out.body != nil {
				return err
			}
			// Nothing of ours reached the upstream, or it closed the
			// connection on us: either way no response byte came.
			return errNothingReceived{err}
		}
		// The read deadline set now is at most poll ahead, which is no
		// more than the head's timeout: the reads look at the new hard
		// deadline in time.
		ex.headTimer(time.Now())
	} else {
		// A body from the client may take its time: no write deadline.
		// The head's timer starts once it is sent (write).
		_ = pc.nc.SetWriteDeadline(time.Time{})
		ex.w = w
		ex.wrote = make(chan error, 1)
		// The writer's own copy: the caller's stays on its stack, one
		// allocation fewer for the requests without a body.
		ex.out = *out
		go ex.write(&ex.out)
	}

	pc.cr.remaining = c.maxHeader
	for n1xx := 0; ; n1xx++ {
		if _, err := pc.br.Peek(1); err != nil {
			if fe, ok := err.(flushError); ok {
				// The request did not go out: as a failed flush above.
				ex.fail()
				if out.body != nil {
					return fe.err
				}
				return errNothingReceived{fe.Unwrap()}
			}
			if cause := ex.fail(); cause != nil {
				return cause
			}
			if n1xx == 0 {
				return errNothingReceived{err}
			}
			return malformedResponse(err)
		}
		res, err := http.ReadResponse(pc.br, out.in)
		if err != nil {
			if cause := ex.fail(); cause != nil {
				return cause
			}
			return fmt.Errorf("reading the upstream's response: %w", malformedResponse(err))
		}
		code := res.StatusCode
		if code < 100 || code >= 200 || code == http.StatusSwitchingProtocols {
			err := checkFinalStatus(code)
			if err == nil {
				err = checkHeader(res.Header)
			}
			if err != nil {
				if cause := ex.fail(); cause != nil {
					return cause
				}
				return err
			}
			ex.res = res
			break
		}
		if err := checkInformational(n1xx); err != nil {
			if cause := ex.fail(); cause != nil {
				return cause
			}
			return err
		}
		if code != http.StatusContinue {
			informational(w, code, res.Header)
		}
	}
	pc.cr.remaining = -1

	ex.mu.Lock()
	ex.headDone = true
	// The body is read under the context's deadline only. The read
	// deadline in force is left as it is: a read that meets it takes the
	// next one from the new hard deadline, and most bodies are in the
	// buffer already.
	pc.cr.hard.Store(ex.ctxDeadline)
	ex.mu.Unlock()
	if ex.res.StatusCode == http.StatusSwitchingProtocols {
		ex.fail()
		// No upgrade goes out on this client (WebSocket takes the
		// ReverseProxy path): any 101 is one the client did not ask for.
		return protocolError{"upstream switched protocols (101) unasked"}
	}
	return nil
}

// write writes the request and its body, on a goroutine of its own.
func (ex *h1Exchange) write(out *outbound) {
	pc := ex.pc
	err := out.write(pc.bw)
	if err == nil {
		err = pc.bw.Flush()
	}
	if out.body.err != nil {
		err = out.body.err
	}
	ex.mu.Lock()
	if !ex.headDone && !ex.aborted {
		var op *net.OpError
		switch {
		case err != nil && errors.As(err, &op) && op.Op == "write":
			// The upstream closed or reset the connection while the
			// request was still going out, as an upstream does that
			// answers (413, 401) without reading a body. Its response
			// may be in the receive buffer: the reader, whose read now
			// ends too, takes it or the connection's error.
		case err != nil:
			// The body could not be read (or the request not written):
			// the response can no longer come, and this is why.
			ex.cause = err
			_ = pc.nc.Close()
		default:
			now := time.Now()
			ex.headTimer(now)
			_ = pc.nc.SetReadDeadline(pc.cr.next(now))
		}
	}
	ex.mu.Unlock()
	ex.wrote <- err
}

// fail gives the exchange up: it closes the connection, ends the writer, if
// any, and returns the writer's error (a bodyError) when that is what ended
// the exchange.
func (ex *h1Exchange) fail() error {
	ex.ended = true
	ex.mu.Lock()
	ex.aborted = true
	ex.mu.Unlock()
	ex.abort()
	if ex.wrote == nil {
		return nil
	}
	// A write blocked on the connection fails now that it is closed. A
	// read of the client's body may wait for a client that sends nothing:
	// past the read deadline set here, it fails at once. The handler must
	// not return before the writer ends, as the writer reads its request.
	if !ex.joined {
		select {
		case ex.werr = <-ex.wrote:
		case <-time.After(writeWait):
			ex.abandoned = true
			_ = http.NewResponseController(ex.w).SetReadDeadline(aLongTimeAgo)
			ex.werr = <-ex.wrote
		}
		ex.joined = true
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.cause != nil {
		return bodyError{ex.cause}
	}
	return nil
}

// headTimer starts the response head's timeout at now, the request sent:
// the exchange's hard deadline becomes the sooner of it and the context's.
func (ex *h1Exchange) headTimer(now time.Time) {
	t := ex.c.headerTimeout
	if t <= 0 {
		return
	}
	h := now.Add(t).UnixNano()
	if ex.ctxDeadline != 0 && ex.ctxDeadline < h {
		h = ex.ctxDeadline
	}
	ex.pc.cr.hard.Store(h)
}

// abort closes the connection, which ends the exchange and any write in
// progress on it.
func (ex *h1Exchange) abort() {
	_ = ex.pc.nc.Close()
}

// writeWait is how long a finished response waits for the rest of its
// request body to be sent before the connection is given up (as
// http.Transport's maxWriteWaitBeforeConnReuse).
const writeWait = 50 * time.Millisecond

// finish ends the exchange after the response body was read. ok reports
// that it was read to its end and passed on; only then, and when the whole
// request was sent, may the connection serve another request.
func (ex *h1Exchange) finish(ok bool) {
	ex.ended = true
	reusable := ok && !ex.res.Close
	if ex.wrote != nil {
		done, werr := ex.waitWrite(reusable)
		if !done {
			ex.fail()
			return
		}
		if werr != nil {
			reusable = false
		}
	}
	if !reusable {
		_ = ex.pc.nc.Close()
		return
	}
	ex.c.put(ex.pc)
}

// waitWrite reports whether the writer has ended, and its error; with wait,
// it gives the writer writeWait to end.
func (ex *h1Exchange) waitWrite(wait bool) (bool, error) {
	if ex.joined {
		return true, ex.werr
	}
	select {
	case ex.werr = <-ex.wrote:
		ex.joined = true
		return true, ex.werr
	default:
	}
	if !wait {
		return false, nil
	}
	t := time.NewTimer(writeWait)
	defer t.Stop()
	select {
	case ex.werr = <-ex.wrote:
		ex.joined = true
		return true, ex.werr
	case <-t.C:
		return false, nil
	}
}
