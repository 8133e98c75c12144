package authserver_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/dpop/dpoptest"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// TestBoundTokenAtEveryDoor runs one gateway over real TLS (client
// certificates verified if given) with the authorization server and two
// routes, one authenticating with jwt (keys by discovery), one with
// introspect (at the server's own introspection endpoint, whose answers
// carry cnf), neither with a binding policy. The same DPoP-bound and
// certificate-bound tokens are presented at both routes and at token
// exchange: without their proof, with another key's or certificate, they
// are refused at every door; with it they pass.
func TestBoundTokenAtEveryDoor(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "gateway CA")
	srvCert, srvKey := ca.Server(t).WriteFiles(t, dir, "server")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	mine, theirs := ca.Client(t, "cert-client"), ca.Client(t, "intruder")
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	addr := freeAddr(t)
	issuer := "https://" + addr
	src := `
listeners:
  - name: main
    address: "` + addr + `"
    tls: {cert_file: ` + srvCert + `, key_file: ` + srvKey + `, client_auth: verify_if_given, client_ca_file: ` + caFile + `}
admin: {address: "off"}
access_log: {disabled: true}
authorization_server:
  issuer: ` + issuer + `
  insecure_plaintext_keys: true
  clients:
    - client_id: dpop-client
      secret_hash: ` + hashOf("dpop-client-secret") + `
      scopes: [products:read]
      audience: [products]
      grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    - client_id: cert-client
      tls_client_auth_subject_dn: CN=cert-client
      scopes: [products:read]
      audience: [products]
      grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    - client_id: introspector
      secret_hash: ` + hashOf("introspector-secret-0123456789") + `
routes:
  - name: jwt
    match: {path: /jwt}
    upstream: {url: ` + upstream.URL + `}
    policies:
      - authenticate:
          with:
            - jwt: {issuer: "` + issuer + `", oidc_discovery: true, ca_file: ` + caFile + `, audiences: [products], algorithms: [ES256], typ: at+jwt}
  - name: introspect
    match: {path: /introspect}
    upstream: {url: ` + upstream.URL + `}
    policies:
      - authenticate:
          with:
            - introspect: {endpoint: "` + issuer + `/oauth2/introspect", ca_file: ` + caFile + `, client_id: introspector, client_secret: introspector-secret-0123456789}
`
	gatewaytest.Start(t, src, gateway.Options{Registry: builtin.Registry(), BaseDir: dir})
	client := func(leaf *tlstest.Leaf) *http.Client {
		cfg := &tls.Config{RootCAs: ca.Pool()}
		if leaf != nil {
			cfg.Certificates = []tls.Certificate{leaf.TLS}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	do := func(c *http.Client, req *http.Request) (int, map[string]any) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	tokenReq := func(form url.Values, basic bool, proof string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth("dpop-client", "dpop-client-secret")
		}
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		return req
	}
	key, other := dpoptest.NewKey(t), dpoptest.NewKey(t)
	code, m := do(client(nil), tokenReq(url.Values{"grant_type": {"client_credentials"}}, true, key.Proof(t, "POST", issuer+"/oauth2/token", "", time.Now())))
	if code != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("DPoP token: %d %v", code, m)
	}
	dpopTok := m["access_token"].(string)
	code, m = do(client(mine), tokenReq(url.Values{"grant_type": {"client_credentials"}, "client_id": {"cert-client"}}, false, ""))
	if code != 200 {
		t.Fatalf("certificate-bound token: %d %v", code, m)
	}
	certTok := m["access_token"].(string)

	call := func(c *http.Client, path, scheme, tok string, proofKey *dpoptest.Key) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, issuer+path, nil)
		req.Header.Set("Authorization", scheme+" "+tok)
		if proofKey != nil {
			req.Header.Set("DPoP", proofKey.Proof(t, "GET", issuer+path, tok, time.Now()))
		}
		code, _ := do(c, req)
		return code
	}
	for _, path := range []string{"/jwt", "/introspect"} {
		t.Run(path, func(t *testing.T) {
			// The first good call may wait for the jwt route's key fetch.
			deadline := time.Now().Add(10 * time.Second)
			for call(client(nil), path, "DPoP", dpopTok, key) != 200 {
				if time.Now().After(deadline) {
					t.Fatal("the DPoP-bound token with its proof was never accepted")
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, tc := range []struct {
				name   string
				c      *http.Client
				scheme string
				tok    string
				key    *dpoptest.Key
				want   int
			}{
				{"DPoP-bound as bearer", client(nil), "Bearer", dpopTok, nil, 401},
				{"DPoP-bound without proof", client(nil), "DPoP", dpopTok, nil, 401},
				{"DPoP-bound with another key's proof", client(nil), "DPoP", dpopTok, other, 401},
				{"DPoP-bound with its proof", client(nil), "DPoP", dpopTok, key, 200},
				{"cert-bound without certificate", client(nil), "Bearer", certTok, nil, 401},
				{"cert-bound with another certificate", client(theirs), "Bearer", certTok, nil, 401},
				{"cert-bound with its certificate", client(mine), "Bearer", certTok, nil, 200},
			} {
				if got := call(tc.c, path, tc.scheme, tc.tok, tc.key); got != tc.want {
					t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
				}
			}
		})
	}
	t.Run("exchange", func(t *testing.T) {
		exch := func(subject string) url.Values {
			return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
		}
		te := issuer + "/oauth2/token"
		if code, m := do(client(nil), tokenReq(exch(dpopTok), true, "")); code != 400 || m["error"] != "invalid_grant" {
			t.Errorf("DPoP-bound without proof: %d %v", code, m)
		}
		if code, m := do(client(nil), tokenReq(exch(dpopTok), true, other.Proof(t, "POST", te, "", time.Now()))); code != 400 || m["error"] != "invalid_grant" {
			t.Errorf("DPoP-bound with another key's proof: %d %v", code, m)
		}
		if code, m := do(client(nil), tokenReq(exch(dpopTok), true, key.Proof(t, "POST", te, "", time.Now()))); code != 200 || m["token_type"] != "DPoP" {
			t.Errorf("DPoP-bound with its proof: %d %v", code, m)
		}
		certExch := func(leaf *tlstest.Leaf) (int, map[string]any) {
			f := exch(certTok)
			f.Set("client_id", "cert-client")
			return do(client(leaf), tokenReq(f, false, ""))
		}
		// cert-client authenticates by its certificate, so it always
		// presents it (TestExchangeCertBoundSubject tries the binding with
		// clients authenticated otherwise); another client is not entitled
		// to its token at all.
		if code, m := do(client(theirs), tokenReq(exch(certTok), true, "")); code != 400 || m["error"] != "invalid_grant" {
			t.Errorf("cert-bound token exchanged by another client: %d %v", code, m)
		}
		if code, m := certExch(mine); code != 200 {
			t.Errorf("cert-bound with its certificate: %d %v", code, m)
		}
	})
}
