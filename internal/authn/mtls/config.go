package mtls

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the mtls authenticator's settings.
//
//	mtls:
//	  subject_from: spiffe
//	  allowed_subjects: ["spiffe://example.org/ns/prod/*"]
//	  trust_domain: example.org
//	  required_ekus: [client_auth]
type Config struct {
	// SubjectFrom says which part of the certificate is the subject: spiffe
	// (the SPIFFE ID URI SAN), san_dns, san_email, san_uri (the first SAN of
	// that kind), or cn (the subject common name). Empty: the SPIFFE ID when
	// the certificate has one, else the common name.
	SubjectFrom string `yaml:"subject_from"`
	// AllowedSubjects, when not empty, lists the subjects admitted: each an
	// exact subject or a prefix ending in "*". Empty: any verified subject.
	AllowedSubjects []string `yaml:"allowed_subjects"`
	// TrustDomain, when set, requires a SPIFFE ID in this trust domain.
	TrustDomain string `yaml:"trust_domain"`
	// RequiredEKUs are the extended key usages the leaf must list
	// explicitly: names (client_auth, server_auth, email_protection,
	// code_signing, time_stamping, ocsp_signing) or dotted OIDs. Absent:
	// [client_auth]. An explicit empty list checks none.
	RequiredEKUs []string `yaml:"required_ekus"`
}

// Subject sources.
const (
	fromAuto     = ""
	fromSPIFFE   = "spiffe"
	fromSANDNS   = "san_dns"
	fromSANEmail = "san_email"
	fromSANURI   = "san_uri"
	fromCN       = "cn"
)

// eku is one required extended key usage: a known one or an OID that Go
// does not name (found in UnknownExtKeyUsage).
type eku struct {
	name  string
	known x509.ExtKeyUsage
	oid   asn1.ObjectIdentifier // set when not a known usage
}

var ekuNames = map[string]x509.ExtKeyUsage{
	"client_auth":      x509.ExtKeyUsageClientAuth,
	"server_auth":      x509.ExtKeyUsageServerAuth,
	"email_protection": x509.ExtKeyUsageEmailProtection,
	"code_signing":     x509.ExtKeyUsageCodeSigning,
	"time_stamping":    x509.ExtKeyUsageTimeStamping,
	"ocsp_signing":     x509.ExtKeyUsageOCSPSigning,
}

// ekuOIDs maps the dotted OIDs of the usages Go knows to their constants,
// so a usage configured by OID matches what x509 parsed into ExtKeyUsage.
var ekuOIDs = map[string]x509.ExtKeyUsage{
	"1.3.6.1.5.5.7.3.1": x509.ExtKeyUsageServerAuth,
	"1.3.6.1.5.5.7.3.2": x509.ExtKeyUsageClientAuth,
	"1.3.6.1.5.5.7.3.3": x509.ExtKeyUsageCodeSigning,
	"1.3.6.1.5.5.7.3.4": x509.ExtKeyUsageEmailProtection,
	"1.3.6.1.5.5.7.3.8": x509.ExtKeyUsageTimeStamping,
	"1.3.6.1.5.5.7.3.9": x509.ExtKeyUsageOCSPSigning,
}

// parsed is a validated Config.
type parsed struct {
	subjectFrom string
	allowed     []pattern
	trustDomain string
	ekus        []eku
}

// pattern is an allowed subject: exact, or a prefix when it ended in "*".
type pattern struct {
	s      string
	prefix bool
}

func (p pattern) match(s string) bool {
	if p.prefix {
		return strings.HasPrefix(s, p.s)
	}
	return s == p.s
}

// decode builds the settings of cfg: strict decoding, validate,
// provision.
func decode(cfg *config.Node) (*parsed, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(), nil
}

// requiredEKUs returns RequiredEKUs, defaulted to client_auth.
func (c *Config) requiredEKUs() []string {
	if c.RequiredEKUs == nil {
		return []string{"client_auth"}
	}
	return c.RequiredEKUs
}

// validate checks c, reporting every independent problem at its place.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	switch c.SubjectFrom {
	case fromAuto, fromSPIFFE, fromSANDNS, fromSANEmail, fromSANURI, fromCN:
	default:
		p.Errorf(cfg, "subject_from", "unknown subject source %q (known: spiffe, san_dns, san_email, san_uri, cn)", c.SubjectFrom)
	}
	for i, s := range c.AllowedSubjects {
		field := config.Index("allowed_subjects", i)
		if s == "" {
			p.Errorf(cfg, field, "empty subject")
		} else if body, _ := strings.CutSuffix(s, "*"); strings.Contains(body, "*") {
			// A '*' anywhere else would read as a glob that it is not.
			p.Errorf(cfg, field, "%q: '*' is only allowed at the end", s)
		}
	}
	if c.TrustDomain != "" {
		if err := validTrustDomain(c.TrustDomain); err != nil {
			p.Errorf(cfg, "trust_domain", "%v", err)
		}
	}
	for i, s := range c.requiredEKUs() {
		if _, err := parseEKU(s); err != nil {
			p.Errorf(cfg, config.Index("required_ekus", i), "%v", err)
		}
	}
	return p.Err()
}

// provision returns the settings of a validated c.
func (c *Config) provision() *parsed {
	p := &parsed{subjectFrom: c.SubjectFrom, trustDomain: c.TrustDomain}
	for _, s := range c.AllowedSubjects {
		body, star := strings.CutSuffix(s, "*")
		p.allowed = append(p.allowed, pattern{s: body, prefix: star})
	}
	for _, s := range c.requiredEKUs() {
		e, _ := parseEKU(s) // validated
		p.ekus = append(p.ekus, e)
	}
	return p
}

func parseEKU(s string) (eku, error) {
	if u, ok := ekuNames[s]; ok {
		return eku{name: s, known: u}, nil
	}
	if u, ok := ekuOIDs[s]; ok {
		return eku{name: s, known: u}, nil
	}
	var oid asn1.ObjectIdentifier
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return eku{}, fmt.Errorf("mtls: unknown extended key usage %q (known: client_auth, server_auth, email_protection, code_signing, time_stamping, ocsp_signing, or a dotted OID)", s)
	}
	for _, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || part != strconv.Itoa(n) {
			return eku{}, fmt.Errorf("mtls: %q is neither a known extended key usage nor a dotted OID", s)
		}
		oid = append(oid, n)
	}
	return eku{name: s, oid: oid}, nil
}

// has reports whether cert lists e explicitly. anyExtendedKeyUsage and a
// certificate without the extension do not count: the route asked for a
// certificate issued for this purpose.
func (e eku) has(cert *x509.Certificate) bool {
	if e.oid == nil {
		for _, u := range cert.ExtKeyUsage {
			if u == e.known {
				return true
			}
		}
		return false
	}
	for _, o := range cert.UnknownExtKeyUsage {
		if o.Equal(e.oid) {
			return true
		}
	}
	return false
}
