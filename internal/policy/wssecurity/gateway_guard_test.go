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
	"github.com/gatehouse/gatehouse/internal/policy/xmlguard"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// TestGuardBeforeDecryptionThroughGateway: a real gateway on 127.0.0.1
// with a route [xmlguard, wssecurity] whose Body arrives encrypted. The
// xmlguard before wssecurity sees only ciphertext; its limits and its
// operation allow-list are applied to the decrypted message all the same
// (policy.PlaintextCheck), and a violation is refused with xmlguard's own
// SOAP fault and code, not the uniform decryption fault. The bomb-ish
// payloads are within the decrypter's built-in xmlscan defaults (depth 64,
// 10,000 elements), which refuse anything beyond with the uniform fault,
// and beyond the route's limits.
func TestGuardBeforeDecryptionThroughGateway(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ca := xmlsigtest.NewCA(t, "guard CA")
	gwCert := ca.Issue(t, pkix.Name{CommonName: "gateway encryption"}, xmlsigtest.RSAKey(t, 4), nil)
	write("gw.pem", gwCert.CertPEM())
	write("gw.key", gwCert.KeyPEM(t))

	var mu sync.Mutex
	var reached []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reached = append(reached, string(b))
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
      - xmlguard:
          max_depth: 24
          max_elements: 1000
          soap:
            operations: ["{urn:example:products}GetProduct"]
      - wssecurity:
          timestamp: {required: false}
          username_token: {text: allowed, users: [{username: alice, password: s3cret}]}
          encryption:
            keys: [{certificate: gw.pem, key: {file: gw.key}}]
            required_parts: [Body]
  - name: nodecrypt
    soap: "1.1"
    match: {path: /nodecrypt, methods: [POST]}
    upstream: {url: "` + up.URL + `"}
    policies:
      - xmlguard:
          soap:
            operations: ["{urn:example:products}GetProduct"]
`
	gw := gatewaytest.Start(t, src, gateway.Options{Registry: policy.NewRegistry(xmlguard.Unit, wssecurity.Unit), BaseDir: dir})

	const ns = `xmlns:m="urn:example:products"`
	op := func(name, inner string) string {
		return `<m:` + name + ` ` + ns + `>` + inner + `</m:` + name + `>`
	}
	for _, tc := range []struct {
		name, payload string
		path          string // "" for /soap
		status        int
		code          string // in the fault; "" for a pass
	}{
		{"allowed", op("GetProduct", `<m:id>p-1001</m:id>`), "", http.StatusOK, ""},
		{"depth 40 inside the ciphertext", op("GetProduct", strings.Repeat("<m:x>", 40)+strings.Repeat("</m:x>", 40)), "", http.StatusBadRequest, "xml_limit_exceeded"},
		{"5000 elements inside the ciphertext", op("GetProduct", strings.Repeat("<m:x>1</m:x>", 5000)), "", http.StatusBadRequest, "xml_limit_exceeded"},
		{"operation not allowed inside the ciphertext", op("DeleteProduct", `<m:id>p-1001</m:id>`), "", http.StatusBadRequest, xmlguard.CodeOperationNotAllowed},
		// Beyond the decrypter's own hardened limits: the uniform fault,
		// as for any XML error after decryption.
		{"depth 200 inside the ciphertext", op("GetProduct", strings.Repeat("<m:x>", 200)+strings.Repeat("</m:x>", 200)), "", http.StatusUnauthorized, wssecurity.CodeFailedCheck},
		// The allow-list deferred its check to a decryption that never
		// came: the gateway's FinishRequest step refuses.
		{"encrypted Body on a route that does not decrypt", op("GetProduct", `<m:id>p-1001</m:id>`), "/nodecrypt", http.StatusBadRequest, xmlguard.CodeOperationNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			reached = nil
			mu.Unlock()
			msg := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>` +
				`<wsse:Security xmlns:wsse="` + wssecurity.NamespaceWSSE + `"><wsse:UsernameToken><wsse:Username>alice</wsse:Username>` +
				`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">s3cret</wsse:Password>` +
				`</wsse:UsernameToken></wsse:Security></soap:Header><soap:Body>` + tc.payload + `</soap:Body></soap:Envelope>`
			doc := etree.NewDocument()
			if err := doc.ReadFromString(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := xmlenc.EncryptInPlace(doc.FindElement("//Body"), xmlenc.TypeContent, xmlenc.AES256GCM, gwCert.Cert.PublicKey.(*rsa.PublicKey), xmlenc.KeyOptions{}); err != nil {
				t.Fatal(err)
			}
			body, _ := doc.WriteToString()
			client := &http.Client{Timeout: 60 * time.Second}
			path := tc.path
			if path == "" {
				path = "/soap"
			}
			resp, err := client.Post(gw.URL+path, "text/xml; charset=utf-8", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			got := reached
			mu.Unlock()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d:\n%s", resp.StatusCode, tc.status, rb)
			}
			if tc.code == "" {
				if len(got) != 1 || !strings.Contains(got[0], "<m:id>p-1001</m:id>") || strings.Contains(got[0], "EncryptedData") {
					t.Fatalf("the upstream received %q", got)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("refused, yet the upstream received %q", got)
			}
			if !strings.Contains(string(rb), "Fault") || !strings.Contains(string(rb), tc.code) {
				t.Fatalf("want a SOAP fault with %s, got:\n%s", tc.code, rb)
			}
		})
	}
}
