package throttle

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// BenchmarkApplyConcurrency is taking and giving back a consumer's
// concurrency slot and the upstream's.
func BenchmarkApplyConcurrency(b *testing.B) {
	p, err := New(policytest.Node(b, "key: header:X-Client\nconcurrency: 100\nupstream_concurrency: 1000\n"), policytest.Env())
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Client", "alice")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ex := policytest.Exchange(r)
		if err := p.Apply(ctx, ex); err != nil {
			b.Fatal(err)
		}
		ex.Done()
	}
}
