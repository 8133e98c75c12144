package authserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// clock is a settable clock starting at the real time (certificates made
// by tlstest and in the SAML tests are valid around it).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	readerSecret = "reader-secret-0123456789"
	writerSecret = "writer-secret-0123456789"
	testKEK      = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// env is one authorization server under test, on a real listener.
type env struct {
	t      testing.TB
	clock  *clock
	store  store.Store
	revs   *revocation.List
	srv    *Server
	ts     *httptest.Server
	issuer string
	dir    string
	cfg    *config.Config
}

// baseClients registers reader (products:read), writer (both scopes, token
// exchange) and anything in extra (YAML list items, indented 4).
func baseClients(extra string) string {
	return `
    - client_id: reader
      secret_hash: ` + sha256Hex(readerSecret) + `
      scopes: [products:read]
      audience: [api://products, api://other]
    - client_id: writer
      secret_hash: ` + sha256Hex(writerSecret) + `
      scopes: [products:read, products:write]
      audience: [api://products]
      grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
` + extra
}

// newEnv starts a server whose config is the authorization_server section
// body (indented 2) with ISSUER replaced by the listener's URL. ts is
// plain HTTP unless tlsServer is given (already configured, not started).
func newEnv(t testing.TB, section string, opts ...func(*env)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), dir: t.TempDir()}
	e.revs = revocation.New(e.clock.now)
	e.store = store.NewMemory(e.clock.now)
	t.Cleanup(func() { e.store.Close() })
	e.ts = httptest.NewUnstartedServer(nil)
	for _, o := range opts {
		o(e)
	}
	scheme := "http"
	if e.ts.TLS != nil {
		scheme = "https"
	}
	e.issuer = scheme + "://" + e.ts.Listener.Addr().String()
	e.start(section)
	e.ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.srv.ServeHTTP(w, r) })
	if e.ts.TLS != nil {
		e.ts.StartTLS()
	} else {
		e.ts.Start()
	}
	t.Cleanup(e.ts.Close)
	return e
}

// start builds (or rebuilds, as on a restart or reload) the server.
func (e *env) start(section string) {
	e.t.Helper()
	doc := "listeners: [{address: \"127.0.0.1:0\"}]\nauthorization_server:\n" + strings.ReplaceAll(section, "ISSUER", e.issuer)
	cfg, err := config.LoadBytes(filepath.Join(e.dir, "gatehouse.yaml"), []byte(doc), nil)
	if err != nil {
		e.t.Fatalf("config: %v\n%s", err, doc)
	}
	e.cfg = cfg
	if e.srv != nil {
		e.srv.Close()
	}
	srv, err := New(*cfg.AuthorizationServer, Deps{
		Store: e.store, Revocations: e.revs, Now: e.clock.now, Config: cfg, BaseDir: e.dir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.srv = srv
	e.t.Cleanup(func() { srv.Close() })
}

func (e *env) writeFile(name string, data []byte) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func defaultSection(extraClients string) string {
	return "  issuer: ISSUER\n  key_encryption_key: " + testKEK + "\n  clients:" + baseClients(extraClients)
}

// post sends a form to path, with Basic credentials when id is not empty.
func (e *env) post(path, id, secret string, form url.Values, hdr ...string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			e.t.Fatalf("%s: %d, body %q is not JSON", path, resp.StatusCode, body)
		}
	}
	return resp, m
}

// token gets a client_credentials token or fails the test.
func (e *env) token(id, secret, scope string) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	resp, m := e.post(PathToken, id, secret, form)
	if resp.StatusCode != 200 {
		e.t.Fatalf("token: %d %v", resp.StatusCode, m)
	}
	return m["access_token"].(string)
}

// verify checks tok against the published JWKS the way a relying party
// would and returns its header and claims.
func (e *env) verify(tok string) (map[string]any, map[string]any) {
	e.t.Helper()
	set, err := jwk.Fetch(e.t.Context(), e.issuer+PathJWKS, jwk.WithHTTPClient(e.ts.Client()))
	if err != nil {
		e.t.Fatalf("fetching the JWKS: %v", err)
	}
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		e.t.Fatalf("token does not verify with the published keys: %v", err)
	}
	return decodePart(e.t, tok, 0), decodeJSON(e.t, payload)
}

func decodePart(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	return decodeJSON(t, b)
}

func decodeJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func revocationList(e *env) *revocation.List { return revocation.New(e.clock.now) }

func decodeBody(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", resp.Request.URL, err)
	}
}

func formOf(kv ...string) url.Values {
	f := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}
