package xmlsig_test

import (
	"context"
	"crypto/elliptic"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

func TestDecodeBase64Strict(t *testing.T) {
	ok := map[string]string{
		"QUJD":           "ABC",
		"QUI=":           "AB",
		"QQ==":           "A",
		" QU\nJD\r\n\t":  "ABC",
		"QU JD QU I=":    "ABCAB",
		"":               "",
		"QQ\r\n==":       "A",
		"\tQUJDQUJD\n\n": "ABCABC",
	}
	for in, want := range ok {
		got, err := xmlsig.DecodeBase64(in)
		if err != nil || string(got) != want {
			t.Errorf("DecodeBase64(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"QR==",       // non-zero padding bits (decodes to "A" leniently)
		"QUJ=",       // the same, one '='
		"QQ==QQ==",   // padding in the middle
		"QQ=",        // short padding
		"QQ",         // no padding
		"QUJD=",      // padding after a full group
		"QUJ-",       // URL alphabet
		"QUJ_",       // URL alphabet
		"QU\u00a0JD", // non-ASCII white space
		"QU\vJD",     // not XML white space
		"QU\x00JD",   // NUL
		"Q=Q=",       // '=' inside a group
	} {
		if got, err := xmlsig.DecodeBase64(in); err == nil {
			t.Errorf("DecodeBase64(%q) = %q, want an error", in, got)
		}
	}
}

// signedDoc returns a document whose Body is signed by key, and the
// parsed signature (not yet verified).
func signedDoc(t *testing.T, key *xmlsigtest.Cert) (*etree.Document, *xmlsig.IDIndex, *xmlsig.Signature) {
	t.Helper()
	doc := parse(t, `<e:Envelope xmlns:e="urn:e"><e:Header/><e:Body Id="b"><m:op xmlns:m="urn:m">1</m:op></e:Body></e:Envelope>`)
	xmlsigtest.Signer{Key: key.Key}.Sign(t, doc.FindElement("//Header"), []string{"b"}, nil)
	return reparse(t, doc)
}

func reparse(t *testing.T, doc *etree.Document) (*etree.Document, *xmlsig.IDIndex, *xmlsig.Signature) {
	t.Helper()
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return reparseString(t, s)
}

func reparseString(t *testing.T, s string) (*etree.Document, *xmlsig.IDIndex, *xmlsig.Signature) {
	t.Helper()
	d := parse(t, s)
	idx, err := xmlsig.NewIDIndex(d.Root())
	if err != nil {
		t.Fatal(err)
	}
	sig, err := xmlsig.Parse(d.FindElement("//Signature"), xmlsig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d, idx, sig
}

// TestReplayKeyIsWhatTheSignatureCovers: the key does not exist before
// Verify; it is the same for every spelling of the same signed content
// (SignatureValue re-wrapped, the twin ECDSA signature (r, n-s), SignedInfo
// with other attribute order, quotes and namespace declarations) and
// differs for other content; Spend refuses the second of any of them.
func TestReplayKeyIsWhatTheSignatureCovers(t *testing.T) {
	ca := xmlsigtest.NewCAWithKey(t, "replay CA", xmlsigtest.ECKey(t))
	leaf := ca.Issue(t, pkixName("replay signer"), xmlsigtest.ECKey(t), nil)
	pub := leaf.Cert.PublicKey
	doc, idx, sig := signedDoc(t, leaf)
	if sig.ReplayKey() != "" {
		t.Fatal("a replay key before Verify")
	}
	if _, ok := sig.SignedInfoDigest(); ok {
		t.Fatal("a SignedInfo digest before Verify")
	}
	if _, err := sig.Verify(idx, pub); err != nil {
		t.Fatal(err)
	}
	key := sig.ReplayKey()
	if !strings.HasPrefix(key, "replay:sig:") {
		t.Fatalf("key %q", key)
	}
	text, _ := doc.WriteToString()
	sv := doc.FindElement("//SignatureValue").Text()
	raw, _ := base64.StdEncoding.DecodeString(sv)
	n := elliptic.P256().Params().N
	twin := append(append([]byte(nil), raw[:32]...), new(big.Int).Sub(n, new(big.Int).SetBytes(raw[32:])).FillBytes(make([]byte, 32))...)
	same := map[string]string{
		"re-wrapped value": strings.Replace(text, sv, sv[:10]+"\r\n"+sv[10:40]+"\n "+sv[40:], 1),
		"ecdsa (r, n-s)":   strings.Replace(text, sv, base64.StdEncoding.EncodeToString(twin), 1),
		"SignedInfo respelled": strings.Replace(strings.Replace(text, `<ds:SignedInfo>`, `<ds:SignedInfo xmlns:x="urn:unused"  xmlns:ds='http://www.w3.org/2000/09/xmldsig#' >`, 1),
			`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, `<ds:CanonicalizationMethod Algorithm='http://www.w3.org/2001/10/xml-exc-c14n#'></ds:CanonicalizationMethod>`, 1),
		"other envelope": strings.Replace(text, `<e:Envelope xmlns:e="urn:e">`, `<e:Envelope xmlns:e="urn:e" xmlns:z="urn:z" z:a="1">`, 1),
	}
	st := store.NewMemory(time.Now)
	ctx := context.Background()
	if err := xmlsig.Spend(ctx, st, sig, time.Minute); err != nil {
		t.Fatalf("first spend: %v", err)
	}
	for name, s := range same {
		_, idx2, sig2 := reparseString(t, s)
		if _, err := sig2.Verify(idx2, pub); err != nil {
			t.Fatalf("%s: does not verify: %v", name, err)
		}
		if got := sig2.ReplayKey(); got != key {
			t.Errorf("%s: key %q, want %q", name, got, key)
		}
		if err := xmlsig.Spend(ctx, st, sig2, time.Minute); !errors.Is(err, xmlsig.ErrReplay) {
			t.Errorf("%s: spend = %v, want ErrReplay", name, err)
		}
	}
	// A new signature over the same content (ECDSA signs with fresh
	// randomness) covers the same: the same key, a replay.
	_, idx3, sig3 := signedDoc(t, leaf)
	if _, err := sig3.Verify(idx3, pub); err != nil {
		t.Fatal(err)
	}
	if sig3.ReplayKey() != key {
		t.Error("a new signature over the same content has another key")
	}
	if err := xmlsig.Spend(ctx, st, sig3, time.Minute); !errors.Is(err, xmlsig.ErrReplay) {
		t.Errorf("a new signature over the same SignedInfo: %v, want ErrReplay", err)
	}
	// Other content: another key, spent freely.
	d4 := parse(t, `<e:Envelope xmlns:e="urn:e"><e:Header/><e:Body Id="b"><m:op xmlns:m="urn:m">2</m:op></e:Body></e:Envelope>`)
	xmlsigtest.Signer{Key: leaf.Key}.Sign(t, d4.FindElement("//Header"), []string{"b"}, nil)
	_, idx4, sig4 := reparse(t, d4)
	if _, err := sig4.Verify(idx4, pub); err != nil {
		t.Fatal(err)
	}
	if sig4.ReplayKey() == key {
		t.Error("other content, same key")
	}
	if err := xmlsig.Spend(ctx, st, sig4, time.Minute); err != nil {
		t.Errorf("other content: %v", err)
	}
	// Unverified: refused, nothing stored.
	_, _, sig5 := signedDoc(t, leaf)
	if err := xmlsig.Spend(ctx, st, sig5, time.Minute); !errors.Is(err, xmlsig.ErrMalformed) {
		t.Errorf("unverified spend: %v, want ErrMalformed", err)
	}
}

// TestECDSAValueEncoding: r||s of exactly 64 bytes, each in [1, n-1].
func TestECDSAValueEncoding(t *testing.T) {
	ca := xmlsigtest.NewCAWithKey(t, "ec CA", xmlsigtest.ECKey(t))
	leaf := ca.Issue(t, pkixName("ec signer"), xmlsigtest.ECKey(t), nil)
	doc, _, _ := signedDoc(t, leaf)
	text, _ := doc.WriteToString()
	sv := doc.FindElement("//SignatureValue").Text()
	raw, _ := base64.StdEncoding.DecodeString(sv)
	n := elliptic.P256().Params().N
	r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	enc := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	cat := func(a, b *big.Int) []byte {
		return append(a.FillBytes(make([]byte, 32)), b.FillBytes(make([]byte, 32))...)
	}
	nPlusS := new(big.Int).Add(s, n)
	bad := map[string]string{
		"leading zero":  enc(append([]byte{0}, raw...)),
		"trailing zero": enc(append(append([]byte(nil), raw...), 0)),
		"r and s short": enc(append(r.Bytes()[:31], s.Bytes()[:31]...)),
		"DER":           enc(derSig(r, s)),
		"r = 0":         enc(cat(big.NewInt(0), s)),
		"s = 0":         enc(cat(r, big.NewInt(0))),
		"r + n":         enc(append(new(big.Int).Add(r, n).Bytes(), s.FillBytes(make([]byte, 32))...)),
		"s + n (33 b)":  enc(append(r.FillBytes(make([]byte, 32)), nPlusS.Bytes()...)),
	}
	for name, v := range bad {
		_, idx, sig := reparseString(t, strings.Replace(text, sv, v, 1))
		if _, err := sig.Verify(idx, leaf.Cert.PublicKey); !errors.Is(err, xmlsig.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

func derSig(r, s *big.Int) []byte {
	b, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	return b
}
