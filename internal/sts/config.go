package sts

import (
	"cmp"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/wsse"
)

// Defaults of the configuration (see config.STS).
const (
	DefaultPath          = "/sts"
	DefaultTokenLifetime = time.Hour
	// ClockSkew is allowed either way on assertion times.
	ClockSkew = 30 * time.Second
	// MaxRequestBytes bounds an RST.
	MaxRequestBytes = 256 << 10
)

const (
	algRSA   = "rsa-sha256"
	algECDSA = "ecdsa-sha256"
)

// settings is a validated config.STS with defaults applied.
type settings struct {
	issuer       string
	path         string
	alg          string
	keyFile      string
	certFile     string
	kek          []byte
	lifetime     time.Duration
	renewGrace   time.Duration
	validateAuth bool
	subjects     map[string]*subject
	parties      map[string]*party
}

type subject struct {
	name  string
	attrs map[string][]string
}

type party struct {
	audience   string
	lifetime   time.Duration
	oneTimeUse bool
	// encrypt, when set, is the certificate assertions for this party
	// are encrypted to.
	encrypt *x509.Certificate
}

// configError places a message at field of the sts section.
func configError(cfg *config.Config, field, format string, args ...any) error {
	p := "sts"
	if field != "" {
		p += "." + field
	}
	if cfg == nil {
		return fmt.Errorf("sts: %s: %s", p, fmt.Sprintf(format, args...))
	}
	return cfg.Errorf(p, format, args...)
}

func newSettings(c *config.STS, cfg *config.Config, baseDir string) (*settings, error) {
	if c.Issuer == "" {
		return nil, configError(cfg, "issuer", "required field is missing")
	}
	s := &settings{
		issuer:       c.Issuer,
		path:         cmp.Or(c.Path, DefaultPath),
		alg:          cmp.Or(c.Signature, algRSA),
		lifetime:     DefaultTokenLifetime,
		renewGrace:   c.RenewGrace.Std(),
		validateAuth: c.ValidateRequiresAuthentication,
		subjects:     map[string]*subject{},
		parties:      map[string]*party{},
	}
	if d := c.TokenLifetime.Std(); d != 0 {
		s.lifetime = d
	}
	if s.alg != algRSA && s.alg != algECDSA {
		return nil, configError(cfg, "signature", "invalid signature %q (want rsa-sha256 or ecdsa-sha256)", s.alg)
	}
	if (c.KeyFile == "") != (c.CertificateFile == "") {
		return nil, configError(cfg, "key_file", "key_file and certificate_file go together")
	}
	if c.KeyFile != "" {
		s.keyFile, s.certFile = resolve(baseDir, c.KeyFile), resolve(baseDir, c.CertificateFile)
	} else if c.KeyEncryptionKey != nil {
		kek, err := wsse.ParseKEK(c.KeyEncryptionKey.Value())
		if err != nil {
			return nil, configError(cfg, "key_encryption_key", "%v", err)
		}
		s.kek = kek
	} else if !c.InsecurePlaintextKeys {
		return nil, configError(cfg, "key_encryption_key", "required to encrypt the made signing key at rest (or key_file, or insecure_plaintext_keys: true)")
	}
	for i, sub := range c.Subjects {
		if sub.Subject == "" {
			return nil, configError(cfg, fmt.Sprintf("subjects[%d].subject", i), "required field is missing")
		}
		if _, dup := s.subjects[sub.Subject]; dup {
			return nil, configError(cfg, fmt.Sprintf("subjects[%d].subject", i), "duplicate subject %q", sub.Subject)
		}
		attrs := map[string][]string{}
		if len(sub.Roles) > 0 {
			attrs["roles"] = sub.Roles
		}
		if len(sub.Groups) > 0 {
			attrs["groups"] = sub.Groups
		}
		if sub.Email != "" {
			attrs["email"] = []string{sub.Email}
		}
		s.subjects[sub.Subject] = &subject{name: sub.Subject, attrs: attrs}
	}
	if len(c.RelyingParties) == 0 {
		return nil, configError(cfg, "relying_parties", "at least one relying party is required")
	}
	for i, rp := range c.RelyingParties {
		if rp.Audience == "" {
			return nil, configError(cfg, fmt.Sprintf("relying_parties[%d].audience", i), "required field is missing")
		}
		if _, dup := s.parties[rp.Audience]; dup {
			return nil, configError(cfg, fmt.Sprintf("relying_parties[%d].audience", i), "duplicate audience %q", rp.Audience)
		}
		p := &party{audience: rp.Audience, lifetime: s.lifetime, oneTimeUse: rp.OneTimeUse}
		if d := rp.TokenLifetime.Std(); d != 0 {
			p.lifetime = min(d, s.lifetime)
		}
		if rp.EncryptionCertificate != "" {
			c, err := encryptionCertificate(resolve(baseDir, rp.EncryptionCertificate))
			if err != nil {
				return nil, configError(cfg, fmt.Sprintf("relying_parties[%d].encryption_certificate", i), "%v", err)
			}
			p.encrypt = c
		}
		s.parties[rp.Audience] = p
	}
	return s, nil
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}
