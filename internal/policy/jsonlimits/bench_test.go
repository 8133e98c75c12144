package jsonlimits

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// body2KB is a 2KB JSON order of demo products.
var body2KB = func() []byte {
	var b strings.Builder
	b.WriteString(`{"customer":{"id":"c-1024","name":"Ada","tags":["vip","eu"]},"items":[`)
	for i := 0; b.Len() < 1950; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":"%d","name":"Espresso Machine","price":249.9,"qty":%d}`, i, i%5+1)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}()

// BenchmarkApply is the policy on a 2KB body: buffering it and checking it.
func BenchmarkApply(b *testing.B) {
	p, err := New(policytest.Node(b, ""), policytest.Env())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body2KB)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/product", bytes.NewReader(body2KB))
		r.Header.Set("Content-Type", "application/json")
		if err := p.Apply(b.Context(), policytest.Exchange(r)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck compares the scanner with encoding/json's Decoder.Token
// walk (what a streaming check on the standard library would cost, before
// any limit is even counted) on the same 2KB body.
func BenchmarkCheck(b *testing.B) {
	lim := Limits{Depth: 32, Keys: 1000, Array: 10000, String: 64 << 10, Number: 64, Tokens: 100000}
	b.Run("scanner", func(b *testing.B) {
		c := &checker{lim: lim}
		b.SetBytes(int64(len(body2KB)))
		b.ReportAllocs()
		for b.Loop() {
			if v := c.check(body2KB); v != nil {
				b.Fatal(v.msg)
			}
		}
	})
	b.Run("decoder_token", func(b *testing.B) {
		b.SetBytes(int64(len(body2KB)))
		b.ReportAllocs()
		for b.Loop() {
			dec := json.NewDecoder(bytes.NewReader(body2KB))
			for {
				if _, err := dec.Token(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
