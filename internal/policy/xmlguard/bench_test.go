package xmlguard

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// BenchmarkApply is the whole policy on the 2 KB SOAP 1.1 request of
// internal/soap/testdata (WS-Security header, CreateProduct): body
// buffering, scan, parse, envelope and binding checks, WSDL allow-list and
// action match. BenchmarkApplyREST is the scan alone on the same bytes.
func BenchmarkApply(b *testing.B) {
	g := newGuard(b, writeDemoWSDL(b, "soap:\n  wsdl: products.wsdl\n"), policy.SOAP11)
	bench(b, g, policy.SOAP11)
}

func BenchmarkApplyREST(b *testing.B) {
	g := newGuard(b, policytest.Node(b, ""), policy.REST)
	bench(b, g, policy.REST)
}

func bench(b *testing.B, g *Guard, proto policy.Protocol) {
	body, err := os.ReadFile("../../soap/testdata/request-2k.xml")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	apply := func() error {
		r := httptest.NewRequest(http.MethodPost, "/soap/products", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct11)
		r.Header.Set("SOAPAction", `"`+demo.SOAPActionCreateProduct+`"`)
		ex := policytest.Exchange(r)
		ex.Route.Protocol = proto
		return g.Apply(ctx, ex)
	}
	if err := apply(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := apply(); err != nil {
			b.Fatal(err)
		}
	}
}
