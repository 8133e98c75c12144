package wssecurity_test

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/wssecurity"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

const peersGatewayYAML = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: wsdl
    match: {path: /soap/products, methods: [GET]}
    upstream: {url: "UPSTREAM"}
  - name: soap
    soap: "1.1"
    match: {path: /soap/products, methods: [POST]}
    upstream: {url: "UPSTREAM"}
    policies:
      - wssecurity: WSS
  - name: soap-r1126
    soap: "1.1"
    soap_fault_status: 500
    match: {path: /r1126/soap/products, methods: [POST]}
    upstream: {url: "UPSTREAM"}
    policies:
      - wssecurity: WSS
`

// TestPythonPeersThroughGateway runs Debian's python3-zeep and
// python3-xmlsec against a real gateway on 127.0.0.1 in front of the demo
// SOAP service: zeep reads the WSDL through the gateway and calls
// GetProduct with its default UsernameToken, PasswordDigest ("+00:00"
// Created), PasswordDigest with a Timestamp, and signed with zeep's
// Signature (the certificate in the SecurityTokenReference's X509Data,
// naming a configured one) and BinarySignature; a python3-xmlsec message
// with literal white space in attribute values is posted too. All reach
// the service without their Security header. Sent again, each is a
// replay: 401 wsse:FailedAuthentication on the plain SOAP 1.1 route, and
// 500 with the same Fault on the route with soap_fault_status: 500 (WS-I
// BP R1126), which shares the replay caches.
func TestPythonPeersThroughGateway(t *testing.T) {
	py := xmlsigtest.PythonPeers(t)
	dir := t.TempDir()
	ca := xmlsigtest.NewCA(t, "python peers CA")
	leaf := ca.Issue(t, pkix.Name{CommonName: "billing", Organization: []string{"Example"}}, xmlsigtest.RSAKey(t, 1), nil)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", ca.CertPEM())
	certFile := write("cert.pem", leaf.CertPEM())

	var mu sync.Mutex
	var reached [][]byte
	svc := demo.SOAPHandler(demo.NewStore(), nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			reached = append(reached, b)
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		svc.ServeHTTP(w, r)
	}))
	defer up.Close()

	wss := `{timestamp: {required: false}, username_token: {text: allowed, users: [{username: alice, password: "pässword & <more>"}]}, x509: {trust: {ca_file: "` + caFile + `"}, certificates: ["` + certFile + `"]}}`
	src := strings.NewReplacer("UPSTREAM", up.URL, "WSS", wss).Replace(peersGatewayYAML)
	gw := gatewaytest.Start(t, src, gateway.Options{Registry: policy.NewRegistry(wssecurity.Unit), BaseDir: dir})

	spec, _ := json.Marshal(map[string]string{
		"wsdl":     gw.URL + "/soap/products?wsdl",
		"endpoint": gw.URL + "/soap/products",
		"user":     "alice",
		"password": "pässword & <more>",
		"keyFile":  write("key.pem", leaf.KeyPEM(t)),
		"certFile": certFile,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "peer.py", write("spec.json", spec))
	cmd.Dir = "testdata/pypeers"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3 peer.py: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var out struct {
		Versions map[string]string
		Calls    []struct {
			Case  string
			OK    bool
			Fault any
			Sent  string
		}
		Xmlsec         string
		XmlsecVerified bool `json:"xmlsec_verified"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("peer.py output: %v\n%s", err, stdout.String())
	}
	t.Logf("peers: %v", out.Versions)
	if len(out.Calls) != 5 {
		t.Fatalf("%d zeep calls, want 5", len(out.Calls))
	}
	sent := map[string]string{"xmlsec": out.Xmlsec}
	for _, c := range out.Calls {
		if !c.OK {
			t.Errorf("zeep %s refused by the gateway: %v\nsent:\n%s", c.Case, c.Fault, c.Sent)
		}
		sent[c.Case] = c.Sent
	}
	if !out.XmlsecVerified {
		t.Fatalf("python3-xmlsec does not verify its own message:\n%s", out.Xmlsec)
	}

	post := func(path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, gw.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", `""`)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := post("/soap/products", out.Xmlsec); code != http.StatusOK || !strings.Contains(body, "p-1001") {
		t.Fatalf("python3-xmlsec message through the gateway: %d\n%s", code, body)
	}
	mu.Lock()
	if len(reached) != 6 {
		t.Errorf("%d calls reached the service, want 6 (5 zeep, 1 xmlsec)", len(reached))
	}
	for _, b := range reached {
		if bytes.Contains(b, []byte("Security")) {
			t.Errorf("a message reached the service with its Security header (the gateway was bypassed?):\n%s", b)
		}
	}
	mu.Unlock()

	faultcode := func(body string) string {
		var env struct {
			Code string `xml:"Body>Fault>faultcode"`
		}
		if err := xml.Unmarshal([]byte(body), &env); err != nil {
			return "unparsable: " + err.Error()
		}
		return env.Code
	}
	for _, c := range []string{"zeep-digest", "zeep-digest-timestamp", "zeep-signature", "zeep-binary-signature", "xmlsec"} {
		for _, r := range []struct {
			path string
			want int
		}{{"/soap/products", http.StatusUnauthorized}, {"/r1126/soap/products", http.StatusInternalServerError}} {
			code, body := post(r.path, sent[c])
			if code != r.want || faultcode(body) != "wsse:FailedAuthentication" {
				t.Errorf("%s replayed at %s: %d %q, want %d wsse:FailedAuthentication\n%s", c, r.path, code, faultcode(body), r.want, body)
			}
		}
	}
	// A wrong password: the same statuses, the same Fault.
	bad := regexp.MustCompile(`(#PasswordText">)[^<]*`).ReplaceAllString(sent["zeep-text"], "${1}wrong")
	if bad == sent["zeep-text"] {
		t.Fatalf("zeep's PasswordText not found in\n%s", sent["zeep-text"])
	}
	for path, want := range map[string]int{"/soap/products": 401, "/r1126/soap/products": 500} {
		if code, body := post(path, bad); code != want || faultcode(body) != "wsse:FailedAuthentication" {
			t.Errorf("wrong password at %s: %d %q, want %d wsse:FailedAuthentication", path, code, faultcode(body), want)
		}
	}
}
