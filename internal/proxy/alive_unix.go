//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// probe checks whether an idle pooled connection can carry a request: the
// upstream has not closed it and has sent nothing unasked. It peeks without
// blocking, one system call. A request whose body cannot be sent twice is
// only put on a connection that passed this check, since a stale
// connection's failure could not be retried.
//
// A connection's probe is set up once, when it is dialled: the raw
// connection and the peek's callback are kept, so that the check made at
// every reuse allocates nothing (net.TCPConn.SyscallConn and a callback
// capturing its results cost two allocations a request). It is used by
// the goroutine that took the connection from the pool only.
type probe struct {
	raw  syscall.RawConn // nil: the connection cannot be peeked at
	err  error           // SyscallConn failed: never alive
	peek func(fd uintptr) bool
	ok   bool
	b    [1]byte
}

func (p *probe) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	p.raw, p.err = sc.SyscallConn()
	p.peek = func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Only "nothing to read yet" means alive: a read of 0 bytes is the
		// peer's FIN, bytes are a response to nothing, errors are errors.
		p.ok = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	}
}

// alive reports whether the connection may carry a request.
func (p *probe) alive() bool {
	if p.err != nil {
		return false
	}
	if p.raw == nil {
		return true
	}
	p.ok = false
	err := p.raw.Read(p.peek)
	return err == nil && p.ok
}
