package telemetry

import "github.com/prometheus/client_golang/prometheus"

// storeMetrics are the shared state store's health: one gauge and two
// transition counters per store, decided in one place for all its users.
type storeMetrics struct {
	up          *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

func newStoreMetrics() storeMetrics {
	return storeMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_store_up",
			Help: "1 while the shared state store (memory, file, redis) is reachable, 0 from its first failure until probes confirm recovery.",
		}, []string{"store"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_store_transitions_total",
			Help: "Changes of the store's reachability, by store and direction (down, up): one of each per outage.",
		}, []string{"store", "to"}),
	}
}

func (s storeMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.up, s.transitions}
}

// StoreState records the store's reachability: up or down. The first call
// for a store sets its gauge without counting a transition.
func (m *Metrics) StoreState(store string, up, transition bool) {
	if m == nil {
		return
	}
	v := 0.0
	to := "down"
	if up {
		v, to = 1, "up"
	}
	m.stores.up.WithLabelValues(store).Set(v)
	if transition {
		m.stores.transitions.WithLabelValues(store, to).Inc()
	} else {
		// Both directions exist from the start, at 0, for rate() queries.
		m.stores.transitions.WithLabelValues(store, "down")
		m.stores.transitions.WithLabelValues(store, "up")
	}
}
