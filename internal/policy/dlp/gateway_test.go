package dlp

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

const gatewayYAML = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: products
    match: {path_prefix: /}
    upstream: {url: "UPSTREAM"}
    policies:
      - dlp: DLP
`

// syncBuffer is a bytes.Buffer safe for the gateway's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

type instance struct {
	url     string
	metrics *telemetry.Metrics
	logs    *syncBuffer
	access  *syncBuffer
}

func startGateway(t *testing.T, dlpYAML, upstream string) *instance {
	t.Helper()
	src := strings.NewReplacer("DLP", dlpYAML, "UPSTREAM", upstream).Replace(gatewayYAML)
	inst := &instance{metrics: telemetry.NewMetrics(), logs: new(syncBuffer), access: new(syncBuffer)}
	g := gatewaytest.Start(t, src, gateway.Options{
		Registry:  policy.NewRegistry(Unit),
		Logger:    slog.New(slog.NewTextHandler(inst.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AccessLog: slog.New(slog.NewJSONHandler(inst.access, nil)),
		Metrics:   inst.metrics,
	})
	inst.url = g.URL
	return inst
}

// chunkedUpstream answers every request with body, in writes of step
// bytes, each flushed, so that the gateway sees it in pieces; with
// length it also sends Content-Length. It records the Accept-Encoding
// it was sent.
func chunkedUpstream(t *testing.T, body string, step int, length bool, gotAE *string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gotAE != nil {
			*gotAE = r.Header.Get("Accept-Encoding")
		}
		w.Header().Set("Content-Type", "application/json")
		if length {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		for _, c := range splits(body, step) {
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/product", nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

// The card number straddles the upstream's flushed writes; masked, with
// Content-Length still right, whether the upstream sent one or not.
func TestGatewayMaskStreamed(t *testing.T) {
	body := `[{"id":"1","name":"Gift card","description":"test card 4111 1111 1111 1111, valid"},` +
		`{"id":"2","card":"5500000000000004","x":"` + strings.Repeat("y", 70000) + `"}]`
	want := strings.Replace(strings.Replace(body, "4111 1111 1111 1111", "**** **** **** 1111", 1), "5500000000000004", "************0004", 1)
	for _, length := range []bool{true, false} {
		t.Run("content-length="+strconv.FormatBool(length), func(t *testing.T) {
			var ae string
			inst := startGateway(t, "{credit_cards: {}}", chunkedUpstream(t, body, 50, length, &ae))
			resp, got := fetch(t, inst.url)
			if resp.StatusCode != 200 || got != want {
				t.Fatalf("got %d %.120s, want 200 %.120s", resp.StatusCode, got, want)
			}
			if length && resp.ContentLength != int64(len(want)) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(want))
			}
			if ae != "" {
				t.Errorf("upstream got Accept-Encoding %q, want none", ae)
			}
			if n := counterValue(t, inst.metrics.DLPFinding("products", "credit_card", "mask")); n != 2 {
				t.Errorf("findings metric %v, want 2", n)
			}
			if !strings.Contains(inst.access.String(), `"bytes_out":`+strconv.Itoa(len(want))) {
				t.Errorf("access log does not count the bytes sent: %s", inst.access.String())
			}
		})
	}
}

func TestGatewayBlock(t *testing.T) {
	body := `{"iban":"DE89 3704 0044 0532 0130 00"}`
	inst := startGateway(t, "{ibans: {action: block}}", chunkedUpstream(t, body, 10, true, nil))
	resp, got := fetch(t, inst.url)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	var p struct{ Code string }
	if err := json.Unmarshal([]byte(got), &p); err != nil || p.Code != CodeBlocked {
		t.Errorf("body %s (%v)", got, err)
	}
	if strings.Contains(got, "3704") {
		t.Errorf("the value leaked: %s", got)
	}
	if n := counterValue(t, inst.metrics.DLPFinding("products", "iban", "block")); n != 1 {
		t.Errorf("findings metric %v, want 1", n)
	}
	if !strings.Contains(inst.access.String(), `"status":502`) {
		t.Errorf("access log: %s", inst.access.String())
	}
	logs := inst.logs.String()
	if !strings.Contains(logs, "detector=iban") || strings.Contains(logs, "3704") {
		t.Errorf("logs: %s", logs)
	}

	// Clean responses on a blocking route arrive whole, status intact.
	clean := `{"iban":"none"}` + strings.Repeat(" ", 5000)
	inst = startGateway(t, "{ibans: {action: block}}", chunkedUpstream(t, clean, 100, false, nil))
	if resp, got := fetch(t, inst.url); resp.StatusCode != 200 || got != clean {
		t.Errorf("clean: got %d %.40s", resp.StatusCode, got)
	}
}

func TestGatewayLog(t *testing.T) {
	body := `{"ssn":"123-45-6789"}`
	inst := startGateway(t, "{national_ids: {action: log}}", chunkedUpstream(t, body, 5, true, nil))
	if resp, got := fetch(t, inst.url); resp.StatusCode != 200 || got != body {
		t.Errorf("got %d %s", resp.StatusCode, got)
	}
	logs := inst.logs.String()
	if !strings.Contains(logs, "dlp finding") || !strings.Contains(logs, "detector=us_ssn") ||
		!strings.Contains(logs, "request_id=") || strings.Contains(logs, "6789") {
		t.Errorf("logs: %s", logs)
	}
	if n := counterValue(t, inst.metrics.DLPFinding("products", "us_ssn", "log")); n != 1 {
		t.Errorf("findings metric %v, want 1", n)
	}
}

// An upstream that compresses although it was not asked to is refused:
// its body cannot be read.
func TestGatewayCompressedUpstream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write([]byte{0x1f, 0x8b, 0, 0})
	}))
	t.Cleanup(srv.Close)
	inst := startGateway(t, "{credit_cards: {}}", srv.URL)
	resp, got := fetch(t, inst.url)
	if resp.StatusCode != 502 || !strings.Contains(got, CodeUnscannable) {
		t.Errorf("got %d %s", resp.StatusCode, got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
