package gateway

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/router"
)

// A verdict is what answers a request, decided by dispatch. The handler
// (serve) acts on it; the dry run (`gatehouse test`, Evaluate) reports it.
// Both decide through dispatch and nothing else, so they cannot drift.
type verdict uint8

const (
	// refused: the gateway answers itself with x.code before any route
	// (invalid path, CONNECT, no route, method not allowed, an invalid
	// method override); status and detail say how.
	refused verdict = iota
	// authServer: the embedded authorization server answers.
	authServer
	// tokenService: the STS answers.
	tokenService
	// denied: the route's chain refused (x.decision "deny") or failed
	// ("error", internal_error).
	denied
	// allowed: the chain allowed; the upstream answers.
	allowed
)

// dispatched is dispatch's result.
type dispatched struct {
	verdict verdict
	// status, detail and allow (the Allow header of a 405) are the
	// gateway's own answer when verdict is refused.
	status int
	detail string
	allow  string
	// denial is the chain's refusal when verdict is denied (nil: the
	// chain failed, 500 internal_error).
	denial *policy.Denial
}

// dispatch decides what answers r: it cleans and checks the request
// target, gives the token services their paths, routes, and runs the
// matched route's chain. It records the decision in x (decision, code,
// route, cause) and writes nothing: the caller answers.
func (g *Gateway) dispatch(rt *runtime, x *exchange, r *http.Request) dispatched {
	if r.Method == http.MethodConnect {
		// A tunnel would carry bytes no policy sees.
		x.decision, x.code = "error", "method_not_allowed"
		return dispatched{status: http.StatusMethodNotAllowed, detail: "CONNECT is not forwarded"}
	}
	p, fwd, ok := cleanPath(r, rt.cfg.Paths.MatrixParams)
	if !ok || !h2TargetOK(r) {
		x.decision, x.code = "error", "invalid_path"
		return dispatched{status: http.StatusBadRequest, detail: "the request path is not acceptable"}
	}
	if rt.auth != nil && rt.auth.Owns(p) {
		// The authorization server's endpoints come before the routes.
		x.decision = "authserver"
		return dispatched{verdict: authServer}
	}
	if rt.sts != nil && rt.sts.Owns(p) {
		// So is the STS endpoint.
		x.decision = "sts"
		return dispatched{verdict: tokenService}
	}
	m, params, ref := rt.match(&x.Exchange, r, p, x.params[:0])
	if ref != nil {
		x.decision, x.code = "error", ref.code
		return dispatched{status: ref.status, detail: ref.detail}
	}
	switch m.Result {
	case router.NotFound:
		x.decision, x.code = "no_route", "no_route"
		return dispatched{status: http.StatusNotFound, detail: "no route matches this request"}
	case router.MethodNotAllowed:
		x.decision, x.code = "no_route", "method_not_allowed"
		return dispatched{status: http.StatusMethodNotAllowed, detail: "method not allowed on this path", allow: m.Allow}
	}
	rte := m.Value
	x.route = rte
	x.Route = &rte.info
	x.Params = params
	x.w.filters = rte.filters
	// The cleaned path in its one canonical encoding, whatever the
	// client's spelling ("/adm%69n" is forwarded as "/admin").
	r.URL.Path, r.URL.RawPath = fwd, ""

	if err := x.runChain(r.Context(), rte.chain); err != nil {
		if den, ok := policy.AsDenial(err); ok {
			x.decision, x.code, x.cause, x.detail = "deny", den.Code, den.Err, den.Detail
			return dispatched{verdict: denied, denial: den}
		}
		x.decision, x.code, x.cause = "error", "internal_error", err
		return dispatched{verdict: denied}
	}
	x.decision = "allow"
	return dispatched{verdict: allowed}
}

// status is the HTTP status of d as the client would get it, for the dry
// run; 200 for a request the upstream or a token service answers (the
// dry run does not call them).
func (d dispatched) statusCode() int {
	switch d.verdict {
	case refused:
		return d.status
	case denied:
		if d.denial == nil {
			return http.StatusInternalServerError
		}
		return d.denial.StatusCode()
	}
	return http.StatusOK
}
