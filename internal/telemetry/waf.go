package telemetry

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// wafVecs holds each Metrics' WAF match counter, registered on first use
// so that NewMetrics need not know the waf policy.
var wafVecs sync.Map // *Metrics -> *prometheus.CounterVec

// WAFMatches counts the rule matches of one waf policy instance (a route
// and a mode) by rule family.
type WAFMatches struct {
	vec         *prometheus.CounterVec
	route, mode string
	mu          sync.Mutex
	byFamily    map[string]prometheus.Counter
}

// WAF returns the match counter of the waf policy on route in mode
// (block, detect): gatehouse_waf_matches_total{route,mode,rule_family}.
// A nil m returns a counter that records nothing.
func (m *Metrics) WAF(route, mode string) *WAFMatches {
	if m == nil {
		return nil
	}
	v, ok := wafVecs.Load(m)
	if !ok {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_waf_matches_total",
			Help: "WAF rule matches, by route, mode (block, detect) and rule family (the CRS file number such as 942, or custom).",
		}, []string{"route", "mode", "rule_family"})
		var loaded bool
		if v, loaded = wafVecs.LoadOrStore(m, vec); !loaded {
			m.Registry.MustRegister(vec)
		}
	}
	return &WAFMatches{vec: v.(*prometheus.CounterVec), route: route, mode: mode, byFamily: map[string]prometheus.Counter{}}
}

// Inc counts one match of a rule of family. A nil c does nothing.
func (c *WAFMatches) Inc(family string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	ctr, ok := c.byFamily[family]
	if !ok {
		ctr = c.vec.WithLabelValues(c.route, c.mode, family)
		c.byFamily[family] = ctr
	}
	c.mu.Unlock()
	ctr.Inc()
}
