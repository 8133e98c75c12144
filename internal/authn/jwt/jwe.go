package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/config"
)

// JWEConfig accepts nested JWTs (RFC 7519 §5.2): a JWE in compact form,
// addressed to the gateway's key, whose plaintext is the signed JWT that
// is then verified as any other.
//
//	jwe:
//	  keys:
//	    - {key: {file: gateway-enc.key}, kid: gw-enc-1}
//	  algorithms: [RSA-OAEP-256, ECDH-ES, ECDH-ES+A256KW]
//	  required: false
type JWEConfig struct {
	// Keys are the gateway's decryption keys: PEM private keys (RSA of
	// 2048 bits or more, or EC P-256/P-384/P-521), each a secret
	// (inline, {env: NAME}, {file: PATH}), with the kid a JWE names it
	// by. Required.
	Keys []JWEKeyConfig `yaml:"keys"`
	// Algorithms are the accepted key management algorithms:
	// RSA-OAEP-256, ECDH-ES, ECDH-ES+A256KW. Default all three. "dir",
	// RSA1_5, RSA-OAEP (SHA-1), the AES and PBES2 key wraps are refused.
	// Content encryption is A256GCM only.
	Algorithms []string `yaml:"algorithms"`
	// Required refuses a token of the issuer that arrives as a plain JWS.
	Required bool `yaml:"required"`
}

// JWEKeyConfig is one decryption key.
type JWEKeyConfig struct {
	Key config.Secret `yaml:"key"`
	KID string        `yaml:"kid"`
}

// jweSettings is a decoded JWEConfig.
type jweSettings struct {
	keys     []jweKey
	algs     []jose.KeyAlgorithm
	required bool
}

type jweKey struct {
	kid string
	key any // *rsa.PrivateKey or *ecdsa.PrivateKey
}

// fits reports whether k can do alg.
func (k jweKey) fits(alg jose.KeyAlgorithm) bool {
	switch k.key.(type) {
	case *rsa.PrivateKey:
		return alg == jose.RSA_OAEP_256
	case *ecdsa.PrivateKey:
		return alg == jose.ECDH_ES || alg == jose.ECDH_ES_A256KW
	}
	return false
}

var jweAlgs = map[string]jose.KeyAlgorithm{
	"RSA-OAEP-256":   jose.RSA_OAEP_256,
	"ECDH-ES":        jose.ECDH_ES,
	"ECDH-ES+A256KW": jose.ECDH_ES_A256KW,
}

// algNames returns the key management algorithms c accepts (all three
// when it names none); validate has checked the names.
func (c *JWEConfig) algNames() []string {
	if c.Algorithms == nil {
		return []string{"RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A256KW"}
	}
	return c.Algorithms
}

// validate records the problems of c (nil: no jwe block) in p. The keys are
// parsed by provision.
func (c *JWEConfig) validate(p *config.Problems, cfg *config.Node) {
	if c == nil {
		return
	}
	for i, n := range c.algNames() {
		if _, ok := jweAlgs[n]; !ok {
			p.Errorf(cfg, config.Index("jwe.algorithms", i), "jwe algorithm %q is not accepted: use RSA-OAEP-256, ECDH-ES or ECDH-ES+A256KW (dir and RSA1_5 never)", n)
		}
	}
	if len(c.Keys) == 0 {
		p.Errorf(cfg, "jwe.keys", "jwe needs at least one key")
	}
	kids := map[string]bool{}
	for i, kc := range c.Keys {
		if kids[kc.KID] {
			p.Errorf(cfg, config.Index("jwe.keys", i)+".kid", "kid %q is listed twice", kc.KID)
		}
		kids[kc.KID] = true
	}
}

// provision parses the keys of a validated c (nil: no jwe block, nil
// settings) and checks that each fits one of the algorithms.
func (c *JWEConfig) provision(cfg *config.Node) (*jweSettings, error) {
	if c == nil {
		return nil, nil
	}
	j := &jweSettings{required: c.Required}
	for _, n := range c.algNames() {
		j.algs = append(j.algs, jweAlgs[n])
	}
	for i, kc := range c.Keys {
		field := config.Index("jwe.keys", i)
		k, err := parsePrivateKey([]byte(kc.Key.Value()))
		if err != nil {
			return nil, cfg.Errorf(field+".key", "%v", err)
		}
		jk := jweKey{kid: kc.KID, key: k}
		usable := false
		for _, a := range j.algs {
			usable = usable || jk.fits(a)
		}
		if !usable {
			return nil, cfg.Errorf(field+".key", "a %s key fits none of the jwe algorithms", keyTypeName(k))
		}
		j.keys = append(j.keys, jk)
	}
	return j, nil
}

func parsePrivateKey(b []byte) (any, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("the key is not PEM")
	}
	var k any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048", k.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, errors.New("EC key on an unsupported curve")
		}
	default:
		return nil, fmt.Errorf("a %T key cannot decrypt: RSA or EC only", k)
	}
	return k, nil
}

// descDecrypt is the one public reason of every JWE that does not
// decrypt, whatever failed (key, tag, algorithm): one answer, so that
// nothing about the key or the plaintext shows.
const descDecrypt = "the token cannot be decrypted"

// descNotEncrypted refuses a plain JWS when jwe.required is set.
const descNotEncrypted = "the token must be encrypted"

// verify checks a token: a nested JWT (JWE compact, five parts) is
// decrypted with the configured keys and its plaintext, a compact JWS,
// verified by verifyJWS; any other token goes to verifyJWS directly.
func (a *Authenticator) verify(ctx context.Context, token string, now time.Time) (*verified, error) {
	j := a.s.jwe
	if j == nil || strings.Count(token, ".") != 4 {
		v, err := a.verifyJWS(ctx, token, now)
		if err == nil && j != nil && j.required {
			return nil, fail(descNotEncrypted, errors.New("jwt: a plain JWS, and jwe.required is set"))
		}
		return v, err
	}
	dot := strings.IndexByte(token, '.')
	hdrJSON, err := b64.DecodeString(token[:dot])
	if err != nil {
		return nil, notMine(descMalformed, fmt.Errorf("jwt: JWE header: %w", err))
	}
	h, err := decodeObject(hdrJSON)
	if err != nil {
		return nil, notMine(descMalformed, fmt.Errorf("jwt: JWE header: %w", err))
	}
	alg, _ := h["alg"].(string)
	enc, _ := h["enc"].(string)
	if alg == "" || enc == "" {
		return nil, notMine(descMalformed, errors.New("jwt: JWE header without alg and enc"))
	}
	if _, zip := h["zip"]; zip {
		// Compression before encryption leaks the plaintext's content
		// through the length, and inflating is a bomb: never.
		return nil, fail(descDecrypt, errors.New("jwt: JWE with zip"))
	}
	if _, crit := h["crit"]; crit {
		return nil, fail(descCrit, errors.New("jwt: JWE with crit"))
	}
	if cty, _ := h["cty"].(string); normalizeTyp(cty) != "jwt" {
		return nil, fail(descDecrypt, fmt.Errorf("jwt: JWE cty %q, want JWT (a nested JWT)", truncate(cty)))
	}
	keyAlg := jose.KeyAlgorithm(alg)
	allowed := false
	for _, x := range j.algs {
		allowed = allowed || x == keyAlg
	}
	if !allowed || enc != string(jose.A256GCM) {
		return nil, fail(descDecrypt, fmt.Errorf("jwt: JWE alg %q enc %q not accepted", truncate(alg), truncate(enc)))
	}
	kid, hasKid := h["kid"].(string)
	var cands []jweKey
	for _, k := range j.keys {
		if k.fits(keyAlg) && (!hasKid || k.kid == kid) {
			cands = append(cands, k)
		}
	}
	if len(cands) == 0 {
		ours := false
		for _, k := range j.keys {
			ours = ours || k.kid == kid
		}
		if hasKid && !ours {
			// Addressed to a key this authenticator does not hold:
			// another one of the route may.
			return nil, notMine(descDecrypt, fmt.Errorf("jwt: JWE for kid %q", truncate(kid)))
		}
		return nil, fail(descDecrypt, errors.New("jwt: no key fits the JWE"))
	}
	obj, err := jose.ParseEncryptedCompact(token, j.algs, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, fail(descDecrypt, fmt.Errorf("jwt: JWE: %w", err))
	}
	var plain []byte
	for _, k := range cands {
		if plain, err = obj.Decrypt(k.key); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fail(descDecrypt, errors.New("jwt: the JWE does not decrypt"))
	}
	if len(plain) > a.s.maxTokenBytes {
		return nil, fail(descTooLarge, fmt.Errorf("jwt: nested token of %d bytes", len(plain)))
	}
	inner := string(plain)
	if strings.Count(inner, ".") != 2 {
		// One layer of encryption over one signed JWT: a JWE inside, or
		// an unsigned plaintext, is not a nested JWT.
		return nil, fail(descMalformed, errors.New("jwt: the JWE's plaintext is not a compact JWS"))
	}
	return a.verifyJWS(ctx, inner, now)
}
