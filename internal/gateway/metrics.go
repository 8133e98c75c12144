package gateway

import (
	"fmt"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

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

// tokenServiceName refuses a route named as a token service the config
// enables: its requests would be counted in the service's series.
func tokenServiceName(cfg *config.Config, i int) error {
	name := cfg.Routes[i].Name
	if (name == telemetry.RouteAuthServer && cfg.AuthorizationServer != nil) || (name == telemetry.RouteSTS && cfg.STS != nil) {
		return cfg.Errorf(fmt.Sprintf("routes[%d].name", i), "%q names the token service in the metrics' route label: choose another name", name)
	}
	return nil
}
