// Package forwardauth answers the forward-auth subrequests of nginx
// (auth_request), Traefik (forwardAuth), Caddy (forward_auth) and HAProxy
// with the gateway's decisions. The peer describes the original request
// in X-Forwarded-Method, X-Forwarded-Uri (or X-Original-URI) and
// X-Forwarded-Host, with the client's own fields; those are believed only
// from a peer of trusted_proxies, and anyone else is refused. The request
// is decided by gateway.Decide, the dispatch of the gateway's own
// listeners and of the dry run: an allowed one is answered 200 with the
// fields the chain set for the upstream (the identity headers and token,
// for the peer to copy), a refused one with the very response the gateway
// would have sent.
package forwardauth

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/render"
)

// A Decider decides a request as the gateway would: *gateway.Gateway.
type Decider interface {
	Decide(r *http.Request) gateway.Decision
}

// The fields describing the original request.
const (
	ForwardedMethod        = "X-Forwarded-Method"
	ForwardedURI           = "X-Forwarded-Uri"
	OriginalURI            = "X-Original-Uri"
	OriginalMethod         = "X-Original-Method"
	ForwardedHost          = "X-Forwarded-Host"
	ForwardedProto         = "X-Forwarded-Proto"
	ForwardedContentLength = "X-Forwarded-Content-Length"
)

// described are the fields that describe the original request to the
// endpoint and are not the original's own.
var described = []string{ForwardedMethod, ForwardedURI, OriginalURI, OriginalMethod, ForwardedHost,
	ForwardedProto, ForwardedContentLength, "Content-Length", "Transfer-Encoding"}

// Handler is the forward-auth endpoint; every path is the same endpoint.
type Handler struct {
	d       Decider
	trusted []netip.Prefix
	maxBody int64
}

// NewHandler returns the endpoint deciding with d for the peers of
// trusted; maxBody bounds a forwarded body.
func NewHandler(d Decider, trusted []netip.Prefix, maxBody int64) *Handler {
	return &Handler{d: d, trusted: trusted, maxBody: maxBody}
}

// unavailableBody stands for a body the peer did not forward.
type unavailableBody struct{}

func (unavailableBody) Read([]byte) (int, error) { return 0, gateway.ErrBodyUnavailable }
func (unavailableBody) Close() error             { return nil }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !clientip.Trusted(peer.Addr(), h.trusted) {
		// Anyone could describe any request: only the configured peers'
		// descriptions are believed.
		render.Error(w, r, policy.REST, "", http.StatusForbidden, "untrusted_peer", "forward-auth requests are accepted only from trusted_proxies")
		return
	}
	orig, status, code, detail := h.original(w, r)
	if orig == nil {
		render.Error(w, r, policy.REST, "", status, code, detail)
		return
	}
	d := h.d.Decide(orig)
	out := w.Header()
	if d.Allowed {
		for k, v := range d.UpstreamSet {
			out[k] = v
		}
		for k, v := range d.Header {
			out[k] = append(out[k], v...)
		}
		out["X-Request-Id"] = []string{d.RequestID}
		w.WriteHeader(http.StatusOK)
		return
	}
	for k, v := range d.Header {
		switch k {
		case "Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive":
			continue
		}
		out[k] = v
	}
	w.WriteHeader(d.Status)
	_, _ = w.Write(d.Body)
}

// original rebuilds the original request r describes, or says why not.
func (h *Handler) original(w http.ResponseWriter, r *http.Request) (_ *http.Request, status int, code, detail string) {
	method := first(r.Header, ForwardedMethod, OriginalMethod)
	if method == "" {
		method = r.Method // nginx's auth_request keeps the method
	}
	target := first(r.Header, ForwardedURI, OriginalURI)
	if target == "" {
		return nil, http.StatusBadRequest, "invalid_request", "X-Forwarded-Uri or X-Original-URI is required"
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || u.Scheme != "" || u.Host != "" || !gateway.ValidMethod(method) {
		return nil, http.StatusBadRequest, "invalid_request", "the forwarded method or URI is not acceptable"
	}
	host := first(r.Header, ForwardedHost)
	if host == "" {
		host = r.Host
	}
	hdr := r.Header.Clone()
	proto := strings.ToLower(strings.TrimSpace(hdr.Get(ForwardedProto)))
	declared := hdr.Get(ForwardedContentLength)
	for _, k := range described {
		delete(hdr, k)
	}
	orig := (&http.Request{Method: method, URL: u, RequestURI: target, Host: host, Header: hdr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: r.RemoteAddr}).WithContext(r.Context())
	if proto == "https" {
		orig.TLS = &tls.ConnectionState{}
	}
	switch {
	case r.ContentLength > 0 || r.ContentLength < 0:
		// The peer forwarded the body (Traefik's forwardBody).
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, http.StatusRequestEntityTooLarge, "body_too_large", "the forwarded request body exceeds forward_auth.max_body_bytes"
			}
			return nil, http.StatusBadRequest, "invalid_request_body", "the forwarded request body could not be read"
		}
		orig.Body, orig.ContentLength = io.NopCloser(strings.NewReader(string(b))), int64(len(b))
		orig.Header.Set("Content-Length", strconv.Itoa(len(b)))
	case strings.TrimSpace(declared) == "0":
		orig.Body, orig.ContentLength = http.NoBody, 0
	default:
		// The original may have had a body the peer kept: a policy that
		// reads it denies the request (body_unavailable).
		orig.Body, orig.ContentLength = unavailableBody{}, -1
		if n, err := strconv.ParseInt(strings.TrimSpace(declared), 10, 64); err == nil && n > 0 {
			orig.ContentLength = n
		}
	}
	return orig, 0, "", ""
}

func first(h http.Header, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// Server is the forward-auth listener.
type Server struct {
	srv  *http.Server
	addr net.Addr
}

// Start opens the listener c describes and serves g's decisions on it in
// the background, for the peers of trusted. The address, TLS settings
// and peers are read once: a reload changes the routes decided, not
// them.
func Start(g *gateway.Gateway, c *config.ForwardAuth, trusted []netip.Prefix, log *slog.Logger) (*Server, error) {
	var tc *tls.Config
	if c.TLS != nil {
		var err error
		if tc, err = g.ServerTLS("forward_auth.tls", c.TLS); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", c.Address)
	if err != nil {
		return nil, err
	}
	s := &Server{srv: &http.Server{
		Handler:           NewHandler(g, trusted, c.MaxBodyBytes.Bytes()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	if tc != nil {
		s.srv.TLSConfig = tc
		ln = tls.NewListener(ln, tc)
	}
	s.addr = ln.Addr()
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("forward-auth listener stopped", "err", err)
		}
	}()
	log.Info("forward-auth listening", "address", s.addr.String())
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops accepting and waits for the requests under way until
// ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close stops at once.
func (s *Server) Close() { s.srv.Close() }
