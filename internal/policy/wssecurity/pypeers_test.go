package wssecurity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/render"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// TestPythonPeers drives Debian's python3-zeep and python3-xmlsec against
// the demo SOAP service behind the policy, on a real server on 127.0.0.1:
//
//   - zeep's default UsernameToken (PasswordText, no Timestamp), its
//     PasswordDigest (Created written "+00:00"), the latter with the
//     Timestamp zeep's documentation builds ("+00:00" again), and zeep's
//     Signature (X509Data with an empty X509IssuerSerial and the
//     certificate, which names a configured one) and BinarySignature,
//     RSA-SHA256 over Body and Timestamp, all pass and reach the service;
//   - a message signed by python3-xmlsec whose attribute values hold
//     literal tabs and line breaks (normalized to spaces by libxml2, which
//     python3-xmlsec verifies the message with too) passes;
//   - each, sent again, is refused as a replay.
func TestPythonPeers(t *testing.T) {
	py := xmlsigtest.PythonPeers(t)
	f := newX509Fixture(t)
	cfg := f.config("") + `
timestamp: {required: false}
username_token:
  text: allowed
  users:
    - {username: alice, password: "pässword & <more>"}
`
	p := build(t, cfg, &clock{})
	p.now = time.Now
	p.store = store.NewMemory(time.Now)

	var mu sync.Mutex
	sent := map[string][]byte{}
	verdicts := map[string]string{}
	soapSvc := demo.SOAPHandler(demo.NewStore(), nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			soapSvc.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		c := r.Header.Get("X-Case")
		ex := policytest.Exchange(r)
		ex.Route.Protocol = policy.SOAP11
		err := p.Apply(r.Context(), ex)
		mu.Lock()
		if _, seen := sent[c]; !seen {
			sent[c] = b
		}
		if err != nil {
			verdicts[c] = err.Error()
		}
		mu.Unlock()
		if d, ok := policy.AsDenial(err); ok {
			render.Denial(w, r, policy.SOAP11, ex.RequestID, d)
			return
		} else if err != nil || ex.Principal == nil {
			http.Error(w, "policy error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Principal", ex.Principal.Subject)
		// The service gets the message as the policy left it.
		r2 := r.Clone(r.Context())
		fwd, _ := io.ReadAll(ex.Request.Body)
		r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(fwd)), int64(len(fwd))
		soapSvc.ServeHTTP(w, r2)
	}))
	defer srv.Close()

	dir := t.TempDir()
	spec, _ := json.Marshal(map[string]string{
		"wsdl":     srv.URL + "/soap/products?wsdl",
		"user":     "alice",
		"password": "pässword & <more>",
		"keyFile":  writeFile(t, dir, "key.pem", f.leaf.KeyPEM(t)),
		"certFile": writeFile(t, dir, "cert.pem", f.leaf.CertPEM()),
	})
	specFile, _ := filepath.Abs(writeFile(t, dir, "spec.json", spec))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "peer.py", specFile)
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
	for _, c := range out.Calls {
		if !c.OK {
			t.Errorf("zeep %s refused: %v (policy: %s)\nsent:\n%s", c.Case, c.Fault, verdicts[c.Case], sent[c.Case])
		}
	}
	if !bytes.Contains(sent["zeep-digest"], []byte("+00:00</")) || !bytes.Contains(sent["zeep-digest-timestamp"], []byte("Timestamp")) {
		t.Errorf("zeep did not write the +00:00 forms this test is about:\n%s\n%s", sent["zeep-digest"], sent["zeep-digest-timestamp"])
	}

	// The python3-xmlsec message: valid to libxml2/xmlsec, so valid to us.
	if !out.XmlsecVerified {
		t.Fatalf("python3-xmlsec does not verify its own message:\n%s", out.Xmlsec)
	}
	if !strings.Contains(out.Xmlsec, "tab\there") || !strings.Contains(out.Xmlsec, "line\r\nend") {
		t.Fatalf("the message lost its literal white space in attributes:\n%q", out.Xmlsec)
	}
	post := func(c string, body []byte) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/soap/products", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", `"urn:gatehouse:demo:products/GetProduct"`)
		req.Header.Set("X-Case", c)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := post("xmlsec", []byte(out.Xmlsec))
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Principal") != f.leaf.Cert.Subject.String() {
		t.Fatalf("python3-xmlsec message: %d %q (policy: %s)\n%s", res.StatusCode, res.Header.Get("X-Principal"), verdicts["xmlsec"], body)
	}

	// Each again: a replay.
	for _, c := range []string{"zeep-digest", "zeep-digest-timestamp", "zeep-signature", "zeep-binary-signature", "xmlsec"} {
		res, body := post(c+"-again", sent[c])
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "FailedAuthentication") || !strings.Contains(verdicts[c+"-again"], "replay") {
			t.Errorf("%s sent again: %d (policy: %s), want 401 replay\n%s", c, res.StatusCode, verdicts[c+"-again"], body)
		}
	}
}
