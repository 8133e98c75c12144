package sts

import (
	"context"
	"testing"
)

// BenchmarkIssue measures Issue end to end (parse, UsernameToken check,
// assertion build and signature, registry write, response), per signing
// algorithm. Each iteration advances the clock a millisecond so that the
// Timestamp stays fresh and no nonce repeats.
func BenchmarkIssue(b *testing.B) {
	for _, alg := range []string{"rsa-sha256", "ecdsa-sha256"} {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, alg)
			msg := []byte(f.rst(true, "bob", "bobpw", actIssue, issueBody("urn:gatehouse:products", "")))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.srv.Handle(ctx, msg, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
