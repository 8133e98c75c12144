// Package mtls is the "mtls" authenticator: the client certificate that the
// listener verified against its CA pool becomes the caller's identity
// (subject, SANs, SPIFFE ID). It also gives the RFC 8705 thumbprint of that
// certificate, which certificate-bound access tokens are checked against.
//
// Only verified certificates count. A listener with client_auth
// "require_and_verify" or "verify_if_given" verifies the chain during the
// handshake and records it in tls.ConnectionState.VerifiedChains; with
// "request" or "require" the client may present any certificate at all,
// which proves nothing, so such a certificate is refused here.
package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the mtls authenticator.
var Unit = authn.Unit{Name: "mtls", New: New}

// Code is the denial code of a client certificate that is present but not
// accepted: unverified, without the required usage or subject, or outside
// the allow-list.
const Code = "invalid_client_certificate"

// Method is the Principal.Method of callers proven by this authenticator.
const Method = "mtls"

// Causes of refusals, for errors.Is on the Denial's Err.
var (
	// ErrUnverified: the client sent a certificate the listener did not
	// verify (client_auth request or require).
	ErrUnverified = errors.New("mtls: client certificate not verified by the listener")
	// ErrEKU: the leaf lacks a required extended key usage.
	ErrEKU = errors.New("mtls: client certificate lacks a required extended key usage")
	// ErrNoSubject: the certificate has no value where subject_from looks.
	ErrNoSubject = errors.New("mtls: client certificate has no subject of the configured kind")
	// ErrSPIFFE: the SPIFFE ID is malformed, ambiguous, missing or in
	// another trust domain than required.
	ErrSPIFFE = errors.New("mtls: client certificate SPIFFE ID not acceptable")
	// ErrNotAllowed: the subject is not in allowed_subjects.
	ErrNotAllowed = errors.New("mtls: client certificate subject not allowed")
)

// MTLS authenticates callers by their verified client certificate. It is
// immutable and safe for concurrent use.
type MTLS struct {
	p *parsed
}

var _ authn.Authenticator = (*MTLS)(nil)

// New builds the authenticator from cfg (see Config). env is not used.
func New(cfg *config.Node, env *authn.Env) (authn.Authenticator, error) {
	p, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	return &MTLS{p: p}, nil
}

// Challenge returns "": a client certificate is asked for by the TLS
// handshake, not by a WWW-Authenticate scheme.
func (m *MTLS) Challenge() string { return "" }

// Authenticate returns the principal of the request's verified client
// certificate. A request without TLS or without a client certificate gives
// ErrNoCredentials. A certificate that was not verified, lacks a required
// key usage, a required SPIFFE ID or the configured subject, or whose
// subject is not allowed, is refused with 401 invalid_client_certificate.
//
// The principal's Subject and ClientID are the subject; its Claims hold
// "x5t#S256" (RFC 8705 §3.1), "spiffe_id" (when there is one),
// "dns_sans", "email_sans", "uri_sans" (lists, possibly empty), "serial"
// (lowercase hex), "issuer" and "subject_dn" (RFC 2253 strings).
func (m *MTLS) Authenticate(_ context.Context, ex *policy.Exchange) (*policy.Principal, error) {
	st := ex.Request.TLS
	if st == nil || len(st.PeerCertificates) == 0 {
		return nil, authn.ErrNoCredentials
	}
	leaf, ok := verifiedLeaf(ex.Request)
	if !ok {
		return nil, refuse(ErrUnverified)
	}
	for _, e := range m.p.ekus {
		if !e.has(leaf) {
			return nil, refuse(fmt.Errorf("%w: %s", ErrEKU, e.name))
		}
	}
	spiffeID, err := spiffeIDOf(leaf)
	if err != nil {
		return nil, refuse(err)
	}
	if m.p.trustDomain != "" {
		if spiffeID == "" {
			return nil, refuse(fmt.Errorf("%w: none, want one in trust domain %s", ErrSPIFFE, m.p.trustDomain))
		}
		// spiffeIDOf validated the ID, so the trust domain ends at the
		// first '/' or the end.
		td, _, _ := strings.Cut(strings.TrimPrefix(spiffeID, "spiffe://"), "/")
		if td != m.p.trustDomain {
			return nil, refuse(fmt.Errorf("%w: %s is not in trust domain %s", ErrSPIFFE, spiffeID, m.p.trustDomain))
		}
	}
	subject := m.subject(leaf, spiffeID)
	if subject == "" {
		return nil, refuse(fmt.Errorf("%w (%s)", ErrNoSubject, m.sourceName(spiffeID)))
	}
	if len(m.p.allowed) > 0 && !m.allowed(subject) {
		return nil, refuse(fmt.Errorf("%w: %q", ErrNotAllowed, subject))
	}
	claims := map[string]any{
		"x5t#S256":   thumbprint(leaf),
		"dns_sans":   leaf.DNSNames,
		"email_sans": leaf.EmailAddresses,
		"uri_sans":   uriStrings(leaf),
		"serial":     leaf.SerialNumber.Text(16),
		"issuer":     leaf.Issuer.String(),
		"subject_dn": leaf.Subject.String(),
	}
	if leaf.DNSNames == nil {
		claims["dns_sans"] = []string{}
	}
	if leaf.EmailAddresses == nil {
		claims["email_sans"] = []string{}
	}
	if spiffeID != "" {
		claims["spiffe_id"] = spiffeID
	}
	return &policy.Principal{
		Subject:  subject,
		ClientID: subject,
		Claims:   claims,
		Method:   Method,
	}, nil
}

func (m *MTLS) subject(leaf *x509.Certificate, spiffeID string) string {
	switch m.p.subjectFrom {
	case fromSPIFFE:
		return spiffeID
	case fromSANDNS:
		if len(leaf.DNSNames) > 0 {
			return leaf.DNSNames[0]
		}
	case fromSANEmail:
		if len(leaf.EmailAddresses) > 0 {
			return leaf.EmailAddresses[0]
		}
	case fromSANURI:
		if len(leaf.URIs) > 0 {
			return leaf.URIs[0].String()
		}
	case fromCN:
		return leaf.Subject.CommonName
	default:
		if spiffeID != "" {
			return spiffeID
		}
		return leaf.Subject.CommonName
	}
	return ""
}

func (m *MTLS) sourceName(spiffeID string) string {
	switch {
	case m.p.subjectFrom != fromAuto:
		return m.p.subjectFrom
	case spiffeID != "":
		return fromSPIFFE
	default:
		return fromCN
	}
}

func (m *MTLS) allowed(subject string) bool {
	for _, p := range m.p.allowed {
		if p.match(subject) {
			return true
		}
	}
	return false
}

// spiffeIDOf returns the certificate's SPIFFE ID, "" when it has none. A
// malformed spiffe:// URI SAN, or more than one, is an error rather than
// "none": the identity would be ambiguous (an X509-SVID carries exactly
// one, SPIFFE X509-SVID §2).
func spiffeIDOf(cert *x509.Certificate) (string, error) {
	var id string
	for _, u := range cert.URIs {
		if !strings.EqualFold(u.Scheme, "spiffe") {
			continue
		}
		s := u.String()
		if id != "" {
			return "", fmt.Errorf("%w: more than one SPIFFE ID", ErrSPIFFE)
		}
		if _, err := parseSPIFFEID(s); err != nil {
			return "", fmt.Errorf("%w: %w", ErrSPIFFE, err)
		}
		id = s
	}
	return id, nil
}

func uriStrings(cert *x509.Certificate) []string {
	out := make([]string, len(cert.URIs))
	for i, u := range cert.URIs {
		out[i] = u.String()
	}
	return out
}

func refuse(cause error) *policy.Denial {
	return &policy.Denial{
		Status: http.StatusUnauthorized,
		Code:   Code,
		Detail: "client certificate not accepted",
		Err:    cause,
	}
}

// verifiedLeaf returns the client certificate of r that the TLS stack
// verified against the listener's CA pool.
func verifiedLeaf(r *http.Request) (*x509.Certificate, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false
	}
	// Every verified chain starts with the peer's leaf.
	return r.TLS.VerifiedChains[0][0], true
}

func thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Thumbprint returns the RFC 8705 §3.1 thumbprint (x5t#S256) of r's client
// certificate: the unpadded base64url SHA-256 of its DER encoding. ok is
// false when r has no client certificate that the listener verified; an
// unverified certificate has no thumbprint here, since a token must never
// be bound to a certificate anyone could present.
func Thumbprint(r *http.Request) (string, bool) {
	leaf, ok := verifiedLeaf(r)
	if !ok {
		return "", false
	}
	return thumbprint(leaf), true
}
