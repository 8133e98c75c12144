//go:build unix

package proxy

import (
	"bufio"
	"io"
	"net"
	"os"
	"syscall"
)

// sendWait sends the last bytes of a request and waits for the first of its
// response in one RawConn.Read, which saves the read that Go's poller
// otherwise makes first and that fails with EAGAIN on nearly every request:
// no response can come before its request is out.
//
// The order inside the read is what makes it safe. RawConn.Read forgets any
// readiness the poller saw before it starts (internal/poll's prepareRead),
// so a wait that began after the request had gone out could miss a response
// that came first and sleep until the read deadline. Here the request goes
// out from within the read's callback, after that reset: the response's
// arrival is a readiness edge the wait sees. A spurious wake-up (an edge of
// bytes already read) only costs a read that finds nothing, then the wait
// goes on.
//
// Bytes an upstream sends unasked between the pooled connection's liveness
// check and this read may have their readiness forgotten too: they are
// then read with the answer, or when the read deadline (the connReader's
// poll) ends the wait, and fail the exchange as they did before.
//
// It is used by the goroutine that runs the exchange only, and only when
// all of the request is still in the connection's write buffer (see
// connWriter): bytes written before the reset could be answered before it.
type sendWait struct {
	raw   syscall.RawConn // nil: the connection has no raw access
	bw    *bufio.Writer
	nc    net.Conn
	armed bool // the request waits in bw for the next read

	// The read in progress.
	p    []byte
	n    int
	err  error
	sent bool
	fn   func(fd uintptr) bool // step, kept so that a read allocates nothing
}

// afterSend, when set (by tests), runs between the request going out and
// the wait for its answer, as a slow scheduler may pause there: long
// enough for the answer to arrive and the poller to see it first.
var afterSend func()

func (s *sendWait) init(nc net.Conn, bw *bufio.Writer) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	s.raw, s.bw, s.nc = raw, bw, nc
	s.fn = s.step
}

// arm leaves the request's flush to the next read, and reports whether it
// could; when it could not, the caller flushes.
func (s *sendWait) arm() bool {
	if s.raw == nil {
		return false
	}
	s.armed = true
	return true
}

// read flushes the request and reads the first bytes of its response into
// p. A failure to flush is returned as a flushError.
func (s *sendWait) read(p []byte) (int, error) {
	s.armed = false
	s.p, s.n, s.err, s.sent = p, 0, nil, false
	rerr := s.raw.Read(s.fn)
	n, err := s.n, s.err
	s.p, s.err = nil, nil
	if !s.sent {
		// The read failed before the callback ran (a closed connection, a
		// deadline already past): the request never went out.
		if rerr == nil {
			rerr = net.ErrClosed
		}
		return 0, flushError{rerr}
	}
	if rerr != nil {
		// As net.Conn.Read reports it (RawConn says "raw-read").
		if op, ok := rerr.(*net.OpError); ok && op.Op == "raw-read" {
			op.Op = "read"
		}
		return 0, rerr
	}
	return n, err
}

// step is the RawConn.Read callback: the flush on its first call, then a
// read that waits (returns false) while there is nothing to read.
func (s *sendWait) step(fd uintptr) bool {
	if !s.sent {
		s.sent = true
		if err := s.bw.Flush(); err != nil {
			s.err = flushError{err}
			return true
		}
		if afterSend != nil {
			afterSend()
		}
		return false
	}
	for {
		n, err := syscall.Read(int(fd), s.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			return false
		case err != nil:
			s.err = &net.OpError{Op: "read", Net: s.nc.LocalAddr().Network(), Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(), Err: os.NewSyscallError("read", err)}
		case n == 0:
			s.err = io.EOF
		}
		s.n = max(n, 0)
		return true
	}
}
