package gateway

import "github.com/gatehouse/gatehouse/internal/telemetry"

// tokenMetrics are the request metrics of the gateway's own token
// services, counted under their own route label (telemetry.RouteAuthServer,
// telemetry.RouteSTS) rather than with the requests no route matched.
type tokenMetrics struct {
	auth, sts *telemetry.RouteMetrics
}

func newTokenMetrics(m *telemetry.Metrics) tokenMetrics {
	return tokenMetrics{auth: m.TokenService(telemetry.RouteAuthServer), sts: m.TokenService(telemetry.RouteSTS)}
}

// metricsOf returns the request metrics x is counted in: its route's,
// a token service's (as dispatch decided), or those of no route.
func (rt *runtime) metricsOf(x *exchange) *telemetry.RouteMetrics {
	switch {
	case x.route != nil:
		return x.route.metrics
	case x.decision == "authserver":
		return rt.tokens.auth
	case x.decision == "sts":
		return rt.tokens.sts
	}
	return rt.noRoute
}
