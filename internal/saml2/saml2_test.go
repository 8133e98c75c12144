package saml2

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// fixture is a signer with a self-issued certificate valid around now.
type fixture struct {
	signer *Signer
	cert   *x509.Certificate
}

func newFixture(t testing.TB, key crypto.Signer) *fixture {
	t.Helper()
	ca := xmlsigtest.NewCAWithKey(t, "Test STS CA", key)
	s, err := NewSigner(key, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{signer: s, cert: ca.Cert}
}

func sample(now time.Time) *Assertion {
	return &Assertion{
		Issuer:        "https://sts.example/sts",
		IssueInstant:  now,
		NameID:        "alice",
		NotBefore:     now,
		NotOnOrAfter:  now.Add(time.Hour),
		Audiences:     [][]string{{"urn:products"}},
		Confirmations: []Confirmation{{Method: MethodBearer, NotOnOrAfter: now.Add(time.Hour)}},
		AuthnContext:  AuthnPassword,
		AuthnInstant:  now,
		Attributes:    map[string][]string{"roles": {"reader", "writer"}, "email": {"alice@example.com"}},
	}
}

// signed returns a signed sample assertion as XML.
func (f *fixture) signed(t testing.TB, a *Assertion) string {
	t.Helper()
	el := Build(a)
	if err := f.signer.Sign(el); err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func parse(t testing.TB, s string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"rsa-2048", xmlsigtest.RSAKey(t, 0)},
		{"ecdsa-p256", xmlsigtest.ECKey(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.key)
			now := time.Now()
			xml := f.signed(t, sample(now))
			got, err := Verify(parse(t, xml), VerifyOptions{Trusted: []*x509.Certificate{f.cert}, Now: now})
			if err != nil {
				t.Fatalf("Verify: %v\n%s", err, xml)
			}
			if got.NameID != "alice" || got.Issuer != "https://sts.example/sts" {
				t.Errorf("got NameID %q Issuer %q, want alice and the issuer", got.NameID, got.Issuer)
			}
			if !got.AudienceOK("urn:products") || got.AudienceOK("urn:other") {
				t.Errorf("got audiences %v, want only urn:products", got.Audiences)
			}
			if r := strings.Join(got.Attributes["roles"], ","); r != "reader,writer" {
				t.Errorf("got roles %q, want reader,writer", r)
			}
			if got.Confirmation(MethodBearer) == nil {
				t.Errorf("got confirmations %+v, want bearer", got.Confirmations)
			}
			if err := got.Check(now, 0); err != nil {
				t.Errorf("Check now: %v", err)
			}
			if err := got.Check(now.Add(2*time.Hour), time.Minute); !errors.Is(err, ErrExpired) {
				t.Errorf("Check later: got %v, want ErrExpired", err)
			}
			if err := got.Check(now.Add(-time.Hour), time.Minute); !errors.Is(err, ErrNotYetValid) {
				t.Errorf("Check earlier: got %v, want ErrNotYetValid", err)
			}
		})
	}
}

// TestGoxmldsigAcceptsRSA holds the RSA form to goxmldsig's validator, the
// one internal/authserver's token exchange uses: an STS assertion must be
// a valid subject token there.
func TestGoxmldsigAcceptsRSA(t *testing.T) {
	f := newFixture(t, xmlsigtest.RSAKey(t, 0))
	now := time.Now()
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{f.cert}})
	vc.Clock = dsig.NewFakeClockAt(now)
	if _, err := vc.Validate(parse(t, f.signed(t, sample(now)))); err != nil {
		t.Fatalf("goxmldsig Validate: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t, xmlsigtest.RSAKey(t, 0))
	other := newFixture(t, xmlsigtest.ECKey(t))
	now := time.Now()
	good := f.signed(t, sample(now))
	trusted := []*x509.Certificate{f.cert}
	for _, tc := range []struct {
		name    string
		xml     string
		trusted []*x509.Certificate
		now     time.Time
		want    error
	}{
		{"untrusted signer", other.signed(t, sample(now)), trusted, now, ErrUntrusted},
		{"no trust at all", good, nil, now, ErrUntrusted},
		{"unsigned", func() string {
			doc := etree.NewDocument()
			doc.SetRoot(Build(sample(now)))
			s, _ := doc.WriteToString()
			return s
		}(), trusted, now, ErrUntrusted},
		{"changed NameID", strings.Replace(good, ">alice<", ">mallory<", 1), trusted, now, ErrSignature},
		{"changed audience", strings.Replace(good, "urn:products", "urn:other", 1), trusted, now, ErrSignature},
		{"certificate expired", good, trusted, now.Add(48 * time.Hour), ErrUntrusted},
		{"with comments c14n", strings.Replace(good, "xml-exc-c14n#\"", "xml-exc-c14n#WithComments\"", 1), trusted, now, ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(parse(t, tc.xml), VerifyOptions{Trusted: tc.trusted, Now: tc.now})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestNameIDInjection signs assertions whose NameID holds a comment or a
// processing instruction (CVE-2017-11427, CVE-2018-0489): the identity is
// the whole signed text or nothing, never the part before the comment.
func TestNameIDInjection(t *testing.T) {
	f := newFixture(t, xmlsigtest.RSAKey(t, 0))
	now := time.Now()
	trusted := []*x509.Certificate{f.cert}
	for _, tc := range []struct {
		name    string
		inject  string // replaces the NameID text
		wantID  string // "" means refused
		wantErr error
	}{
		{"comment", "alice@example.com<!-- -->.evil.example", "alice@example.com.evil.example", nil},
		{"comment first", "<!--x-->admin", "admin", nil},
		{"processing instruction", "admin<?x y?>.evil", "", ErrMalformed},
		{"element", "admin<b>x</b>", "", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := Build(sample(now))
			doc := etree.NewDocument()
			doc.SetRoot(el)
			s, _ := doc.WriteToString()
			s = strings.Replace(s, ">alice<", ">"+tc.inject+"<", 1)
			el = parse(t, s)
			if err := f.signer.Sign(el); err != nil {
				t.Fatal(err)
			}
			doc = etree.NewDocument()
			doc.SetRoot(el)
			s, _ = doc.WriteToString()
			got, err := Verify(parse(t, s), VerifyOptions{Trusted: trusted, Now: now})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.NameID != tc.wantID {
				t.Fatalf("got NameID %q, want %q", got.NameID, tc.wantID)
			}
		})
	}
}

func TestNewSignerRefuses(t *testing.T) {
	ca := xmlsigtest.NewCAWithKey(t, "x", xmlsigtest.ECKey(t))
	if _, err := NewSigner(xmlsigtest.ECKey(t), ca.Cert); err == nil {
		t.Fatal("got a signer for a certificate of another key, want an error")
	}
	other := ca.Issue(t, pkix.Name{CommonName: "y"}, xmlsigtest.RSAKey(t, 1), nil)
	if _, err := NewSigner(xmlsigtest.RSAKey(t, 1), other.Cert); err != nil {
		t.Fatalf("RSA signer: %v", err)
	}
}
