// Package extauthz answers Envoy's external authorization requests
// (ext_authz) with the gateway's decisions: the gRPC service
// envoy.service.auth.v3.Authorization and the HTTP flavour (Envoy's
// http_service). Each request is rebuilt as the original client request
// and decided by gateway.Decide, the dispatch the gateway's own
// listeners and the dry run use; an allowed one is answered OK with the
// request fields the chain set (identity headers, the signed identity
// JWT) and removed (identity fields the client sent itself), a refused
// one with the very status, fields and body the gateway would have sent.
package extauthz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/internal/gateway"
)

// A Decider decides a request as the gateway would: *gateway.Gateway.
type Decider interface {
	Decide(r *http.Request) gateway.Decision
}

// partialBody is the field Envoy adds to the request it describes when it
// forwards the body (with_request_body): "false" for the whole body,
// "true" for a body cut at max_request_bytes. Envoy drops a client's own.
const partialBody = "x-envoy-auth-partial-body"

// unavailableBody stands for a body the peer did not forward: a policy
// that reads it fails the decision (403 body_unavailable).
type unavailableBody struct{}

func (unavailableBody) Read([]byte) (int, error) { return 0, gateway.ErrBodyUnavailable }
func (unavailableBody) Close() error             { return nil }

// bodyFacts is what a peer tells of the original request's body.
type bodyFacts struct {
	// sent: the peer forwarded the body (possibly empty), body holds it.
	sent bool
	body []byte
	// partial: the body was cut short (Envoy's allow_partial_message).
	partial bool
	// alwaysSent: the peer forwards every body there is (Envoy's
	// with_request_body, as ext_authz.with_request_body says), so one
	// not sent was none.
	alwaysSent bool
	// framingUnknown: the fields of the request the peer sent do not
	// tell the original's framing (Envoy's http_service replaces
	// Content-Length with its own).
	framingUnknown bool
}

// requestBody sets r's body from what the peer told: the forwarded body,
// none when the original had none, or a body that fails to read
// (ErrBodyUnavailable) when there was one the peer kept. A request is
// known to have had no body when its own framing says so: Content-Length
// 0, or, over HTTP/1, neither Content-Length nor Transfer-Encoding (an
// HTTP/2 request has a body without announcing its length).
func requestBody(r *http.Request, f bodyFacts) {
	switch {
	case f.partial:
		r.Body, r.ContentLength = unavailableBody{}, -1
		return
	case f.sent && len(f.body) > 0:
		b := f.body
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(string(b))), int64(len(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil }
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		r.Header.Del("Transfer-Encoding")
		return
	case f.sent || f.alwaysSent:
		r.Body, r.ContentLength = http.NoBody, 0
		return
	case f.framingUnknown:
		r.Body, r.ContentLength = unavailableBody{}, -1
		return
	}
	cl, hasCL := r.Header["Content-Length"]
	_, hasTE := r.Header["Transfer-Encoding"]
	switch {
	case hasCL && len(cl) == 1 && strings.TrimSpace(cl[0]) == "0" && !hasTE:
		r.Body, r.ContentLength = http.NoBody, 0
	case !hasCL && !hasTE && r.ProtoMajor == 1:
		r.Body, r.ContentLength = http.NoBody, 0
	default:
		r.Body, r.ContentLength = unavailableBody{}, -1
		if n, err := strconv.ParseInt(strings.TrimSpace(strings.Join(cl, "")), 10, 64); err == nil && n > 0 && !hasTE {
			r.ContentLength = n
		}
	}
}

// errBadRequest is a CheckRequest that does not describe an HTTP request.
var errBadRequest = errors.New("the CheckRequest does not describe an HTTP request")

// fromCheck rebuilds the original request a CheckRequest describes.
// Pseudo-header fields (":path") are taken from their own attributes.
func fromCheck(ctx context.Context, req *authv3.CheckRequest, withBody bool) (*http.Request, error) {
	attrs := req.GetAttributes()
	hr := attrs.GetRequest().GetHttp()
	if hr == nil || hr.GetMethod() == "" || hr.GetPath() == "" {
		return nil, errBadRequest
	}
	h := make(http.Header, len(hr.GetHeaders())+2)
	partial := ""
	add := func(k, v string) {
		if k == "" || k[0] == ':' {
			return
		}
		if strings.EqualFold(k, partialBody) {
			partial = v
			return
		}
		h.Add(k, v)
	}
	if hm := hr.GetHeaderMap(); hm != nil {
		for _, hv := range hm.GetHeaders() {
			v := hv.GetValue()
			if raw := hv.GetRawValue(); raw != nil {
				v = string(raw)
			}
			add(hv.GetKey(), v)
		}
	} else {
		for k, v := range hr.GetHeaders() {
			add(k, v)
		}
	}
	r, err := newRequest(ctx, hr.GetMethod(), hr.GetPath(), hr.GetHost(), hr.GetProtocol(), h)
	if err != nil {
		return nil, err
	}
	r.RemoteAddr = peerAddr(attrs.GetSource())
	if hr.GetScheme() == "https" {
		r.TLS = &tls.ConnectionState{}
		if certs := peerCerts(attrs.GetSource().GetCertificate()); len(certs) > 0 {
			r.TLS.PeerCertificates = certs
		}
	}
	body := hr.GetRawBody()
	if body == nil && hr.GetBody() != "" {
		body = []byte(hr.GetBody())
	}
	requestBody(r, bodyFacts{sent: partial != "" || len(body) > 0, body: body, partial: partial == "true", alwaysSent: withBody})
	return r, nil
}

// newRequest builds a server-side request for method and target (a path
// with its query, as in a request line).
func newRequest(ctx context.Context, method, target, host, proto string, h http.Header) (*http.Request, error) {
	if !gateway.ValidMethod(method) {
		return nil, errBadRequest
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return nil, errBadRequest
	}
	r := (&http.Request{Method: method, URL: u, RequestURI: target, Header: h, Host: host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}).WithContext(ctx)
	if major, minor, ok := http.ParseHTTPVersion(proto); ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = proto, major, minor
	} else if strings.HasPrefix(proto, "HTTP/2") || strings.HasPrefix(proto, "HTTP/3") {
		r.Proto, r.ProtoMajor, r.ProtoMinor = proto, int(proto[5]-'0'), 0
	}
	if r.Host == "" {
		r.Host = h.Get("Host")
	}
	h.Del("Host")
	return r, nil
}

// peerAddr is the client's address as Envoy saw it, host:port.
func peerAddr(p *authv3.AttributeContext_Peer) string {
	sa := p.GetAddress().GetSocketAddress()
	if sa == nil || sa.GetAddress() == "" {
		return "0.0.0.0:0"
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
}

// peerCerts parses the client certificate Envoy forwards
// (include_peer_certificate): URL-encoded PEM. One that does not parse is
// left out: the decision is then made without a certificate.
func peerCerts(enc string) []*x509.Certificate {
	if enc == "" {
		return nil
	}
	s, err := url.PathUnescape(enc)
	if err != nil {
		return nil
	}
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}
