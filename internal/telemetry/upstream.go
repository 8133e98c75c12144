package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// UpstreamErrorKinds are the values of gatehouse_upstream_errors_total's
// kind label, in the order the collector writes them.
var UpstreamErrorKinds = [...]string{"connect", "timeout", "reset", "canceled", "protocol", "other"}

// upstreamErrors is gatehouse_upstream_errors_total. Every route's series
// exist at zero from the load that configured it, for every kind, so that
// increase() sees a route's first failure and an alert on it need not
// wait for one. A CounterVec child costs some 530 bytes, and six a route
// would double what a route holds at rest (docs/performance.md): the
// counts are kept as six words per route instead and made into metrics
// only when scraped.
type upstreamErrors struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	routes sync.Map // route name -> *upstreamCounts
	order  []string // route names in the order first seen, for a stable exposition
}

type upstreamCounts [len(UpstreamErrorKinds)]atomic.Uint64

func newUpstreamErrors() *upstreamErrors {
	return &upstreamErrors{desc: prometheus.NewDesc("gatehouse_upstream_errors_total",
		"Failed exchanges with upstreams, by route and kind (connect, timeout, reset, canceled, protocol, other).",
		[]string{"route", "kind"}, nil)}
}

// counts returns route's counters, making them (at zero) if need be.
// Routes are never forgotten: a route removed by a reload keeps its
// counts, as a CounterVec's series would.
func (u *upstreamErrors) counts(route string) *upstreamCounts {
	if c, ok := u.routes.Load(route); ok {
		return c.(*upstreamCounts)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	c, loaded := u.routes.LoadOrStore(route, new(upstreamCounts))
	if !loaded {
		u.order = append(u.order, route)
	}
	return c.(*upstreamCounts)
}

func (u *upstreamErrors) Describe(ch chan<- *prometheus.Desc) { ch <- u.desc }

func (u *upstreamErrors) Collect(ch chan<- prometheus.Metric) {
	u.mu.Lock()
	routes := u.order[:len(u.order):len(u.order)]
	u.mu.Unlock()
	for _, r := range routes {
		c, _ := u.routes.Load(r)
		counts := c.(*upstreamCounts)
		for i, kind := range UpstreamErrorKinds {
			ch <- prometheus.MustNewConstMetric(u.desc, prometheus.CounterValue, float64(counts[i].Load()), r, kind)
		}
	}
}

// kindIndex is kind's index in UpstreamErrorKinds; an unknown kind is
// counted as "other".
func kindIndex(kind string) int {
	for i, k := range UpstreamErrorKinds {
		if k == kind {
			return i
		}
	}
	return len(UpstreamErrorKinds) - 1
}
