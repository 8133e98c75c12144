package authserver

import (
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// samlDecrypter builds the decrypter of encrypted SAML subject tokens
// from saml_decryption_keys; nil without keys.
func samlDecrypter(keys []config.SAMLDecryptionKey, cfg *config.Config, baseDir string) (*xmlenc.Decrypter, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var k xmlenc.Keys
	for i, kc := range keys {
		field := fmt.Sprintf("saml_decryption_keys[%d]", i)
		if kc.CertificateFile == "" || kc.Key.Value() == "" {
			return nil, configError(cfg, field, "certificate_file and key are required")
		}
		rk, err := xmlenc.LoadRSAKey(resolve(baseDir, kc.CertificateFile), []byte(kc.Key.Value()))
		if err != nil {
			return nil, configError(cfg, field, "%v", err)
		}
		k.RSA = append(k.RSA, rk)
	}
	lim := xmlscan.DefaultLimits()
	lim.MaxBytes = maxSAMLBytes
	d, err := xmlenc.New(k, xmlenc.Options{Limits: lim})
	if err != nil {
		return nil, configError(cfg, "saml_decryption_keys", "%v", err)
	}
	return d, nil
}

// decryptSAML decrypts an EncryptedAssertion subject token in place and
// returns the plaintext element, which the caller then verifies like a
// plain assertion. Every failure says the same.
func (srv *Server) decryptSAML(ea *etree.Element) (*etree.Element, error) {
	if srv.s.samlDecrypter == nil {
		return nil, errors.New("an EncryptedAssertion, and saml_decryption_keys is not configured")
	}
	a, err := srv.s.samlDecrypter.DecryptWrapped(ea)
	if err != nil {
		return nil, errors.New("the EncryptedAssertion does not decrypt")
	}
	return a, nil
}
