package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const floodConfig = `
listeners:
  - name: main
    address: 127.0.0.1:0
    read_header_timeout: 2s
    body_idle_timeout: 2s
    idle_timeout: 3s
    max_connections: 3000
    max_connections_per_ip: 1000
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: echo
    match: {path_prefix: /}
    upstream: {url: "${UP}"}
`

// TestHostileConnections holds 3,000 idle, 500 slow-header and 500
// slow-body connections against a gateway with its bounds set low, from
// three addresses other than a normal client's, and checks that the
// normal client is served throughout, that every hostile connection is
// closed by the gateway (refused at once over max_connections_per_ip, or
// ended by read_header_timeout and body_idle_timeout), and that the
// gateway's goroutines and heap come back to their baseline.
func TestHostileConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4,000 connections")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	g := startGateway(t, floodConfig, map[string]string{"UP": up.URL})
	addr := strings.TrimPrefix(g.base, "http://")

	// Baseline after a few requests.
	normal := &http.Client{Timeout: 30 * time.Second}
	for range 5 {
		mustGet(t, normal, g.base+"/warm")
	}
	baseGoroutines, baseHeap := settle()

	// The normal client, until the flood is over.
	var served, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := normal.Get(g.base + "/normal")
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				if err == nil {
					resp.Body.Close()
				}
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				served.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
		c, err := d.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			// Refused over a bound (closed with a reset) before the
			// handshake's last step was seen here.
			return nil
		}
		if err != nil {
			t.Fatalf("dial from %s: %v", from, err)
		}
		return c
	}
	var hostile []net.Conn
	add := func(c net.Conn, first string) {
		if c == nil {
			return
		}
		if first != "" {
			io.WriteString(c, first)
		}
		hostile = append(hostile, c)
	}
	for range 3000 {
		add(dial("127.0.0.2"), "") // idle: not a byte
	}
	for range 500 {
		add(dial("127.0.0.3"), "GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ") // never ends
	}
	for range 500 {
		add(dial("127.0.0.4"), "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nfirst bytes") // then nothing
	}

	// Every hostile connection is closed by the gateway: a read ends
	// with EOF or a reset, never with our own (generous) deadline.
	deadline := time.Now().Add(120 * time.Second)
	var open int
	for _, c := range hostile {
		c.SetReadDeadline(deadline)
		_, err := io.Copy(io.Discard, c) // a slow body gets its 408 first
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			open++
		}
		c.Close()
	}
	close(stop)
	wg.Wait()
	if open > 0 {
		t.Errorf("%d of %d hostile connections were still open after 120 s", open, len(hostile))
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("the normal client failed %d times during the flood (served %d)", n, served.Load())
	}
	if served.Load() == 0 {
		t.Error("the normal client was never served")
	}
	refused := metricSum(t, g, "gatehouse_connections_refused_total", `reason="max_connections_per_ip"`)
	if refused < 2000 {
		t.Errorf("gatehouse_connections_refused_total{max_connections_per_ip} = %v, want at least the 2,000 idle connections over the bound", refused)
	}

	goroutines, heap := settle()
	t.Logf("normal client served %d; goroutines %d -> %d, heap %d -> %d KiB", served.Load(), baseGoroutines, goroutines, baseHeap>>10, heap>>10)
	if goroutines > baseGoroutines+50 {
		t.Errorf("goroutines: %d after the flood, %d before", goroutines, baseGoroutines)
	}
	if heap > baseHeap+16<<20 {
		t.Errorf("live heap: %d KiB after the flood, %d KiB before", heap>>10, baseHeap>>10)
	}
}

func mustGet(t *testing.T, c *http.Client, url string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
}

// settle waits for the goroutine count to stop falling and returns it and
// the live heap after collections.
func settle() (int, uint64) {
	n := goruntime.NumGoroutine()
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		m := goruntime.NumGoroutine()
		if m >= n {
			break
		}
		n = m
	}
	// Twice: sync.Pool's victim cache (net/http's buffers) lives through
	// one collection.
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return goruntime.NumGoroutine(), ms.HeapAlloc
}

// metricSum adds the values of the samples of name whose labels contain
// match, from the gateway's registry.
func metricSum(t *testing.T, g *testGateway, name, match string) float64 {
	t.Helper()
	mfs, err := g.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			if strings.Contains(strings.Join(labels, ","), match) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
