package sts

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/saml2"
)

// peersDir holds package.json pinning adal-node 0.2.4 and saml 4.0.0, its
// package-lock.json and the scripts; node_modules is installed there by
// the test (npm ci) and not committed.
const peersDir = "testdata/peers"

var pinned = map[string]string{"adal-node": "0.2.4", "saml": "4.0.0"}

// InstallPeers runs npm ci in dir unless the pinned versions are there,
// and skips (loudly) only when node or npm are missing or the registry
// cannot be reached.
func installPeers(t *testing.T, dir string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPING PEER TEST: node is not installed")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("SKIPPING PEER TEST: npm is not installed")
	}
	ok := true
	for name, v := range pinned {
		ok = ok && installedVersion(dir, name) == v
	}
	if ok {
		return node
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("ENOTFOUND")) || bytes.Contains(out, []byte("EAI_AGAIN")) || bytes.Contains(out, []byte("ECONNREFUSED")) {
			t.Skipf("SKIPPING PEER TEST: npm ci could not reach the registry:\n%s", out)
		}
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	for name, v := range pinned {
		if got := installedVersion(dir, name); got != v {
			t.Fatalf("after npm ci, %s is %q, want %q", name, got, v)
		}
	}
	return node
}

func installedVersion(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil {
		return ""
	}
	return pkg.Version
}

// TestADALNodeIssue has adal-node's WS-Trust 1.3 client (its ADFS path:
// SOAP 1.2, UsernameToken with a PasswordText without Type, wsa:messageID
// in the wrong case, no TokenType) get a token from our STS over HTTP on
// 127.0.0.1, and checks that what it extracted is our signed assertion.
func TestADALNodeIssue(t *testing.T) {
	node := installPeers(t, peersDir)
	f := newFixture(t, "")
	f.clock.t = time.Now() // adal stamps its own Timestamp
	srv := httptest.NewServer(f.srv)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "adal-issue.js", srv.URL+"/sts", "urn:gatehouse:products", "alice", "pässword & <more>")
	cmd.Dir = peersDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("adal-node: %v\n%s", err, stderr.String())
	}
	var got struct{ TokenType, Token string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("adal-node output %q: %v", out, err)
	}
	if got.TokenType != saml2.TokenTypeSAML20 {
		t.Errorf("adal-node read token type %q, want %q", got.TokenType, saml2.TokenTypeSAML20)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(got.Token); err != nil {
		t.Fatalf("adal-node's token is not XML: %v\n%s", err, got.Token)
	}
	a, err := saml2.Verify(doc.Root(), saml2.VerifyOptions{Trusted: []*x509.Certificate{f.srv.Certificate()}, Now: time.Now()})
	if err != nil {
		t.Fatalf("the token adal-node extracted does not verify: %v\n%s", err, got.Token)
	}
	if a.NameID != "alice" || !a.AudienceOK("urn:gatehouse:products") {
		t.Errorf("got NameID %q audiences %v", a.NameID, a.Audiences)
	}
	// And the wrong password comes back to adal-node as a fault it reads.
	cmd = exec.CommandContext(ctx, node, "adal-issue.js", srv.URL+"/sts", "urn:gatehouse:products", "alice", "wrong")
	cmd.Dir = peersDir
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("adal-node got a token with a wrong password")
	}
	if !bytes.Contains(stderr.Bytes(), []byte("FailedAuthentication")) {
		t.Errorf("adal-node's error does not name the fault: %s", stderr.String())
	}
}
