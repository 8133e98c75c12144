package telemetry

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// remoteBuckets are the buckets of calls to another server over the
// network (an introspection endpoint, a JWKS URL): from a loopback
// answer to a timeout.
var remoteBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newIntrospectionDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_introspection_duration_seconds",
		Help:    "Time of the introspect authenticator's calls to an RFC 7662 endpoint, by endpoint URL and result (success: an answer was read; failure: the endpoint was unreachable, timed out or answered something unusable).",
		Buckets: remoteBuckets,
	}, []string{"endpoint", "result"})
}

func newJWKSFetchDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_jwks_fetch_duration_seconds",
		Help:    "Time of a remote key set's fetches (OIDC discovery included), by source and result (success, failure).",
		Buckets: remoteBuckets,
	}, []string{"source", "result"})
}

// RemoteLatency is the latency histogram of calls to one remote server,
// resolved when the caller is built so that its series exist from then
// on, at zero. The zero RemoteLatency (from a nil *Metrics) records
// nothing.
type RemoteLatency struct {
	m                *Metrics
	success, failure prometheus.Observer
}

// Introspection returns the latency histogram of calls to the
// introspection endpoint (its URL). A nil m returns one that records
// nothing.
func (m *Metrics) Introspection(endpoint string) RemoteLatency {
	if m == nil {
		return RemoteLatency{}
	}
	return RemoteLatency{m: m,
		success: m.introspection.WithLabelValues(endpoint, "success"),
		failure: m.introspection.WithLabelValues(endpoint, "failure")}
}

// JWKSFetch returns the latency histogram of fetches of the key set
// source (its JWKS URL or issuer, as gatehouse_jwks_fetches_total names
// it); the fetch counters of source start at zero too. A nil m returns
// one that records nothing.
func (m *Metrics) JWKSFetch(source string) RemoteLatency {
	if m == nil {
		return RemoteLatency{}
	}
	m.keyFetches.WithLabelValues(source, "success")
	m.keyFetches.WithLabelValues(source, "failure")
	return RemoteLatency{m: m,
		success: m.jwksFetch.WithLabelValues(source, "success"),
		failure: m.jwksFetch.WithLabelValues(source, "failure")}
}

// Observe records a call of seconds that succeeded or not, with the
// trace id of ctx as exemplar when tracing provides one.
func (l RemoteLatency) Observe(ctx context.Context, seconds float64, ok bool) {
	if l.m == nil {
		return
	}
	o := l.failure
	if ok {
		o = l.success
	}
	l.m.ObserveContext(ctx, o, seconds)
}
