package telemetry

import (
	"strconv"
	"sync"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// series counts the series a collector has.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 1024)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

// TestRouteCount counts common, rare and out-of-range status codes and
// reads them back from the registry.
func TestRouteCount(t *testing.T) {
	m := NewMetrics()
	rm := m.Route("r1")
	want := map[int]int{200: 3, 404: 2, 418: 4, 299: 1, 599: 2, 100: 1, 700: 2, 42: 1}
	for code, n := range want {
		for range n {
			rm.Count(code)
		}
	}
	for code, n := range want {
		got := counterValue(t, m.requests.WithLabelValues("r1", strconv.Itoa(code)))
		if got != float64(n) {
			t.Errorf("code %d: counted %v, want %d", code, got, n)
		}
	}
	if got := counterValue(t, m.requests.WithLabelValues("r2", "200")); got != 0 {
		t.Errorf("another route counted %v", got)
	}
	if n := len(*rm.rare.Load()); n != 4 { // 418, 299, 599, 100
		t.Errorf("rare map holds %d codes, want 4 (out-of-range codes are not cached)", n)
	}
}

// TestRouteCountConcurrent counts from many goroutines at once, new codes
// included, and loses nothing (run with -race).
func TestRouteCountConcurrent(t *testing.T) {
	m := NewMetrics()
	rm := m.Route("r")
	codes := []int{200, 418, 299, 503, 451, 207}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				rm.Count(codes[(g+i)%len(codes)])
				rm.Duration.Observe(0.001)
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for _, c := range codes {
		total += counterValue(t, m.requests.WithLabelValues("r", strconv.Itoa(c)))
	}
	if total != 8*300 {
		t.Errorf("counted %v, want %d", total, 8*300)
	}
}

// TestRouteMetricsNoAllocs: once a code has been seen, counting it, and
// observing durations, allocate nothing.
func TestRouteMetricsNoAllocs(t *testing.T) {
	m := NewMetrics()
	rm := m.Route("r")
	po := m.PolicyObserver("r", "jwt")
	for _, c := range []int{200, 418} {
		rm.Count(c)
	}
	rm.Duration.Observe(1)
	po.Observe(1)
	for _, c := range []int{200, 418} {
		if a := testing.AllocsPerRun(100, func() { rm.Count(c) }); a != 0 {
			t.Errorf("Count(%d): %v allocations", c, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() { rm.Duration.Observe(0.5); po.Observe(0.5) }); a != 0 {
		t.Errorf("Observe: %v allocations", a)
	}
}

// TestRouteMetricsLazy: a route that has served nothing holds no
// histogram or counter series, and is small.
func TestRouteMetricsLazy(t *testing.T) {
	m := NewMetrics()
	rm := m.Route("idle")
	if rm.common.Load() != nil || rm.rare.Load() != nil {
		t.Error("an idle route holds status-code slots")
	}
	po := m.PolicyObserver("idle", "jwt")
	if n := series(m.duration) + series(m.policyDuration) + series(m.requests); n != 0 {
		t.Errorf("%d series before any request", n)
	}
	rm.Count(200)
	rm.Duration.Observe(0.1)
	po.Observe(0.1)
	if n := series(m.duration) + series(m.policyDuration) + series(m.requests); n != 3 {
		t.Errorf("%d series after one request, want 3", n)
	}
	if size := unsafe.Sizeof(*rm); size > 160 {
		t.Errorf("RouteMetrics is %d bytes", size)
	}
}
