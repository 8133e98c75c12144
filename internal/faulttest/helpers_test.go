package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (logs).
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

// gw is a started gateway with its logs and metrics at hand.
type gw struct {
	*gateway.Gateway
	base    string // http://127.0.0.1:port of the listener "main"
	addr    string // 127.0.0.1:port
	metrics *telemetry.Metrics
	log     *syncBuffer // operational log
	access  *syncBuffer // access log
}

// options tune startGateway.
type options struct {
	now     func() time.Time
	baseDir string
}

// startGateway builds and starts a gateway from yaml, with ${NAME}
// expanded from vars, and shuts it down at the end of t.
func startGateway(t testing.TB, yaml string, vars map[string]string, opt options) *gw {
	t.Helper()
	cfg, err := config.LoadBytes("faulttest.yaml", []byte(yaml), func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if opt.baseDir == "" {
		opt.baseDir = t.TempDir()
	}
	g := &gw{metrics: telemetry.NewMetrics(), log: &syncBuffer{}, access: &syncBuffer{}}
	g.Gateway, err = gateway.New(cfg, gateway.Options{
		BaseDir:   opt.baseDir,
		Registry:  builtin.Registry(),
		Metrics:   g.metrics,
		Now:       opt.now,
		Logger:    slog.New(slog.NewJSONHandler(g.log, nil)),
		AccessLog: slog.New(slog.NewJSONHandler(g.access, nil)),
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	g.addr = g.Addr("main").String()
	g.base = "http://" + g.addr
	return g
}

// client is an HTTP client with a bound on every request, so that a test
// fails rather than hangs.
var client = &http.Client{Timeout: 5 * time.Second}

// result is a finished exchange: status, the stable code of a problem
// body (or ""), the body and the headers.
type result struct {
	status int
	code   string
	body   string
	header http.Header
}

// get sends a GET with optional headers (name, value pairs).
func get(t testing.TB, url string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := send(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

func send(req *http.Request) (result, error) {
	resp, err := client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{status: resp.StatusCode, header: resp.Header}, err
	}
	return result{status: resp.StatusCode, code: problemCode(b), body: string(b), header: resp.Header}, nil
}

// problemCode is the "code" member of a problem+json body, or "".
func problemCode(b []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Code
}

// want fails t unless r has status and code.
func (r result) want(t testing.TB, what string, status int, code string) {
	t.Helper()
	if r.status != status || r.code != code {
		t.Errorf("%s: got %d %q (%s), want %d %q", what, r.status, r.code, r.body, status, code)
	}
}

// eventually polls f every 20 ms until it returns "" or the timeout
// passes, then fails t with f's last answer.
func eventually(t testing.TB, timeout time.Duration, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		last := f()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue sums the series of name whose labels include the given
// name, value pairs.
func metricValue(t testing.TB, m *telemetry.Metrics, name string, labels ...string) float64 {
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
	series:
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case s.GetCounter() != nil:
				sum += s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				sum += s.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// rawExchange writes raw to a new connection to addr and returns every
// response read until the gateway closes the connection or 2 s pass
// without a byte.
func rawExchange(t testing.TB, addr, raw string) []*http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out []*http.Response
	br := bufio.NewReader(c)
	for range 10 {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		out = append(out, resp)
		if resp.Close {
			return out
		}
	}
	return out
}

// recorder is an upstream that records the requests it receives whole:
// "METHOD PATH len(body)", or "METHOD PATH aborted" when the body did not
// arrive complete (the gateway gave up on it mid-way).
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	entry := fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, len(b))
	if err != nil {
		entry = fmt.Sprintf("%s %s aborted", r.Method, r.URL.Path)
	}
	rec.mu.Lock()
	rec.seen = append(rec.seen, entry)
	rec.mu.Unlock()
	io.WriteString(w, "ok")
}

// complete returns the entries of seen that are whole requests.
func complete(seen []string) []string {
	var out []string
	for _, s := range seen {
		if !strings.HasSuffix(s, " aborted") {
			out = append(out, s)
		}
	}
	return out
}

func (rec *recorder) take() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s := rec.seen
	rec.seen = nil
	return s
}

// lines returns the lines of s containing sub.
func lines(s, sub string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}
