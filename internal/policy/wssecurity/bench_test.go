package wssecurity

import (
	"context"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// bigPayload pads the body so that the whole message is about 2 KB.
func bigPayload(n int) string {
	var b strings.Builder
	b.WriteString(`<m:CreateProduct xmlns:m="urn:gatehouse:demo:products">`)
	for i := 0; b.Len() < n; i++ {
		b.WriteString(`<m:line><m:sku>SKU-000` + string(rune('0'+i%10)) + `</m:sku><m:name>Pour-over kettle &amp; filter</m:name><m:qty>2</m:qty></m:line>`)
	}
	b.WriteString(`</m:CreateProduct>`)
	return b.String()
}

func benchApply(b *testing.B, p *Policy, msg func(i int) string) {
	b.Helper()
	r := httptest.NewRequest(http.MethodPost, "/soap", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := msg(i)
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
		ex := &policy.Exchange{Request: r, Route: &policy.Route{Protocol: policy.SOAP11}}
		if err := p.Apply(context.Background(), ex); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUsernameTokenDigest is (a): a PasswordDigest UsernameToken and
// a Timestamp on a 2 KB message, each with a fresh nonce spent in the
// memory store. Building the message (a SHA-1, string concatenation) is
// inside the loop; it costs about a microsecond.
func BenchmarkUsernameTokenDigest(b *testing.B) {
	now := policytest.Start
	p := build(b, utConfig, &clock{now})
	body := bigPayload(1500)
	nonce := newNonce(b)
	benchApply(b, p, func(i int) string {
		nonce[0], nonce[1], nonce[2], nonce[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		return envOpen11 + `<soap:Header>` + secOpen + timestamp(now) + usernameToken("alice", "s3cret", true, nonce, now) +
			`</wsse:Security></soap:Header><soap:Body wsu:Id="Body-1">` + body + `</soap:Body></soap:Envelope>`
	})
}

// BenchmarkX509Signature is (b): an X.509 BinarySecurityToken (RSA 2048)
// and an RSA-SHA256 signature over Body and Timestamp, on a 2 KB message.
// The same message is verified every time, so the signature replay cache
// is off here (with it on, each message costs one more SetNX: about a
// microsecond in memory, a round trip on Redis); the certificate chain
// verdict is cached, as in production for a busy signer.
func BenchmarkX509Signature(b *testing.B) {
	ca := xmlsigtest.NewCA(b, "bench CA")
	leaf := ca.Issue(b, pkix.Name{CommonName: "bench signer"}, xmlsigtest.RSAKey(b, 1), nil)
	caFile := writeFile(b, b.TempDir(), "ca.pem", ca.CertPEM())
	now := time.Now()
	p := build(b, "x509: {trust: {ca_file: "+caFile+"}}\nsignature: {replay_cache: false}\n", &clock{now})
	msg := signedMessage(b, leaf, nil, now, refReference, bigPayload(700))
	b.ReportMetric(float64(len(msg)), "msg-bytes")
	benchApply(b, p, func(int) string { return msg })
}

// benchChain is benchApply through xmlguard first, as on a SOAP route:
// xmlguard's scan and parse, then wssecurity on xmlguard's tree. It is
// what the gateway spends on the message in both policies together.
func benchChain(b *testing.B, c chain, msg func(i int) string) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.run(soapRequest(msg(i)), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChainUsernameTokenDigest is (a) behind xmlguard.
func BenchmarkChainUsernameTokenDigest(b *testing.B) {
	now := policytest.Start
	c := newChain(b, utConfig, &clock{now})
	body := bigPayload(1500)
	nonce := newNonce(b)
	benchChain(b, c, func(i int) string {
		nonce[0], nonce[1], nonce[2], nonce[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		return envOpen11 + `<soap:Header>` + secOpen + timestamp(now) + usernameToken("alice", "s3cret", true, nonce, now) +
			`</wsse:Security></soap:Header><soap:Body wsu:Id="Body-1">` + body + `</soap:Body></soap:Envelope>`
	})
}

// BenchmarkChainX509Signature is (b) behind xmlguard.
func BenchmarkChainX509Signature(b *testing.B) {
	ca := xmlsigtest.NewCA(b, "bench CA")
	leaf := ca.Issue(b, pkix.Name{CommonName: "bench signer"}, xmlsigtest.RSAKey(b, 1), nil)
	caFile := writeFile(b, b.TempDir(), "ca.pem", ca.CertPEM())
	now := time.Now()
	c := newChain(b, "x509: {trust: {ca_file: "+caFile+"}}\nsignature: {replay_cache: false}\n", &clock{now})
	msg := signedMessage(b, leaf, nil, now, refReference, bigPayload(700))
	benchChain(b, c, func(int) string { return msg })
}

// BenchmarkChainX509SignatureGetProduct is the X.509-signed GetProduct
// request of issue 23 through xmlguard and wssecurity: a
// BinarySecurityToken (RSA 2048), an RSA-SHA256 signature over Body and
// Timestamp and a small Body, about 3.4 KB in all. cpu-ns/op is the
// process CPU time per message; the chain verdict is cached and the
// signature replay cache off, as in BenchmarkX509Signature.
func BenchmarkChainX509SignatureGetProduct(b *testing.B) {
	ca := xmlsigtest.NewCA(b, "bench CA")
	leaf := ca.Issue(b, pkix.Name{CommonName: "bench signer"}, xmlsigtest.RSAKey(b, 1), nil)
	caFile := writeFile(b, b.TempDir(), "ca.pem", ca.CertPEM())
	now := time.Now()
	c := newChain(b, "x509: {trust: {ca_file: "+caFile+"}}\nsignature: {replay_cache: false}\n", &clock{now})
	msg := signedMessage(b, leaf, nil, now, refReference, "")
	b.ReportAllocs()
	clk := benchcpu.Start(b)
	for b.Loop() {
		if err := c.run(soapRequest(msg), nil); err != nil {
			b.Fatal(err)
		}
	}
	// After the loop: b.Loop's first call clears the metrics.
	b.ReportMetric(float64(len(msg)), "msg-bytes")
	clk.Report()
}
