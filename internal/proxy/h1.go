package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// h1Client sends requests to one plain-HTTP upstream over a pool of
// persistent HTTP/1.1 connections, on the calling goroutine.
//
// It exists for speed: http.Transport runs a read and a write goroutine per
// connection and hands every request and response between them and the
// caller over channels. On the proxy's hot path those hand-offs, and the
// allocations around them, cost about a third of the CPU of a proxied
// request (docs/performance.md). The wire format stays the standard
// library's: requests are written by http.Request.Write and responses are
// parsed by http.ReadResponse; only the connections are managed here.
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
	maxHeader     int64 // bytes of response head (1xx heads included)

	mu     sync.Mutex
	idle   []*h1Conn // the most recently used last
	closed bool
	sweep  *time.Timer
}

// h1Conn is one connection to the upstream.
type h1Conn struct {
	nc     net.Conn
	lr     limitedReader
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool // it served a request before this one
	// deadline: a read deadline may be set (the response head's timeout
	// of the last exchange).
	deadline bool
}

// bodyBuffered reports that the whole of res's body is already in br, so
// that reading it makes no more reads of the connection.
func bodyBuffered(res *http.Response, br *bufio.Reader) bool {
	return res.ContentLength == 0 || (res.ContentLength > 0 && len(res.TransferEncoding) == 0 && int64(br.Buffered()) >= res.ContentLength)
}

// limitedReader bounds what the response head may read off the connection:
// http.ReadResponse has no limit of its own.
type limitedReader struct {
	r         io.Reader
	remaining int64 // <0: unlimited
}

var errHeadTooLarge = errors.New("upstream response head too large")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.remaining < 0 {
		return l.r.Read(p)
	}
	if l.remaining == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.remaining {
		p = p[:l.remaining]
	}
	n, err := l.r.Read(p)
	l.remaining -= int64(n)
	return n, err
}

// maxRetries bounds how many stale pooled connections one request may meet
// before it fails.
const maxRetries = 4

// aLongTimeAgo is a deadline that has passed: setting it interrupts
// blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// get returns an idle connection that is still open and has received
// nothing while idle, or a new one. Bytes that arrive on an idle connection
// answer no request of ours: a connection carrying them must never answer
// the next one (response queue poisoning), so it is closed, as
// http.Transport's read loop closes it.
func (c *h1Client) get(ctx context.Context) (*h1Conn, error) {
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
		if pc.deadline && now.After(pc.idleAt.Add(c.headerTimeout)) {
			// The last exchange's deadline has passed: it would fail the
			// liveness check.
			_ = pc.nc.SetReadDeadline(time.Time{})
			pc.deadline = false
		}
		if !alive(pc.nc) {
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
	pc.lr = limitedReader{r: nc, remaining: -1}
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	pc.bw = bufio.NewWriterSize(nc, 4<<10)
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
	c    *h1Client
	pc   *h1Conn
	res  *http.Response
	stop func() bool // unregisters the context's interrupt

	// With a request body only: the goroutine writing the request. The
	// caller's handler must not return before it ends, since it reads the
	// client's request body.
	wrote    chan error          // the writer's result, once
	w        http.ResponseWriter // the client's, to abandon its body
	mu       sync.Mutex
	headDone bool // the response head was read
	aborted  bool // the exchange was given up
	// abandoned: the client's body was cut off by a read deadline of
	// ours; its read error is not the client's fault.
	abandoned bool
	cause     error // the writer's failure, when it ended the exchange
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
	for attempt := 0; ; attempt++ {
		pc, err := c.get(ctx)
		if err != nil {
			return nil, err
		}
		ex := &h1Exchange{c: c, pc: pc}
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
			// The deadline set to interrupt us surfaces as a timeout; what
			// ended the exchange is the context.
			err = ctx.Err()
		}
		if ex.abandoned {
			err = abandonedError{err}
		}
		return nil, err
	}
}

// send runs the exchange up to the response head. On error the connection
// is closed, the writer has ended and the exchange is over.
func (ex *h1Exchange) send(ctx context.Context, out *outbound, w http.ResponseWriter) error {
	c, pc := ex.c, ex.pc
	ex.stop = context.AfterFunc(ctx, func() { _ = pc.nc.SetDeadline(aLongTimeAgo) })
	if out.body == nil || out.inMemory() {
		// Nothing to wait for: the request is written at once, and the
		// connection's buffers take it whole (inMemory bounds the body),
		// so the write cannot block on an upstream that answers without
		// reading.
		err := out.write(pc.bw)
		if err == nil {
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
		if c.headerTimeout > 0 {
			_ = pc.nc.SetReadDeadline(time.Now().Add(c.headerTimeout))
			pc.deadline = true
		}
	} else {
		if pc.deadline {
			// The last exchange's: this one's starts once the body is
			// sent, which may take longer.
			_ = pc.nc.SetReadDeadline(time.Time{})
			pc.deadline = false
		}
		ex.w = w
		ex.wrote = make(chan error, 1)
		go ex.write(out)
	}

	pc.lr.remaining = c.maxHeader
	for n1xx := 0; ; n1xx++ {
		if _, err := pc.br.Peek(1); err != nil {
			if cause := ex.fail(); cause != nil {
				return cause
			}
			if n1xx == 0 {
				return errNothingReceived{err}
			}
			return err
		}
		res, err := http.ReadResponse(pc.br, out.in)
		if err != nil {
			if cause := ex.fail(); cause != nil {
				return cause
			}
			return fmt.Errorf("reading the upstream's response: %w", err)
		}
		code := res.StatusCode
		if code < 100 || code >= 200 || code == http.StatusSwitchingProtocols {
			ex.res = res
			break
		}
		if n1xx >= 5 {
			ex.fail()
			return errors.New("upstream sent too many informational responses")
		}
		if code != http.StatusContinue {
			informational(w, code, res.Header)
		}
	}
	pc.lr.remaining = -1

	ex.mu.Lock()
	ex.headDone = true
	if pc.deadline || ex.wrote != nil {
		if ex.wrote != nil || !bodyBuffered(ex.res, pc.br) {
			// The body is read under the exchange's context, not the
			// head's timeout. A body already in the buffer needs no
			// more reads: the next exchange sets its own deadline,
			// which saves a timer update a request.
			_ = pc.nc.SetReadDeadline(time.Time{})
			pc.deadline = false
		}
	}
	ex.mu.Unlock()
	// Cleared after the context's interrupt may have set it: look again.
	if err := ctx.Err(); err != nil {
		ex.fail()
		return err
	}
	if ex.res.StatusCode == http.StatusSwitchingProtocols {
		ex.fail()
		return errors.New("upstream switched protocols unasked")
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
		if err != nil {
			// The body could not be read or sent: the response can no
			// longer come, and this is why.
			ex.cause = err
			_ = pc.nc.Close()
		} else if t := ex.c.headerTimeout; t > 0 {
			_ = pc.nc.SetReadDeadline(time.Now().Add(t))
		}
	}
	ex.mu.Unlock()
	ex.wrote <- err
}

// fail gives the exchange up: it closes the connection, ends the writer, if
// any, and returns the writer's error (a bodyError) when that is what ended
// the exchange.
func (ex *h1Exchange) fail() error {
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
	select {
	case <-ex.wrote:
	case <-time.After(writeWait):
		ex.abandoned = true
		_ = http.NewResponseController(ex.w).SetReadDeadline(aLongTimeAgo)
		<-ex.wrote
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.cause != nil {
		return bodyError{ex.cause}
	}
	return nil
}

// abort closes the connection, which ends the exchange and any write in
// progress on it.
func (ex *h1Exchange) abort() {
	ex.stop()
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
	if !ex.stop() {
		// The context's interrupt ran (or is running): the connection's
		// deadline is not ours to clear.
		reusable = false
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
	select {
	case err := <-ex.wrote:
		return true, err
	default:
	}
	if !wait {
		return false, nil
	}
	t := time.NewTimer(writeWait)
	defer t.Stop()
	select {
	case err := <-ex.wrote:
		return true, err
	case <-t.C:
		return false, nil
	}
}
