//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// alive reports whether an idle pooled connection can carry a request: the
// upstream has not closed it and has sent nothing unasked. It peeks without
// blocking, one system call. A request whose body cannot be sent twice is
// only put on a connection that passed this check, since a stale
// connection's failure could not be retried.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Only "nothing to read yet" means alive: a read of 0 bytes is the
		// peer's FIN, bytes are a response to nothing, errors are errors.
		ok = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}
