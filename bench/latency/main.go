// Command latency measures request latency at a fixed request rate, which
// wrk cannot: wrk drives a target as fast as it answers, so on a small
// machine its percentiles are queueing, not the target's own delay. This
// sends -rate requests a second over -conns keep-alive connections for
// -duration to each URL in turn, timing each request from when it was
// due (not from when a connection was free, so a stall is not hidden:
// "coordinated omission"), and prints p50, p99 and p99.9 per URL, and
// for every URL after the first, what it adds to the first's: over all
// its requests (+p50, +p99), and as the median over the rounds of its p99
// in its turn less the first URL's in the same round (+p99/turn).
//
// The URLs take turns in slices of -slice (1s), round after round, until
// each has had -duration: on a shared machine the neighbours' load comes
// and goes over seconds, and taking turns spreads it over all URLs alike
// instead of landing on whichever URL's run it fell in.
//
//	go run ./bench/latency -rate 2000 -duration 10s -H 'Authorization: Bearer ...' URL1 URL2 ...
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	rate := flag.Int("rate", 2000, "requests per `second`")
	conns := flag.Int("conns", 16, "keep-alive `connections`")
	duration := flag.Duration("duration", 10*time.Second, "how long to send to each URL")
	slice := flag.Duration("slice", time.Second, "how long each URL's turn lasts")
	var hdr headers
	flag.Var(&hdr, "H", "a request `header` (Name: value); repeatable")
	flag.Parse()
	if flag.NArg() == 0 || *rate <= 0 || *conns <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	fmt.Printf("fixed rate %d req/s over %d connections, %v per URL in %v turns\n", *rate, *conns, *duration, *slice)
	fmt.Printf("%-40s %10s %10s %10s %10s %10s %12s %8s\n", "url", "p50", "p99", "p99.9", "+p50", "+p99", "+p99/turn", "errors")
	urls := flag.Args()
	lats := make([][]time.Duration, len(urls))
	errs := make([]int, len(urls))
	clients := make([]*http.Client, len(urls))
	for i := range urls {
		tr := &http.Transport{MaxConnsPerHost: *conns, MaxIdleConnsPerHost: *conns, DisableCompression: true}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	// turnAdded[i] holds, for each round, URL i's p99 in its turn minus
	// the first URL's in the same round: a burst of the neighbours' load
	// spoils one round's figure, not the median of them.
	turnAdded := make([][]time.Duration, len(urls))
	*slice = min(*slice, *duration)
	for left := *duration; left > 0; left -= *slice {
		var base99 time.Duration
		for i, u := range urls {
			lat, e := run(clients[i], u, hdr, *rate, *conns, min(*slice, left))
			lats[i] = append(lats[i], lat...)
			errs[i] += e
			slices.Sort(lat)
			if i == 0 {
				base99 = quantile(lat, .99)
			} else {
				turnAdded[i] = append(turnAdded[i], quantile(lat, .99)-base99)
			}
		}
	}
	var base []time.Duration
	for i, u := range urls {
		lat := lats[i]
		slices.Sort(lat)
		p := quantile
		add50, add99, addTurn := "-", "-", "-"
		if i == 0 {
			base = lat
		} else {
			add50 = (p(lat, .50) - p(base, .50)).Round(time.Microsecond).String()
			add99 = (p(lat, .99) - p(base, .99)).Round(time.Microsecond).String()
			t := turnAdded[i]
			slices.Sort(t)
			addTurn = t[len(t)/2].Round(time.Microsecond).String()
		}
		fmt.Printf("%-40s %10v %10v %10v %10s %10s %12s %8d\n", u, p(lat, .50).Round(time.Microsecond),
			p(lat, .99).Round(time.Microsecond), p(lat, .999).Round(time.Microsecond), add50, add99, addTurn, errs[i])
	}
}

// quantile returns the q-quantile of the sorted l, 0 for none.
func quantile(l []time.Duration, q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

// run sends rate requests a second to u for d and returns the latencies
// of the requests that got a 2xx, and the count of the others.
func run(client *http.Client, u string, hdr headers, rate, conns int, d time.Duration) ([]time.Duration, int) {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	due := make(chan time.Time, n)
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, n)
		errs int
		wg   sync.WaitGroup
	)
	// Enough workers that a slow answer never delays the next request's
	// start: each waits for its due time, sends, and records.
	for range conns * 4 {
		wg.Go(func() {
			for t := range due {
				time.Sleep(time.Until(t))
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				for _, h := range hdr {
					k, v, _ := strings.Cut(h, ":")
					if strings.EqualFold(strings.TrimSpace(k), "Host") {
						req.Host = strings.TrimSpace(v) // net/http sends req.Host, not a Host header
						continue
					}
					req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
				}
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode < 300
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				el := time.Since(t)
				mu.Lock()
				if ok {
					lat = append(lat, el)
				} else {
					errs++
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now().Add(100 * time.Millisecond)
	for i := range n {
		due <- start.Add(time.Duration(i) * interval)
	}
	close(due)
	wg.Wait()
	return lat, errs
}
