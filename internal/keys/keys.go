// Package keys holds the gateway's own signing keys: the private keys with
// which Gatehouse signs what it issues (identity tokens for upstreams, and
// later access tokens of the authorization server and the STS's
// assertions), and the public JWK Set that relying parties trust.
//
// A Key is always asymmetric and fit for exactly one algorithm: ES256,
// ES384, ES512 (ECDSA on P-256, P-384, P-521), EdDSA (Ed25519), RS256,
// RS384, RS512, PS256, PS384, PS512 (RSA of at least 2048 bits). HMAC and
// "none" are refused: a shared secret cannot be published in a JWK Set,
// and every upstream holding it could forge the gateway's tokens.
package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// MinRSABits is the smallest RSA modulus accepted, per NIST SP 800-57 and
// RFC 7518 §3.3.
const MinRSABits = 2048

// GenerateRSABits is the modulus size Generate uses for RS* and PS*. 2048
// bits is the minimum and already costs about 0.8 ms per signature; larger
// keys multiply that on every token minted.
const GenerateRSABits = 2048

var (
	// ErrAlgorithm is the cause of errors about an algorithm that is
	// unknown or not allowed for gateway signing keys (HMAC, none).
	ErrAlgorithm = errors.New("unsupported signing algorithm")
	// ErrUnfit is the cause of errors about a key that does not fit the
	// algorithm: the wrong key type or curve, or an RSA key too small.
	ErrUnfit = errors.New("key does not fit the algorithm")
	// ErrNotPrivate is the cause of errors about input holding no private
	// key: a public key, a certificate, a symmetric JWK, an encrypted PEM.
	ErrNotPrivate = errors.New("not a private signing key")
)

// algorithms are the allowed algorithms, in the order they are listed.
var algorithms = []jwa.SignatureAlgorithm{
	jwa.ES256(), jwa.ES384(), jwa.ES512(), jwa.EdDSA(),
	jwa.RS256(), jwa.RS384(), jwa.RS512(),
	jwa.PS256(), jwa.PS384(), jwa.PS512(),
}

// Algorithms returns the names of the allowed algorithms.
func Algorithms() []string {
	names := make([]string, len(algorithms))
	for i, a := range algorithms {
		names[i] = a.String()
	}
	return names
}

// ParseAlgorithm returns the allowed algorithm named s (case-sensitive, as
// in JOSE headers). Anything else, HMAC and "none" included, is an error
// wrapping ErrAlgorithm.
func ParseAlgorithm(s string) (jwa.SignatureAlgorithm, error) {
	for _, a := range algorithms {
		if a.String() == s {
			return a, nil
		}
	}
	return jwa.EmptySignatureAlgorithm(), fmt.Errorf("keys: %q (want one of %s): %w", s, strings.Join(Algorithms(), ", "), ErrAlgorithm)
}

// Key is a private signing key, fit for its algorithm, with its key id. It
// is immutable and safe for concurrent use.
type Key struct {
	alg    jwa.SignatureAlgorithm
	kid    string
	signer crypto.Signer
	pub    jwk.Key // public JWK with kid, alg and use=sig
}

// New returns signer as a Key for alg. An empty alg is inferred from the
// key (see DefaultAlgorithm); an empty kid becomes the key's RFC 7638 JWK
// thumbprint (SHA-256, base64url). The key is checked with a test
// signature, so a Key that exists can sign.
func New(signer crypto.Signer, alg, kid string) (*Key, error) {
	if signer == nil {
		return nil, fmt.Errorf("keys: no key: %w", ErrNotPrivate)
	}
	var a jwa.SignatureAlgorithm
	var err error
	if alg == "" {
		if a, err = DefaultAlgorithm(signer); err != nil {
			return nil, err
		}
	} else if a, err = ParseAlgorithm(alg); err != nil {
		return nil, err
	}
	if err := fits(signer, a); err != nil {
		return nil, err
	}
	pub, err := jwk.Import(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: public key to JWK: %w", err)
	}
	if kid == "" {
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("keys: thumbprint: %w", err)
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	for _, kv := range []struct {
		k string
		v any
	}{{jwk.KeyIDKey, kid}, {jwk.AlgorithmKey, a}, {jwk.KeyUsageKey, jwk.ForSignature}} {
		if err := pub.Set(kv.k, kv.v); err != nil {
			return nil, fmt.Errorf("keys: setting %s: %w", kv.k, err)
		}
	}
	k := &Key{alg: a, kid: kid, signer: signer, pub: pub}
	// A broken key (an RSA key whose primes do not match its modulus, say)
	// fails here, at load, rather than on the first request.
	msg, err := k.Sign([]byte(`{"test":true}`), "")
	if err != nil {
		return nil, err
	}
	if _, err := jws.Verify(msg, jws.WithKey(a, signer.Public())); err != nil {
		return nil, fmt.Errorf("keys: %s key fails its own test signature: %v: %w", a, err, ErrUnfit)
	}
	return k, nil
}

// DefaultAlgorithm is the algorithm a key is used with when none is
// configured: ES256, ES384 or ES512 by the curve, EdDSA for Ed25519, RS256
// for RSA.
func DefaultAlgorithm(signer crypto.Signer) (jwa.SignatureAlgorithm, error) {
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jwa.ES256(), nil
		case elliptic.P384():
			return jwa.ES384(), nil
		case elliptic.P521():
			return jwa.ES512(), nil
		}
		return jwa.EmptySignatureAlgorithm(), fmt.Errorf("keys: ECDSA curve %s is not P-256, P-384 or P-521: %w", curveName(k.Curve), ErrUnfit)
	case ed25519.PrivateKey:
		return jwa.EdDSA(), nil
	case *rsa.PrivateKey:
		return jwa.RS256(), nil
	}
	return jwa.EmptySignatureAlgorithm(), fmt.Errorf("keys: %T is not an ECDSA, Ed25519 or RSA private key: %w", signer, ErrUnfit)
}

// fits reports whether signer can be used with alg.
func fits(signer crypto.Signer, alg jwa.SignatureAlgorithm) error {
	var wantCurve elliptic.Curve
	switch alg {
	case jwa.ES256():
		wantCurve = elliptic.P256()
	case jwa.ES384():
		wantCurve = elliptic.P384()
	case jwa.ES512():
		wantCurve = elliptic.P521()
	case jwa.EdDSA():
		if k, ok := signer.(ed25519.PrivateKey); !ok || len(k) != ed25519.PrivateKeySize {
			return fmt.Errorf("keys: %s needs an Ed25519 key, got %s: %w", alg, describe(signer), ErrUnfit)
		}
		return nil
	default: // RS*, PS*: ParseAlgorithm admits nothing else
		k, ok := signer.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("keys: %s needs an RSA key, got %s: %w", alg, describe(signer), ErrUnfit)
		}
		if n := k.N.BitLen(); n < MinRSABits {
			return fmt.Errorf("keys: %s needs an RSA key of at least %d bits, got %d: %w", alg, MinRSABits, n, ErrUnfit)
		}
		if err := k.Validate(); err != nil {
			return fmt.Errorf("keys: invalid RSA key: %v: %w", err, ErrUnfit)
		}
		return nil
	}
	k, ok := signer.(*ecdsa.PrivateKey)
	if !ok || k.Curve != wantCurve {
		return fmt.Errorf("keys: %s needs an ECDSA %s key, got %s: %w", alg, curveName(wantCurve), describe(signer), ErrUnfit)
	}
	return nil
}

// describe names a key's kind for error messages.
func describe(signer crypto.Signer) string {
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		return "an ECDSA " + curveName(k.Curve) + " key"
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	case *rsa.PrivateKey:
		return fmt.Sprintf("a %d-bit RSA key", k.N.BitLen())
	}
	return fmt.Sprintf("a %T", signer)
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "unknown curve"
	}
	return c.Params().Name
}

// Generate makes a new key for alg (see Algorithms) with its thumbprint as
// key id: ECDSA on the algorithm's curve, Ed25519, or RSA of
// GenerateRSABits.
func Generate(alg string) (*Key, error) {
	a, err := ParseAlgorithm(alg)
	if err != nil {
		return nil, err
	}
	var signer crypto.Signer
	switch a {
	case jwa.ES256():
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.ES384():
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jwa.ES512():
		signer, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jwa.EdDSA():
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		signer, err = rsa.GenerateKey(rand.Reader, GenerateRSABits)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generating a %s key: %w", a, err)
	}
	return New(signer, a.String(), "")
}

// Load reads a private key file and returns it as a Key for alg with key id
// kid (see Parse). Errors name the file.
func Load(path, alg, kid string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	k, err := Parse(data, alg, kid)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Parse reads a private key and returns it as a Key for alg with key id kid.
//
// data is either PEM, holding one private key block ("PRIVATE KEY" PKCS#8,
// "EC PRIVATE KEY" SEC1 or "RSA PRIVATE KEY" PKCS#1; "EC PARAMETERS" blocks
// as written by openssl ecparam are skipped), or a private JWK (a JSON
// object, or a JWK Set holding exactly one key). An empty alg is the JWK's
// "alg" if it has one, else inferred from the key (DefaultAlgorithm); a
// JWK's "alg" that differs from alg is an error. An empty kid is the JWK's
// "kid" if it has one, else the RFC 7638 thumbprint.
func Parse(data []byte, alg, kid string) (*Key, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return parseJWK(trimmed, alg, kid)
	}
	signer, err := parsePEM(data)
	if err != nil {
		return nil, err
	}
	return New(signer, alg, kid)
}

func parsePEM(data []byte) (crypto.Signer, error) {
	var found *pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			if found != nil {
				return nil, fmt.Errorf("keys: more than one private key in the PEM data; give one: %w", ErrNotPrivate)
			}
			found = b
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("keys: the private key is encrypted; give it unencrypted (protect the file's mode instead): %w", ErrNotPrivate)
		default:
			return nil, fmt.Errorf("keys: PEM block %q is not a private key: %w", b.Type, ErrNotPrivate)
		}
	}
	if found == nil {
		return nil, fmt.Errorf("keys: no PEM private key or JWK found: %w", ErrNotPrivate)
	}
	if _, ok := found.Headers["DEK-Info"]; ok {
		return nil, fmt.Errorf("keys: the private key is encrypted; give it unencrypted (protect the file's mode instead): %w", ErrNotPrivate)
	}
	var raw any
	var err error
	switch found.Type {
	case "PRIVATE KEY":
		raw, err = x509.ParsePKCS8PrivateKey(found.Bytes)
	case "EC PRIVATE KEY":
		raw, err = x509.ParseECPrivateKey(found.Bytes)
	case "RSA PRIVATE KEY":
		raw, err = x509.ParsePKCS1PrivateKey(found.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: parsing %s: %w", found.Type, err)
	}
	// An X25519 key (*ecdh.PrivateKey) parses but cannot sign.
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: %T is not a signing key: %w", raw, ErrNotPrivate)
	}
	return signer, nil
}

func parseJWK(data []byte, alg, kid string) (*Key, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("keys: parsing JWK: %w", err)
	}
	var key jwk.Key
	if probe.Keys != nil {
		set, err := jwk.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("keys: parsing JWK Set: %w", err)
		}
		if set.Len() != 1 {
			return nil, fmt.Errorf("keys: the JWK Set holds %d keys, want exactly one: %w", set.Len(), ErrNotPrivate)
		}
		key, _ = set.Key(0)
	} else {
		var err error
		if key, err = jwk.ParseKey(data); err != nil {
			return nil, fmt.Errorf("keys: parsing JWK: %w", err)
		}
	}
	if key.KeyType() == jwa.OctetSeq() {
		return nil, fmt.Errorf("keys: a symmetric (kty oct) JWK cannot be published; use an asymmetric key: %w", ErrNotPrivate)
	}
	if private, err := jwk.IsPrivateKey(key); err != nil || !private {
		return nil, fmt.Errorf("keys: the JWK is a public key: %w", ErrNotPrivate)
	}
	if a, ok := key.Algorithm(); ok {
		if alg == "" {
			alg = a.String()
		} else if a.String() != alg {
			return nil, fmt.Errorf("keys: the JWK is for %s, not %s: %w", a, alg, ErrUnfit)
		}
	}
	if kid == "" {
		kid, _ = key.KeyID()
	}
	var raw any
	if err := jwk.Export(key, &raw); err != nil {
		return nil, fmt.Errorf("keys: JWK to key: %w", err)
	}
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: JWK of %T is not a signing key: %w", raw, ErrNotPrivate)
	}
	return New(signer, alg, kid)
}

// Algorithm returns the algorithm the key signs with, like "ES256".
func (k *Key) Algorithm() string { return k.alg.String() }

// KeyID returns the key id, the "kid" of its JWK and of what it signs.
func (k *Key) KeyID() string { return k.kid }

// Signer returns the private key.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Sign signs payload as a JWS in compact serialization with the protected
// header alg, kid and, when typ is not empty, typ.
func (k *Key) Sign(payload []byte, typ string) ([]byte, error) {
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, k.kid); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if typ != "" {
		if err := h.Set(jws.TypeKey, typ); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(k.alg, k.signer, jws.WithProtectedHeaders(h)))
	if err != nil {
		return nil, fmt.Errorf("keys: signing with %s: %w", k.alg, err)
	}
	return out, nil
}

// PublicJWK returns the public key as a JWK (kty, its key fields, kid, alg,
// use "sig") in JSON.
func (k *Key) PublicJWK() ([]byte, error) {
	out, err := json.Marshal(k.pub)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return out, nil
}

// MarshalPEM returns the private key as a PKCS#8 "PRIVATE KEY" PEM block.
func (k *Key) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// JWKS returns the JWK Set JSON ({"keys": [...]}) of the keys' public
// halves, in the order given: what relying parties fetch to verify the
// gateway's signatures. Two keys with the same kid are an error, since a
// verifier could not tell them apart.
func JWKS(keys ...*Key) ([]byte, error) {
	set := jwk.NewSet()
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k.kid] {
			return nil, fmt.Errorf("keys: two keys have kid %q", k.kid)
		}
		seen[k.kid] = true
		if err := set.AddKey(k.pub); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return out, nil
}
