package gateway

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// Tracing (internal/tracing), when configured. Everything here runs only
// with g.tracer set: the request path tests x.span for nil and takes its
// untraced branch otherwise, so tracing off costs a nil check.

// startTrace starts r's server span, continuing the trace of the
// request's traceparent when tracing.propagate_from accepts it from this
// peer (trusted: a trusted proxy, as for X-Request-Id), and returns r
// carrying the span in its context.
func (g *Gateway) startTrace(rt *runtime, x *exchange, r *http.Request) *http.Request {
	trustedPeer := false
	if len(rt.trusted) > 0 {
		if peer, err := netipAddr(r.RemoteAddr); err == nil {
			trustedPeer = inPrefixes(peer, rt.trusted)
		}
	}
	ctx, span := g.tracer.StartServer(r, trustedPeer, x.ClientIP.String(), x.RequestID)
	x.tracer, x.span = g.tracer, span
	r = r.WithContext(ctx)
	x.Request = r
	return r
}

// routed names the server span after what answers it, once dispatch has
// decided.
func (x *exchange) routed(r *http.Request) {
	switch {
	case x.route != nil:
		tracing.Routed(x.span, r.Method, x.route.info.Name)
	case x.decision == "authserver":
		tracing.Routed(x.span, r.Method, "authorization_server")
	case x.decision == "sts":
		tracing.Routed(x.span, r.Method, "sts")
	}
}

// applyTraced runs one policy of the chain in a span of its own, ended
// with the policy's verdict (a panic too: it is an error of the policy).
func (x *exchange) applyTraced(ctx context.Context, l *link) (err error) {
	ctx, span := x.tracer.Start(ctx, l.spanName)
	ended := false
	defer func() {
		if !ended {
			tracing.EndPolicy(span, l.name, "error", "internal_error", 0)
		}
	}()
	err = l.policy.Apply(ctx, &x.Exchange)
	ended = true
	switch den, ok := policy.AsDenial(err); {
	case err == nil:
		tracing.EndPolicy(span, l.name, "allow", "", 0)
	case ok:
		tracing.EndPolicy(span, l.name, "deny", den.Code, den.StatusCode())
	default:
		tracing.EndPolicy(span, l.name, "error", "internal_error", 0)
	}
	return err
}

// proxyTraced proxies r in the upstream's client span, whose trace
// context the upstream gets in r's traceparent.
func (x *exchange) proxyTraced(r *http.Request) {
	ctx, span := x.tracer.StartUpstream(r.Context(), r.Method, x.route.target, r.Header)
	ended := false
	defer func() {
		if !ended {
			// The response was cut short (http.ErrAbortHandler) or
			// something panicked: the panic goes on after this.
			tracing.EndUpstream(span, x.w.status, "response_aborted", nil)
		}
	}()
	x.route.upstream.ServeHTTP(&x.w, r.WithContext(ctx))
	ended = true
	if x.cause != nil {
		// proxyError answered: the upstream gave no usable response.
		tracing.EndUpstream(span, 0, x.code, x.cause)
		return
	}
	tracing.EndUpstream(span, x.w.status, "", nil)
}

// serveTraced has a token service (the authorization server, the STS)
// answer r in a span of its own. Its audit events find the span by the
// request id (serviceTrace).
func (g *Gateway) serveTraced(x *exchange, r *http.Request, name string, h http.Handler) {
	ctx, span := x.tracer.Start(r.Context(), name)
	traceID, spanID := tracing.IDs(span)
	g.inService.Store(x.RequestID, [2]string{traceID, spanID})
	ended := false
	defer func() {
		g.inService.Delete(x.RequestID)
		if !ended {
			tracing.EndService(span, http.StatusInternalServerError)
		}
	}()
	h.ServeHTTP(&x.w, r.WithContext(ctx))
	ended = true
	tracing.EndService(span, x.w.status)
}

// serviceTrace is the audit log's trace lookup (audit.SetTraceLookup):
// the ids of the token service span answering the request requestID.
func (g *Gateway) serviceTrace(requestID string) (traceID, spanID string) {
	v, ok := g.inService.Load(requestID)
	if !ok {
		return "", ""
	}
	ids := v.([2]string)
	return ids[0], ids[1]
}
