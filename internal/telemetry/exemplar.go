package telemetry

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// ExemplarFunc returns the trace id of the request ctx belongs to, and
// whether there is one (a sampled span). Tracing sets it with
// SetExemplarFunc; the latency histograms then attach the id to the
// bucket an observation falls in, as an OpenMetrics exemplar
// ({trace_id="..."}), so that a slow bucket leads to a trace.
type ExemplarFunc func(ctx context.Context) (traceID string, ok bool)

// SetExemplarFunc makes f the source of the latency histograms' exemplars;
// nil turns them off (the default). Safe to call while requests are
// served. A nil m ignores it.
func (m *Metrics) SetExemplarFunc(f ExemplarFunc) {
	if m == nil {
		return
	}
	if f == nil {
		m.exemplar.Store(nil)
		return
	}
	m.exemplar.Store(&f)
}

// ObserveContext records v in o, with the trace id of ctx as its exemplar
// when an ExemplarFunc is set and finds one. Without one it is o.Observe:
// one atomic load more. A nil m observes without exemplar.
func (m *Metrics) ObserveContext(ctx context.Context, o prometheus.Observer, v float64) {
	if m != nil {
		if f := m.exemplar.Load(); f != nil {
			if id, ok := (*f)(ctx); ok && id != "" {
				if eo, ok := o.(prometheus.ExemplarObserver); ok {
					eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": id})
					return
				}
			}
		}
	}
	o.Observe(v)
}
