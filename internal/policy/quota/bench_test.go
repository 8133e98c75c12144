package quota

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
)

// BenchmarkApplyMemory is one request-quota decision on the memory
// store: key, period bounds, one IncrBy, headers.
func BenchmarkApplyMemory(b *testing.B) {
	env := policytest.Env()
	env.Now = time.Now
	env.Store = store.NewMemory(nil)
	p, err := New(policytest.Node(b, "period: day\nrequests: 1000000000000\n"), env)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	pr := &policy.Principal{Consumer: "alice"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ex := policytest.Exchange(r)
		ex.Principal = pr
		if err := p.Apply(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
}
