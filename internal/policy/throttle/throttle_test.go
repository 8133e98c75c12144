package throttle

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/policy"
)

const gatewayYAML = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: files
    match: {path_prefix: /}
    upstream: {url: "UPSTREAM"}
    policies:
      - throttle: THROTTLE
`

func startGateway(t *testing.T, throttle, upstream string) string {
	t.Helper()
	src := strings.NewReplacer("THROTTLE", throttle, "UPSTREAM", upstream).Replace(gatewayYAML)
	cfg, err := config.LoadBytes("gatehouse.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Registry: policy.NewRegistry(Unit), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()); g.Close() })
	return "http://" + g.Addr("main").String()
}

const mib = 1 << 20

// within10 fails unless the transfer of n bytes shaped to rate with burst
// took the time the bucket allows, within 10%.
func within10(t *testing.T, what string, n, rate, burst int, took time.Duration) {
	t.Helper()
	want := time.Duration(float64(n-burst) / float64(rate) * float64(time.Second))
	if took < want*9/10 || took > want*11/10 {
		t.Errorf("%s: %d bytes took %v, want %v ±10%% (%.0f B/s for %d B/s)", what, n, took, want, float64(n-burst)/took.Seconds(), rate)
	} else {
		t.Logf("%s: %d bytes in %v (want %v)", what, n, took, want)
	}
}

// TestBandwidth measures loopback transfers through the gateway: a 2MiB
// download at 1MiB/s, a 1MiB upload, and two concurrent downloads of one
// consumer sharing its bandwidth.
func TestBandwidth(t *testing.T) {
	payload := bytes.Repeat([]byte("z"), 2*mib)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
			return
		}
		size := 2 * mib
		if r.URL.Query().Get("half") != "" {
			size = mib
		}
		w.Write(payload[:size])
	}))
	defer up.Close()
	const burst = 64 << 10
	base := startGateway(t, "{key: header:X-Client, bandwidth: 1MiB, burst: 64KiB}", up.URL)

	fetch := func(path, who string, body io.Reader) int64 {
		method := http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("X-Client", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		defer resp.Body.Close()
		n, _ := io.Copy(io.Discard, resp.Body)
		return n
	}

	start := time.Now()
	if n := fetch("/f", "a", nil); n != 2*mib {
		t.Fatalf("downloaded %d bytes, want %d", n, 2*mib)
	}
	within10(t, "download", 2*mib, mib, burst, time.Since(start))

	start = time.Now()
	fetch("/f", "b", bytes.NewReader(payload[:mib]))
	within10(t, "upload", mib, mib, burst, time.Since(start))

	// Two concurrent downloads of 1MiB by one consumer share 1MiB/s.
	start = time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); fetch("/f?half=1", "c", nil) }()
	}
	wg.Wait()
	within10(t, "two concurrent downloads", 2*mib, mib, burst, time.Since(start))
}

// TestConcurrency: a consumer's third request in flight is refused with
// 429, the route's fifth with 503; slots come back when requests end.
func TestConcurrency(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer up.Close()
	base := startGateway(t, "{key: header:X-Client, concurrency: 2, upstream_concurrency: 4}", up.URL)
	do := func(who string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Header.Set("X-Client", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	var wg sync.WaitGroup
	hold := func(who string) {
		wg.Add(1)
		go func() { defer wg.Done(); do(who) }()
		<-entered
	}
	hold("a")
	hold("a")
	if status, ra := do("a"); status != 429 || ra != "1" {
		t.Errorf("third of a: %d Retry-After %q, want 429 and 1", status, ra)
	}
	hold("b")
	hold("c")
	if status, _ := do("d"); status != 503 {
		t.Errorf("fifth in flight on the route: %d, want 503", status)
	}
	close(release)
	wg.Wait()
	// All slots are free again (the upstream no longer blocks).
	for i := range 3 {
		if status, _ := doAfter(t, base, "a"); status != 200 {
			t.Errorf("after release, request %d: %d", i, status)
		}
	}
}

func doAfter(t *testing.T, base, who string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("X-Client", who)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
