// Package telemetry holds the gateway's Prometheus metrics and its loggers.
package telemetry

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the gateway's Prometheus collectors, registered on their own
// registry (never the global one, so tests and several gateways in one
// process do not collide). One Metrics lives for the whole process and
// outlives config reloads.
//
// docs/operations.md ("Metrics") lists every metric with its type and
// labels, and says which exist from the start; TestDocumentedMetrics
// (internal/gateway) holds the list and a running gateway's scrape to
// each other.
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	policyDuration *prometheus.HistogramVec
	denials        *prometheus.CounterVec
	upstreamErrors *upstreamErrors // upstream.go
	inflight       prometheus.Gauge
	reloads        *prometheus.CounterVec
	lastReload     prometheus.Gauge

	keyFetches     *prometheus.CounterVec
	keyLastSuccess *prometheus.GaugeVec
	keyCount       *prometheus.GaugeVec

	limits limitMetrics // limits.go
	stores storeMetrics // store.go
	conns  connMetrics  // conns.go

	dlpFindings *prometheus.CounterVec // dlp.go

	tokens        tokenMetrics             // tokens.go
	introspection *prometheus.HistogramVec // latency.go
	jwksFetch     *prometheus.HistogramVec // latency.go

	// exemplar is the source of the latency histograms' exemplars, nil
	// without tracing (exemplar.go).
	exemplar atomic.Pointer[ExemplarFunc]
	// now is the clock of exemplarEvery (tests set it).
	now func() time.Time
}

// NewMetrics creates and registers the gateway metrics, plus the Go runtime
// and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		now:      time.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_requests_total",
			Help: "Requests handled, by route and response status code. Route is \"\" when none matched.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_request_duration_seconds",
			Help:    "Time from receiving a request to writing its response headers, by route.",
			Buckets: requestBuckets[:],
		}, []string{"route"}),
		policyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_policy_duration_seconds",
			Help:    "Time spent in one policy of a route's chain.",
			Buckets: policyBuckets[:],
		}, []string{"route", "policy"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_denials_total",
			Help: "Requests refused, by route, policy and stable error code.",
		}, []string{"route", "policy", "code"}),
		upstreamErrors: newUpstreamErrors(),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_inflight_requests",
			Help: "Requests being handled now.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_config_reloads_total",
			Help: "Config reloads by result (success, failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load.",
		}),
		keyFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_jwks_fetches_total",
			Help: "Fetches of remote key sets (JWKS, OIDC discovery), by source URL and result (success, failure).",
		}, []string{"source", "result"}),
		keyLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_jwks_last_success_timestamp_seconds",
			Help: "Unix time of the last successful fetch of a remote key set, by source URL.",
		}, []string{"source"}),
		keyCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_jwks_keys",
			Help: "Usable keys in the key set in use, by source URL.",
		}, []string{"source"}),
	}
	reg.MustRegister(m.requests, m.duration, m.policyDuration, m.denials, m.upstreamErrors,
		m.inflight, m.reloads, m.lastReload, m.keyFetches, m.keyLastSuccess, m.keyCount,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.limits = newLimitMetrics()
	reg.MustRegister(m.limits.collectors()...)
	m.stores = newStoreMetrics()
	reg.MustRegister(m.stores.collectors()...)
	m.conns = newConnMetrics()
	reg.MustRegister(m.conns.collectors()...)
	m.dlpFindings = newDLPFindings()
	reg.MustRegister(m.dlpFindings)
	m.tokens = newTokenMetrics()
	reg.MustRegister(m.tokens.collectors()...)
	m.introspection, m.jwksFetch = newIntrospectionDuration(), newJWKSFetchDuration()
	reg.MustRegister(m.introspection, m.jwksFetch, newBuildInfo(buildinfo.Get()))
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

// Handler serves the registry's metrics: the Prometheus text format, or
// OpenMetrics (with the latency histograms' exemplars) to a scraper that
// asks for it in Accept, as Prometheus does when exemplar storage is on.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// discard is the Metrics of Discard, built on first use.
var discard = sync.OnceValue(NewMetrics)

// Discard returns a process-wide Metrics that nothing serves: what is
// recorded in it is never read. It is the metrics of a unit built without
// the gateway's (a test, a token service building a policy for itself), so
// that every unit records through one real value and checks for none. Its
// label sets are those of such units (routes, key set URLs), few and
// bounded by the config.
func Discard() *Metrics { return discard() }

// Inflight is the gauge of requests in progress.
func (m *Metrics) Inflight() prometheus.Gauge { return m.inflight }

// Reloaded records a config load attempt; unixTime is used on success.
func (m *Metrics) Reloaded(ok bool, unixTime float64) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReload.Set(unixTime)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
}

// KeySetFetched records a fetch of the remote key set source (its URL): on
// success, unixTime and the number of usable keys are recorded as well; a
// failure leaves them, so a source serving from its last good keys shows
// a stale timestamp. A nil m records nothing.
func (m *Metrics) KeySetFetched(source string, ok bool, unixTime float64, keys int) {
	if m == nil {
		return
	}
	if !ok {
		m.keyFetches.WithLabelValues(source, "failure").Inc()
		return
	}
	m.keyFetches.WithLabelValues(source, "success").Inc()
	m.keyLastSuccess.WithLabelValues(source).Set(unixTime)
	m.keyCount.WithLabelValues(source).Set(float64(keys))
}

// Denied counts a denial.
func (m *Metrics) Denied(route, policy, code string) {
	m.denials.WithLabelValues(route, policy, code).Inc()
}

// UpstreamError counts a failed upstream exchange of route; kind is one
// of UpstreamErrorKinds (another is counted as "other").
func (m *Metrics) UpstreamError(route, kind string) {
	m.upstreamErrors.counts(route)[kindIndex(kind)].Add(1)
}

// PolicyObserver returns the duration histogram of one policy on one route,
// resolved on its first observation and then kept, so the request path does
// no label lookup and a route that never runs holds no histogram (a
// histogram is some 400 bytes; ten thousand routes of several policies
// would hold tens of megabytes of them at rest). policy is a policy type,
// never empty.
func (m *Metrics) PolicyObserver(route, policy string) *PolicyObserver {
	return &PolicyObserver{lazyObserver: lazyObserver{vec: m.policyDuration, route: route, policy: policy}, m: m}
}

// policyBuckets are gatehouse_policy_duration_seconds's buckets.
var policyBuckets = [...]float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25}

// PolicyObserver is the duration histogram of one policy on one route
// (Metrics.PolicyObserver). It is a prometheus.Observer; ObserveContext
// adds the request's trace as exemplar.
type PolicyObserver struct {
	lazyObserver
	m *Metrics
	// exemplarAt is when each bucket last got an exemplar (Unix ns),
	// allocated with the first exemplar: untraced gateways never hold it.
	exemplarAt atomic.Pointer[[len(policyBuckets) + 1]atomic.Int64]
}

// ObserveContext records a policy's duration in seconds, with the trace id
// of ctx (the request's) as exemplar when tracing provides one, at most
// one a second per bucket (exemplarEvery), as ObserveDuration does for
// requests. With tracing off it costs one atomic load more than Observe.
func (p *PolicyObserver) ObserveContext(ctx context.Context, seconds float64) {
	if f := p.m.exemplar.Load(); f != nil {
		if id, ok := (*f)(ctx); ok && id != "" && p.exemplarDue(seconds) {
			p.ObserveWithExemplar(seconds, prometheus.Labels{"trace_id": id})
			return
		}
	}
	p.Observe(seconds)
}

// exemplarDue reports whether the bucket of seconds may take an exemplar
// now, and if so marks it taken.
func (p *PolicyObserver) exemplarDue(seconds float64) bool {
	at := p.exemplarAt.Load()
	if at == nil {
		p.exemplarAt.CompareAndSwap(nil, new([len(policyBuckets) + 1]atomic.Int64))
		at = p.exemplarAt.Load()
	}
	return exemplarDue(at[:], policyBuckets[:], p.m.now(), seconds)
}

// exemplarDue reports whether the bucket of seconds among buckets may
// take an exemplar at now, slots holding when each last took one, and if
// so marks it taken.
func exemplarDue(slots []atomic.Int64, buckets []float64, now time.Time, seconds float64) bool {
	slot := &slots[sort.SearchFloat64s(buckets, seconds)]
	t, last := now.UnixNano(), slot.Load()
	return (last == 0 || t-last >= int64(exemplarEvery)) && slot.CompareAndSwap(last, t)
}

// lazyObserver is a histogram of a vector resolved on first use. Its
// labels are route and policy when policy is set (a policy type is never
// empty), route alone otherwise: a flag saying so would make a
// PolicyObserver 80 bytes rather than 64, three of them a route.
type lazyObserver struct {
	vec           *prometheus.HistogramVec
	route, policy string
	h             atomic.Pointer[prometheus.Observer]
}

// Observe records v in the histogram, resolving it first if need be.
func (l *lazyObserver) Observe(v float64) { l.resolve().Observe(v) }

// ObserveWithExemplar records v with the exemplar ex
// (prometheus.ExemplarObserver, which histograms are).
func (l *lazyObserver) ObserveWithExemplar(v float64, ex prometheus.Labels) {
	l.resolve().(prometheus.ExemplarObserver).ObserveWithExemplar(v, ex)
}

// resolve returns the histogram, resolving it on first use.
func (l *lazyObserver) resolve() prometheus.Observer {
	if h := l.h.Load(); h != nil {
		return *h
	}
	var h prometheus.Observer
	if l.policy != "" {
		h = l.vec.WithLabelValues(l.route, l.policy)
	} else {
		h = l.vec.WithLabelValues(l.route)
	}
	// Racing first observations resolve the same histogram: the vector
	// holds one per label set.
	l.h.Store(&h)
	return h
}

// RouteMetrics are one route's request counters and latency histogram,
// resolved on first use and then kept. Sized by use: a route holds one
// pointer per common status code and a map of the others it has answered
// with, not a slot for each of the 500 codes.
type RouteMetrics struct {
	route    string
	vec      *prometheus.CounterVec
	Duration prometheus.Observer
	// common caches the counter of each common status code (codeSlot),
	// so that counting a request is two atomic loads and an add; the
	// slots themselves are allocated with the route's first request, so
	// that a route that serves nothing holds a pointer, not 20.
	common atomic.Pointer[commonSlots]
	// rare holds the counters of the other codes, copied on write (a new
	// code is rare; reading must not lock).
	rare   atomic.Pointer[map[int]prometheus.Counter]
	rareMu sync.Mutex
	dur    lazyObserver // Duration's, held here to spare an allocation
	m      *Metrics     // for the exemplars of Duration (ObserveDuration)
	// exemplarAt is when each bucket of Duration last got an exemplar
	// (Unix ns), allocated with the route's first exemplar.
	exemplarAt atomic.Pointer[[len(requestBuckets) + 1]atomic.Int64]
}

// requestBuckets are gatehouse_request_duration_seconds's buckets.
var requestBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// exemplarEvery is how often a bucket of a route's latency histogram
// takes a new exemplar. A bucket keeps only its latest one and a scrape
// comes every few seconds, so more would be lost; and an exemplar costs
// some 9 allocations (the client library copies and validates it).
const exemplarEvery = time.Second

// commonCodes are the status codes the gateway and most upstreams answer
// with. Their counters are reached without a map lookup.
var commonCodes = [...]int{
	200, 201, 204, 206,
	301, 302, 304,
	400, 401, 403, 404, 405, 413, 422, 429, 499,
	500, 502, 503, 504,
}

// commonSlots are a route's counters of the common codes.
type commonSlots [len(commonCodes)]atomic.Pointer[prometheus.Counter]

// codeSlot maps a status code to its index in commonCodes plus one; 0 for
// the others.
var codeSlot = func() (t [600]uint8) {
	for i, c := range commonCodes {
		t[c] = uint8(i + 1)
	}
	return t
}()

// Route returns the metrics of route ("" for requests no route matched).
// A named route's gatehouse_upstream_errors_total series start at zero
// now, not with its first failure.
func (m *Metrics) Route(route string) *RouteMetrics {
	if route != "" {
		m.upstreamErrors.counts(route)
	}
	return m.routeMetrics(route)
}

// TokenService returns the request metrics of one of the gateway's own
// token services, named RouteAuthServer or RouteSTS: no upstream, so no
// upstream error series.
func (m *Metrics) TokenService(name string) *RouteMetrics { return m.routeMetrics(name) }

func (m *Metrics) routeMetrics(route string) *RouteMetrics {
	rm := &RouteMetrics{route: route, vec: m.requests, dur: lazyObserver{vec: m.duration, route: route}, m: m}
	rm.Duration = &rm.dur
	return rm
}

// ObserveDuration records a request's duration in seconds, with the
// trace id of ctx (the request's) as exemplar when tracing provides one.
// At most one exemplar a second is taken per bucket (exemplarEvery).
func (rm *RouteMetrics) ObserveDuration(ctx context.Context, seconds float64) {
	if f := rm.m.exemplar.Load(); f != nil {
		if id, ok := (*f)(ctx); ok && id != "" && rm.exemplarDue(seconds) {
			rm.dur.ObserveWithExemplar(seconds, prometheus.Labels{"trace_id": id})
			return
		}
	}
	rm.dur.Observe(seconds)
}

// exemplarDue reports whether the bucket of seconds may take an exemplar
// now, and if so marks it taken.
func (rm *RouteMetrics) exemplarDue(seconds float64) bool {
	at := rm.exemplarAt.Load()
	if at == nil {
		rm.exemplarAt.CompareAndSwap(nil, new([len(requestBuckets) + 1]atomic.Int64))
		at = rm.exemplarAt.Load()
	}
	return exemplarDue(at[:], requestBuckets[:], rm.m.now(), seconds)
}

// Count counts one request answered with status.
func (rm *RouteMetrics) Count(status int) {
	if status >= 0 && status < len(codeSlot) {
		if s := codeSlot[status]; s != 0 {
			slots := rm.common.Load()
			if slots == nil {
				// Racing first requests may each allocate; one wins,
				// and a counter stored in a losing array is resolved
				// again (the vector holds one per label set).
				rm.common.CompareAndSwap(nil, new(commonSlots))
				slots = rm.common.Load()
			}
			slot := &slots[s-1]
			if c := slot.Load(); c != nil {
				(*c).Inc()
				return
			}
			c := rm.vec.WithLabelValues(rm.route, strconv.Itoa(status))
			slot.Store(&c)
			c.Inc()
			return
		}
	}
	if m := rm.rare.Load(); m != nil {
		if c, ok := (*m)[status]; ok {
			c.Inc()
			return
		}
	}
	c := rm.vec.WithLabelValues(rm.route, strconv.Itoa(status))
	c.Inc()
	if status < 100 || status >= len(codeSlot) {
		// Out of range: not cached, so that a misbehaving upstream
		// cannot grow the map (net/http refuses such codes anyway).
		return
	}
	rm.rareMu.Lock()
	defer rm.rareMu.Unlock()
	old := rm.rare.Load()
	next := make(map[int]prometheus.Counter, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[status] = c
	rm.rare.Store(&next)
}
