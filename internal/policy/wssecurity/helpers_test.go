package wssecurity

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/wsse"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// build builds the policy from yaml with the clock c and its own memory
// store.
func build(t testing.TB, yaml string, c *clock) *Policy {
	t.Helper()
	env := policytest.Env()
	env.Route.Protocol = policy.SOAP11
	env.Now = c.now
	env.Store = store.NewMemory(c.now)
	p, err := New(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatalf("New: %v\n%s", err, yaml)
	}
	return p.(*Policy)
}

// apply runs p on a POST of body and returns the exchange and the error.
func apply(t testing.TB, p *Policy, body string, tls bool) (*policy.Exchange, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/soap", strings.NewReader(body))
	r.Header.Set("Content-Type", "text/xml; charset=utf-8")
	if tls {
		r = httptest.NewRequest(http.MethodPost, "https://gw.example/soap", strings.NewReader(body))
	}
	ex := policytest.Exchange(r)
	ex.Route.Protocol = policy.SOAP11
	return ex, p.Apply(context.Background(), ex)
}

// wantCode fails t unless err is a Denial with code (or nil for "").
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got %v, want a %s denial", err, code)
	}
	t.Logf("refused: %s: %v", d.Code, d.Err)
	if d.Code != code {
		t.Fatalf("got %s (%v), want %s", d.Code, d.Err, code)
	}
	if status, detail := wsse.FaultStatus(code); d.StatusCode() != status || d.Detail != detail {
		t.Errorf("got status %d detail %q, want %d %q", d.StatusCode(), d.Detail, status, detail)
	}
	if !errors.Is(d.Err, ErrDenied) {
		t.Errorf("cause %v does not wrap ErrDenied", d.Err)
	}
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	envOpen11 = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="` + NamespaceWSU + `">`
	secOpen   = `<wsse:Security xmlns:wsse="` + NamespaceWSSE + `" soap:mustUnderstand="1">`
	payload   = `<m:GetProduct xmlns:m="urn:gatehouse:demo:products"><m:id>p-1001</m:id></m:GetProduct>`
)

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func timestamp(created time.Time) string {
	return `<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>` + stamp(created) + `</wsu:Created><wsu:Expires>` + stamp(created.Add(5*time.Minute)) + `</wsu:Expires></wsu:Timestamp>`
}

func newNonce(t testing.TB) []byte {
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		t.Fatal(err)
	}
	return n
}

// usernameToken returns a UsernameToken created at created.
func usernameToken(user, password string, digest bool, nonce []byte, created time.Time) string {
	c := stamp(created)
	var pw string
	if digest {
		d := PasswordDigest(nonce, c, []byte(password))
		pw = `<wsse:Password Type="` + passwordDigest + `">` + base64.StdEncoding.EncodeToString(d[:]) + `</wsse:Password>`
	} else {
		pw = `<wsse:Password Type="` + passwordText + `">` + password + `</wsse:Password>`
	}
	n := ""
	if nonce != nil {
		n = `<wsse:Nonce EncodingType="` + encBase64 + `">` + base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce>`
	}
	return `<wsse:UsernameToken wsu:Id="UT-1"><wsse:Username>` + user + `</wsse:Username>` + pw + n + `<wsu:Created>` + c + `</wsu:Created></wsse:UsernameToken>`
}

// utMessage is a SOAP 1.1 message with a Timestamp and a UsernameToken.
func utMessage(t testing.TB, user, password string, digest bool, now time.Time) string {
	return envOpen11 + `<soap:Header>` + secOpen + timestamp(now) + usernameToken(user, password, digest, newNonce(t), now) +
		`</wsse:Security></soap:Header><soap:Body wsu:Id="Body-1">` + payload + `</soap:Body></soap:Envelope>`
}

// Token reference modes of signedMessage.
const (
	refReference    = "reference"
	refPKIPath      = "pkipath"
	refSKI          = "ski"
	refThumbprint   = "thumbprint"
	refIssuerSerial = "issuerserial"
)

// signedMessage returns a SOAP 1.1 message with a BinarySecurityToken of
// signer's certificate (chain: intermediates for PKIPath), a Timestamp
// created at now, and a Signature over ids (default Body and Timestamp)
// whose KeyInfo references the token as mode says. body replaces the
// default payload when not empty.
func signedMessage(t testing.TB, signer *xmlsigtest.Cert, chain []*x509.Certificate, now time.Time, mode string, body string, ids ...string) string {
	t.Helper()
	if body == "" {
		body = payload
	}
	if ids == nil {
		ids = []string{"TS-1", "Body-1"}
	}
	vt, der := valueX509v3, signer.Cert.Raw
	if mode == refPKIPath {
		var raws []asn1.RawValue
		for _, c := range chain {
			raws = append(raws, asn1.RawValue{FullBytes: c.Raw})
		}
		raws = append(raws, asn1.RawValue{FullBytes: signer.Cert.Raw})
		var err error
		if der, err = asn1.Marshal(raws); err != nil {
			t.Fatal(err)
		}
		vt = valuePKIPath
	}
	bst := ""
	if mode == refReference || mode == refPKIPath {
		bst = `<wsse:BinarySecurityToken EncodingType="` + encBase64 + `" ValueType="` + vt + `" wsu:Id="X509-1">` +
			base64.StdEncoding.EncodeToString(der) + `</wsse:BinarySecurityToken>`
	}
	msg := envOpen11 + `<soap:Header>` + secOpen + bst + timestamp(now) +
		`</wsse:Security></soap:Header><soap:Body wsu:Id="Body-1">` + body + `</soap:Body></soap:Envelope>`
	doc := etree.NewDocument()
	if err := doc.ReadFromString(msg); err != nil {
		t.Fatal(err)
	}
	str := etree.NewElement("wsse:SecurityTokenReference")
	switch mode {
	case refReference, refPKIPath:
		r := str.CreateElement("wsse:Reference")
		r.CreateAttr("URI", "#X509-1")
		r.CreateAttr("ValueType", vt)
	case refSKI:
		ki := str.CreateElement("wsse:KeyIdentifier")
		ki.CreateAttr("EncodingType", encBase64)
		ki.CreateAttr("ValueType", valueSKI)
		ki.SetText(base64.StdEncoding.EncodeToString(signer.Cert.SubjectKeyId))
	case refThumbprint:
		sum := sha1.Sum(signer.Cert.Raw)
		ki := str.CreateElement("wsse:KeyIdentifier")
		ki.CreateAttr("EncodingType", encBase64)
		ki.CreateAttr("ValueType", valueThumbSHA1)
		ki.SetText(base64.StdEncoding.EncodeToString(sum[:]))
	case refIssuerSerial:
		is := str.CreateElement("ds:X509Data").CreateElement("ds:X509IssuerSerial")
		is.CreateElement("ds:X509IssuerName").SetText(signer.Cert.Issuer.String())
		is.CreateElement("ds:X509SerialNumber").SetText(signer.Cert.SerialNumber.String())
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	xmlsigtest.Signer{Key: signer.Key}.Sign(t, doc.FindElement("//Security"), ids, str)
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
