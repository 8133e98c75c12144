package config

import (
	"fmt"
	"net/url"
	"strings"
)

// STS is the embedded WS-Trust 1.3 security token service issuing SAML 2.0
// assertions (docs/sts.md). It serves its endpoint on every gateway
// listener, at Path, before the routes.
//
//	sts:
//	  issuer: https://gw.example.com/sts
//	  key_encryption_key: {env: GATEHOUSE_KEK}
//	  authentication:            # a wssecurity policy's settings
//	    username_token:
//	      users: [{username: alice, password: {env: ALICE_PASSWORD}}]
//	  subjects:
//	    - {subject: alice, roles: [reader], groups: [staff], email: alice@example.com}
//	  relying_parties:
//	    - {audience: urn:gatehouse:products}
type STS struct {
	// Issuer is the assertions' saml2:Issuer, an absolute URI. Required.
	Issuer string `yaml:"issuer"`
	// Path is the endpoint's path. Default /sts. The WSDL is served at
	// Path?wsdl.
	Path string `yaml:"path"`
	// Signature is the assertions' signature algorithm: rsa-sha256
	// (default, RSA-2048) or ecdsa-sha256 (P-256). It applies to a key
	// the STS makes; a configured KeyFile decides by its own type.
	Signature string `yaml:"signature"`
	// KeyFile and CertificateFile are a PEM private key and its
	// certificate, relative to the config file. Both or neither; neither:
	// the STS makes a key and a self-signed certificate on first start and
	// keeps them in the state store, shared by every instance.
	KeyFile         string `yaml:"key_file"`
	CertificateFile string `yaml:"certificate_file"`
	// KeyEncryptionKey seals a made key in the store (AES-256-GCM): 32
	// bytes, base64 or 64 hex digits. Required without KeyFile unless
	// InsecurePlaintextKeys.
	KeyEncryptionKey *Secret `yaml:"key_encryption_key"`
	// InsecurePlaintextKeys keeps a made private key unencrypted in the
	// store.
	InsecurePlaintextKeys bool `yaml:"insecure_plaintext_keys"`
	// TokenLifetime is how long an issued assertion is valid. Default 1h,
	// between 1m and 24h. A relying party may shorten it.
	TokenLifetime Duration `yaml:"token_lifetime"`
	// RenewGrace is how long after its expiry an assertion may still be
	// renewed. Default 0: only before it expires.
	RenewGrace Duration `yaml:"renew_grace"`
	// Authentication authenticates Issue, Renew and Cancel requests: the
	// settings of a wssecurity policy (UsernameToken and/or X.509-signed
	// requests). Required.
	Authentication *Node `yaml:"authentication"`
	// ValidateRequiresAuthentication refuses Validate requests that do not
	// authenticate. Default false: Validate says only "valid" or
	// "invalid" about an assertion the caller already holds.
	ValidateRequiresAuthentication bool `yaml:"validate_requires_authentication"`
	// Subjects are the authenticated callers who may get assertions, with
	// their attributes. A caller not listed is refused.
	Subjects []STSSubject `yaml:"subjects"`
	// RelyingParties are the audiences (wsp:AppliesTo addresses) the STS
	// issues for. At least one is required.
	RelyingParties []RelyingParty `yaml:"relying_parties"`
}

// STSSubject is one caller the STS issues assertions for.
type STSSubject struct {
	// Subject is the authenticated name: the wsse:Username, or the signing
	// certificate's subject (RFC 4514, "CN=billing,O=Example"). It is the
	// assertion's NameID. Required, unique.
	Subject string `yaml:"subject"`
	// Roles, Groups and Email become the attributes "roles", "groups" and
	// "email" of the assertion.
	Roles  []string `yaml:"roles"`
	Groups []string `yaml:"groups"`
	Email  string   `yaml:"email"`
}

// RelyingParty is one audience assertions may be issued for.
type RelyingParty struct {
	// Audience is the AppliesTo address, exactly; it becomes the
	// assertion's Audience. Required, unique.
	Audience string `yaml:"audience"`
	// TokenLifetime shortens the assertions for this audience.
	TokenLifetime Duration `yaml:"token_lifetime"`
	// OneTimeUse adds the OneTimeUse condition: the relying party accepts
	// each assertion once.
	OneTimeUse bool `yaml:"one_time_use"`
	// EncryptionCertificate is a PEM file of the relying party's RSA
	// certificate: assertions for it are issued encrypted to it
	// (saml2:EncryptedAssertion, RSA-OAEP + AES-256-GCM).
	EncryptionCertificate string `yaml:"encryption_certificate"`
}

// validateSTS checks the section's shape; the sts package checks what
// needs files, keys and the authentication settings.
func (c *Config) validateSTS(v *validator) {
	s := c.STS
	if s == nil {
		return
	}
	p := "sts"
	if s.Issuer == "" {
		v.add(p+".issuer", "required field is missing")
	} else if u, err := url.Parse(s.Issuer); err != nil || u.Scheme == "" {
		v.add(p+".issuer", "issuer %q must be an absolute URI", s.Issuer)
	}
	if s.Path != "" && (!strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, "?#") || strings.HasSuffix(s.Path, "/")) {
		v.add(p+".path", "path %q must start with / and have no query, fragment or trailing slash", s.Path)
	}
	switch s.Signature {
	case "", "rsa-sha256", "ecdsa-sha256":
	default:
		v.add(p+".signature", "invalid signature %q (want rsa-sha256 or ecdsa-sha256)", s.Signature)
	}
	if (s.KeyFile == "") != (s.CertificateFile == "") {
		v.add(p+".key_file", "key_file and certificate_file go together")
	}
	if s.KeyFile == "" && s.KeyEncryptionKey == nil && !s.InsecurePlaintextKeys {
		v.add(p+".key_encryption_key", "required to encrypt the made signing key at rest (or key_file, or insecure_plaintext_keys: true)")
	}
	if s.KeyEncryptionKey != nil && s.InsecurePlaintextKeys {
		v.add(p+".insecure_plaintext_keys", "conflicts with key_encryption_key")
	}
	if d := s.TokenLifetime.Std(); d != 0 && (d.Minutes() < 1 || d.Hours() > 24) {
		v.add(p+".token_lifetime", "must be between 1m and 24h, got %v", s.TokenLifetime)
	}
	if d := s.RenewGrace.Std(); d < 0 || d.Hours() > 24 {
		v.add(p+".renew_grace", "must be between 0s and 24h, got %v", s.RenewGrace)
	}
	if s.Authentication.IsZero() {
		v.add(p+".authentication", "required field is missing (the settings of a wssecurity policy)")
	}
	seen := map[string]bool{}
	for i, sub := range s.Subjects {
		sp := fmt.Sprintf("%s.subjects[%d].subject", p, i)
		switch {
		case sub.Subject == "":
			v.add(sp, "required field is missing")
		case seen[sub.Subject]:
			v.add(sp, "duplicate subject %q", sub.Subject)
		}
		seen[sub.Subject] = true
	}
	if len(s.RelyingParties) == 0 {
		v.add(p+".relying_parties", "at least one relying party is required")
	}
	auds := map[string]bool{}
	for i, rp := range s.RelyingParties {
		rpp := fmt.Sprintf("%s.relying_parties[%d]", p, i)
		switch {
		case rp.Audience == "":
			v.add(rpp+".audience", "required field is missing")
		case auds[rp.Audience]:
			v.add(rpp+".audience", "duplicate audience %q", rp.Audience)
		}
		auds[rp.Audience] = true
		if d := rp.TokenLifetime.Std(); d != 0 && (d.Minutes() < 1 || d.Hours() > 24) {
			v.add(rpp+".token_lifetime", "must be between 1m and 24h, got %v", rp.TokenLifetime)
		}
	}
}
