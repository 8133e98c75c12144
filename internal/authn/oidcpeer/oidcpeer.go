// Package oidcpeer starts node-oidc-provider, an OpenID provider written
// by others, as the external IdP of tests: its discovery, JWKS, token and
// introspection endpoints are real, and so are its answers (an opaque or
// a JWT access token by resource, 400 unsupported_token_type when asked
// to introspect a JWT). The provider script and its pinned npm packages
// are in internal/authn/testdata/oidcprovider.
package oidcpeer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/npmtest"
)

// Version is the pinned oidc-provider.
const Version = "9.13.3"

// Resources the provider issues tokens for: a JWT access token for
// JWTResource, an opaque one for OpaqueResource.
const (
	JWTResource    = "https://api.test/jwt"
	OpaqueResource = "https://api.test/opaque"
)

// The gateway's client at the introspection endpoint.
const (
	GatewayClient = "gateway"
	GatewaySecret = "gateway-secret"
)

// Provider is a running node-oidc-provider.
type Provider struct {
	// Issuer is its issuer URL, http://127.0.0.1:PORT.
	Issuer string
	// Stderr is what the provider wrote to stderr (for failures).
	stderr *lockedBuffer
}

// Dir is the testdata directory of the provider.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "oidcprovider")
}

// Start installs the provider (npm ci, pinned) and starts it on
// 127.0.0.1; it is stopped at the end of t.
func Start(t testing.TB) *Provider {
	t.Helper()
	if os.Getenv("CI") == "true" {
		// CI must run the peer: a missing node is a broken CI, not a skip.
		for _, tool := range []string{"node", "npm"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("CI=true and %s is not installed: the oidc-provider peer test cannot run", tool)
			}
		}
	}
	node := npmtest.Install(t, Dir(), map[string]string{"oidc-provider": Version})
	cmd := exec.Command(node, "provider.mjs")
	cmd.Dir = Dir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the script exits when its stdin ends
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "ISSUER "); ok {
				lines <- iss
			}
		}
		close(lines)
	}()
	select {
	case iss, ok := <-lines:
		if !ok {
			t.Fatalf("oidc-provider exited before listening:\n%s", p.stderr.String())
		}
		p.Issuer = iss
	case <-time.After(60 * time.Second):
		t.Fatalf("oidc-provider did not start within 60s:\n%s", p.stderr.String())
	}
	return p
}

// Token gets an access token for resource with the client credentials
// grant, as the client "app" with the scope "read".
func (p *Provider) Token(t testing.TB, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "resource": {resource}}
	req, err := http.NewRequest(http.MethodPost, p.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	var out struct {
		AccessToken string `json:"access_token"`
	}
	p.post(t, req, &out)
	if out.AccessToken == "" {
		t.Fatal("oidc-provider issued no access token")
	}
	return out.AccessToken
}

// Rotate makes the provider sign with a new key and withdraws the old
// one from its JWKS at once; it returns the new key's id.
func (p *Provider) Rotate(t testing.TB) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.Issuer+"/__rotate", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		KID string `json:"kid"`
	}
	p.post(t, req, &out)
	return out.KID
}

func (p *Provider) post(t testing.TB, req *http.Request, out any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("oidc-provider %s answered %s: %s\n%s", req.URL.Path, resp.Status, body, p.stderr.String())
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("oidc-provider %s: %v: %s", req.URL.Path, err, body)
	}
}

// Users the provider's login page knows, with their passwords.
var Users = map[string]string{"alice": "alice-password", "bob": "bob-password"}

// AddClient registers a confidential client of the authorization code
// flow (with refresh tokens) whose redirect URIs and post-logout redirect
// URIs are given. Call it before any login: the provider is rebuilt.
func (p *Provider) AddClient(t testing.TB, id, secret string, redirectURIs, postLogout []string) {
	t.Helper()
	meta := map[string]any{
		"client_id": id, "client_secret": secret,
		"grant_types":                  []string{"authorization_code", "refresh_token"},
		"response_types":               []string{"code"},
		"redirect_uris":                redirectURIs,
		"post_logout_redirect_uris":    postLogout,
		"id_token_signed_response_alg": "ES256",
		"token_endpoint_auth_method":   "client_secret_basic",
	}
	if postLogout == nil {
		delete(meta, "post_logout_redirect_uris")
	}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, p.Issuer+"/__client", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	var out struct{}
	p.post(t, req, &out)
}

// Stderr returns what the provider wrote to stderr so far.
func (p *Provider) Stderr() string { return p.stderr.String() }

// JWTConfig is a jwt authenticator's settings for the provider's JWT
// access tokens, with extra YAML lines appended.
func (p *Provider) JWTConfig(extra ...string) string {
	return fmt.Sprintf("issuer: %s\naudiences: [%s]\nalgorithms: [ES256]\njwks_url: %s/jwks\n%s",
		p.Issuer, JWTResource, p.Issuer, strings.Join(extra, "\n"))
}

// IntrospectConfig is an introspect authenticator's settings for the
// provider's introspection endpoint.
func (p *Provider) IntrospectConfig(extra ...string) string {
	return fmt.Sprintf("endpoint: %s/token/introspection\nclient_id: %s\nclient_secret: %s\n%s",
		p.Issuer, GatewayClient, GatewaySecret, strings.Join(extra, "\n"))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
