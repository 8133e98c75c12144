package binding

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

const (
	token  = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	target = "https://api.example.com/orders/7"
)

func newBinding(t testing.TB, yaml string, env *policy.Env) *Binding {
	t.Helper()
	if env == nil {
		env = policytest.Env()
	}
	p, err := New(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Binding)
}

var jtis atomic.Int64

// proof signs a DPoP proof with go-jose, independent of our verifier.
func proof(t testing.TB, key *ecdsa.PrivateKey, method, htu, tok string) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok))
	payload, _ := json.Marshal(map[string]any{
		"jti": "p-" + strconv.FormatInt(jtis.Add(1), 10),
		"htm": method,
		"htu": htu,
		"iat": policytest.Start.Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]),
	})
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func thumbprint(t testing.TB, key *ecdsa.PrivateKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func principal(cnf map[string]any) *policy.Principal {
	pr := &policy.Principal{Subject: "alice", Method: "jwt", Claims: map[string]any{"sub": "alice"}}
	if cnf != nil {
		pr.Claims["cnf"] = cnf
	}
	return pr
}

// wantDenial fails t unless err is a 401 Denial with code, a challenge of
// scheme, and cause.
func wantDenial(t *testing.T, err error, code, scheme string, cause error) {
	t.Helper()
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got %v, want a %s Denial", err, code)
	}
	if d.StatusCode() != http.StatusUnauthorized || d.Code != code {
		t.Errorf("got %d %s, want 401 %s", d.StatusCode(), d.Code, code)
	}
	if ch := d.Header.Get("Www-Authenticate"); !strings.HasPrefix(ch, scheme+` realm="`) || !strings.Contains(ch, `error="`+code+`"`) {
		t.Errorf("challenge %q, want scheme %s and error %s", ch, scheme, code)
	}
	if scheme == "DPoP" && !strings.Contains(d.Header.Get("Www-Authenticate"), `algs="ES256 EdDSA RS256 PS256"`) {
		t.Errorf("DPoP challenge %q without algs", d.Header.Get("Www-Authenticate"))
	}
	if !errors.Is(err, cause) {
		t.Errorf("got cause %v, want %v", d.Err, cause)
	}
}

func TestDPoPBinding(t *testing.T) {
	key, other := newKey(t), newKey(t)
	jkt := thumbprint(t, key)
	bound := map[string]any{"jkt": jkt}

	tests := []struct {
		name   string
		yaml   string
		pr     *policy.Principal
		authz  string
		proof  func(t *testing.T) string
		code   string // "" means allowed
		scheme string
		cause  error
	}{
		{name: "no principal", pr: nil, authz: "Bearer " + token},
		{name: "unbound bearer token", pr: principal(nil), authz: "Bearer " + token},
		{name: "bound token with a valid proof", pr: principal(bound), authz: "DPoP " + token,
			proof: func(t *testing.T) string { return proof(t, key, "POST", target, token) }},
		{name: "bound token used as a bearer token", pr: principal(bound), authz: "Bearer " + token,
			code: "invalid_token", scheme: "DPoP", cause: ErrBearerUse},
		{name: "bound token used as a bearer token with a proof", pr: principal(bound), authz: "Bearer " + token,
			proof: func(t *testing.T) string { return proof(t, key, "POST", target, token) },
			code:  "invalid_token", scheme: "DPoP", cause: ErrBearerUse},
		{name: "bound token without Authorization", pr: principal(bound),
			code: "invalid_token", scheme: "DPoP", cause: ErrBearerUse},
		{name: "bound token, proof by another key", pr: principal(bound), authz: "DPoP " + token,
			proof: func(t *testing.T) string { return proof(t, other, "POST", target, token) },
			code:  dpop.Code, scheme: "DPoP", cause: dpop.ErrKeyBind},
		{name: "bound token, proof for another token", pr: principal(bound), authz: "DPoP " + token,
			proof: func(t *testing.T) string { return proof(t, key, "POST", target, "other-token") },
			code:  dpop.Code, scheme: "DPoP", cause: dpop.ErrATH},
		{name: "bound token, proof for another URL", pr: principal(bound), authz: "DPoP " + token,
			proof: func(t *testing.T) string { return proof(t, key, "POST", "https://api.example.com/orders/8", token) },
			code:  dpop.Code, scheme: "DPoP", cause: dpop.ErrURL},
		{name: "bound token, no proof", pr: principal(bound), authz: "DPoP " + token,
			code: dpop.Code, scheme: "DPoP", cause: dpop.ErrHeader},
		{name: "DPoP scheme with an unbound token", pr: principal(nil), authz: "DPoP " + token,
			proof: func(t *testing.T) string { return proof(t, key, "POST", target, token) },
			code:  "invalid_token", scheme: "DPoP", cause: ErrUnboundDPoP},
		{name: "required: unbound bearer token", yaml: "dpop: required", pr: principal(nil), authz: "Bearer " + token,
			code: "invalid_token", scheme: "DPoP", cause: ErrDPoPRequired},
		{name: "required: API key caller", yaml: "dpop: required", pr: &policy.Principal{Subject: "c", Method: "apikey"},
			code: "invalid_token", scheme: "DPoP", cause: ErrDPoPRequired},
		{name: "required: bound token with a valid proof", yaml: "dpop: required", pr: principal(bound), authz: "DPoP " + token,
			proof: func(t *testing.T) string { return proof(t, key, "POST", target, token) }},
		{name: "forbidden: bound token refused", yaml: "dpop: forbidden", pr: principal(bound), authz: "DPoP " + token,
			proof: func(t *testing.T) string { return proof(t, key, "POST", target, token) },
			code:  "invalid_token", scheme: "Bearer", cause: ErrForbidden},
		{name: "forbidden: unbound bearer token", yaml: "dpop: forbidden", pr: principal(nil), authz: "Bearer " + token},
		{name: "malformed cnf", pr: principal(map[string]any{"jkt": 7}), authz: "Bearer " + token,
			code: "invalid_token", scheme: "Bearer", cause: ErrCnf},
		{name: "cnf not an object", pr: &policy.Principal{Claims: map[string]any{"cnf": "x"}}, authz: "Bearer " + token,
			code: "invalid_token", scheme: "Bearer", cause: ErrCnf},
		{name: "two Authorization headers", pr: principal(nil), authz: "Bearer " + token + "\nBearer " + token,
			code: "invalid_request", scheme: "Bearer", cause: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinding(t, tt.yaml, nil)
			r := httptest.NewRequest("POST", target, nil)
			for v := range strings.SplitSeq(tt.authz, "\n") {
				if v != "" {
					r.Header.Add("Authorization", v)
				}
			}
			if tt.proof != nil {
				r.Header.Set("DPoP", tt.proof(t))
			}
			ex := policytest.Exchange(r)
			ex.Principal = tt.pr
			err := b.Apply(context.Background(), ex)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if tt.code == "invalid_request" {
				if d, ok := policy.AsDenial(err); !ok || d.Code != "invalid_request" {
					t.Fatalf("got %v, want invalid_request", err)
				}
				return
			}
			wantDenial(t, err, tt.code, tt.scheme, tt.cause)
		})
	}
}

func TestDPoPReplayThroughPolicy(t *testing.T) {
	key := newKey(t)
	b := newBinding(t, "dpop: required", nil)
	p := proof(t, key, "GET", target, token)
	for i, want := range []error{nil, dpop.ErrReplay} {
		r := httptest.NewRequest("GET", target, nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", p)
		ex := policytest.Exchange(r)
		ex.Principal = principal(map[string]any{"jkt": thumbprint(t, key)})
		err := b.Apply(context.Background(), ex)
		if want == nil {
			if err != nil {
				t.Fatalf("use %d: %v", i, err)
			}
			continue
		}
		wantDenial(t, err, dpop.Code, "DPoP", want)
	}
}

func TestPublicURL(t *testing.T) {
	key := newKey(t)
	jkt := thumbprint(t, key)
	trusted := policytest.Env()
	trusted.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	tests := []struct {
		name     string
		yaml     string
		env      *policy.Env
		remote   string
		headers  map[string]string
		wantCode string
	}{
		{name: "public origin", yaml: "proof:\n  public_origin: https://api.example.com\n"},
		{name: "public origin, other host", yaml: "proof:\n  public_origin: https://other.example.com\n", wantCode: dpop.Code},
		{name: "forwarded from a trusted proxy", yaml: "proof:\n  trust_forwarded: true\n", env: trusted,
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}},
		{name: "forwarded, last value counts", yaml: "proof:\n  trust_forwarded: true\n", env: trusted,
			headers: map[string]string{"X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "evil.example.com, api.example.com"}},
		{name: "forwarded from an untrusted peer ignored", yaml: "proof:\n  trust_forwarded: true\n", env: trusted, remote: "198.51.100.7:5555",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}, wantCode: dpop.Code},
		{name: "no setting: the gateway's view", wantCode: dpop.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinding(t, tt.yaml, tt.env)
			// The gateway sees plain HTTP to an internal name.
			r := httptest.NewRequest("POST", "http://gw.internal:8080/orders/7?q=1", nil)
			if tt.remote != "" {
				r.RemoteAddr = tt.remote
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			r.Header.Set("Authorization", "DPoP "+token)
			r.Header.Set("DPoP", proof(t, key, "POST", target, token))
			ex := policytest.Exchange(r)
			ex.Principal = principal(map[string]any{"jkt": jkt})
			err := b.Apply(context.Background(), ex)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantDenial(t, err, tt.wantCode, "DPoP", dpop.ErrURL)
		})
	}
}

// verifiedState is the connection state of a handshake in which the
// listener verified l against ca.
func verifiedState(t testing.TB, ca *tlstest.CA, l *tlstest.Leaf) *tls.ConnectionState {
	t.Helper()
	chains, err := l.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{l.TLS.Leaf}, VerifiedChains: chains}
}

func x5t(l *tlstest.Leaf) string {
	s := sha256.Sum256(l.TLS.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func TestCertificateBinding(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	alice, bob := ca.Client(t, "alice"), ca.Client(t, "bob")
	bound := map[string]any{"x5t#S256": x5t(alice)}
	unverified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{alice.TLS.Leaf}}
	mtlsPrincipal := &policy.Principal{Subject: "alice", Method: mtls.Method, Claims: map[string]any{"x5t#S256": x5t(alice)}}

	tests := []struct {
		name  string
		yaml  string
		pr    *policy.Principal
		tls   *tls.ConnectionState
		cause error // nil: allowed
	}{
		{"bound token, its certificate", "", principal(bound), verifiedState(t, ca, alice), nil},
		{"bound token, another certificate", "", principal(bound), verifiedState(t, ca, bob), ErrCertMismatch},
		{"bound token, no TLS", "", principal(bound), nil, ErrCertMismatch},
		{"bound token, no client certificate", "", principal(bound), &tls.ConnectionState{}, ErrCertMismatch},
		{"bound token, its certificate unverified", "", principal(bound), unverified, ErrCertMismatch},
		{"unbound token", "", principal(nil), verifiedState(t, ca, alice), nil},
		{"required: unbound token", "certificate: required", principal(nil), verifiedState(t, ca, alice), ErrCertRequired},
		{"required: bound token", "certificate: required", principal(bound), verifiedState(t, ca, alice), nil},
		{"required: mtls caller", "certificate: required", mtlsPrincipal, verifiedState(t, ca, alice), nil},
		{"forbidden: bound token refused", "certificate: forbidden", principal(bound), verifiedState(t, ca, alice), ErrForbidden},
		{"malformed thumbprint claim", "", principal(map[string]any{"x5t#S256": []string{"a"}}), verifiedState(t, ca, alice), ErrCnf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinding(t, tt.yaml, nil)
			r := httptest.NewRequest("GET", target, nil)
			r.TLS = tt.tls
			r.Header.Set("Authorization", "Bearer "+token)
			ex := policytest.Exchange(r)
			ex.Principal = tt.pr
			err := b.Apply(context.Background(), ex)
			if tt.cause == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantDenial(t, err, "invalid_token", "Bearer", tt.cause)
		})
	}
}

// TestCertificateBindingEndToEnd presents client certificates over a real
// TLS handshake and checks a token bound to alice's certificate.
func TestCertificateBindingEndToEnd(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	alice, bob := ca.Client(t, "alice"), ca.Client(t, "bob")
	b := newBinding(t, "certificate: required", nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := policytest.Exchange(r)
		ex.Principal = principal(map[string]any{"x5t#S256": x5t(alice)})
		if err := b.Apply(r.Context(), ex); err != nil {
			d, ok := policy.AsDenial(err)
			if !ok {
				http.Error(w, err.Error(), 500)
				return
			}
			w.WriteHeader(d.StatusCode())
			io.WriteString(w, d.Code)
			return
		}
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	srv.StartTLS()
	defer srv.Close()

	for _, tt := range []struct {
		name       string
		cert       *tlstest.Leaf
		wantStatus int
		wantBody   string
	}{
		{"bound certificate", alice, 200, "ok"},
		{"other certificate of the same CA", bob, 401, "invalid_token"},
		{"no certificate", nil, 401, "invalid_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := srv.Client()
			tr := client.Transport.(*http.Transport).Clone()
			if tt.cert != nil {
				tr.TLSClientConfig.Certificates = []tls.Certificate{tt.cert.TLS}
			}
			defer tr.CloseIdleConnections()
			client.Transport = tr
			req, _ := http.NewRequest("GET", srv.URL+"/orders/7", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

type nopCache struct{}

func (nopCache) Seen(context.Context, string, time.Time) (bool, error) { return false, nil }

func BenchmarkApply(b *testing.B) {
	b.Run("dpop", func(b *testing.B) {
		key := newKey(b)
		p := newBinding(b, "dpop: required", nil)
		// Each proof is single-use; a cache that forgets lets one proof be
		// verified again and again (the cache has its own benchmark).
		p.verifier = dpop.NewVerifier(dpop.Options{Now: policytest.Env().Now, ReplayCache: nopCache{}})
		r := httptest.NewRequest("POST", target, nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", proof(b, key, "POST", target, token))
		ex := policytest.Exchange(r)
		ex.Principal = principal(map[string]any{"jkt": thumbprint(b, key)})
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Apply(context.Background(), ex); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("certificate", func(b *testing.B) {
		ca := tlstest.NewCA(b, "client CA")
		alice := ca.Client(b, "alice")
		p := newBinding(b, "certificate: required", nil)
		r := httptest.NewRequest("GET", target, nil)
		r.TLS = verifiedState(b, ca, alice)
		r.Header.Set("Authorization", "Bearer "+token)
		ex := policytest.Exchange(r)
		ex.Principal = principal(map[string]any{"x5t#S256": x5t(alice)})
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Apply(context.Background(), ex); err != nil {
				b.Fatal(err)
			}
		}
	})
}
