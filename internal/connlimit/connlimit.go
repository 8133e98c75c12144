// Package connlimit bounds the connections a listener holds: in all, and
// from one client address. A connection over a bound is closed as soon as
// it is accepted, before any byte is read or a goroutine is started for
// it, so a flood of connections costs the gateway one accept and one
// close each.
//
// The per-address bound applies to the peer address of the TCP
// connection. Peers in the trusted proxies' prefixes are exempt from it
// (all their clients share their address; the total bound still applies):
// the address of a client behind a proxy is only known from a header,
// after the connection is accepted.
package connlimit

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Reasons a connection is refused, for metrics.
const (
	ReasonTotal = "max_connections"
	ReasonPerIP = "max_connections_per_ip"
)

// Options are a listener's bounds.
type Options struct {
	// Max is the most connections open at once; 0: no bound.
	Max int
	// PerIP is the most connections open at once from one peer address;
	// 0: no bound.
	PerIP int
	// Exempt are the prefixes whose peers PerIP does not apply to.
	Exempt []netip.Prefix
	// Refused is called for each connection closed over a bound, with
	// the reason (ReasonTotal, ReasonPerIP). Nil: not told.
	Refused func(reason string)
	// Open is called with +1 and -1 as connections are admitted and
	// closed. Nil: not told.
	Open func(delta int)
}

// Listener is a net.Listener enforcing Options. Safe for concurrent use.
type Listener struct {
	net.Listener
	opt Options

	open  atomic.Int64
	mu    sync.Mutex
	perIP map[netip.Addr]int
}

// Wrap returns ln bounded by opt.
func Wrap(ln net.Listener, opt Options) *Listener {
	return &Listener{Listener: ln, opt: opt, perIP: make(map[netip.Addr]int)}
}

// Open returns the number of connections admitted and not yet closed.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Accept returns the next connection within the bounds, closing those
// over them.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, perIP, reason := l.admit(c)
		if reason != "" {
			// Linger 0: a reset, not a FIN handshake and TIME_WAIT, for
			// connections the client should not have opened.
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			if l.opt.Refused != nil {
				l.opt.Refused(reason)
			}
			continue
		}
		return &conn{Conn: c, l: l, ip: ip, perIP: perIP}, nil
	}
}

// admit counts c in, or returns why it is refused; perIP says whether it
// counts against its address ip.
func (l *Listener) admit(c net.Conn) (ip netip.Addr, perIP bool, reason string) {
	if l.opt.Max > 0 && l.open.Load() >= int64(l.opt.Max) {
		return ip, false, ReasonTotal
	}
	ip, ok := peerAddr(c)
	perIP = ok && l.opt.PerIP > 0 && !exempt(ip, l.opt.Exempt)
	if perIP {
		l.mu.Lock()
		if l.perIP[ip] >= l.opt.PerIP {
			l.mu.Unlock()
			return ip, false, ReasonPerIP
		}
		l.perIP[ip]++
		l.mu.Unlock()
	}
	if n := l.open.Add(1); l.opt.Max > 0 && n > int64(l.opt.Max) {
		// Lost a race with another Accept (http.Server accepts on one
		// goroutine, but Wrap makes no such assumption).
		l.open.Add(-1)
		if perIP {
			l.release(ip)
		}
		return ip, false, ReasonTotal
	}
	if l.opt.Open != nil {
		l.opt.Open(1)
	}
	return ip, perIP, ""
}

// conn is an admitted connection; closing it gives its place back, once.
type conn struct {
	net.Conn
	l      *Listener
	ip     netip.Addr
	perIP  bool
	closed atomic.Bool
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	if !c.closed.Swap(true) {
		c.l.open.Add(-1)
		if c.perIP {
			c.l.release(c.ip)
		}
		if c.l.opt.Open != nil {
			c.l.opt.Open(-1)
		}
	}
	return err
}

// CloseWrite lets net/http half-close a TCP connection before closing it
// (it does so after refusing a request, so the client reads the answer).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps sendfile and splice for responses copied from files or
// sockets.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// Unwrap returns the accepted connection.
func (c *conn) Unwrap() net.Conn { return c.Conn }

func (l *Listener) release(ip netip.Addr) {
	l.mu.Lock()
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

func peerAddr(c net.Conn) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}

func exempt(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
