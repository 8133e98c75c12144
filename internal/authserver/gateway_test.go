package authserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/store"
	"golang.org/x/oauth2/clientcredentials"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestThroughGateway mounts the server on a gateway listener, in front of
// a route whose jwt authenticator trusts it through discovery: GET needs
// products:read, POST products:write; a revoked token is refused at once
// though cached; a reload keeps the keys and the revocation.
func TestThroughGateway(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "products")
	}))
	defer upstream.Close()
	addr := freeAddr(t)
	issuer := "http://" + addr
	doc := `
listeners: [{name: public, address: "` + addr + `"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
authorization_server:
  issuer: ` + issuer + `
  insecure_plaintext_keys: true
  clients:
    - client_id: demo-reader
      secret_hash: ` + hashOf("demo-reader-secret") + `
      scopes: [products:read]
      audience: [gatehouse-demo]
    - client_id: demo-writer
      secret_hash: ` + hashOf("demo-writer-secret") + `
      scopes: [products:read, products:write]
      audience: [gatehouse-demo]
routes:
  - name: products
    match: {path: /product}
    upstream: {url: ` + upstream.URL + `}
    policies:
      - authenticate:
          with:
            - jwt:
                issuer: ` + issuer + `
                oidc_discovery: true
                audiences: [gatehouse-demo]
                algorithms: [ES256]
                typ: at+jwt
      - scopes:
          methods:
            GET: [products:read]
            POST: [products:write]
`
	cfg, err := config.LoadBytes("gatehouse.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory(nil)
	defer st.Close()
	g, err := gateway.New(cfg, gateway.Options{Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	}()
	hc := &http.Client{Timeout: 5 * time.Second}
	token := func(id, secret string) string {
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: issuer + "/oauth2/token"}
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatalf("token for %s: %v", id, err)
		}
		return tok.AccessToken
	}
	call := func(method, tok string) int {
		req, _ := http.NewRequest(method, issuer+"/product", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	reader, writer := token("demo-reader", "demo-reader-secret"), token("demo-writer", "demo-writer-secret")
	deadline := time.Now().Add(60 * time.Second)
	for call("GET", reader) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the route never accepted the reader's token")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		method, tok string
		want        int
	}{{"GET", writer, 200}, {"POST", reader, 403}, {"POST", writer, 200}} {
		if got := call(tc.method, tc.tok); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.method, got, tc.want)
		}
	}

	// A reload keeps the signing keys: tokens from before still pass.
	cfg2, err := config.LoadBytes("gatehouse.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	if got := call("GET", reader); got != 200 {
		t.Fatalf("after reload: %d, want 200", got)
	}
	form := url.Values{"token": {reader}}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-reader", "demo-reader-secret")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if got := call("GET", reader); got != 401 {
		t.Fatalf("revoked token: %d, want 401", got)
	}
}
