package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// TestOutageOneTransition restarts Redis ten times under load. Each outage
// must be exactly one transition down and one up of the store's health
// (gatehouse_store_transitions_total), and once recovery is confirmed a
// closed route must not answer 503 again until the next outage: no
// flapping between "reachable" and "unreachable" while go-redis still
// hands out its cached dial error.
func TestOutageOneTransition(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts Redis ten times")
	}
	srv := redistest.Start(t)
	logs := &syncBuffer{}
	in := startGateway(t, redisStoreTimeout(srv.Addr(), t.Name(), "200ms"), "{key: header:X-Client, rate: 1000000, per: 1h, on_store_error: closed}", upstream(t), logs)

	// The load: four clients until the test ends. Each response is
	// recorded with the phase its request started and ended in.
	var phase atomic.Int64 // odd: Redis was stopped; even: recovery confirmed
	type result struct{ status, start, end int64 }
	var mu sync.Mutex
	var results []result
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 200_000; i++ {
				p0 := phase.Load()
				status, _ := get(t, in.url, fmt.Sprintf("c%d", w))
				p1 := phase.Load()
				mu.Lock()
				results = append(results, result{int64(status), p0, p1})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s never happened; logs:\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	const cycles = 10
	for i := 1; i <= cycles; i++ {
		// The phase changes before the kill: requests fail as soon as
		// the process is gone, before Stop returns.
		phase.Add(1)
		srv.Stop()
		waitFor(fmt.Sprintf("outage %d noticed", i), func() bool { return transitions(t, in.metrics, "down") >= float64(i) })
		srv.Restart()
		waitFor(fmt.Sprintf("recovery %d confirmed", i), func() bool { return transitions(t, in.metrics, "up") >= float64(i) })
		phase.Add(1)
		// Some traffic in the up phase before the next outage.
		n := len(snapshot(&mu, &results))
		waitFor("traffic after recovery", func() bool { return len(snapshot(&mu, &results)) >= n+20 })
	}
	cancel()
	wg.Wait()

	if down, up := transitions(t, in.metrics, "down"), transitions(t, in.metrics, "up"); down != cycles || up != cycles {
		t.Errorf("transitions: %v down and %v up over %d outages, want exactly %d each", down, up, cycles, cycles)
	}
	if v := gauge(t, in.metrics, "gatehouse_store_up"); v != 1 {
		t.Errorf("gatehouse_store_up = %v at the end, want 1", v)
	}
	var ok, unavailable, flaps int
	for _, r := range results {
		switch {
		case r.status == http.StatusOK:
			ok++
		case r.status == http.StatusServiceUnavailable:
			unavailable++
			// A request begun and ended after recovery was confirmed,
			// before the next outage, must not see the store down.
			if r.start == r.end && r.start%2 == 0 {
				flaps++
			}
		default:
			t.Errorf("unexpected status %d", r.status)
		}
	}
	t.Logf("%d requests: %d allowed, %d refused while Redis was down", len(results), ok, unavailable)
	if flaps > 0 {
		t.Errorf("%d requests answered 503 after recovery was confirmed (flapping)", flaps)
	}
	if unavailable == 0 {
		t.Error("no 503 at all: the outages were not seen by the route")
	}
}

func snapshot[T any](mu *sync.Mutex, s *[]T) []T {
	mu.Lock()
	defer mu.Unlock()
	return *s
}

// transitions returns gatehouse_store_transitions_total{to}.
func transitions(t *testing.T, m *telemetry.Metrics, to string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_store_transitions_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "to" && lp.GetValue() == to {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func gauge(t *testing.T, m *telemetry.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
