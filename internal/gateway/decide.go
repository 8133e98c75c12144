package gateway

import (
	"errors"
	"golang.org/x/net/http/httpguts"
	"net/http"
	"runtime/debug"
	"slices"

	"github.com/gatehouse/gatehouse/internal/policy"
)

// Decision is the gateway's answer to a request another proxy will
// forward (Envoy's ext_authz, nginx auth_request and the other
// forward-auth peers): Decide's result.
type Decision struct {
	// Allowed reports whether the route's chain let the request through:
	// the peer forwards it upstream with UpstreamSet and UpstreamRemove
	// applied. Anything else (the chain's denial, the gateway's own
	// refusal, a token service's answer) is answered with Status, Header
	// and Body instead.
	Allowed bool
	// Decision, Code and Route are what the decision ring and the access
	// log record: decision is allow, deny, error, no_route, authserver or
	// sts.
	Decision, Code, Route string
	// RequestID is the request's id, as in the X-Request-Id field.
	RequestID string
	// UpstreamSet holds the request fields the chain set or changed for
	// the upstream (identity headers, the signed identity JWT, the
	// headers policy's), UpstreamRemove the names of those it removed
	// (identity headers a client sent itself). Set only when Allowed.
	UpstreamSet    http.Header
	UpstreamRemove []string
	// Status, Header and Body are the response. When not Allowed it is
	// the very response ServeHTTP would have sent: the status, fields
	// (WWW-Authenticate, Retry-After, RateLimit-*, X-Request-Id) and the
	// problem+json or SOAP Fault body. When Allowed, Status is 200, Header
	// holds the fields the policies add to the upstream's response
	// (RateLimit-*) and Body is nil.
	Status int
	Header http.Header
	Body   []byte
}

// ErrBodyUnavailable is what a reader standing for a request body the
// peer did not forward must return: a policy that needs the body and
// reads it fails the decision with 403 body_unavailable, so that a route
// inspecting bodies is never allowed on the headers alone.
var ErrBodyUnavailable = errors.New("the request body was not forwarded to the authorizer")

// bodyUnavailable is the denial of a request whose body a policy needed
// and the peer did not forward.
func bodyUnavailable(cause error) *policy.Denial {
	return &policy.Denial{Status: http.StatusForbidden, Code: "body_unavailable",
		Detail: "this route inspects the request body, which was not forwarded to the authorizer", Err: cause}
}

// Decide decides r for another proxy through the same steps as ServeHTTP
// and the dry run (begin and dispatch), and answers a request it does not
// allow exactly as ServeHTTP would, response filters included; an allowed
// request is not proxied. Unlike the dry run, the decision is recorded
// like a served request's: access log, metrics, the decision ring, the
// stats and the audit log, and the limits it passes are counted (once:
// the peer does not send it through the gateway again).
//
// r is the original request as the peer describes it: method, URL, Host,
// header fields, RemoteAddr the client's address as the peer saw it (or
// the peer's own, with the client's in X-Forwarded-For), TLS when the
// client connection was TLS. Its Body is the request body, http.NoBody
// for a request without one, or a reader failing with ErrBodyUnavailable
// when the peer did not send it.
func (g *Gateway) Decide(r *http.Request) (dec Decision) {
	rt := g.acquire()
	defer rt.release()
	g.metrics.Inflight().Inc()
	defer g.metrics.Inflight().Dec()
	x := getExchange()
	defer putExchange(x)
	defer x.Exchange.Done()
	rec := &recordWriter{h: http.Header{}}
	g.begin(rt, x, rec, r)
	before := r.Header.Clone()
	d := dispatched{verdict: denied}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					// A response filter aborted the answer: there is
					// no complete answer to give.
					x.decision, x.code = "error", "response_aborted"
					rec.status, rec.body, rec.h = 0, nil, http.Header{}
					return
				}
				stack := debug.Stack()
				func() {
					// recovered aborts (panics again) when part of the
					// answer was written; there is no connection here
					// to abort, and a gRPC server does not recover.
					defer func() {
						if recover() != nil {
							rec.status, rec.body, rec.h = 0, nil, http.Header{}
						}
					}()
					g.recovered(x, r, v, stack)
				}()
			}
		}()
		d = g.dispatch(rt, x, r)
		if d.verdict == denied && d.denial == nil && errors.Is(x.cause, ErrBodyUnavailable) {
			d.denial = bodyUnavailable(x.cause)
			x.decision, x.code, x.detail = "deny", d.denial.Code, d.denial.Detail
		}
		if d.verdict != allowed {
			g.answer(rt, x, r, d)
			x.w.end()
		}
	}()
	dec = Decision{RequestID: x.RequestID, Decision: x.decision, Code: x.code}
	if x.route != nil {
		dec.Route = x.route.info.Name
	}
	if d.verdict == allowed && x.decision == "allow" {
		dec.Allowed, dec.Status = true, http.StatusOK
		x.w.client.status = http.StatusOK // what the access log counts
		dec.UpstreamSet, dec.UpstreamRemove = headerChanges(before, r.Header)
		if len(x.ResponseHeader) > 0 {
			dec.Header = x.ResponseHeader.Clone()
		}
	} else {
		if rec.status == 0 {
			rec.status = http.StatusInternalServerError
			x.w.client.status = rec.status
		}
		dec.Status, dec.Header, dec.Body = rec.status, rec.h, rec.body
	}
	g.finish(rt, x, r)
	return dec
}

// headerChanges returns the fields of after that are new or changed since
// before, and the names of before's fields after lacks, sorted.
func headerChanges(before, after http.Header) (set http.Header, remove []string) {
	for k, v := range after {
		if !slices.Equal(before[k], v) {
			if set == nil {
				set = make(http.Header, 4)
			}
			set[k] = slices.Clone(v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			remove = append(remove, k)
		}
	}
	slices.Sort(remove)
	return set, remove
}

// recordWriter keeps the response Decide writes.
type recordWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *recordWriter) Header() http.Header { return w.h }

func (w *recordWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *recordWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

func (w *recordWriter) Flush() {}

// ValidMethod reports whether m is a method token (RFC 9110 §9.1) of at
// most 64 bytes: what the doors (ext_authz, forward-auth) accept as the
// method of a request they describe, before Decide routes it.
func ValidMethod(m string) bool {
	return m != "" && len(m) <= 64 && httpguts.ValidHeaderFieldName(m)
}
