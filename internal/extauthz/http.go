package extauthz

import (
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/render"
)

// HTTPHandler serves Envoy's http_service flavour of ext_authz: the
// original request arrives as a request of its own, its method, path
// (after prefix) and fields; Envoy forwards the body when configured
// with with_request_body. An allowed request is answered 200 with the
// fields the chain set for the upstream (name them in Envoy's
// allowed_upstream_headers) and x-envoy-auth-headers-to-remove listing
// those it removed; a refused one with the gateway's own response, which
// Envoy passes on to the client.
type HTTPHandler struct {
	d        Decider
	prefix   string
	withBody bool
	maxBody  int64
}

// HeadersToRemove is the response field of http_service naming the
// request fields Envoy removes before forwarding.
const HeadersToRemove = "X-Envoy-Auth-Headers-To-Remove"

// NewHTTPHandler returns the http_service handler deciding with d.
// prefix is Envoy's path_prefix; maxBody bounds the forwarded body.
func NewHTTPHandler(d Decider, prefix string, withRequestBody bool, maxBody int64) *HTTPHandler {
	return &HTTPHandler{d: d, prefix: prefix, withBody: withRequestBody, maxBody: maxBody}
}

func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.RequestURI
	if h.prefix != "" {
		rest, ok := strings.CutPrefix(target, h.prefix)
		if !ok || (rest != "" && rest[0] != '/' && rest[0] != '?') {
			render.Error(w, r, policy.REST, "", http.StatusNotFound, "no_route", "the path does not start with the configured http_path_prefix")
			return
		}
		target = rest
	}
	if target == "" || target[0] == '?' {
		target = "/" + target
	}
	hdr := r.Header.Clone()
	partial := hdr.Get(partialBody)
	hdr.Del(partialBody)
	// The framing fields are Envoy's, of the body it sent, not the
	// original's.
	hdr.Del("Content-Length")
	hdr.Del("Transfer-Encoding")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		render.Error(w, r, policy.REST, "", http.StatusRequestEntityTooLarge, "body_too_large", "the forwarded request body exceeds ext_authz.max_request_bytes")
		return
	}
	orig, err := newRequest(r.Context(), r.Method, target, r.Host, r.Proto, hdr)
	if err != nil {
		render.Error(w, r, policy.REST, "", http.StatusBadRequest, "invalid_request", "the authorization request does not describe an HTTP request")
		return
	}
	orig.RemoteAddr = r.RemoteAddr
	requestBody(orig, bodyFacts{sent: partial != "" || len(body) > 0, body: body, partial: partial == "true",
		alwaysSent: h.withBody, framingUnknown: true})
	d := h.d.Decide(orig)
	out := w.Header()
	if d.Allowed {
		for k, v := range d.UpstreamSet {
			out[k] = v
		}
		for k, v := range d.Header {
			out[k] = append(out[k], v...)
		}
		if len(d.UpstreamRemove) > 0 {
			out.Set(HeadersToRemove, strings.ToLower(strings.Join(d.UpstreamRemove, ",")))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	for k, v := range responseFields(d.Header) {
		out[k] = v
	}
	w.WriteHeader(d.Status)
	_, _ = w.Write(d.Body)
}
