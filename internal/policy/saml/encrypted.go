package saml

import (
	"errors"
	"net/http"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/wsse"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// DecryptionConfig accepts saml2:EncryptedAssertion addressed to the
// gateway: decrypted (internal/xmlenc: RSA-OAEP key transport, AES-GCM
// content; RSA-1.5 and CBC never) before the assertion is verified as a
// plain one would be.
//
//	decryption:
//	  keys: [{certificate: gateway-enc.pem, key: {file: gateway-enc.key}}]
//	  required: false
type DecryptionConfig struct {
	// Keys are the gateway's RSA key transport keys: a PEM certificate
	// file (relative to the config file) and its PEM private key (a
	// secret). Required.
	Keys []DecryptionKeyConfig `yaml:"keys"`
	// Required refuses an assertion that arrives unencrypted.
	Required bool `yaml:"required"`
}

// DecryptionKeyConfig is one key.
type DecryptionKeyConfig struct {
	Certificate string        `yaml:"certificate"`
	Key         config.Secret `yaml:"key"`
}

type decryption struct {
	dec      *xmlenc.Decrypter
	required bool
}

func decodeDecryption(cfg *config.Node, c *DecryptionConfig, maxBody int64) (*decryption, error) {
	if c == nil {
		return nil, nil
	}
	if len(c.Keys) == 0 {
		return nil, cfg.Errorf("decryption.keys", "saml: decryption needs at least one key")
	}
	var keys xmlenc.Keys
	for i, k := range c.Keys {
		field := "decryption.keys[" + itoa(i) + "]"
		if k.Certificate == "" || k.Key.Value() == "" {
			return nil, cfg.Errorf(field, "saml: a decryption key needs certificate and key")
		}
		rk, err := xmlenc.LoadRSAKey(cfg.ResolvePath(k.Certificate), []byte(k.Key.Value()))
		if err != nil {
			return nil, cfg.Errorf(field, "saml: %v", err)
		}
		keys.RSA = append(keys.RSA, rk)
	}
	lim := xmlscan.DefaultLimits()
	lim.MaxBytes = maxBody
	d, err := xmlenc.New(keys, xmlenc.Options{Limits: lim})
	if err != nil {
		return nil, cfg.Errorf("decryption", "saml: %v", err)
	}
	return &decryption{dec: d, required: c.Required}, nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// failedCheck is the one refusal of every EncryptedAssertion that does not
// decrypt, whatever failed: one code, one text.
func failedCheck(format string, args ...any) *policy.Denial {
	return deny(http.StatusUnauthorized, wsse.CodeFailedCheck, "The signature or decryption was invalid", format, args...)
}

// isEncryptedAssertion reports whether el is a saml2:EncryptedAssertion.
func isEncryptedAssertion(el *etree.Element) bool {
	return el.Tag == "EncryptedAssertion" && el.NamespaceURI() == saml2.NamespaceAssertion
}

// decryptAssertion replaces an EncryptedAssertion of the Security header
// by its plaintext, which must be a saml2:Assertion (verified afterwards
// like any other), and returns it.
func (p *Policy) decryptAssertion(el *etree.Element) (*etree.Element, *policy.Denial) {
	if p.s.dec == nil {
		return nil, deny(http.StatusBadRequest, wsse.CodeUnsupportedSecurityToken, "An unsupported token was provided",
			"an EncryptedAssertion, and decryption is not configured")
	}
	a, err := p.s.dec.dec.DecryptWrapped(el)
	if err != nil {
		if errors.Is(err, xmlenc.ErrDecrypt) {
			return nil, failedCheck("the EncryptedAssertion does not decrypt")
		}
		return nil, failedCheck("%v", err)
	}
	if a.Tag != "Assertion" || a.NamespaceURI() != saml2.NamespaceAssertion {
		return nil, failedCheck("the EncryptedAssertion holds %s, not an Assertion", a.FullTag())
	}
	return a, nil
}
