package jwt

import (
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/dpop/dpoptest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

func TestAlgorithms(t *testing.T) {
	signers := []signer{
		{"rs256", jose.RS256, rsaKey(0)},
		{"rs384", jose.RS384, rsaKey(0)},
		{"rs512", jose.RS512, rsaKey(0)},
		{"ps256", jose.PS256, rsaKey(1)},
		{"ps384", jose.PS384, rsaKey(1)},
		{"ps512", jose.PS512, rsaKey(1)},
		{"es256", jose.ES256, ecKey(t, elliptic.P256())},
		{"es384", jose.ES384, ecKey(t, elliptic.P384())},
		{"es512", jose.ES512, ecKey(t, elliptic.P521())},
		{"eddsa", jose.EdDSA, edKey(t)},
	}
	var jwks []jose.JSONWebKey
	for _, s := range signers {
		jwks = append(jwks, s.jwk())
	}
	p := newIDP(t, jwks...)
	w := newWorld()
	a := w.build(t, jwksConfig(p, "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", "cache: {disabled: true}"))
	for _, s := range signers {
		t.Run(string(s.alg), func(t *testing.T) {
			pr, err := auth(t, a, bearer(s.sign(t, claims(p.srv.URL))))
			if err != nil {
				t.Fatalf("got %v, want the token accepted", err)
			}
			if pr.Subject != "alice" {
				t.Errorf("subject %q, want alice", pr.Subject)
			}
		})
	}
}

func TestPrincipal(t *testing.T) {
	s := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, s.jwk())
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256"))
	scp := w.build(t, jwksConfig(p, "ES256", "scope_claim: scp", "subject_claim: oid"))
	for _, tc := range []struct {
		name   string
		a      *Authenticator
		claims map[string]any
		want   policy.Principal
	}{
		{"scope string", a, claims(p.srv.URL), policy.Principal{
			Subject: "alice", ClientID: "app", Consumer: "app", Scopes: []string{"products:read", "products:write"}, Method: "jwt"}},
		{"scope array", a, claims(p.srv.URL, "scope", []string{"a", "b"}), policy.Principal{
			Subject: "alice", ClientID: "app", Consumer: "app", Scopes: []string{"a", "b"}, Method: "jwt"}},
		{"azp and no sub", a, claims(p.srv.URL, "client_id", nil, "sub", nil, "azp", "spa"), policy.Principal{
			Subject: "spa", ClientID: "spa", Consumer: "spa", Scopes: []string{"products:read", "products:write"}, Method: "jwt"}},
		{"no client", a, claims(p.srv.URL, "client_id", nil, "scope", nil), policy.Principal{
			Subject: "alice", Consumer: "alice", Method: "jwt"}},
		{"entra scp and oid", scp, claims(p.srv.URL, "scp", "Products.Read", "oid", "0000-1111", "scope", nil), policy.Principal{
			Subject: "0000-1111", ClientID: "app", Consumer: "app", Scopes: []string{"Products.Read"}, Method: "jwt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := s.sign(t, tc.claims)
			pr, err := auth(t, tc.a, bearer(tok))
			if err != nil {
				t.Fatal(err)
			}
			got := *pr
			got.Claims = nil
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("principal (-got +want):\n%s", diff)
			}
			if pr.Claims["iss"] != p.srv.URL || pr.Claims["jti"] != tc.claims["jti"] {
				t.Errorf("claims %v lack iss or jti", pr.Claims)
			}
			if c, ok := tc.claims["cnf"]; ok {
				if diff := cmp.Diff(pr.Claims["cnf"], any(map[string]any{"x5t#S256": "abc"})); diff != "" || c == nil {
					t.Errorf("cnf not kept as decoded JSON (-got +want):\n%s", diff)
				}
			}
			// Each request gets its own copy.
			pr.Subject = "mallory"
			again, err := auth(t, tc.a, bearer(tok))
			if err != nil || again.Subject != tc.want.Subject {
				t.Errorf("second request: %v, subject %q, want %q", err, again.Subject, tc.want.Subject)
			}
		})
	}
}

// notOurs are the TestAttacks cases that are not a JWT of the
// authenticator's issuer: it declines them (authn.Declined).
var notOurs = map[string]bool{
	"wrong issuer": true, "issuer with a trailing slash": true,
	"truncated": true, "two parts": true, "five parts (JWE)": true, "garbage": true,
	"header not JSON": true, "padded base64": true, "payload not an object": true,
	"trailing data after the payload": true,
	"a real JWE's shape":              true, "opaque token with three dot-separated parts": true, "opaque token with a dot": true,
	"header without alg": true, "header alg not a string": true, "payload without iss": true, "iss not a string": true,
	"another issuer's token with an unknown kid": true,
}

func TestAttacks(t *testing.T) {
	good := signer{"good", jose.RS256, rsaKey(0)}
	goodEC := signer{"good-ec", jose.ES256, ecKey(t, elliptic.P256())}
	attacker := signer{"evil", jose.RS256, rsaKey(2)}
	p := newIDP(t, good.jwk(), goodEC.jwk())
	iss := p.srv.URL

	// The attacker's own key server, for jku: it must never be asked.
	var attackerHits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer evil.Close()

	pubDER, _ := x509.MarshalPKIXPublicKey(rsaKey(0).Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	b := base64.RawURLEncoding.EncodeToString

	w := newWorld()
	a := w.build(t, jwksConfig(p, "RS256, ES256", "typ: at+jwt", "required_claims: [jti]", "max_token_bytes: 4KiB"))
	at := func(o *jose.SignerOptions) { o.WithType("at+jwt") }
	valid := claims(iss)

	for _, tc := range []struct {
		name         string
		token        string
		status       int
		code, detail string
	}{
		{"control: good", good.sign(t, valid, at), 0, "", ""},
		{"alg none", b([]byte(`{"alg":"none","typ":"at+jwt","kid":"good"}`)) + "." + b(mustJSON(valid)) + ".", 401, "invalid_token", descAlg},
		{"alg none with a signature", b([]byte(`{"alg":"none","typ":"at+jwt","kid":"good"}`)) + "." + b(mustJSON(valid)) + ".c2ln", 401, "invalid_token", descAlg},
		{"HS256 with the RSA public key as secret", signer{"good", jose.HS256, nil}.signHMAC(t, pubPEM, valid), 401, "invalid_token", descAlg},
		{"HS256 with the raw modulus as secret", signer{"good", jose.HS256, nil}.signHMAC(t, rsaKey(0).N.Bytes(), valid), 401, "invalid_token", descAlg},
		{"kid is a file path", signer{"../../etc/passwd", jose.RS256, rsaKey(2)}.sign(t, valid, at), 401, "invalid_token", descKey},
		{"jku to the attacker's keys", attacker.sign(t, valid, at, func(o *jose.SignerOptions) { o.WithHeader("jku", evil.URL+"/keys") }), 401, "invalid_token", descKey},
		{"x5u to the attacker", attacker.sign(t, valid, at, func(o *jose.SignerOptions) { o.WithHeader("x5u", evil.URL+"/cert") }), 401, "invalid_token", descKey},
		{"embedded jwk, no kid", signer{"", jose.RS256, rsaKey(2)}.sign(t, valid, at, func(o *jose.SignerOptions) { o.EmbedJWK = true }), 401, "invalid_token", descSignature},
		{"embedded jwk with our kid", signer{"good", jose.RS256, rsaKey(2)}.sign(t, valid, at, func(o *jose.SignerOptions) { o.EmbedJWK = true }), 401, "invalid_token", descSignature},
		{"signed by another key with our kid", signer{"good", jose.RS256, rsaKey(2)}.sign(t, valid, at), 401, "invalid_token", descSignature},
		{"expired", good.sign(t, claims(iss, "exp", policytest.Start.Add(-31*time.Second).Unix()), at), 401, "invalid_token", descExpired},
		{"expired within leeway", good.sign(t, claims(iss, "exp", policytest.Start.Add(-29*time.Second).Unix()), at), 0, "", ""},
		{"no exp", good.sign(t, claims(iss, "exp", nil), at), 401, "invalid_token", descRequired},
		{"exp not a number", good.sign(t, claims(iss, "exp", "tomorrow"), at), 401, "invalid_token", descMalformed},
		{"not yet valid", good.sign(t, claims(iss, "nbf", policytest.Start.Add(time.Minute).Unix()), at), 401, "invalid_token", descNotYet},
		{"iat in the future", good.sign(t, claims(iss, "iat", policytest.Start.Add(time.Minute).Unix()), at), 401, "invalid_token", descFuture},
		{"iat in the future within leeway", good.sign(t, claims(iss, "iat", policytest.Start.Add(20*time.Second).Unix()), at), 0, "", ""},
		{"wrong audience", good.sign(t, claims(iss, "aud", "api://other"), at), 401, "invalid_token", descAudience},
		{"one of several audiences", good.sign(t, claims(iss, "aud", []string{"api://other", testAud}), at), 0, "", ""},
		{"no audience", good.sign(t, claims(iss, "aud", nil), at), 401, "invalid_token", descAudience},
		{"wrong issuer", good.sign(t, claims("https://evil.example"), at), 401, "invalid_token", descIssuer},
		{"issuer with a trailing slash", good.sign(t, claims(iss+"/"), at), 401, "invalid_token", descIssuer},
		{"unknown crit header", good.sign(t, valid, at, func(o *jose.SignerOptions) { o.WithCritical("urn:example:x").WithHeader("urn:example:x", true) }), 401, "invalid_token", descCrit},
		{"b64 false", good.sign(t, valid, at, func(o *jose.SignerOptions) { o.WithBase64(false) }), 401, "invalid_token", ""},
		{"huge token", good.sign(t, claims(iss, "pad", strings.Repeat("x", 5000)), at), 401, "invalid_token", descTooLarge},
		{"wrong typ", good.sign(t, valid, func(o *jose.SignerOptions) { o.WithType("JWT") }), 401, "invalid_token", descTyp},
		{"no typ", good.sign(t, valid), 401, "invalid_token", descTyp},
		{"typ with application/ prefix", good.sign(t, valid, func(o *jose.SignerOptions) { o.WithType("application/AT+JWT") }), 0, "", ""},
		{"alg not allowed", signer{"good", jose.PS256, rsaKey(0)}.sign(t, valid, at), 401, "invalid_token", descAlg},
		{"ES256 header with the RSA key's kid", signer{"good", jose.ES256, ecKey(t, elliptic.P256())}.sign(t, valid, at), 401, "invalid_token", descKey},
		{"RS256 header with the EC key's kid", signer{"good-ec", jose.RS256, rsaKey(0)}.sign(t, valid, at), 401, "invalid_token", descKey},
		{"missing required claim", good.sign(t, claims(iss, "jti", nil), at), 401, "invalid_token", descRequired},
		{"truncated", good.sign(t, valid, at)[:200], 401, "invalid_token", ""},
		{"signature cut", strings.TrimRight(good.sign(t, valid, at), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") + "AAAA", 401, "invalid_token", ""},
		{"two parts", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0", 401, "invalid_token", descMalformed},
		{"five parts (JWE)", "a.b.c.d.e", 401, "invalid_token", descMalformed},
		{"a real JWE's shape", b([]byte(`{"alg":"dir","enc":"A256GCM","kid":"good"}`)) + "..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA", 401, "invalid_token", descMalformed},
		{"opaque token with three dot-separated parts", "v1.abc.def", 401, "invalid_token", descMalformed},
		{"opaque token with a dot", "2tj7KP9jWQherN5umIT7J6.I19_KGS75E9LM4raaqsup", 401, "invalid_token", descMalformed},
		{"header without alg", b([]byte(`{"kid":"good","typ":"at+jwt"}`)) + "." + b(mustJSON(valid)) + ".c2ln", 401, "invalid_token", descMalformed},
		{"header alg not a string", b([]byte(`{"alg":1,"kid":"good","typ":"at+jwt"}`)) + "." + b(mustJSON(valid)) + ".c2ln", 401, "invalid_token", descMalformed},
		{"payload without iss", good.sign(t, claims(iss, "iss", nil), at), 401, "invalid_token", descIssuer},
		{"iss not a string", good.sign(t, claims(iss, "iss", []string{iss}), at), 401, "invalid_token", descIssuer},
		{"another issuer's token with an unknown kid", signer{"nope", jose.RS256, rsaKey(2)}.sign(t, claims("https://other.example"), at), 401, "invalid_token", descIssuer},
		{"our issuer's token with an unknown kid", signer{"nope", jose.RS256, rsaKey(2)}.sign(t, valid, at), 401, "invalid_token", descKey},
		{"our issuer, header kid not a string", b([]byte(`{"alg":"RS256","kid":7,"typ":"at+jwt"}`)) + "." + b(mustJSON(valid)) + ".c2ln", 401, "invalid_token", descMalformed},
		{"garbage", "not-a-token", 401, "invalid_token", descMalformed},
		{"header not JSON", b([]byte("hello")) + "." + b(mustJSON(valid)) + ".c2ln", 401, "invalid_token", descMalformed},
		{"padded base64", good.sign(t, valid, at) + "=", 401, "invalid_token", descMalformed},
		{"duplicate claim", good.signRaw(t, []byte(`{"iss":"`+iss+`","aud":"`+testAud+`","sub":"alice","sub":"admin","jti":"x","exp":`+itoa(policytest.Start.Add(time.Hour).Unix())+`}`), at), 401, "invalid_token", descMalformed},
		{"duplicate nested member", good.signRaw(t, []byte(`{"iss":"`+iss+`","aud":"`+testAud+`","sub":"alice","jti":"x","cnf":{"jkt":"a","jkt":"b"},"exp":`+itoa(policytest.Start.Add(time.Hour).Unix())+`}`), at), 401, "invalid_token", descMalformed},
		{"duplicate header member", b([]byte(`{"alg":"RS256","alg":"none","kid":"good","typ":"at+jwt"}`)) + "." + b(mustJSON(valid)) + ".c2ln", 401, "invalid_token", descMalformed},
		{"payload not an object", good.signRaw(t, []byte(`["iss"]`), at), 401, "invalid_token", descMalformed},
		{"trailing data after the payload", good.signRaw(t, append(mustJSON(valid), []byte(` {}`)...), at), 401, "invalid_token", descMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := auth(t, a, bearer(tc.token))
			// Not a JWT of this issuer: "not mine", with the refusal the
			// request gets when no other authenticator takes it.
			var dec *authn.Declined
			if errors.As(err, &dec) {
				if !notOurs[tc.name] {
					t.Fatalf("declined (%v), want it refused: it is a JWT of this issuer", err)
				}
				err = dec.Refusal
			} else if notOurs[tc.name] {
				t.Fatalf("got %v, want it declined: it is not a JWT of this issuer", err)
			}
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("got %v, want the token accepted", err)
				}
				if pr.Subject != "alice" {
					t.Errorf("subject %q", pr.Subject)
				}
				return
			}
			d := wantDenial(t, err, tc.status, tc.code, tc.detail)
			ch := d.Header.Get("Www-Authenticate")
			if !strings.HasPrefix(ch, `Bearer realm="api", error="invalid_token", error_description="`) {
				t.Errorf("challenge %q", ch)
			}
			if len(tc.token) > 20 && (strings.Contains(ch, tc.token[:20]) || strings.Contains(d.Detail, tc.token[:20])) {
				t.Errorf("the denial echoes the token: %q", ch)
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the attacker's key server was asked %d times, want never", n)
	}
}

func (s signer) signHMAC(t testing.TB, secret []byte, c map[string]any) string {
	t.Helper()
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", s.kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sg.Sign(mustJSON(c))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

func mustJSON(v any) []byte {
	b, err := jsonMarshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestTokenSources(t *testing.T) {
	s := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, s.jwk())
	w := newWorld()
	tok := s.sign(t, claims(p.srv.URL))
	std := w.build(t, jwksConfig(p, "ES256"))
	multi := w.build(t, jwksConfig(p, "ES256", "from: {header: Authorization, cookie: session, query: token}"))
	custom := w.build(t, jwksConfig(p, "ES256", "from: {header: X-Token}"))

	req := func(mod func(r *http.Request)) *policy.Exchange {
		r := httptest.NewRequest(http.MethodGet, "http://gw.example/products", nil)
		mod(r)
		return policytest.Exchange(r)
	}
	for _, tc := range []struct {
		name   string
		a      *Authenticator
		ex     *policy.Exchange
		status int // 0 accepted, -1 ErrNoCredentials
		detail string
	}{
		{"bearer", std, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }), 0, ""},
		{"bearer lower case", std, req(func(r *http.Request) { r.Header.Set("Authorization", "bearer "+tok) }), 0, ""},
		{"no token", std, req(func(r *http.Request) {}), -1, ""},
		{"basic is not ours", std, req(func(r *http.Request) { r.SetBasicAuth("a", "b") }), -1, ""},
		{"two Authorization headers", std, req(func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+tok)
			r.Header.Add("Authorization", "Bearer "+tok)
		}), 400, "more than one Authorization header"},
		{"access_token in the query", std, req(func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }), 400, "query"},
		{"access_token encoded in the query", std, req(func(r *http.Request) { r.URL.RawQuery = "access%5Ftoken=" + tok }), 400, "query"},
		{"access_token in the query next to a header", std, req(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.URL.RawQuery = "a=1&access_token=x"
		}), 400, "query"},
		{"harmless query", std, req(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.URL.RawQuery = "a=1&b=%20"
		}), 0, ""},
		{"cookie", multi, req(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: tok}) }), 0, ""},
		{"configured query", multi, req(func(r *http.Request) { r.URL.RawQuery = "token=" + tok }), 0, ""},
		{"header and cookie", multi, req(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.AddCookie(&http.Cookie{Name: "session", Value: tok})
		}), 400, "more than one place"},
		{"two cookies", multi, req(func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "session", Value: tok})
			r.AddCookie(&http.Cookie{Name: "session", Value: tok})
		}), 400, "more than one session cookie"},
		{"query twice", multi, req(func(r *http.Request) { r.URL.RawQuery = "token=" + tok + "&token=" + tok }), 400, "more than one token query"},
		{"custom header with Bearer", custom, req(func(r *http.Request) { r.Header.Set("X-Token", "Bearer "+tok) }), 0, ""},
		{"custom header bare", custom, req(func(r *http.Request) { r.Header.Set("X-Token", tok) }), 0, ""},
		{"custom header ignores Authorization", custom, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }), -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := auth(t, tc.a, tc.ex)
			switch tc.status {
			case 0:
				if err != nil || pr.Subject != "alice" {
					t.Fatalf("got %v, want accepted", err)
				}
			case -1:
				if !errors.Is(err, authn.ErrNoCredentials) {
					t.Fatalf("got %v, want ErrNoCredentials", err)
				}
			default:
				wantDenial(t, err, tc.status, "invalid_request", tc.detail)
			}
		})
	}
}

// TestBoundToken: a DPoP-bound token is accepted only with the DPoP scheme
// and a fresh proof by its key over this request and token, a
// certificate-bound one only over a connection with that verified
// certificate, cached verdict or not, with no binding policy on the route;
// unsafe_ignore_token_binding turns the proof check off (not the scheme).
func TestBoundToken(t *testing.T) {
	s := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, s.jwk())
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256"))
	key, other := dpoptest.NewKey(t), dpoptest.NewKey(t)
	tok := s.sign(t, claims(p.srv.URL, "cnf", map[string]any{"jkt": key.JKT(t)}))
	const url = "http://gw.example/products"
	dpopReq := func(proofs ...string) *policy.Exchange {
		r := httptest.NewRequest(http.MethodGet, url, nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		for _, pf := range proofs {
			r.Header.Add("DPoP", pf)
		}
		return policytest.Exchange(r)
	}
	for round := range 2 { // the second round reads the cached verdict
		d := wantDenial(t, errOf(auth(t, a, bearer(tok))), 401, "invalid_token", descDPoP)
		if ch := d.Header.Get("Www-Authenticate"); !strings.HasPrefix(ch, `DPoP realm="api", error="invalid_token"`) {
			t.Errorf("round %d: challenge %q, want a DPoP one", round, ch)
		}
		wantDenial(t, errOf(auth(t, a, dpopReq())), 401, "invalid_dpop_proof", "")
		wantDenial(t, errOf(auth(t, a, dpopReq(other.Proof(t, "GET", url, tok, w.clock.now())))), 401, "invalid_dpop_proof", "")
		wantDenial(t, errOf(auth(t, a, dpopReq(key.Proof(t, "POST", url, tok, w.clock.now())))), 401, "invalid_dpop_proof", "")
		wantDenial(t, errOf(auth(t, a, dpopReq(key.Proof(t, "GET", url, "another-token", w.clock.now())))), 401, "invalid_dpop_proof", "")
		proof := key.Proof(t, "GET", url, tok, w.clock.now())
		pr, err := auth(t, a, dpopReq(proof))
		if err != nil {
			t.Fatalf("round %d: DPoP with its proof: %v", round, err)
		}
		if cnf, _ := pr.Claims["cnf"].(map[string]any); cnf["jkt"] == nil {
			t.Errorf("cnf %v not kept for the binding policy", pr.Claims["cnf"])
		}
		// The same proof again is a replay.
		wantDenial(t, errOf(auth(t, a, dpopReq(proof))), 401, "invalid_dpop_proof", "")
	}

	ca := tlstest.NewCA(t, "client CA")
	mine, theirs := ca.Client(t, "mine"), ca.Client(t, "theirs")
	sum := sha256.Sum256(mine.TLS.Leaf.Raw)
	ctok := s.sign(t, claims(p.srv.URL, "cnf", map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}))
	over := func(l *tlstest.Leaf, verified bool) *policy.Exchange {
		ex := bearer(ctok)
		if l != nil {
			st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{l.TLS.Leaf}}
			if verified {
				st.VerifiedChains = [][]*x509.Certificate{{l.TLS.Leaf, ca.Cert}}
			}
			ex.Request.TLS = st
		}
		return ex
	}
	for round := range 2 {
		wantDenial(t, errOf(auth(t, a, over(nil, false))), 401, "invalid_token", "client certificate")
		wantDenial(t, errOf(auth(t, a, over(theirs, true))), 401, "invalid_token", "client certificate")
		wantDenial(t, errOf(auth(t, a, over(mine, false))), 401, "invalid_token", "client certificate")
		if _, err := auth(t, a, over(mine, true)); err != nil {
			t.Fatalf("round %d: over its certificate: %v", round, err)
		}
	}

	// Bound by a confirmation method no proof here can satisfy: refused,
	// not taken for unbound.
	jwkTok := s.sign(t, claims(p.srv.URL, "cnf", map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}))
	wantDenial(t, errOf(auth(t, a, bearer(jwkTok))), 401, "invalid_token", descMalformed)

	unsafe := w.build(t, jwksConfig(p, "ES256", "unsafe_ignore_token_binding: true"))
	if _, err := auth(t, unsafe, dpopReq()); err != nil {
		t.Errorf("opted out, DPoP scheme without a proof: %v", err)
	}
	if _, err := auth(t, unsafe, over(nil, false)); err != nil {
		t.Errorf("opted out, certificate-bound without a certificate: %v", err)
	}
	wantDenial(t, errOf(auth(t, unsafe, bearer(tok))), 401, "invalid_token", descDPoP)
}

func errOf(_ *policy.Principal, err error) error { return err }

func TestRevocation(t *testing.T) {
	s := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, s.jwk())
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256"))
	cached := s.sign(t, claims(p.srv.URL, "jti", "cached"))
	fresh := s.sign(t, claims(p.srv.URL, "jti", "fresh"))
	if _, err := auth(t, a, bearer(cached)); err != nil {
		t.Fatal(err)
	}
	until := policytest.Start.Add(time.Hour)
	w.revs.Revoke("cached", until)
	w.revs.Revoke("fresh", until)
	before := a.verifications.Load()
	wantDenial(t, errOf(auth(t, a, bearer(cached))), 401, "invalid_token", descRevoked)
	if a.verifications.Load() != before {
		t.Error("the cached token was verified again: the test did not hit the cache")
	}
	wantDenial(t, errOf(auth(t, a, bearer(fresh))), 401, "invalid_token", descRevoked)
	// Another token of the same user is not affected.
	if _, err := auth(t, a, bearer(s.sign(t, claims(p.srv.URL, "jti", "other")))); err != nil {
		t.Errorf("unrevoked token: %v", err)
	}
}

func TestCache(t *testing.T) {
	s := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, s.jwk())
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256", "leeway: 0s"))
	tok := s.sign(t, claims(p.srv.URL, "exp", policytest.Start.Add(time.Minute).Unix()))

	t.Run("hit does not verify again", func(t *testing.T) {
		for range 5 {
			if _, err := auth(t, a, bearer(tok)); err != nil {
				t.Fatal(err)
			}
		}
		if got := a.verifications.Load(); got != 1 {
			t.Errorf("%d signature checks for 5 requests with one token, want 1", got)
		}
	})
	t.Run("no hit past exp", func(t *testing.T) {
		w.clock.add(time.Minute)
		wantDenial(t, errOf(auth(t, a, bearer(tok))), 401, "invalid_token", descExpired)
		if got := a.verifications.Load(); got != 2 {
			t.Errorf("%d signature checks, want 2 (the expired token checked afresh)", got)
		}
	})
	t.Run("cache disabled", func(t *testing.T) {
		nc := w.build(t, jwksConfig(p, "ES256", "cache: {disabled: true}"))
		tok := s.sign(t, claims(p.srv.URL, "exp", w.clock.now().Add(time.Hour).Unix(), "iat", w.clock.now().Unix()))
		for range 3 {
			if _, err := auth(t, nc, bearer(tok)); err != nil {
				t.Fatal(err)
			}
		}
		if got := nc.verifications.Load(); got != 3 {
			t.Errorf("%d signature checks, want 3", got)
		}
	})
	t.Run("max_age bounds the entry", func(t *testing.T) {
		ma := w.build(t, jwksConfig(p, "ES256", "leeway: 0s", "max_age: 10m"))
		now := w.clock.now()
		tok := s.sign(t, claims(p.srv.URL, "iat", now.Unix(), "exp", now.Add(time.Hour).Unix()))
		if _, err := auth(t, ma, bearer(tok)); err != nil {
			t.Fatal(err)
		}
		w.clock.add(10 * time.Minute)
		wantDenial(t, errOf(auth(t, ma, bearer(tok))), 401, "invalid_token", descTooOld)
	})
}

func TestCacheSizeBound(t *testing.T) {
	for _, size := range []int{1, 10, 300, 1000} {
		c := newCache(size)
		rk := &rawKey{}
		for i := range 5 * size {
			var k key
			k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
			c.put(&k, &verified{until: 100, key: rk}, 1)
			if c.len() > size {
				t.Fatalf("size %d: %d entries after %d puts", size, c.len(), i+1)
			}
		}
		// Entries are gettable, and not past their until.
		var k key
		k[0] = byte(5*size - 1)
		k[1] = byte((5*size - 1) >> 8)
		k[2] = byte((5*size - 1) >> 16)
		if c.get(&k, 1) == nil {
			t.Errorf("size %d: the last entry put is gone", size)
		}
		if c.get(&k, 100) != nil {
			t.Errorf("size %d: an entry outlived its until", size)
		}
		rk.dropped.Store(true)
		if c.get(&k, 1) != nil {
			t.Errorf("size %d: an entry of a dropped key was honoured", size)
		}
	}
}

// TestCachedTokenReadAsUncached checks that a request bearing a cached
// token is read exactly as one bearing a token never seen: the cache hit
// path (headerToken, which skips the token68 check) and the complete one
// (token) accept, refuse and ignore the same requests with the same
// answers.
func TestCachedTokenReadAsUncached(t *testing.T) {
	s := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, s.jwk())
	w := newWorld()
	tok := s.sign(t, claims(p.srv.URL))
	cached := w.build(t, jwksConfig(p, "ES256"))
	uncached := w.build(t, jwksConfig(p, "ES256", "cache: {disabled: true}"))
	if _, err := auth(t, cached, bearer(tok)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(r *http.Request)
	}{
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }},
		{"lower case, more spaces", func(r *http.Request) { r.Header.Set("Authorization", "bEARER   "+tok) }},
		{"DPoP scheme", func(r *http.Request) { r.Header.Set("Authorization", "DPoP "+tok) }},
		{"trailing space", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok+" ") }},
		{"trailing comma", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok+",") }},
		{"trailing =", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok+"=") }},
		{"tab after the scheme", func(r *http.Request) { r.Header.Set("Authorization", "Bearer\t"+tok) }},
		{"scheme alone", func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }},
		{"other scheme", func(r *http.Request) { r.Header.Set("Authorization", "Basic "+tok) }},
		{"twice", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+tok)
			r.Header.Add("Authorization", "Bearer "+tok)
		}},
		{"and access_token in the query", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.URL.RawQuery = "access%5ftoken=x"
		}},
		{"and a harmless query", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.URL.RawQuery = "a=1"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outcome := func(a *Authenticator) string {
				r := httptest.NewRequest(http.MethodGet, "http://gw.example/products", nil)
				tc.mod(r)
				pr, err := auth(t, a, policytest.Exchange(r))
				if d, ok := policy.AsDenial(err); ok {
					return fmt.Sprintf("denied %d %s %q %q", d.Status, d.Code, d.Detail, d.Header.Get("Www-Authenticate"))
				}
				if err != nil {
					return err.Error()
				}
				return "accepted " + pr.Subject
			}
			got, want := outcome(cached), outcome(uncached)
			if got != want {
				t.Errorf("with the token cached: %s\nuncached: %s", got, want)
			}
			if n := cached.verifications.Load(); n != 1 {
				t.Errorf("%d signature checks, want 1 (accepted from the cache)", n)
			}
		})
	}
}
