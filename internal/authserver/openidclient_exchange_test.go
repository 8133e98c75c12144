package authserver

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/npmtest"
)

// TestOpenIDClientDPoPExchange runs the npm package openid-client with
// DPoP against the token endpoint and token exchange: its DPoP-bound token
// is bound to its key; exchanging it without a proof, or with a proof by
// another key, is invalid_grant; with a proof by its key it gets a new
// DPoP token bound to the same key.
func TestOpenIDClientDPoPExchange(t *testing.T) {
	node := npmtest.Install(t, openidClientDir, map[string]string{"openid-client": "6.9.0"})
	e := newEnv(t, defaultSection(""))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "exchange.mjs", e.issuer, "writer", writerSecret, "products:read")
	cmd.Dir = openidClientDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node exchange.mjs: %v\n%s", err, stderr.String())
	}
	var r struct {
		JWK              json.RawMessage `json:"jwk"`
		SubjectToken     string          `json:"subject_token"`
		SubjectTokenType string          `json:"subject_token_type"`
		WithoutProof     string          `json:"without_proof"`
		OtherProof       string          `json:"other_proof"`
		AccessToken      string          `json:"access_token"`
		TokenType        string          `json:"token_type"`
		IssuedTokenType  string          `json:"issued_token_type"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(r.JWK); err != nil {
		t.Fatal(err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	want := base64.RawURLEncoding.EncodeToString(tp)
	_, sc := e.verify(r.SubjectToken)
	if cnf, _ := sc["cnf"].(map[string]any); cnf["jkt"] != want || !strings.EqualFold(r.SubjectTokenType, "dpop") {
		t.Fatalf("subject token %s with cnf %v, want DPoP bound to %s", r.SubjectTokenType, sc["cnf"], want)
	}
	if r.WithoutProof != "invalid_grant" || r.OtherProof != "invalid_grant" {
		t.Errorf("exchange without a proof: %q, with another key's: %q; want invalid_grant both", r.WithoutProof, r.OtherProof)
	}
	_, c := e.verify(r.AccessToken)
	if cnf, _ := c["cnf"].(map[string]any); cnf["jkt"] != want || !strings.EqualFold(r.TokenType, "dpop") || r.IssuedTokenType != TokenTypeAccessToken {
		t.Errorf("exchanged %s (%s) with cnf %v, want a DPoP access token bound to %s", r.TokenType, r.IssuedTokenType, c["cnf"], want)
	}
}
