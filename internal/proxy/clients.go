package proxy

import (
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Clients shares upstream clients among the upstreams of one config load
// (Options.Clients): the upstreams whose client settings are equal get one
// http.Transport, and those that also name the same host and port one
// HTTP/1.1 client, so one connection pool. Ten thousand routes to a few
// backends otherwise hold ten thousand transports and pools (issue 23:
// about 0.8 KiB a route) and open as many connections to each backend.
//
// Settings that differ keep clients apart: the scheme (http, https, h2c),
// connect_timeout, response_header_timeout, idle_conn_timeout,
// max_idle_conns_per_host and every tls field. Settings that are the
// route's own (url path, preserve_host, timeout, websocket,
// request_trailers) stay in its Upstream, as do its error log and the
// fields its policies protect. max_idle_conns_per_host then bounds the
// idle connections to a host of all the routes sharing the pool, as
// http.Transport's does.
//
// A Clients belongs to one load: Close, when the load is retired, closes
// every client's idle connections. It is safe for concurrent use.
type Clients struct {
	mu         sync.Mutex
	dialers    map[time.Duration]*net.Dialer
	transports map[transportKey]*http.Transport
	h1         map[h1Key]*h1Client
	targets    map[string]*url.URL
}

// NewClients returns an empty cache.
func NewClients() *Clients {
	return &Clients{
		dialers:    make(map[time.Duration]*net.Dialer),
		transports: make(map[transportKey]*http.Transport),
		h1:         make(map[h1Key]*h1Client),
		targets:    make(map[string]*url.URL),
	}
}

// transportKey is every setting newTransport reads.
type transportKey struct {
	kind                  transportKind
	connect, header, idle time.Duration
	maxIdle               int
	tls                   config.UpstreamTLS // https only; nil and zero build the same
	baseDir               string             // resolves tls's files
}

type transportKind uint8

const (
	kindHTTP transportKind = iota
	kindHTTPS
	kindH2C
)

// h1Key is every setting newH1Client reads.
type h1Key struct {
	addr                  string
	connect, header, idle time.Duration
	maxIdle               int
}

func transportKeyOf(cfg config.Upstream, target *url.URL, baseDir string) transportKey {
	k := transportKey{
		connect: cfg.ConnectTimeout.Std(),
		header:  cfg.ResponseHeaderTimeout.Std(),
		idle:    cfg.IdleConnTimeout.Std(),
		maxIdle: cfg.MaxIdleConnsPerHost,
	}
	switch {
	case target.Scheme == "https":
		k.kind = kindHTTPS
		if cfg.TLS != nil {
			k.tls = *cfg.TLS
		}
		k.baseDir = baseDir
	case cfg.H2C:
		k.kind = kindH2C
	}
	return k
}

// target returns the parsed URL, one per distinct string: Upstreams only
// read it.
func (c *Clients) target(raw string) (*url.URL, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.targets[raw]; ok {
		return u, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	c.targets[raw] = u
	return u, nil
}

// dialer returns the dialer of a connect timeout, shared.
func (c *Clients) dialer(timeout time.Duration) *net.Dialer {
	d, ok := c.dialers[timeout]
	if !ok {
		d = newDialer(timeout)
		c.dialers[timeout] = d
	}
	return d
}

func (c *Clients) transport(cfg config.Upstream, target *url.URL, baseDir string) (*http.Transport, error) {
	k := transportKeyOf(cfg, target, baseDir)
	c.mu.Lock()
	defer c.mu.Unlock()
	if tr, ok := c.transports[k]; ok {
		return tr, nil
	}
	tr, err := newTransport(cfg, target, baseDir, c.dialer(k.connect))
	if err != nil {
		return nil, err
	}
	c.transports[k] = tr
	return tr, nil
}

func (c *Clients) h1Client(cfg config.Upstream, target *url.URL) *h1Client {
	k := h1Key{
		addr:    h1Addr(target),
		connect: cfg.ConnectTimeout.Std(),
		header:  cfg.ResponseHeaderTimeout.Std(),
		idle:    cfg.IdleConnTimeout.Std(),
		maxIdle: cfg.MaxIdleConnsPerHost,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.h1[k]; ok {
		return h
	}
	h := newH1Client(cfg, target, c.dialer(k.connect))
	c.h1[k] = h
	return h
}

// Close closes the idle connections of every client. Requests in flight
// finish; their connections are closed after them.
func (c *Clients) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tr := range c.transports {
		tr.CloseIdleConnections()
	}
	for _, h := range c.h1 {
		h.close()
	}
}
