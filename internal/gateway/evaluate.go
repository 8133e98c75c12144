package gateway

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/router"
)

// Evaluate decides r as ServeHTTP would, through the router and the
// matched route's policy chain, without sending it anywhere: an allowed
// request is not proxied (its Status is 200), nothing is recorded in the
// decision ring, the stats or the audit log. It is the dry-run behind
// `gatehouse test`; r.RemoteAddr is the client's address.
func (g *Gateway) Evaluate(r *http.Request) admin.Decision {
	rt := g.acquire()
	defer rt.release()
	x := getExchange()
	defer putExchange(x)
	defer x.Exchange.Done()
	x.Start = g.now()
	x.Request = r
	x.TLS = r.TLS != nil
	x.ClientIP = rt.clientIP.Resolve(r.RemoteAddr, r.Header)
	x.RequestID = requestID(r, x, rt)
	w := &discardWriter{h: http.Header{}}
	x.w.ResponseWriter = w
	r.Header["X-Request-Id"] = []string{x.RequestID}

	status := g.evaluate(rt, x, r)
	x.Request = r
	var rec decisionRecord
	fillRecord(&rec, x, status, g.now().Sub(x.Start))
	return rec.view()
}

func (g *Gateway) evaluate(rt *runtime, x *exchange, r *http.Request) int {
	p, fwd, ok := cleanPath(r, rt.cfg.Paths.MatrixParams)
	if !ok {
		x.decision, x.code = "error", "invalid_path"
		return http.StatusBadRequest
	}
	if rt.auth != nil && rt.auth.Owns(p) {
		x.decision = "authserver"
		return http.StatusOK
	}
	m, params, ref := rt.match(&x.Exchange, r, p, x.params[:0])
	if ref != nil {
		x.decision, x.code = "error", ref.code
		return ref.status
	}
	switch m.Result {
	case router.NotFound:
		x.decision, x.code = "no_route", "no_route"
		return http.StatusNotFound
	case router.MethodNotAllowed:
		x.decision, x.code = "no_route", "method_not_allowed"
		return http.StatusMethodNotAllowed
	}
	rte := m.Value
	x.route = rte
	x.Route = &rte.info
	x.Params = params
	r.URL.Path, r.URL.RawPath = fwd, ""
	if err := x.runChain(r.Context(), rte.chain); err != nil {
		if den, ok := policy.AsDenial(err); ok {
			x.decision, x.code, x.cause, x.detail = "deny", den.Code, den.Err, den.Detail
			return den.StatusCode()
		}
		x.decision, x.code, x.cause = "error", "internal_error", err
		return http.StatusInternalServerError
	}
	x.decision = "allow"
	return http.StatusOK
}

// discardWriter is the client of a dry run.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
