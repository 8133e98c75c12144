package sts

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/npmtest"
	"github.com/gatehouse/gatehouse/internal/saml2"
)

// peersDir holds package.json pinning adal-node 0.2.4 and saml 4.0.0, its
// package-lock.json and the scripts; node_modules is installed there by
// the test (npm ci) and not committed.
const peersDir = "testdata/peers"

var pinned = map[string]string{"adal-node": "0.2.4", "saml": "4.0.0"}

// installPeers installs the pinned peers into dir (npm ci) when missing.
func installPeers(t *testing.T, dir string) string { return npmtest.Install(t, dir, pinned) }

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
