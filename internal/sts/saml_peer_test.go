package sts_test

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/policy/saml"
	"github.com/gatehouse/gatehouse/internal/policy/wssecurity"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/sts"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

const (
	nsWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

	peerIssuer   = "https://idp.example/saml"
	peerAudience = "urn:gatehouse:products"
)

// auth0Assertion has auth0's saml package sign a bearer assertion for
// nameID with signer's key, its KeyInfo carrying signer's certificate.
func auth0Assertion(t *testing.T, node string, signer *xmlsigtest.Cert, nameID string, attrs map[string][]string) string {
	t.Helper()
	dir := t.TempDir()
	keyFile, certFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyFile, signer.KeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, signer.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(attrs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "saml-issue.js", keyFile, certFile, peerIssuer, peerAudience, nameID, string(js))
	cmd.Dir = sts.PeersDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("saml-issue.js: %v\n%s", err, stderr.String())
	}
	if !bytes.HasPrefix(out, []byte("<saml:Assertion ")) {
		t.Fatalf("saml-issue.js printed %q, want a saml:Assertion", out)
	}
	return string(out)
}

// soapCall is a SOAP 1.1 call of op carrying assertion in its Security
// header, stamped now.
func soapCall(assertion, op string) string {
	return `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<soap:Header><wsse:Security soap:mustUnderstand="1"><wsu:Timestamp wsu:Id="ts"><wsu:Created>` + time.Now().UTC().Format(time.RFC3339) + `</wsu:Created></wsu:Timestamp>` +
		assertion + `</wsse:Security></soap:Header><soap:Body><p:` + op + ` xmlns:p="urn:example:products"><p:id>42</p:id></p:` + op + `></soap:Body></soap:Envelope>`
}

// verdict is what the test server answers: the policy's denial, or the
// principal it set.
type verdict struct {
	Status  int            `json:"status"`
	Code    string         `json:"code"`
	Reason  string         `json:"reason"` // the denial's internal cause
	Subject string         `json:"subject"`
	Method  string         `json:"method"`
	Claims  map[string]any `json:"claims"`
}

// policyServer serves p: each request is applied to it and the verdict
// written back as JSON.
func policyServer(p policy.Policy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := policytest.Exchange(r)
		ex.Route.Protocol = policy.SOAP11
		var v verdict
		err := p.Apply(r.Context(), ex)
		if d, ok := policy.AsDenial(err); ok {
			v.Status, v.Code, v.Reason = d.StatusCode(), d.Code, d.Err.Error()
		} else if err != nil {
			v.Status, v.Code = http.StatusInternalServerError, err.Error()
		} else {
			v.Status = http.StatusOK
			v.Subject, v.Method, v.Claims = ex.Principal.Subject, ex.Principal.Method, ex.Principal.Claims
		}
		_ = json.NewEncoder(w).Encode(v)
	})
}

func call(t *testing.T, c *http.Client, url, body string) verdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v verdict
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAuth0SAMLAssertion has auth0's saml 4.0.0 sign bearer assertions
// with a key and certificate made here, and sends them in a SOAP call's
// WS-Security header over TLS on 127.0.0.1 to a server running the saml
// policy that trusts that certificate for the issuer: accepted, with the
// NameID and attributes as the principal; refused when an attribute was
// changed after signing, when signed by another certificate, and over
// plain HTTP (bearer needs TLS).
func TestAuth0SAMLAssertion(t *testing.T) {
	node := sts.InstallPeers(t, sts.PeersDir)
	ca := xmlsigtest.NewCA(t, "IdP CA")
	idp := ca.Issue(t, pkix.Name{CommonName: "idp.example"}, xmlsigtest.RSAKey(t, 1), nil)
	// Same issuer name and a certificate from the same CA, but not the
	// configured one.
	other := ca.Issue(t, pkix.Name{CommonName: "idp.example"}, xmlsigtest.RSAKey(t, 2), nil)
	certFile := filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(certFile, idp.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := policytest.Env()
	env.Route.Protocol = policy.SOAP11
	env.Now = time.Now // auth0's saml stamps the real time
	env.Store = store.NewMemory(time.Now)
	p, err := saml.Factory(wssecurity.New)(policytest.Node(t, `audience: `+peerAudience+`
issuers:
  - {issuer: "`+peerIssuer+`", certificate_file: "`+certFile+`"}
authorize:
  - {operation: "{urn:example:products}DeleteProduct", roles: [admin]}
  - {operation: "*", roles: [reader]}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewTLSServer(policyServer(p))
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(policyServer(p))
	defer plainSrv.Close()

	attrs := map[string][]string{"roles": {"reader", "admin"}, "email": {"alice@example.com"}}
	alice := auth0Assertion(t, node, idp, "alice", attrs)
	bob := auth0Assertion(t, node, idp, "bob", map[string][]string{"roles": {"reader"}})
	forged := auth0Assertion(t, node, other, "alice", attrs)
	tampered := strings.Replace(alice, ">alice@example.com<", ">mallory@example.com<", 1)
	if tampered == alice {
		t.Fatal("the email attribute is not in the assertion as expected")
	}

	for _, tc := range []struct {
		name, url, msg string
		status         int
		code, reason   string // reason: in the denial's internal cause
	}{
		{"accepted", tlsSrv.URL, soapCall(alice, "GetProduct"), 200, "", ""},
		{"admin role allows DeleteProduct", tlsSrv.URL, soapCall(alice, "DeleteProduct"), 200, "", ""},
		{"reader role does not", tlsSrv.URL, soapCall(bob, "DeleteProduct"), 403, "wsse:FailedAuthentication", "may not call"},
		{"attribute changed after signing", tlsSrv.URL, soapCall(tampered, "GetProduct"), 401, "wsse:InvalidSecurityToken", saml2.ErrSignature.Error()},
		{"signed by another certificate", tlsSrv.URL, soapCall(forged, "GetProduct"), 401, "wsse:InvalidSecurityToken", saml2.ErrUntrusted.Error()},
		{"bearer without TLS", plainSrv.URL, soapCall(alice, "GetProduct"), 401, "wsse:FailedAuthentication", "without TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, tlsSrv.Client(), tc.url+"/soap", tc.msg)
			if got.Status != tc.status || got.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", got.Status, got.Code, got.Reason, tc.status, tc.code)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got cause %q, want one with %q", got.Reason, tc.reason)
			}
			if tc.status != 200 {
				return
			}
			if got.Subject != "alice" || got.Method != "saml" {
				t.Errorf("got principal %q by %q, want alice by saml", got.Subject, got.Method)
			}
			for name, want := range attrs {
				if g := strs(got.Claims[name]); !slices.Equal(g, want) {
					t.Errorf("got claim %s %q, want %q", name, g, want)
				}
			}
			if got.Claims["saml_issuer"] != peerIssuer || got.Claims["saml_confirmation"] != "urn:oasis:names:tc:SAML:2.0:cm:bearer" {
				t.Errorf("got issuer %v confirmation %v", got.Claims["saml_issuer"], got.Claims["saml_confirmation"])
			}
		})
	}
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
