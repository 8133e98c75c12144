package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

func build(t *testing.T, yaml string) *MTLS {
	t.Helper()
	a, err := New(policytest.Node(t, yaml), &authn.Env{Env: policytest.Env(), Realm: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return a.(*MTLS)
}

// verified returns the connection state of a handshake in which the
// listener verified l against ca, as crypto/tls records it.
func verified(t *testing.T, ca *tlstest.CA, l *tlstest.Leaf) *tls.ConnectionState {
	t.Helper()
	chains, err := l.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{l.TLS.Leaf}, VerifiedChains: chains}
}

func exchange(st *tls.ConnectionState) *policy.Exchange {
	r := httptest.NewRequest("GET", "https://api.example.com/x", nil)
	r.TLS = st
	return policytest.Exchange(r)
}

func spiffeCert(ids ...string) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "workload"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, id := range ids {
		u, err := url.Parse(id)
		if err != nil {
			panic(err)
		}
		c.URIs = append(c.URIs, u)
	}
	return c
}

func x5t(der []byte) string {
	s := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func TestAuthenticateVerified(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	l := ca.Client(t, "alice")
	pr, err := build(t, "").Authenticate(context.Background(), exchange(verified(t, ca, l)))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Subject != "alice" || pr.ClientID != "alice" || pr.Method != "mtls" {
		t.Errorf("got subject %q client %q method %q, want alice alice mtls", pr.Subject, pr.ClientID, pr.Method)
	}
	leaf := l.TLS.Leaf
	wantClaims := map[string]any{
		"x5t#S256":   x5t(leaf.Raw),
		"serial":     leaf.SerialNumber.Text(16),
		"issuer":     "CN=test CA",
		"subject_dn": "CN=alice",
	}
	for k, want := range wantClaims {
		if got := pr.Claims[k]; got != want {
			t.Errorf("claim %s = %v, want %v", k, got, want)
		}
	}
	if _, ok := pr.Claims["spiffe_id"]; ok {
		t.Error("spiffe_id claim without a SPIFFE ID")
	}
	for _, k := range []string{"dns_sans", "email_sans", "uri_sans"} {
		if got, ok := pr.Claims[k].([]string); !ok || len(got) != 0 {
			t.Errorf("claim %s = %#v, want an empty list", k, pr.Claims[k])
		}
	}
}

func TestAuthenticateNoCredentials(t *testing.T) {
	a := build(t, "")
	for name, st := range map[string]*tls.ConnectionState{
		"plain HTTP":                nil,
		"TLS without a client cert": {},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), exchange(st))
			if !errors.Is(err, authn.ErrNoCredentials) {
				t.Errorf("got %v, want ErrNoCredentials", err)
			}
		})
	}
}

func wantRefused(t *testing.T, err error, cause error) {
	t.Helper()
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got %v, want a Denial caused by %v", err, cause)
	}
	if d.StatusCode() != http.StatusUnauthorized || d.Code != Code {
		t.Errorf("got %d %s, want 401 %s", d.StatusCode(), d.Code, Code)
	}
	if !errors.Is(err, cause) {
		t.Errorf("got cause %v, want %v", d.Err, cause)
	}
}

func TestAuthenticateUnverifiedRefused(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	l := ca.Client(t, "alice")
	// What a listener with client_auth request/require records: the
	// certificate, no verified chain.
	st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{l.TLS.Leaf}}
	_, err := build(t, "").Authenticate(context.Background(), exchange(st))
	wantRefused(t, err, ErrUnverified)
	r := httptest.NewRequest("GET", "/", nil)
	r.TLS = st
	if tp, ok := Thumbprint(r); ok {
		t.Errorf("Thumbprint of an unverified certificate = %q", tp)
	}
}

func TestThumbprint(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	l := ca.Client(t, "alice")
	r := httptest.NewRequest("GET", "/", nil)
	if _, ok := Thumbprint(r); ok {
		t.Error("Thumbprint without TLS reports ok")
	}
	r.TLS = verified(t, ca, l)
	got, ok := Thumbprint(r)
	if want := x5t(l.TLS.Certificate[0]); !ok || got != want {
		t.Errorf("Thumbprint = %q, %v, want %q", got, ok, want)
	}
}

func TestSubjects(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	full := &x509.Certificate{
		Subject:        pkix.Name{CommonName: "web"},
		DNSNames:       []string{"web.prod.example.org", "web"},
		EmailAddresses: []string{"ops@example.org"},
		URIs:           []*url.URL{{Scheme: "https", Host: "id.example.org", Path: "/web"}, {Scheme: "spiffe", Host: "example.org", Path: "/ns/prod/sa/web"}},
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	bare := &x509.Certificate{Subject: pkix.Name{CommonName: "bare"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	tests := []struct {
		name    string
		yaml    string
		cert    *x509.Certificate
		want    string
		wantErr error
	}{
		{"auto prefers SPIFFE", "", full, "spiffe://example.org/ns/prod/sa/web", nil},
		{"auto falls back to CN", "", bare, "bare", nil},
		{"spiffe", "subject_from: spiffe", full, "spiffe://example.org/ns/prod/sa/web", nil},
		{"san_dns", "subject_from: san_dns", full, "web.prod.example.org", nil},
		{"san_email", "subject_from: san_email", full, "ops@example.org", nil},
		{"san_uri", "subject_from: san_uri", full, "https://id.example.org/web", nil},
		{"cn", "subject_from: cn", full, "web", nil},
		{"spiffe missing", "subject_from: spiffe", bare, "", ErrNoSubject},
		{"san_dns missing", "subject_from: san_dns", bare, "", ErrNoSubject},
		{"two SPIFFE IDs", "", spiffeCert("spiffe://example.org/a", "spiffe://example.org/b"), "", ErrSPIFFE},
		{"malformed SPIFFE ID", "", spiffeCert("spiffe://Example.org/a"), "", ErrSPIFFE},
		{"SPIFFE ID with dot segment", "", spiffeCert("spiffe://example.org/a/../b"), "", ErrSPIFFE},
		{"SPIFFE ID with port", "", spiffeCert("spiffe://example.org:8443/a"), "", ErrSPIFFE},
		{"SPIFFE ID with query", "", spiffeCert("spiffe://example.org/a?x=1"), "", ErrSPIFFE},
		{"trust domain matches", "trust_domain: example.org", full, "spiffe://example.org/ns/prod/sa/web", nil},
		{"trust domain other", "trust_domain: example.com", full, "", ErrSPIFFE},
		{"trust domain prefix is not enough", "trust_domain: example.or", full, "", ErrSPIFFE},
		{"trust domain without SPIFFE ID", "trust_domain: example.org\nsubject_from: cn", bare, "", ErrSPIFFE},
		{"allowed by prefix", "allowed_subjects: [\"spiffe://example.org/ns/prod/*\"]", full, "spiffe://example.org/ns/prod/sa/web", nil},
		{"allowed exactly", "allowed_subjects: [bare]", bare, "bare", nil},
		{"exact is not a prefix", "allowed_subjects: [bar]", bare, "", ErrNotAllowed},
		{"not allowed", "allowed_subjects: [\"spiffe://example.org/ns/staging/*\", other]", full, "", ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ca.Issue(t, tt.cert)
			pr, err := build(t, tt.yaml).Authenticate(context.Background(), exchange(verified(t, ca, l)))
			if tt.wantErr != nil {
				wantRefused(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pr.Subject != tt.want {
				t.Errorf("subject = %q, want %q", pr.Subject, tt.want)
			}
		})
	}
	t.Run("claims", func(t *testing.T) {
		pr, err := build(t, "").Authenticate(context.Background(), exchange(verified(t, ca, ca.Issue(t, full))))
		if err != nil {
			t.Fatal(err)
		}
		if got := pr.Claims["spiffe_id"]; got != "spiffe://example.org/ns/prod/sa/web" {
			t.Errorf("spiffe_id = %v", got)
		}
		if got := pr.Claims["dns_sans"].([]string); !slices.Equal(got, full.DNSNames) {
			t.Errorf("dns_sans = %v", got)
		}
		if got := pr.Claims["email_sans"].([]string); !slices.Equal(got, full.EmailAddresses) {
			t.Errorf("email_sans = %v", got)
		}
		if got, want := pr.Claims["uri_sans"].([]string), []string{"https://id.example.org/web", "spiffe://example.org/ns/prod/sa/web"}; !slices.Equal(got, want) {
			t.Errorf("uri_sans = %v, want %v", got, want)
		}
	})
}

func TestExtendedKeyUsage(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	custom := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	serverOnly := &x509.Certificate{Subject: pkix.Name{CommonName: "srv"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	noEKU := &x509.Certificate{Subject: pkix.Name{CommonName: "none"}}
	anyEKU := &x509.Certificate{Subject: pkix.Name{CommonName: "any"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	withCustom := &x509.Certificate{Subject: pkix.Name{CommonName: "custom"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{custom}}
	tests := []struct {
		name string
		yaml string
		cert *x509.Certificate
		ok   bool
	}{
		{"server-auth cert, default client_auth", "", serverOnly, false},
		{"no EKU extension", "", noEKU, false},
		{"anyExtendedKeyUsage", "", anyEKU, false},
		{"server-auth cert, server_auth required", "required_ekus: [server_auth]", serverOnly, true},
		{"no check", "required_ekus: []", serverOnly, true},
		{"client_auth by OID", "required_ekus: [1.3.6.1.5.5.7.3.2]", withCustom, true},
		{"custom OID present", "required_ekus: [client_auth, 1.3.6.1.4.1.99999.1]", withCustom, true},
		{"custom OID missing", "required_ekus: [1.3.6.1.4.1.99999.2]", withCustom, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(t, tt.yaml).Authenticate(context.Background(), exchange(verified(t, ca, ca.Issue(t, tt.cert))))
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantRefused(t, err, ErrEKU)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"unknown field", "subject_from: cn\nsubjects: [a]\n", 2, "subjects", `unknown field "subjects"`},
		{"subject source", "subject_from: serial\n", 1, "subject_from", `unknown subject source "serial"`},
		{"star inside", "allowed_subjects:\n  - a*\n  - spiffe://*/x\n", 3, "allowed_subjects[1]", "only allowed at the end"},
		{"empty subject", "allowed_subjects: [\"\"]\n", 1, "allowed_subjects[0]", "empty subject"},
		{"trust domain", "trust_domain: Example.org\n", 1, "trust_domain", "lowercase letters"},
		{"trust domain with scheme", "trust_domain: spiffe://example.org\n", 1, "trust_domain", "lowercase letters"},
		{"unknown EKU", "required_ekus:\n  - client_auth\n  - client\n", 3, "required_ekus[1]", "unknown extended key usage"},
		{"bad OID", "required_ekus: [1.3.x]\n", 1, "required_ekus[0]", "neither a known extended key usage nor a dotted OID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), &authn.Env{Env: policytest.Env()})
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

// TestEndToEnd runs the authenticator on requests that crossed a real TLS
// handshake, for each way a listener can treat client certificates.
func TestEndToEnd(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	stranger := tlstest.NewCA(t, "other CA")
	alice := ca.Client(t, "alice")
	mallory := stranger.Client(t, "alice") // same name, untrusted issuer
	a := build(t, "")

	tests := []struct {
		name       string
		clientAuth tls.ClientAuthType
		cert       *tlstest.Leaf
		wantStatus int
		wantBody   string
	}{
		{"require and verify", tls.RequireAndVerifyClientCert, alice, 200, "alice"},
		{"verify if given", tls.VerifyClientCertIfGiven, alice, 200, "alice"},
		{"verify if given, none given", tls.VerifyClientCertIfGiven, nil, 200, "no credentials"},
		{"request: unverified cert refused", tls.RequestClientCert, alice, 401, Code},
		{"require any: untrusted issuer refused", tls.RequireAnyClientCert, mallory, 401, Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				pr, err := a.Authenticate(r.Context(), policytest.Exchange(r))
				switch d, isDenial := policy.AsDenial(err); {
				case err == nil:
					io.WriteString(w, pr.Subject)
				case errors.Is(err, authn.ErrNoCredentials):
					io.WriteString(w, "no credentials")
				case isDenial:
					w.WriteHeader(d.StatusCode())
					io.WriteString(w, d.Code)
				default:
					http.Error(w, err.Error(), 500)
				}
			}))
			srv.TLS = &tls.Config{ClientAuth: tt.clientAuth, ClientCAs: ca.Pool()}
			srv.StartTLS()
			defer srv.Close()

			client := srv.Client()
			tr := client.Transport.(*http.Transport)
			if tt.cert != nil {
				// Sent whatever CAs the server names, as an attacker would.
				tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &tt.cert.TLS, nil
				}
			}
			resp, err := client.Get(srv.URL)
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

func BenchmarkAuthenticate(b *testing.B) {
	ca := tlstest.NewCA(b, "test CA")
	l := ca.Issue(b, spiffeCert("spiffe://example.org/ns/prod/sa/web"))
	chains, err := l.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(policytest.Node(b, "allowed_subjects: [\"spiffe://example.org/ns/prod/*\"]\ntrust_domain: example.org\n"), &authn.Env{Env: policytest.Env()})
	if err != nil {
		b.Fatal(err)
	}
	ex := exchange(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{l.TLS.Leaf}, VerifiedChains: chains})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), ex); err != nil {
			b.Fatal(err)
		}
	}
}
