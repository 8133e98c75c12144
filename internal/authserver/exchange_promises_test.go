package authserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// ownToken signs an access token of this server with arbitrary claims, as
// another of its grants (or a client's fixed claims) could have made it.
func (e *env) ownToken(claims map[string]any) string {
	e.t.Helper()
	now := e.clock.now()
	c := map[string]any{"iss": e.issuer, "sub": "alice", "aud": "api://products", "client_id": "reader",
		"scope": "products:read", "jti": newJTI(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	tok, err := e.srv.ring.signing().Sign(mustJSON(c), "at+jwt")
	if err != nil {
		e.t.Fatal(err)
	}
	return string(tok)
}

func wantGrant(t *testing.T, resp *http.Response, m map[string]any, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || (code != "" && m["error"] != code) {
		t.Fatalf("got %d %v, want %d %s", resp.StatusCode, m, status, code)
	}
}

// TestExchangeEntitlement: a client exchanges only subject tokens it is
// entitled to (RFC 8693 §4.4): its own (client_id), ones naming it (aud,
// azp), ones whose may_act names it, or those of a client its
// may_exchange lists; any other is invalid_grant.
func TestExchangeEntitlement(t *testing.T) {
	e := newEnv(t, defaultSection(`    - client_id: delegate
      secret_hash: `+sha256Hex("delegate-secret")+`
      scopes: [products:read]
      audience: [api://products]
      grant_types: [urn:ietf:params:oauth:grant-type:token-exchange]
      may_exchange: [reader]
`))
	readers := e.token("reader", readerSecret, "products:read")
	for _, tc := range []struct {
		name, id, secret, subject string
		ok                        bool
	}{
		{"own token", "writer", writerSecret, e.token("writer", writerSecret, "products:read"), true},
		{"another client's token", "writer", writerSecret, readers, false},
		{"another client's token, delegated in config", "delegate", "delegate-secret", readers, true},
		{"delegation names another client", "delegate", "delegate-secret", e.token("writer", writerSecret, "products:read"), false},
		{"aud names the client", "writer", writerSecret, e.ownToken(map[string]any{"aud": "writer"}), true},
		{"azp names the client", "writer", writerSecret, e.ownToken(map[string]any{"azp": "writer"}), true},
		{"may_act names the actor", "writer", writerSecret, e.ownToken(map[string]any{"may_act": map[string]any{"sub": "writer"}}), true},
		{"may_act names another", "writer", writerSecret, e.ownToken(map[string]any{"may_act": map[string]any{"sub": "billing"}}), false},
		{"may_act not an object", "writer", writerSecret, e.ownToken(map[string]any{"may_act": "writer"}), false},
		{"no client_id", "writer", writerSecret, e.ownToken(map[string]any{"client_id": nil}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, tc.id, tc.secret, exchangeForm(tc.subject, TokenTypeAccessToken))
			if tc.ok {
				wantGrant(t, resp, m, 200, "")
			} else {
				wantGrant(t, resp, m, 400, "invalid_grant")
			}
		})
	}
}

// TestExchangeDPoPBoundSubject: a DPoP-bound subject (or actor) token is
// exchanged only with a DPoP proof by its key, and the new token is bound
// to that key.
func TestExchangeDPoPBoundSubject(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	htu := e.issuer + PathToken
	get := func() string {
		resp, m := e.post(PathToken, "writer", writerSecret, formOf("grant_type", "client_credentials", "scope", "products:read"), "DPoP", dpopProof(t, key, htu, e.clock.now()))
		wantGrant(t, resp, m, 200, "")
		return m["access_token"].(string)
	}
	subject := get()
	resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(subject, TokenTypeAccessToken))
	wantGrant(t, resp, m, 400, "invalid_grant")
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(subject, TokenTypeAccessToken), "DPoP", dpopProof(t, other, htu, e.clock.now()))
	wantGrant(t, resp, m, 400, "invalid_grant")
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(subject, TokenTypeAccessToken), "DPoP", dpopProof(t, key, htu, e.clock.now()))
	wantGrant(t, resp, m, 200, "")
	if m["token_type"] != "DPoP" {
		t.Errorf("token_type %v, want DPoP", m["token_type"])
	}
	_, c := e.verify(m["access_token"].(string))
	if cnf, _ := c["cnf"].(map[string]any); cnf["jkt"] != jkt(t, &key.PublicKey) || len(cnf) != 1 {
		t.Errorf("exchanged cnf %v, want jkt of the subject's key", c["cnf"])
	}
	// A bound actor token needs its proof too.
	plain := e.token("writer", writerSecret, "products:read")
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(plain, TokenTypeAccessToken, "actor_token", get(), "actor_token_type", TokenTypeAccessToken))
	wantGrant(t, resp, m, 400, "invalid_grant")
}

// mtlsEnv is an environment served over TLS that asks for (and verifies)
// client certificates of ca, with section as its config.
func mtlsEnv(t *testing.T, ca *tlstest.CA, section string, opts ...func(*env)) *env {
	serverCert := ca.Server(t)
	return newEnv(t, section, append([]func(*env){func(e *env) {
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		e.ts.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert.TLS}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	}}, opts...)...)
}

// presenting makes e's client present leaf (none when nil).
func presenting(e *env, ca *tlstest.CA, leaf *tlstest.Leaf) {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: roots}
	if leaf != nil {
		cfg.Certificates = []tls.Certificate{leaf.TLS}
	}
	e.ts.Client().Transport = &http.Transport{TLSClientConfig: cfg}
}

func x5tOf(l *tlstest.Leaf) string {
	sum := sha256.Sum256(l.TLS.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestExchangeCertBoundSubject: a certificate-bound subject token is
// exchanged only over a connection with that verified certificate, and
// the new token stays bound to it.
func TestExchangeCertBoundSubject(t *testing.T) {
	ca := tlstest.NewCA(t, "clients")
	mine, theirs := ca.Client(t, "mine"), ca.Client(t, "theirs")
	e := mtlsEnv(t, ca, defaultSection(""))
	subject := e.ownToken(map[string]any{"client_id": "writer", "cnf": map[string]any{"x5t#S256": x5tOf(mine)}})
	for _, tc := range []struct {
		name string
		leaf *tlstest.Leaf
		ok   bool
	}{{"no certificate", nil, false}, {"another certificate", theirs, false}, {"its certificate", mine, true}} {
		t.Run(tc.name, func(t *testing.T) {
			presenting(e, ca, tc.leaf)
			resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(subject, TokenTypeAccessToken))
			if !tc.ok {
				wantGrant(t, resp, m, 400, "invalid_grant")
				return
			}
			wantGrant(t, resp, m, 200, "")
			_, c := e.verify(m["access_token"].(string))
			if cnf, _ := c["cnf"].(map[string]any); cnf["x5t#S256"] != x5tOf(mine) {
				t.Errorf("exchanged cnf %v, want the subject's certificate", c["cnf"])
			}
		})
	}
}

const samlSection = "  issuer: ISSUER\n  key_encryption_key: " + testKEK + "\n  saml_issuers:\n    - issuer: https://sts.test\n      certificate_file: sts.pem\n  clients:"

// TestExchangeSAMLLifecycle: the exchange applies the lifecycle every door
// shares: the audience may be the issuer or the token endpoint; a bearer
// confirmation is required, and its Recipient must be the token endpoint,
// its Address the client's, no InResponseTo, within its times; a cancelled
// assertion is refused; an assertion refused for any of these is not spent.
func TestExchangeSAMLLifecycle(t *testing.T) {
	sts := newSAMLSigner(t)
	e := newEnv(t, samlSection+baseClients(""), func(e *env) { e.writeFile("sts.pem", sts.certPEM) })
	now := e.clock.now()
	te := e.issuer + PathToken
	opts := func(f func(*assertionOpts)) assertionOpts {
		o := assertionOpts{id: "_" + newJTI(), issuer: "https://sts.test", subject: "alice", audience: e.issuer,
			notBefore: now.Add(-time.Minute), notOnOrAfter: now.Add(5 * time.Minute)}
		if f != nil {
			f(&o)
		}
		return o
	}
	for _, tc := range []struct {
		name string
		o    assertionOpts
		ok   bool
	}{
		{"plain bearer", opts(nil), true},
		{"audience the token endpoint", opts(func(o *assertionOpts) { o.audience = te }), true},
		{"recipient the token endpoint", opts(func(o *assertionOpts) { o.recipient = te }), true},
		{"recipient elsewhere", opts(func(o *assertionOpts) { o.recipient = "https://sp.example/acs" }), false},
		{"recipient the issuer", opts(func(o *assertionOpts) { o.recipient = e.issuer }), false},
		{"address of the client", opts(func(o *assertionOpts) { o.address = "127.0.0.1" }), true},
		{"address of another", opts(func(o *assertionOpts) { o.address = "203.0.113.5" }), false},
		{"in response to", opts(func(o *assertionOpts) { o.inResponseTo = "_req" }), false},
		{"confirmation expired", opts(func(o *assertionOpts) { o.confNotOnOrAfter = now.Add(-time.Minute) }), false},
		{"no confirmation", opts(func(o *assertionOpts) { o.method = "none" }), false},
		{"sender-vouches only", opts(func(o *assertionOpts) { o.method = saml2.MethodSenderVouches }), false},
		{"expired beyond skew", opts(func(o *assertionOpts) { o.notOnOrAfter = now.Add(-31 * time.Second) }), false},
		{"not yet beyond skew", opts(func(o *assertionOpts) { o.notBefore = now.Add(31 * time.Second) }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sts.assertion(t, tc.o, nil)
			resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(tok, TokenTypeSAML2))
			if tc.ok {
				wantGrant(t, resp, m, 200, "")
				return
			}
			wantGrant(t, resp, m, 400, "invalid_grant")
			// Not spent by the refusal: fixed, the same ID passes.
			if tc.name == "address of another" {
				o := tc.o
				o.address = ""
				resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(sts.assertion(t, o, nil), TokenTypeSAML2))
				wantGrant(t, resp, m, 200, "")
			}
		})
	}
	// Refused for its scope or audience: not spent either.
	kept := sts.assertion(t, opts(nil), nil)
	resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(kept, TokenTypeSAML2, "scope", "products:admin"))
	wantGrant(t, resp, m, 400, "invalid_scope")
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(kept, TokenTypeSAML2, "audience", "api://elsewhere"))
	wantGrant(t, resp, m, 400, "")
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(kept, TokenTypeSAML2))
	wantGrant(t, resp, m, 200, "")
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(kept, TokenTypeSAML2))
	wantGrant(t, resp, m, 400, "invalid_grant")

	cancelled := opts(nil)
	if err := lifecycle.New(e.store).Cancel(t.Context(), cancelled.id, time.Hour); err != nil {
		t.Fatal(err)
	}
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(sts.assertion(t, cancelled, nil), TokenTypeSAML2))
	wantGrant(t, resp, m, 400, "invalid_grant")
}

// TestExchangeSAMLHolderOfKey: a holder-of-key assertion is exchanged only
// with proof of its confirmed key: a DPoP proof made with it (the new
// token DPoP-bound to it) or its certificate on the connection (the new
// token bound to the certificate). Without either, or with another key or
// certificate, it is invalid_grant, and not spent.
func TestExchangeSAMLHolderOfKey(t *testing.T) {
	ca := tlstest.NewCA(t, "clients")
	holder, other := ca.Client(t, "holder"), ca.Client(t, "other")
	holderKey := holder.TLS.PrivateKey.(*ecdsa.PrivateKey)
	otherKey := other.TLS.PrivateKey.(*ecdsa.PrivateKey)
	sts := newSAMLSigner(t)
	e := mtlsEnv(t, ca, samlSection+baseClients(""), func(e *env) { e.writeFile("sts.pem", sts.certPEM) })
	now := e.clock.now()
	htu := e.issuer + PathToken
	hok := assertionOpts{id: "_" + newJTI(), issuer: "https://sts.test", subject: "alice", audience: e.issuer,
		notBefore: now.Add(-time.Minute), notOnOrAfter: now.Add(5 * time.Minute),
		method: saml2.MethodHolderOfKey, hokCert: holder.TLS.Leaf}
	tok := sts.assertion(t, hok, nil)
	try := func(leaf *tlstest.Leaf, key *ecdsa.PrivateKey) (*http.Response, map[string]any) {
		presenting(e, ca, leaf)
		var hdr []string
		if key != nil {
			hdr = []string{"DPoP", dpopProof(t, key, htu, e.clock.now())}
		}
		return e.post(PathToken, "writer", writerSecret, exchangeForm(tok, TokenTypeSAML2), hdr...)
	}
	for _, tc := range []struct {
		name string
		leaf *tlstest.Leaf
		key  *ecdsa.PrivateKey
	}{{"no proof", nil, nil}, {"DPoP by another key", nil, otherKey}, {"another certificate", other, nil}, {"another certificate and key", other, otherKey}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := try(tc.leaf, tc.key)
			wantGrant(t, resp, m, 400, "invalid_grant")
		})
	}
	resp, m := try(nil, holderKey)
	wantGrant(t, resp, m, 200, "")
	_, c := e.verify(m["access_token"].(string))
	if cnf, _ := c["cnf"].(map[string]any); cnf["jkt"] != jkt(t, &holderKey.PublicKey) || m["token_type"] != "DPoP" {
		t.Errorf("exchanged with DPoP: cnf %v, token_type %v, want DPoP bound to the holder's key", c["cnf"], m["token_type"])
	}
	// Spent now, whatever proof comes with it.
	resp, m = try(holder, nil)
	wantGrant(t, resp, m, 400, "invalid_grant")

	hok.id = "_" + newJTI()
	tok = sts.assertion(t, hok, nil)
	resp, m = try(holder, nil)
	wantGrant(t, resp, m, 200, "")
	_, c = e.verify(m["access_token"].(string))
	if cnf, _ := c["cnf"].(map[string]any); cnf["x5t#S256"] != x5tOf(holder) {
		t.Errorf("exchanged over mTLS: cnf %v, want the holder's certificate", c["cnf"])
	}
}

// TestCancelRevokesExchangedToken: the token an assertion was exchanged
// for is revoked when the assertion is cancelled: by the published
// message, by a rescan when messages may have been lost, and by the
// exchange itself when the cancellation came while it ran.
func TestCancelRevokesExchangedToken(t *testing.T) {
	sts := newSAMLSigner(t)
	e := newEnv(t, samlSection+baseClients(""), func(e *env) { e.writeFile("sts.pem", sts.certPEM) })
	now := e.clock.now()
	lc := lifecycle.New(e.store)
	exchanged := func() (id, jti string) {
		o := assertionOpts{id: "_" + newJTI(), issuer: "https://sts.test", subject: "alice", audience: e.issuer,
			notBefore: now.Add(-time.Minute), notOnOrAfter: now.Add(5 * time.Minute)}
		resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(sts.assertion(t, o, nil), TokenTypeSAML2))
		wantGrant(t, resp, m, 200, "")
		return o.id, decodePart(t, m["access_token"].(string), 1)["jti"].(string)
	}
	ctx := t.Context()

	id, jti := exchanged()
	if e.revs.Revoked(jti) {
		t.Fatal("revoked before any cancellation")
	}
	if err := lc.Cancel(ctx, id, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Publish(ctx, lifecycle.CancelChannel, []byte(id+" 0")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !e.revs.Revoked(jti) {
		if time.Now().After(deadline) {
			t.Fatal("the published cancellation did not revoke the exchanged token")
		}
		time.Sleep(5 * time.Millisecond)
	}

	id, jti = exchanged()
	if err := lc.Cancel(ctx, id, time.Hour); err != nil { // no message: lost
		t.Fatal(err)
	}
	if err := e.srv.revokeAllCancelled(ctx); err != nil {
		t.Fatal(err)
	}
	if !e.revs.Revoked(jti) {
		t.Fatal("the rescan did not revoke the exchanged token")
	}

	if err := lc.Cancel(ctx, "_racing", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.rememberExchange(ctx, "_racing", "jti-racing", now.Add(time.Minute)); !errors.Is(err, lifecycle.ErrCancelled) {
		t.Fatalf("exchange overtaken by a cancellation: %v", err)
	}
	if !e.revs.Revoked("jti-racing") {
		t.Fatal("the token of an exchange overtaken by a cancellation was not revoked")
	}
}
