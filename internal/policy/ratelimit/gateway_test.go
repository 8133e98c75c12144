package ratelimit

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// gatewayYAML is a gateway with one route limited by rate_limit.
const gatewayYAML = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
store: STORE
routes:
  - name: products
    match: {path_prefix: /}
    upstream: {url: "UPSTREAM"}
    policies:
      - rate_limit: LIMIT
`

// instance is one running gateway.
type instance struct {
	*gatewaytest.Gateway
	url     string
	metrics *telemetry.Metrics
}

func startGateway(t testing.TB, storeYAML, limitYAML, upstream string, logs io.Writer) *instance {
	t.Helper()
	src := strings.NewReplacer("STORE", storeYAML, "LIMIT", limitYAML, "UPSTREAM", upstream).Replace(gatewayYAML)
	if logs == nil {
		logs = io.Discard
	}
	m := telemetry.NewMetrics()
	g := gatewaytest.Start(t, src, gateway.Options{
		Registry: policy.NewRegistry(Unit),
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Metrics:  m,
	})
	return &instance{Gateway: g, url: g.URL, metrics: m}
}

func upstream(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	return srv.URL
}

var testClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// get sends one request as client and returns the response's status and
// headers.
func get(t testing.TB, base, client string) (int, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, base+"/products", nil)
	req.Header.Set("X-Client", client)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", base, err)
		return 0, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// blast sends n requests as client from workers goroutines, round robin
// over the gateways urls() returns at each request, and counts statuses.
func blast(t testing.TB, urls func() []string, client string, n, workers int) map[int]int {
	var next atomic.Int64
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				us := urls()
				status, _ := get(t, us[int(i)%len(us)], client)
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// redisStore is a Redis store config with timeouts generous enough for a
// loaded CI machine: a request the store times out on is refused or
// admitted by on_store_error, which would skew the exact counts these tests
// assert. A stopped Redis refuses connections at once, so outage tests do
// not need short timeouts to see it.
func redisStore(addr, prefix string) string {
	return redisStoreTimeout(addr, prefix, "10s")
}

// redisStoreTimeout is redisStore with the given dial and read timeouts.
func redisStoreTimeout(addr, prefix, timeout string) string {
	return fmt.Sprintf(`{type: redis, redis: {addresses: ["%s"], key_prefix: "%s:", dial_timeout: %s, read_timeout: %s}}`, addr, prefix, timeout, timeout)
}

// TestExactAcrossInstances: three gateways share one Redis; 10N requests
// from many goroutines spread over them admit exactly N, and restarting
// one instance midway loses no count.
func TestExactAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	up := upstream(t)
	const n = 50
	st := redisStore(srv.Addr(), t.Name())
	limit := "{key: header:X-Client, rate: 50, per: 1h}"
	var mu sync.Mutex
	insts := []*instance{startGateway(t, st, limit, up, nil), startGateway(t, st, limit, up, nil), startGateway(t, st, limit, up, nil)}
	urls := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, i := range insts {
			out = append(out, i.url)
		}
		return out
	}

	// First a fifth of the budget, then instance 1 restarts, then the rest.
	first := blast(t, urls, "exact", 10, 4)
	if got, want := first[200], 10; got != want {
		t.Fatalf("first round admitted %d, want %d (%v)", got, want, first)
	}
	insts[1].Stop()
	mu.Lock()
	insts[1] = startGateway(t, st, limit, up, nil)
	mu.Unlock()
	rest := blast(t, urls, "exact", 10*n-10, 16)
	if got, want := first[200]+rest[200], n; got != want {
		t.Errorf("admitted %d of %d requests, want exactly %d (%v then %v)", got, 10*n, want, first, rest)
	}
	if got, want := rest[429], 10*n-n; got != want {
		t.Errorf("refused %d, want %d", got, want)
	}
	// Another client is not affected.
	if status, h := get(t, insts[0].url, "other"); status != 200 || h.Get("RateLimit") != `"50-per-1h";r=49;t=72` {
		t.Errorf("other client: %d RateLimit %q, want 200 and r=49", status, h.Get("RateLimit"))
	}
}

// TestRestartFileStore: a single instance on the file store restarts
// midway and loses no count.
func TestRestartFileStore(t *testing.T) {
	up := upstream(t)
	path := filepath.Join(t.TempDir(), "state.db")
	st := fmt.Sprintf("{type: file, path: %q}", path)
	limit := "{key: header:X-Client, rate: 20, per: 1h}"
	a := startGateway(t, st, limit, up, nil)
	first := blast(t, func() []string { return []string{a.url} }, "c", 15, 4)
	a.Stop()
	b := startGateway(t, st, limit, up, nil)
	rest := blast(t, func() []string { return []string{b.url} }, "c", 30, 4)
	if got, want := first[200]+rest[200], 20; got != want || first[200] != 15 {
		t.Errorf("admitted %d then %d, want 15 then 5 (%v, %v)", first[200], rest[200], first, rest)
	}
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRedisDown kills Redis under three instances and checks each
// on_store_error mode, the metrics and logs, and automatic recovery once
// Redis is back.
func TestRedisDown(t *testing.T) {
	up := upstream(t)
	tests := []struct {
		mode string
		// admitted is how many of 300 requests pass while Redis is down.
		admittedMin, admittedMax int
		downStatus               int
	}{
		{"closed", 0, 0, 503},
		{"open", 300, 300, 200},
		// 3 instances at a third of 150 each: 150, within 1%.
		{"local", 149, 151, 429},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			srv := redistest.Start(t)
			st := redisStore(srv.Addr(), t.Name())
			limit := "{key: header:X-Client, rate: 150, per: 1h, on_store_error: " + tt.mode
			if tt.mode == "local" {
				limit += ", local_fraction: 0.3333333"
			}
			limit += "}"
			logs := &syncBuffer{}
			insts := []*instance{startGateway(t, st, limit, up, logs), startGateway(t, st, limit, up, logs), startGateway(t, st, limit, up, logs)}
			urls := func() []string { return []string{insts[0].url, insts[1].url, insts[2].url} }
			if c := blast(t, urls, "d", 30, 4); c[200] != 30 {
				t.Fatalf("before the outage: %v", c)
			}

			srv.Stop()
			down := blast(t, urls, "d", 300, 8)
			if got := down[200]; got < tt.admittedMin || got > tt.admittedMax {
				t.Errorf("Redis down, %s: admitted %d of 300, want %d..%d (%v)", tt.mode, got, tt.admittedMin, tt.admittedMax, down)
			}
			if tt.downStatus != 200 && down[tt.downStatus] == 0 {
				t.Errorf("Redis down, %s: no %d among %v", tt.mode, tt.downStatus, down)
			}
			if got, want := strings.Count(logs.String(), "limit store unreachable"), 3; got != want {
				t.Errorf("logged the outage %d times, want once per instance (%d):\n%s", got, want, logs)
			}
			if v := counterValue(t, insts[0].metrics, "gatehouse_limit_store_errors_total", tt.mode); v == 0 {
				t.Errorf("gatehouse_limit_store_errors_total{mode=%q} not counted", tt.mode)
			}

			// Redis comes back (empty): limits are shared again without
			// any restart; the first attempt after the retry pause
			// succeeds.
			srv.Restart()
			time.Sleep(limitRetry)
			deadline := time.Now().Add(60 * time.Second)
			for strings.Count(logs.String(), "limit store reachable again") < 3 && time.Now().Before(deadline) {
				blast(t, urls, "probe", 3, 3)
				time.Sleep(50 * time.Millisecond)
			}
			if got := strings.Count(logs.String(), "limit store reachable again"); got != 3 {
				t.Fatalf("recovery logged %d times, want 3:\n%s", got, logs)
			}
			after := blast(t, urls, "e", 300, 8)
			if got, want := after[200], 150; got != want {
				t.Errorf("after recovery admitted %d of 300, want exactly %d (%v)", got, want, after)
			}
		})
	}
}

// limitRetry is the pause between store attempts while it is down
// (limitkey.DefaultRetry); the recovery test waits it out once.
const limitRetry = time.Second

func counterValue(t *testing.T, m *telemetry.Metrics, name, mode string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "mode" && lp.GetValue() == mode {
					sum += mt.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
