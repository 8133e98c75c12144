package forwardauth_test

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peertest"
)

// BenchmarkBehindNginx measures, side by side in one run, the request
// rate of the bench route (jwt, a local rate limit never reached, scopes)
// served two ways in front of the same upstream, by 16 concurrent
// keep-alive clients:
//
//   - gateway: Gatehouse proxies the request itself;
//   - nginx: nginx proxies it, asking Gatehouse's forward-auth endpoint
//     first (auth_request over kept-alive connections).
//
// Each of b.N iterations is
// one round of 500 requests through each path, alternating which goes
// first, so that both see the same neighbours; the wall time of each
// path's rounds is summed. It reports gateway-req/s, nginx-req/s and
// their ratio nginx/gateway. Everything shares the machine's cores, so
// the figures move with the load of others: run it with -benchtime 10x
// or more.
func BenchmarkBehindNginx(b *testing.B) {
	bin := peertest.Debian(b, "nginx", "nginx")
	env, fwd := start(b, "127.0.0.1/32")
	listen := freePort(b)
	startNginx(b, bin, listen, env.Upstream.URL, fwd)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	token := "Bearer " + env.Reader
	get := func(base string) error {
		r, _ := http.NewRequest("GET", base+"/bench/p-1", nil)
		r.Header.Set("Authorization", token)
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Errorf("%s: status %d", base, resp.StatusCode)
		}
		return nil
	}
	const clients, perRound = 16, 500
	round := func(base string) time.Duration {
		var left atomic.Int64
		left.Store(perRound)
		var wg sync.WaitGroup
		t0 := time.Now()
		for range clients {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if err := get(base); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	paths := [2]string{env.GW.URL, "http://" + listen}
	for _, p := range paths {
		round(p) // warm: connections, caches
	}
	var spent [2]time.Duration
	n := 0
	for b.Loop() {
		for k := range 2 {
			i := (n + k) % 2
			spent[i] += round(paths[i])
		}
		n++
	}
	gw := float64(n*perRound) / spent[0].Seconds()
	ng := float64(n*perRound) / spent[1].Seconds()
	b.ReportMetric(gw, "gateway-req/s")
	b.ReportMetric(ng, "nginx-req/s")
	b.ReportMetric(ng/gw, "nginx/gateway")
}
