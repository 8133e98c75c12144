package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// connMetrics count the listeners' connections.
type connMetrics struct {
	open    *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

func newConnMetrics() connMetrics {
	return connMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_connections_open",
			Help: "Client connections open now, by listener.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_connections_refused_total",
			Help: "Client connections closed as soon as accepted because a bound was reached, by listener and reason (max_connections, max_connections_per_ip).",
		}, []string{"listener", "reason"}),
	}
}

func (c connMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.open, c.refused}
}

// Conns returns the functions a listener calls as connections open and
// close (delta +1, -1) and are refused (with the reason). A nil m returns
// functions that record nothing.
func (m *Metrics) Conns(listener string) (open func(delta int), refused func(reason string)) {
	if m == nil {
		return func(int) {}, func(string) {}
	}
	g := m.conns.open.WithLabelValues(listener)
	g.Set(0)
	// Both reasons exist from the start, at 0, for increase() and alerts.
	m.conns.refused.WithLabelValues(listener, "max_connections")
	m.conns.refused.WithLabelValues(listener, "max_connections_per_ip")
	return func(d int) { g.Add(float64(d)) },
		func(reason string) { m.conns.refused.WithLabelValues(listener, reason).Inc() }
}
