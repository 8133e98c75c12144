package openapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// BenchmarkApply is request validation of the demo's POST /product.
func BenchmarkApply(b *testing.B) {
	p, err := New(policytest.Node(b, "spec: testdata/products.openapi.yaml"), policytest.Env())
	if err != nil {
		b.Fatal(err)
	}
	const body = `{"name":"Espresso Machine","price":249.9,"currency":"EUR"}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/product", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if err := p.Apply(b.Context(), policytest.Exchange(r)); err != nil {
			b.Fatal(err)
		}
	}
}
