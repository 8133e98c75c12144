package wssecurity_test

import (
	"crypto/rsa"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/wssecurity"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// TestReencryptThroughGateway: a real gateway on 127.0.0.1 with a
// wssecurity policy whose encryption forwards reencrypt: a message whose
// Body is encrypted to the gateway reaches the upstream with the Body
// encrypted to the upstream (the gateway's FinishRequest hook ran), and
// the upstream's key decrypts it to what the client sent.
func TestReencryptThroughGateway(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := xmlsigtest.NewCA(t, "reencrypt CA")
	gwCert := ca.Issue(t, pkix.Name{CommonName: "gateway encryption"}, xmlsigtest.RSAKey(t, 4), nil)
	upCert := ca.Issue(t, pkix.Name{CommonName: "upstream encryption"}, xmlsigtest.RSAKey(t, 3), nil)
	write("gw.pem", gwCert.CertPEM())
	write("gw.key", gwCert.KeyPEM(t))
	upFile := write("up.pem", upCert.CertPEM())

	var mu sync.Mutex
	var reached []byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reached = b
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`)
	}))
	defer up.Close()
	src := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: soap
    soap: "1.1"
    match: {path: /soap, methods: [POST]}
    upstream: {url: "` + up.URL + `"}
    policies:
      - wssecurity:
          timestamp: {required: false}
          username_token: {text: allowed, users: [{username: alice, password: s3cret}]}
          encryption:
            keys: [{certificate: gw.pem, key: {file: gw.key}}]
            required_parts: [Body]
            forward: reencrypt
            upstream_certificate: up.pem
`
	gw := gatewaytest.Start(t, src, gateway.Options{Registry: policy.NewRegistry(wssecurity.Unit), BaseDir: dir})

	msg := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>` +
		`<wsse:Security xmlns:wsse="` + wssecurity.NamespaceWSSE + `"><wsse:UsernameToken><wsse:Username>alice</wsse:Username>` +
		`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">s3cret</wsse:Password>` +
		`</wsse:UsernameToken></wsse:Security></soap:Header><soap:Body><m:GetProductCost xmlns:m="urn:example:products"><m:id>p-1001</m:id></m:GetProductCost></soap:Body></soap:Envelope>`
	doc := etree.NewDocument()
	if err := doc.ReadFromString(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := xmlenc.EncryptInPlace(doc.FindElement("//Body"), xmlenc.TypeContent, xmlenc.AES256GCM, gwCert.Cert.PublicKey.(*rsa.PublicKey), xmlenc.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	body, _ := doc.WriteToString()
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Post(gw.URL+"/soap", "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mu.Lock()
	got := string(reached)
	mu.Unlock()
	if strings.Contains(got, "p-1001") || !strings.Contains(got, "EncryptedData") || strings.Contains(got, "UsernameToken") {
		t.Fatalf("the upstream received:\n%s", got)
	}
	rk, err := xmlenc.LoadRSAKey(upFile, upCert.KeyPEM(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := xmlenc.New(xmlenc.Keys{RSA: []xmlenc.RSAKey{rk}}, xmlenc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	updoc := etree.NewDocument()
	if err := updoc.ReadFromString(got); err != nil {
		t.Fatal(err)
	}
	ek := updoc.FindElement("//Security/EncryptedKey")
	s := d.NewSession(func(id string) *etree.Element {
		if ek != nil && ek.SelectAttrValue("Id", "") == id {
			return ek
		}
		return nil
	})
	data, err := xmlenc.ParseData(updoc.FindElement("//Body/EncryptedData"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replace(data, false); err != nil {
		t.Fatalf("the upstream's key does not decrypt: %v\n%s", err, got)
	}
	plain, _ := updoc.WriteToString()
	if !strings.Contains(plain, "<m:id>p-1001</m:id>") {
		t.Fatalf("decrypted:\n%s", plain)
	}
}
