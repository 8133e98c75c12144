package telemetry

import "github.com/prometheus/client_golang/prometheus"

// limitMetrics are the collectors of the limit policies (rate_limit,
// quota, throttle).
type limitMetrics struct {
	storeErrors *prometheus.CounterVec
	degraded    *prometheus.GaugeVec
}

func newLimitMetrics() limitMetrics {
	return limitMetrics{
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_limit_store_errors_total",
			Help: "Decisions of limit policies taken without the store because it was unreachable, by route, policy and the failure mode applied (closed, open, local).",
		}, []string{"route", "policy", "mode"}),
		degraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_limit_store_degraded",
			Help: "1 while a limit policy cannot reach its store and applies its failure mode, 0 once it can again, by route and policy.",
		}, []string{"route", "policy"}),
	}
}

func (l limitMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.storeErrors, l.degraded}
}

// LimitMetrics are one limit policy's store-failure metrics, resolved at
// build time. The zero LimitMetrics (from a nil *Metrics) records nothing.
type LimitMetrics struct {
	errors   prometheus.Counter
	degraded prometheus.Gauge
}

// Limit returns the store-failure metrics of policy on route, which
// applies mode (closed, open or local) when the store is unreachable. A
// nil m returns metrics that record nothing.
func (m *Metrics) Limit(route, policy, mode string) LimitMetrics {
	if m == nil {
		return LimitMetrics{}
	}
	return LimitMetrics{
		errors:   m.limits.storeErrors.WithLabelValues(route, policy, mode),
		degraded: m.limits.degraded.WithLabelValues(route, policy),
	}
}

// StoreError counts one decision taken in the failure mode.
func (l LimitMetrics) StoreError() {
	if l.errors != nil {
		l.errors.Inc()
	}
}

// Degraded sets whether the policy is in its failure mode.
func (l LimitMetrics) Degraded(on bool) {
	if l.degraded == nil {
		return
	}
	if on {
		l.degraded.Set(1)
	} else {
		l.degraded.Set(0)
	}
}
