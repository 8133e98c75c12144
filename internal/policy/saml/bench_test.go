package saml

import "testing"

// BenchmarkValidate measures the policy on a bearer assertion from the
// STS (RSA-2048): parse, verify, times, audience, cancellation lookup,
// principal, authorization, header removal.
func BenchmarkValidate(b *testing.B) {
	f := newFixture(b)
	p := f.policy(b, basicPolicy)
	msg := f.message(f.issue(b, "alice", "alicepw", "urn:gatehouse:products"), "GetProduct")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apply(b, p, msg, true); err != nil {
			b.Fatal(err)
		}
	}
}
