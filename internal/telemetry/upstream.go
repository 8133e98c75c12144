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
	desc *prometheus.Desc
	mu   sync.RWMutex
	// routes finds a route's counts; order holds them in the order first
	// seen, for a stable exposition. A map under a lock rather than a
	// sync.Map: its entries cost a third, and it is read only when an
	// exchange fails and when a route is built.
	routes map[string]*upstreamCounts
	order  []routeUpstreamCounts
}

type upstreamCounts [len(UpstreamErrorKinds)]atomic.Uint64

type routeUpstreamCounts struct {
	route  string
	counts *upstreamCounts
}

func newUpstreamErrors() *upstreamErrors {
	return &upstreamErrors{desc: prometheus.NewDesc("gatehouse_upstream_errors_total",
		"Failed exchanges with upstreams, by route and kind (connect, timeout, reset, canceled, protocol, other).",
		[]string{"route", "kind"}, nil),
		routes: make(map[string]*upstreamCounts)}
}

// counts returns route's counters, making them (at zero) if need be.
// Routes are never forgotten: a route removed by a reload keeps its
// counts, as a CounterVec's series would.
func (u *upstreamErrors) counts(route string) *upstreamCounts {
	u.mu.RLock()
	c := u.routes[route]
	u.mu.RUnlock()
	if c != nil {
		return c
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if c = u.routes[route]; c == nil {
		c = new(upstreamCounts)
		u.routes[route] = c
		u.order = append(u.order, routeUpstreamCounts{route, c})
	}
	return c
}

func (u *upstreamErrors) Describe(ch chan<- *prometheus.Desc) { ch <- u.desc }

func (u *upstreamErrors) Collect(ch chan<- prometheus.Metric) {
	// Entries are only appended, never changed: the snapshot may be read
	// unlocked.
	u.mu.RLock()
	routes := u.order[:len(u.order):len(u.order)]
	u.mu.RUnlock()
	for _, r := range routes {
		for i, kind := range UpstreamErrorKinds {
			ch <- prometheus.MustNewConstMetric(u.desc, prometheus.CounterValue, float64(r.counts[i].Load()), r.route, kind)
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
