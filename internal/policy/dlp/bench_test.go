package dlp

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// benchAll runs every built-in detector, masking.
const benchAll = `
credit_cards: {}
ibans: {}
national_ids: {}
private_keys: {}
access_tokens: {}
`

// products is about 1KB of the demo's product JSON, with no findings.
var products = func() string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":"1024","name":"Espresso Machine","price":249.9,"currency":"EUR","created":"2025-01-02T03:04:05Z"}`)
	}
	b.WriteString("]")
	return b.String()
}()

// series is about 1KB of a time series in JSON: 13-digit timestamps (in
// milliseconds), each a run the card detector searches.
var series = func() string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "[%d,%d.%d]", 1733443200000+int64(i)*60000, 10+i%7, i%10)
	}
	b.WriteString("]")
	return b.String()
}()

// discard is a client that reads nothing: the benchmark measures dlp.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) Flush()                      {}
func (d *discard) End()                        {}
func (d *discard) Refuse(*policy.Denial)       {}

// cpuTime is the process's user+system CPU time: on a shared machine the
// benchmarks' wall-clock figures include time other processes took.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkResponse is the cost per KB of response (ns/op and allocs/op
// are per 1KB body): Apply, the held status, the body in one write, the
// end of the response. cpu-MB/s is the throughput by process CPU time
// (GC included), the figure to compare on a loaded machine.
func BenchmarkResponse(b *testing.B) {
	withFindings := strings.Replace(products, `"Espresso Machine"`, `"4111 1111 1111 1111"`, 2)
	withFindings = strings.Replace(withFindings, `"2025-01-02T03:04:05Z"`, `"DE89370400440532013000"`, 1)
	for _, bc := range []struct {
		name, yaml, body string
		writes           int
	}{
		{"clean/cards", "credit_cards: {}", products, 1},
		{"clean/all", benchAll, products, 1},
		{"findings/all", benchAll, withFindings[:len(products)], 1},
		{"clean/all/64KB", benchAll, strings.Repeat(products, 64), 2},
		{"numbers/all", benchAll, series, 1},
		{"clean/all/block", strings.Replace(benchAll, "credit_cards: {}", "credit_cards: {action: block}", 1), products, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := mustNew(b, bc.yaml)
			body := []byte(bc.body)
			chunks := [][]byte{body}
			if bc.writes > 1 {
				chunks = [][]byte{body[:len(body)/2], body[len(body)/2:]}
			}
			r := httptest.NewRequest("GET", "/", nil)
			h := http.Header{"Content-Type": {"application/json"}}
			var sink discard
			kb := len(body) / 1024
			if kb == 0 {
				kb = 1
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime()
			for b.Loop() {
				ex := policytest.Exchange(r)
				d.Apply(b.Context(), ex)
				sink.h = h
				w := d.FilterResponse(ex, &sink)
				w.WriteHeader(200)
				for _, c := range chunks {
					w.Write(c)
				}
				w.End()
				ex.Done()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(kb), "ns/KB")
			if cpu := cpuTime() - start; cpu > 0 {
				b.ReportMetric(float64(len(body))*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
			}
		})
	}
}
