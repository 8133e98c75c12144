package wssecurity

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/policy/xmlguard"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
)

// encMessages returns n messages with a PasswordText UsernameToken (no
// nonce, so that the same message passes again), a Timestamp and a 4 KB
// Body encrypted with RSA-2048 OAEP and AES-256-GCM, each with its own
// EncryptedKey as WSS4J and WCF send them; signed (sign-then-encrypt, an
// RSA-SHA256 signature over Body and Timestamp) when sign is set.
func encMessages(b *testing.B, f *encFixture, now time.Time, n int, sign bool) []string {
	b.Helper()
	var out []string
	for range n {
		msg := envOpen11 + `<soap:Header>` + secOpen + timestamp(now) +
			`<wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password Type="` + passwordText + `">s3cret</wsse:Password></wsse:UsernameToken>` +
			`</wsse:Security></soap:Header><soap:Body wsu:Id="Body-1">` + bigPayload(4096) + `</soap:Body></soap:Envelope>`
		doc := parseDoc(b, msg)
		if sign {
			signEnc(b, doc, f.leaf, false)
		}
		wssEncrypt(b, doc, encOpts{to: f.pub()}, "Body-1")
		out = append(out, docString(b, doc))
	}
	return out
}

// BenchmarkDecryptBody4K: a 4 KB Body encrypted with RSA-2048 OAEP and
// AES-256-GCM, decrypted by the policy (and the UsernameToken checked);
// a fresh EncryptedKey every message, so one RSA private-key operation
// each. cpu-ns/op is the process CPU time per message.
func BenchmarkDecryptBody4K(b *testing.B) {
	f := newEncFixture(b)
	now := time.Now()
	msgs := encMessages(b, f, now, 64, false)
	benchEncrypted(b, f.config("  key_cache: 0\n"), now, msgs)
}

// BenchmarkSignAndDecryptBody4K: the same, signed then encrypted: the
// policy decrypts, then verifies the RSA-SHA256 signature over Body and
// Timestamp (the signature replay cache off, as the same messages come
// again; the chain verdict cached, as for a busy signer).
func BenchmarkSignAndDecryptBody4K(b *testing.B) {
	f := newEncFixture(b)
	now := time.Now()
	msgs := encMessages(b, f, now, 64, true)
	benchEncrypted(b, f.config("  key_cache: 0\n")+"signature: {replay_cache: false}\n", now, msgs)
}

// BenchmarkDecryptBody4KKeyReused: BenchmarkDecryptBody4K for a client
// that keeps its EncryptedKey across messages (64 of them here, each
// with its own ciphertext under the one key): the key cache saves the
// RSA private-key operation.
func BenchmarkDecryptBody4KKeyReused(b *testing.B) {
	f := newEncFixture(b)
	now := time.Now()
	msgs := encMessages(b, f, now, 1, false)
	benchEncrypted(b, f.config(""), now, reseal(b, f, msgs[0], 64))
}

// BenchmarkSignAndDecryptBody4KKeyReused: signed then encrypted, the
// EncryptedKey reused.
func BenchmarkSignAndDecryptBody4KKeyReused(b *testing.B) {
	f := newEncFixture(b)
	now := time.Now()
	msgs := encMessages(b, f, now, 1, true)
	benchEncrypted(b, f.config("")+"signature: {replay_cache: false}\n", now, reseal(b, f, msgs[0], 64))
}

// reseal returns n copies of msg, each with the Body's content encrypted
// again (a fresh IV and ciphertext) under the same EncryptedKey.
func reseal(b *testing.B, f *encFixture, msg string, n int) []string {
	doc := parseDoc(b, msg)
	key := unwrapForTest(b, f, doc)
	var out []string
	for range n {
		d := parseDoc(b, msg)
		ed := d.FindElement("//Body/EncryptedData")
		plain := decryptedBody(b, f, msg)
		ed2, err := xmlenc.EncryptData(plain, key, xmlenc.AES256GCM, xmlenc.TypeContent, "ED-1", ed.FindElement("KeyInfo").Copy())
		if err != nil {
			b.Fatal(err)
		}
		body := ed.Parent()
		body.RemoveChild(ed)
		body.AddChild(ed2)
		out = append(out, docString(b, d))
	}
	return out
}

// decryptedBody returns the plaintext of msg's Body as the policy
// forwards it.
func decryptedBody(b *testing.B, f *encFixture, msg string) []byte {
	p := build(b, f.config("")+"signature: {replay_cache: false}\n", &clock{time.Now()})
	res, err := p.Verify(context.Background(), []byte(msg), true)
	if err != nil {
		b.Fatal(err)
	}
	d := parseDoc(b, string(res.Message))
	var buf strings.Builder
	for _, c := range d.FindElement("//Body").Child {
		c.WriteTo(&buf, &etree.WriteSettings{})
	}
	return []byte(buf.String())
}

// BenchmarkDecryptBody4KKeyReusedGuarded is
// BenchmarkDecryptBody4KKeyReused with an xmlguard (default limits, an
// operation allow-list) before the policy: the difference is the guard's
// re-check of the decrypted message (policy.PlaintextCheck), a scan and
// a parse of the plaintext.
func BenchmarkDecryptBody4KKeyReusedGuarded(b *testing.B) {
	f := newEncFixture(b)
	now := time.Now()
	msgs := encMessages(b, f, now, 1, false)
	g, err := xmlguard.New(policytest.Node(b, "soap:\n  operations: ['{urn:gatehouse:demo:products}CreateProduct']\n"),
		&policy.Env{Route: policy.Route{Protocol: policy.SOAP11}})
	if err != nil {
		b.Fatal(err)
	}
	benchEncrypted(b, f.config(""), now, reseal(b, f, msgs[0], 64), g.(policy.PlaintextCheck))
}

func benchEncrypted(b *testing.B, cfg string, now time.Time, msgs []string, checks ...policy.PlaintextCheck) {
	b.Helper()
	p := build(b, cfg, &clock{now})
	r := httptest.NewRequest(http.MethodPost, "/soap", nil)
	r.Header.Set("Content-Type", "text/xml; charset=utf-8")
	b.ReportMetric(float64(len(msgs[0])), "msg-bytes")
	b.ReportAllocs()
	clk := benchcpu.Start(b)
	i := 0
	for b.Loop() {
		body := msgs[i%len(msgs)]
		i++
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
		ex := &policy.Exchange{Request: r, Route: &policy.Route{Protocol: policy.SOAP11}}
		for _, c := range checks {
			ex.AddPlaintextCheck(c)
		}
		if err := p.Apply(context.Background(), ex); err != nil {
			b.Fatal(err)
		}
	}
	clk.Report()
}

// BenchmarkReencryptBody4K is FinishRequest alone with forward reencrypt,
// when a later policy changed the body (the slow case: scan and parse of
// the message again): the 4 KB Body encrypted again for the upstream (a
// fresh AES-256-GCM key, one RSA-2048 OAEP public-key operation,
// serialization). Unchanged, FinishRequest encrypts in Apply's tree and
// saves the scan and the parse.
func BenchmarkReencryptBody4K(b *testing.B) {
	f := newEncFixture(b)
	u := newUpstream(b, f)
	now := time.Now()
	msgs := encMessages(b, f, now, 1, false)
	p := build(b, f.config("  forward: reencrypt\n  upstream_certificate: "+u.certFile+"\n"), &clock{now})
	res, sealed, _, err := p.verify(context.Background(), []byte(msgs[0]), true, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	clk := benchcpu.Start(b)
	for b.Loop() {
		if _, err := p.s.enc.reenc.seal(res.Message, &sealed, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	clk.Report()
}
