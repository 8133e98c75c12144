package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// algSet is a set of the supported JWS algorithms, one bit each.
type algSet uint16

// algInfo describes one supported algorithm.
type algInfo struct {
	name string
	jwa  jwa.SignatureAlgorithm
	// fits reports whether a public key can verify this algorithm: the
	// right family and, for ECDSA, the right curve.
	fits func(key any) bool
}

func isRSA(k any) bool { _, ok := k.(*rsa.PublicKey); return ok }

func isCurve(c elliptic.Curve) func(any) bool {
	return func(k any) bool {
		ec, ok := k.(*ecdsa.PublicKey)
		return ok && ec.Curve == c
	}
}

func isEd25519(k any) bool { _, ok := k.(ed25519.PublicKey); return ok }

// algs is indexed by bit position in algSet. Order is the order of the
// docs.
var algs = []algInfo{
	{"RS256", jwa.RS256(), isRSA},
	{"RS384", jwa.RS384(), isRSA},
	{"RS512", jwa.RS512(), isRSA},
	{"PS256", jwa.PS256(), isRSA},
	{"PS384", jwa.PS384(), isRSA},
	{"PS512", jwa.PS512(), isRSA},
	{"ES256", jwa.ES256(), isCurve(elliptic.P256())},
	{"ES384", jwa.ES384(), isCurve(elliptic.P384())},
	{"ES512", jwa.ES512(), isCurve(elliptic.P521())},
	{"EdDSA", jwa.EdDSA(), isEd25519},
	{"Ed25519", jwa.EdDSAEd25519(), isEd25519},
}

// algByName looks up a token's alg header; 0 for anything unsupported.
// The comparison is exact: JOSE algorithm names are case-sensitive.
func algByName(name string) (algSet, *algInfo) {
	for i := range algs {
		if algs[i].name == name {
			return 1 << i, &algs[i]
		}
	}
	return 0, nil
}

// parseAlg parses a configured algorithm name.
func parseAlg(name string) (algSet, error) {
	if a, _ := algByName(name); a != 0 {
		return a, nil
	}
	switch up := strings.ToUpper(name); {
	case up == "NONE":
		return 0, errors.New(`jwt: "none" is never allowed: it means an unsigned token`)
	case strings.HasPrefix(up, "HS"):
		return 0, fmt.Errorf("jwt: %s is refused: HMAC needs a shared secret, and with public keys it invites key confusion; use an asymmetric algorithm", name)
	}
	if a, _ := algByName(canonicalAlgName(name)); a != 0 {
		return 0, fmt.Errorf("jwt: unknown algorithm %q; algorithm names are case-sensitive: did you mean %s?", name, canonicalAlgName(name))
	}
	return 0, fmt.Errorf("jwt: unknown algorithm %q (supported: %s)", name, strings.Join(algNames(^algSet(0)), ", "))
}

func canonicalAlgName(name string) string {
	for _, a := range algs {
		if strings.EqualFold(a.name, name) {
			return a.name
		}
	}
	return name
}

// algNames lists the names in s, in table order.
func algNames(s algSet) []string {
	var names []string
	for i, a := range algs {
		if s&(1<<i) != 0 {
			names = append(names, a.name)
		}
	}
	return names
}

// fitting returns the algorithms of s that key can verify.
func fitting(s algSet, key any) algSet {
	var out algSet
	for i, a := range algs {
		if s&(1<<i) != 0 && a.fits(key) {
			out |= 1 << i
		}
	}
	return out
}

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// verifyKey is one public key of a key set, ready for verification.
type verifyKey struct {
	kid string
	// key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	key any
	// algs is what this key may verify: the configured allow-list, cut to
	// the key's type and curve and to a JWK's own "alg" if it has one.
	algs algSet
	// id identifies the key material and kid, to tell a key set that lost
	// a key from one that only gained some.
	id [32]byte
}

// keySet is an immutable set of verification keys.
type keySet struct {
	byKID map[string][]*verifyKey
	// unkeyed are the keys without a kid: candidates for tokens without a
	// kid or with a kid the set does not know.
	unkeyed []*verifyKey
	all     []*verifyKey
}

func newKeySet(keys []*verifyKey) *keySet {
	s := &keySet{byKID: make(map[string][]*verifyKey), all: keys}
	for _, k := range keys {
		if k.kid == "" {
			s.unkeyed = append(s.unkeyed, k)
		} else {
			s.byKID[k.kid] = append(s.byKID[k.kid], k)
		}
	}
	return s
}

// lostKeysFrom reports whether s lacks a key that old had, which is when
// tokens verified with old's keys must be verified again.
func (s *keySet) lostKeysFrom(old *keySet) bool {
	if old == nil {
		return false
	}
	have := make(map[[32]byte]bool, len(s.all))
	for _, k := range s.all {
		have[k.id] = true
	}
	for _, k := range old.all {
		if !have[k.id] {
			return true
		}
	}
	return false
}

// newVerifyKey checks a public key and the algorithms it may verify.
// allowed is the configured allow-list; jwkAlg is a JWK's "alg" or "".
func newVerifyKey(kid string, key any, allowed algSet, jwkAlg string) (*verifyKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return nil, fmt.Errorf("jwt: RSA key of %d bits is too small (at least %d)", n, minRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("jwt: unsupported key type %T", key)
	}
	if jwkAlg != "" {
		a, _ := algByName(jwkAlg)
		if a == 0 {
			return nil, fmt.Errorf("jwt: key is for algorithm %q, which is not supported", jwkAlg)
		}
		allowed &= a
	}
	usable := fitting(allowed, key)
	if usable == 0 {
		return nil, fmt.Errorf("jwt: a %s key cannot verify any allowed algorithm (%s)",
			keyTypeName(key), strings.Join(algNames(allowed), ", "))
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("jwt: encoding key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(kid))
	h.Write([]byte{0})
	h.Write(der)
	vk := &verifyKey{kid: kid, key: key, algs: usable}
	h.Sum(vk.id[:0])
	return vk, nil
}

func keyTypeName(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
}

// maxJWKSKeys bounds how many keys a JWK Set may hold: a real issuer
// publishes a handful.
const maxJWKSKeys = 100

// parseJWKS parses a JWK Set. Keys that are not for signatures, not usable
// with the allowed algorithms, private, or of a type we do not know are
// skipped, each with a note in skipped, so that one exotic key cannot take
// the whole set down. A set with no usable key is an error.
func parseJWKS(data []byte, allowed algSet) (keys []*verifyKey, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("jwt: parsing JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`jwt: parsing JWK Set: no "keys" member`)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, nil, fmt.Errorf("jwt: JWK Set holds %d keys, more than %d", len(doc.Keys), maxJWKSKeys)
	}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw, allowed, "")
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if k != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("jwt: JWK Set has no usable key (%s)", strings.Join(skipped, "; "))
	}
	return keys, skipped, nil
}

// parseJWK parses one JWK. It returns nil, nil for a key that is not meant
// for verifying signatures (use "enc", key_ops without "verify").
// kidOverride, when not empty, replaces the JWK's kid.
func parseJWK(raw []byte, allowed algSet, kidOverride string) (*verifyKey, error) {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("jwt: parsing JWK: %w", err)
	}
	kid, _ := key.KeyID()
	if kidOverride != "" {
		kid = kidOverride
	}
	if use, ok := key.KeyUsage(); ok && use != "sig" {
		return nil, nil
	}
	if ops, ok := key.KeyOps(); ok {
		verify := false
		for _, op := range ops {
			verify = verify || op == jwk.KeyOpVerify
		}
		if !verify {
			return nil, nil
		}
	}
	if private, err := jwk.IsPrivateKey(key); err == nil && private {
		return nil, fmt.Errorf("jwt: JWK %q holds private key material; publish only public keys", kid)
	}
	var pub any
	if err := jwk.Export(key, &pub); err != nil {
		return nil, fmt.Errorf("jwt: JWK %q: %w", kid, err)
	}
	// jwk.Export returns pointers for some types and values for others.
	if p, ok := pub.(*ed25519.PublicKey); ok {
		pub = *p
	}
	if p, ok := pub.(rsa.PublicKey); ok {
		pub = &p
	}
	if p, ok := pub.(ecdsa.PublicKey); ok {
		pub = &p
	}
	var jwkAlg string
	if a, ok := key.Algorithm(); ok {
		jwkAlg = a.String()
	}
	vk, err := newVerifyKey(kid, pub, allowed, jwkAlg)
	if err != nil {
		return nil, fmt.Errorf("JWK %q: %w", kid, err)
	}
	return vk, nil
}

// loadKeyFile reads a local key file: PEM, JWK or JWK Set. Relative paths
// are taken from dir.
func loadKeyFile(dir string, kc KeyConfig, allowed algSet) ([]*verifyKey, error) {
	p := kc.File
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("jwt: reading key file: %w", err)
	}
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		var probe struct {
			Keys json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("jwt: %s: not a JWK: %w", kc.File, err)
		}
		if probe.Keys != nil {
			keys, skipped, err := parseJWKS(data, allowed)
			if err != nil {
				return nil, err
			}
			if len(skipped) > 0 {
				// A local file is under the operator's control: a key
				// that cannot be used is a mistake, not noise.
				return nil, fmt.Errorf("jwt: %s", strings.Join(skipped, "; "))
			}
			if kc.KID != "" {
				if len(keys) > 1 {
					return nil, errors.New("jwt: kid can only be set for a file holding one key")
				}
				return reKey(keys[0], kc.KID, allowed)
			}
			return keys, nil
		}
		k, err := parseJWK(data, allowed, kc.KID)
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, errors.New(`jwt: the JWK is not a signature verification key (see "use" and "key_ops")`)
		}
		return []*verifyKey{k}, nil
	}
	return parsePEMKeys(data, kc.KID, allowed)
}

func reKey(k *verifyKey, kid string, allowed algSet) ([]*verifyKey, error) {
	nk, err := newVerifyKey(kid, k.key, k.algs&allowed, "")
	if err != nil {
		return nil, err
	}
	return []*verifyKey{nk}, nil
}

// parsePEMKeys parses PUBLIC KEY, RSA PUBLIC KEY and CERTIFICATE blocks.
// Private keys are refused: the gateway only verifies.
func parsePEMKeys(data []byte, kid string, allowed algSet) ([]*verifyKey, error) {
	var keys []*verifyKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub any
		var err error
		switch {
		case b.Type == "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case b.Type == "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case b.Type == "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, fmt.Errorf("jwt: PEM block %q is a private key; give the public key", b.Type)
		default:
			return nil, fmt.Errorf("jwt: unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("jwt: parsing PEM block %q: %w", b.Type, err)
		}
		k, err := newVerifyKey(kid, pub, allowed, "")
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwt: no PEM block and not JSON: want a PEM public key or certificate, a JWK or a JWK Set")
	}
	if kid != "" && len(keys) > 1 {
		return nil, errors.New("jwt: kid can only be set for a file holding one key")
	}
	return keys, nil
}

// popcount is the number of algorithms in s.
func (s algSet) popcount() int { return bits.OnesCount16(uint16(s)) }
