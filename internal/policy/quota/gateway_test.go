package quota

import (
	"bytes"
	"fmt"
	"io"
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
)

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
      - quota: QUOTA
`

type instance struct {
	*gatewaytest.Gateway
	url string
}

func startGateway(t testing.TB, storeYAML, quotaYAML, upstream string) *instance {
	t.Helper()
	src := strings.NewReplacer("STORE", storeYAML, "QUOTA", quotaYAML, "UPSTREAM", upstream).Replace(gatewayYAML)
	g := gatewaytest.Start(t, src, gateway.Options{Registry: policy.NewRegistry(Unit)})
	return &instance{Gateway: g, url: g.URL}
}

// upstream answers every request with size bytes after reading the body.
func upstream(t testing.TB, size int) string {
	t.Helper()
	body := bytes.Repeat([]byte("x"), size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

func send(t testing.TB, base, who string, body []byte) (int, http.Header) {
	var rd io.Reader
	method := http.MethodGet
	if body != nil {
		rd, method = bytes.NewReader(body), http.MethodPost
	}
	req, _ := http.NewRequest(method, base+"/products", rd)
	req.Header.Set("X-Client", who)
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, base, err)
		return 0, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func blast(t testing.TB, urls []string, who string, n, workers int) map[int]int {
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
				status, _ := send(t, urls[int(i)%len(urls)], who, nil)
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// TestBytesCounted: request and response body bytes are counted as they
// stream; a byte quota refuses once reached.
func TestBytesCounted(t *testing.T) {
	up := upstream(t, 2000)
	inst := startGateway(t, "{type: memory}", "{key: header:X-Client, period: day, bytes: 5000}", up)
	status, h := send(t, inst.url, "b", bytes.Repeat([]byte("y"), 1000))
	if status != 200 || h.Get(HeaderBytesRemaining) != "5000" {
		t.Fatalf("first: %d remaining %q, want 200 and 5000", status, h.Get(HeaderBytesRemaining))
	}
	// The count lands when the request ends, just after the client has
	// its response: wait for it, boundedly.
	var remaining string
	for range 100 {
		// A GET costs 2000 response bytes; remaining is at admission.
		status, h = send(t, inst.url, "b", nil)
		remaining = h.Get(HeaderBytesRemaining)
		if remaining != "5000" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status != 200 || remaining != "2000" {
		t.Fatalf("second: %d remaining %q, want 200 and 2000 (1000 up + 2000 down counted)", status, remaining)
	}
	time.Sleep(50 * time.Millisecond)
	status, _ = send(t, inst.url, "b", nil)
	if status != 429 {
		t.Fatalf("third request after 5000 bytes: %d, want 429", status)
	}
}

func redisStore(addr, prefix string) string {
	return fmt.Sprintf(`{type: redis, redis: {addresses: ["%s"], key_prefix: "%s:"}}`, addr, prefix)
}

// TestExactAcrossInstances: three gateways on one Redis, 10N requests,
// exactly N admitted; one instance restarted midway.
func TestExactAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	up := upstream(t, 2)
	st := redisStore(srv.Addr(), t.Name())
	q := "{key: header:X-Client, period: day, requests: 40}"
	insts := []*instance{startGateway(t, st, q, up), startGateway(t, st, q, up), startGateway(t, st, q, up)}
	urls := func() []string { return []string{insts[0].url, insts[1].url, insts[2].url} }
	first := blast(t, urls(), "x", 100, 16)
	insts[2].Stop()
	insts[2] = startGateway(t, st, q, up)
	rest := blast(t, urls(), "x", 300, 16)
	if got, want := first[200]+rest[200], 40; got != want {
		t.Errorf("admitted %d of 400, want exactly %d (%v, %v)", got, want, first, rest)
	}
}

// TestRestartFileStore: counters survive a restart on the file store.
func TestRestartFileStore(t *testing.T) {
	up := upstream(t, 2)
	st := fmt.Sprintf("{type: file, path: %q}", filepath.Join(t.TempDir(), "state.db"))
	q := "{key: header:X-Client, period: month, requests: 12}"
	a := startGateway(t, st, q, up)
	first := blast(t, []string{a.url}, "r", 8, 4)
	a.Stop()
	b := startGateway(t, st, q, up)
	rest := blast(t, []string{b.url}, "r", 20, 4)
	if first[200] != 8 || rest[200] != 4 {
		t.Errorf("admitted %d then %d, want 8 then 4 (%v, %v)", first[200], rest[200], first, rest)
	}
}
