package wssecurity

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/policy/xmlguard"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// removalCases are messages whose Security header sits among markup that
// a careless lexer would misread: header blocks before it holding
// comments, CDATA and attribute values with tags in them, self-closing
// blocks, another actor's Security header, an XML declaration and a
// comment before the Envelope.
func removalCases(t testing.TB) map[string]string {
	now := policytest.Start
	ca := xmlsigtest.NewCAWithKey(t, "removal CA", xmlsigtest.ECKey(t))
	leaf := ca.Issue(t, pkix.Name{CommonName: "removal signer"}, xmlsigtest.ECKey(t), nil)
	ut := utMessage(t, "alice", "s3cret", true, now)
	tricky := `<h:a xmlns:h="urn:h" v="a>b/>" w='"&gt;'><h:b/><!-- <wsse:Security> </soap:Header> --><![CDATA[</soap:Header><x/>]]>text &lt;</h:a><h:c xmlns:h="urn:h"/>` +
		`<wsse:Security xmlns:wsse="` + NamespaceWSSE + `" soap:actor="urn:other"><x>other</x></wsse:Security>`
	return map[string]string{
		"username token": ut,
		"signed":         signedMessage(t, leaf, nil, now, refReference, ""),
		"tricky blocks":  strings.Replace(ut, `<soap:Header>`, `<soap:Header>`+tricky, 1),
		"tricky after":   strings.Replace(ut, `</soap:Header>`, tricky+`</soap:Header>`, 1),
		"prolog":         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- <soap:Header> -->\n" + strings.ReplaceAll(ut, "><", ">\n  <"),
		"self-closing":   envOpen11 + `<soap:Header><h:c xmlns:h="urn:h"/>` + strings.TrimSuffix(secOpen, ">") + `/></soap:Header><soap:Body wsu:Id="Body-1">` + payload + `</soap:Body></soap:Envelope>`,
		"spaces in tags": strings.NewReplacer(`<soap:Header>`, `<soap:Header >`, `</wsse:Security>`, `</wsse:Security >`, `<wsse:Security `, "<wsse:Security\n\t").Replace(ut),
	}
}

// TestRemoveSecurityHeaderMatchesTokenizer holds the lexer that cuts the
// Security header out to the encoding/xml pass it replaced.
func TestRemoveSecurityHeaderMatchesTokenizer(t *testing.T) {
	p := build(t, utConfig, &clock{policytest.Start})
	for name, msg := range removalCases(t) {
		t.Run(name, func(t *testing.T) {
			checkRemoval(t, p, []byte(msg), true)
		})
	}
}

// checkRemoval compares removeElement with removeHeaderBlock on msg when
// parse accepts it.
func checkRemoval(t *testing.T, p *Policy, msg []byte, mustParse bool) {
	t.Helper()
	m, d := p.parse(msg, nil)
	if d != nil {
		if mustParse {
			t.Fatalf("parse: %v", d.Err)
		}
		return
	}
	got, err := removeElement(msg, m)
	want, werr := removeHeaderBlock(msg, m.secIndex)
	if err != nil || werr != nil {
		t.Fatalf("got error %v, tokenizer error %v\n%s", err, werr, msg)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if mustParse && bytes.Contains(got, []byte(`soap:mustUnderstand="1"`)) {
		t.Errorf("our Security header is still there:\n%s", got)
	}
}

// FuzzRemoveSecurityHeader: on whatever parse accepts, the lexer cuts out
// exactly what encoding/xml's tokens say the Security header is.
// go test -run XXX -fuzz FuzzRemoveSecurityHeader -fuzztime 20s ./internal/policy/wssecurity/
func FuzzRemoveSecurityHeader(f *testing.F) {
	for _, msg := range removalCases(f) {
		f.Add(msg)
	}
	p := build(f, utConfig, &clock{policytest.Start})
	f.Fuzz(func(t *testing.T, msg string) {
		checkRemoval(t, p, []byte(msg), false)
	})
}

// chain is xmlguard then wssecurity, as on a SOAP route.
type chain struct {
	guard policy.Policy
	wss   *Policy
}

func newChain(t testing.TB, wssYAML string, c *clock) chain {
	t.Helper()
	env := policytest.Env()
	env.Route.Protocol = policy.SOAP11
	g, err := xmlguard.New(policytest.Node(t, "soap: {}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	return chain{guard: g, wss: build(t, wssYAML, c)}
}

func soapRequest(body string) *policy.Exchange {
	r := httptest.NewRequest(http.MethodPost, "/soap", strings.NewReader(body))
	r.Header.Set("Content-Type", "text/xml; charset=utf-8")
	r.Header.Set("SOAPAction", `""`)
	ex := policytest.Exchange(r)
	ex.Route.Protocol = policy.SOAP11
	return ex
}

// run applies the chain; between, when not nil, runs between the two
// policies, as another policy of the chain would.
func (c chain) run(ex *policy.Exchange, between func(*policy.Exchange)) error {
	ctx := context.Background()
	if err := c.guard.Apply(ctx, ex); err != nil {
		return err
	}
	if between != nil {
		between(ex)
	}
	return c.wss.Apply(ctx, ex)
}

// TestChainSharesTheParse runs signed messages through xmlguard and then
// wssecurity: wssecurity reads xmlguard's tree, decides as it does alone,
// and never reads a tree of other bytes than the body it checks.
func TestChainSharesTheParse(t *testing.T) {
	ca := xmlsigtest.NewCAWithKey(t, "chain CA", xmlsigtest.ECKey(t))
	leaf := ca.Issue(t, pkix.Name{CommonName: "chain signer"}, xmlsigtest.ECKey(t), nil)
	caFile := writeFile(t, t.TempDir(), "ca.pem", ca.CertPEM())
	now := time.Now() // the test CA's certificates are valid from now
	cfg := "x509: {trust: {ca_file: " + caFile + "}}\n"
	good := signedMessage(t, leaf, nil, now, refReference, "")
	tampered := strings.Replace(good, "p-1001", "p-1002", 1)
	// The signed Body moved into a header block, a new Body in its place.
	wrapped := strings.Replace(strings.Replace(good, `<soap:Body wsu:Id="Body-1">`+payload+`</soap:Body>`,
		`<soap:Body><m:DeleteAll xmlns:m="urn:gatehouse:demo:products"/></soap:Body>`, 1),
		`</soap:Header>`, `<w:Wrap xmlns:w="urn:w"><soap:Body wsu:Id="Body-1">`+payload+`</soap:Body></w:Wrap></soap:Header>`, 1)

	tests := []struct {
		name    string
		msg     string
		between func(*policy.Exchange)
		code    string
	}{
		{"signed", good, nil, ""},
		{"tampered", tampered, nil, CodeFailedCheck},
		{"wrapped", wrapped, nil, CodeFailedCheck},
		// A policy between them rewrites the body: the tree xmlguard made
		// of the good message must not vouch for the tampered one.
		{"body replaced after xmlguard", good, func(ex *policy.Exchange) { ex.SetBody([]byte(tampered)) }, CodeFailedCheck},
		{"body replaced by a good one", tampered, func(ex *policy.Exchange) { ex.SetBody([]byte(good)) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChain(t, cfg, &clock{now.Add(time.Second)})
			ex := soapRequest(tt.msg)
			var sawTree bool
			err := c.run(ex, func(ex *policy.Exchange) {
				sawTree = ex.SOAP != nil
				if tt.between != nil {
					tt.between(ex)
					if ex.SOAP != nil {
						t.Error("SetBody left the old tree on the exchange")
					}
				}
			})
			if !sawTree {
				t.Error("xmlguard left no parsed message on the exchange")
			}
			wantCode(t, err, tt.code)
			if tt.code != "" {
				return
			}
			// Forwarded without the Security header, exactly as Verify
			// alone cuts it, and the tree of the old body is gone.
			res, err := build(t, cfg, &clock{now.Add(time.Second)}).Verify(context.Background(), []byte(good), false)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(ex.Request.Body)
			if !bytes.Equal(got, res.Message) {
				t.Errorf("forwarded\n%s\nwant\n%s", got, res.Message)
			}
			if ex.SOAP != nil {
				t.Error("the tree of the message with the Security header outlived it")
			}
			if ex.Principal == nil || ex.Principal.Claims["x509_subject"] != leaf.Cert.Subject.String() {
				t.Errorf("principal %+v", ex.Principal)
			}
		})
	}
}
