package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync/atomic"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/gatehouse/gatehouse/internal/rsaverify"
)

// algSet is a set of the supported JWS algorithms, one bit each.
type algSet uint16

type algFamily uint8

const (
	famRSA algFamily = iota
	famPSS
	famECDSA
	famEd25519
)

// algInfo describes one supported algorithm. Verification is done here
// with the standard library, on purpose: the token's header decides
// nothing but which of our keys to try, and the key's type and the
// algorithm must agree before any check runs, so an RSA public key can
// never be mistaken for an HMAC secret.
type algInfo struct {
	name   string
	family algFamily
	hash   crypto.Hash
	curve  elliptic.Curve // ECDSA only
}

// algs is indexed by bit position in algSet, in the order of the docs.
// HMAC and "none" are absent: no configuration can allow them.
var algs = []algInfo{
	{"RS256", famRSA, crypto.SHA256, nil},
	{"RS384", famRSA, crypto.SHA384, nil},
	{"RS512", famRSA, crypto.SHA512, nil},
	{"PS256", famPSS, crypto.SHA256, nil},
	{"PS384", famPSS, crypto.SHA384, nil},
	{"PS512", famPSS, crypto.SHA512, nil},
	{"ES256", famECDSA, crypto.SHA256, elliptic.P256()},
	{"ES384", famECDSA, crypto.SHA384, elliptic.P384()},
	{"ES512", famECDSA, crypto.SHA512, elliptic.P521()},
	{"EdDSA", famEd25519, 0, nil},
	// RFC 9864's fully-specified name for EdDSA with Ed25519.
	{"Ed25519", famEd25519, 0, nil},
}

// fits reports whether key can verify a: the right family and, for ECDSA,
// the right curve.
func (a *algInfo) fits(key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return a.family == famRSA || a.family == famPSS
	case *ecdsa.PublicKey:
		return a.family == famECDSA && k.Curve == a.curve
	case ed25519.PublicKey:
		return a.family == famEd25519
	}
	return false
}

// rsaVerifiers keeps the prepared moduli of the RSA keys tokens are verified
// with: an issuer signs token after token with one key.
var rsaVerifiers = rsaverify.NewCache(256)

// verify checks sig over input with key, which must fit a.
func (a *algInfo) verify(key any, input string, sig []byte) bool {
	if a.family == famEd25519 {
		k, ok := key.(ed25519.PublicKey)
		return ok && ed25519.Verify(k, bytesOf(input), sig)
	}
	var sum [64]byte
	var digest []byte
	switch a.hash {
	case crypto.SHA256:
		s := sha256.Sum256(bytesOf(input))
		digest = append(sum[:0], s[:]...)
	case crypto.SHA384:
		s := sha512.Sum384(bytesOf(input))
		digest = append(sum[:0], s[:]...)
	default:
		s := sha512.Sum512(bytesOf(input))
		digest = append(sum[:0], s[:]...)
	}
	switch a.family {
	case famRSA:
		k, ok := key.(*rsa.PublicKey)
		return ok && rsaVerifiers.Verify(k, a.hash, digest, sig) == nil
	case famPSS:
		k, ok := key.(*rsa.PublicKey)
		// RFC 7518 §3.5: the salt is as long as the hash.
		return ok && rsa.VerifyPSS(k, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.hash}) == nil
	case famECDSA:
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k.Curve != a.curve {
			return false
		}
		// RFC 7518 §3.4: R and S as fixed-size big-endian octets, not DER.
		n := (a.curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
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
		return 0, errors.New(`"none" is never allowed: it means an unsigned token`)
	case strings.HasPrefix(up, "HS"):
		return 0, fmt.Errorf("%s is refused: HMAC needs a shared secret, and next to public keys it invites key confusion; use an asymmetric algorithm", name)
	}
	if c := canonicalAlgName(name); c != name {
		return 0, fmt.Errorf("unknown algorithm %q; algorithm names are case-sensitive: did you mean %s?", name, c)
	}
	return 0, fmt.Errorf("unknown algorithm %q (supported: %s)", name, strings.Join(algNames(^algSet(0)), ", "))
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
	for i := range algs {
		if s&(1<<i) != 0 && algs[i].fits(key) {
			out |= 1 << i
		}
	}
	return out
}

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// rawKey is one public key of a key set as published, before any route's
// algorithm allow-list is applied. A remote key set shared by several
// authenticators holds rawKeys; each authenticator derives its own
// verifyKeys from them.
type rawKey struct {
	kid string
	// key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	key any
	// algs is what the key can verify at all: its type and curve, cut to a
	// JWK's own "alg" when it has one.
	algs algSet
	// id identifies the key material, kid and usable algorithms, to tell
	// a key set that lost a key (or a key an algorithm) from one that only
	// gained some.
	id [32]byte
	// dropped is set when a refresh of the key set no longer has this key:
	// cached tokens verified with it are then verified again (and fail).
	dropped atomic.Bool
}

// rawSet is an immutable list of raw keys; a new one is made only when a
// refresh changes the keys.
type rawSet struct {
	keys []*rawKey
}

// newRawKey checks a public key. jwkAlg is a JWK's "alg" or "".
func newRawKey(kid string, key any, jwkAlg string) (*rawKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too small (at least %d)", n, minRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	allowed := ^algSet(0)
	if jwkAlg != "" {
		a, _ := algByName(jwkAlg)
		if a == 0 {
			return nil, fmt.Errorf("key is for algorithm %q, which is not supported", jwkAlg)
		}
		allowed = a
	}
	usable := fitting(allowed, key)
	if usable == 0 {
		return nil, fmt.Errorf("a %s key cannot verify %s", keyTypeName(key), jwkAlg)
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(kid))
	h.Write([]byte{0})
	h.Write(der)
	// The algorithms too: an issuer that narrows a key's "alg" withdraws
	// it for the others, and tokens verified under them must go with the
	// refresh, as for a key removed.
	h.Write([]byte{0, byte(usable >> 8), byte(usable)})
	rk := &rawKey{kid: kid, key: key, algs: usable}
	h.Sum(rk.id[:0])
	return rk, nil
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

// verifyKey is a raw key as one authenticator may use it.
type verifyKey struct {
	raw *rawKey
	// algs is the configured allow-list cut to what the key can verify.
	algs algSet
}

// keySet is one authenticator's view of a raw key set. Immutable.
type keySet struct {
	raw   *rawSet
	byKID map[string][]*verifyKey
	all   []*verifyKey
}

// derive returns the keys of raw usable with the allowed algorithms.
func derive(raw *rawSet, allowed algSet) *keySet {
	s := &keySet{raw: raw, byKID: make(map[string][]*verifyKey)}
	for _, rk := range raw.keys {
		usable := rk.algs & allowed
		if usable == 0 {
			continue
		}
		vk := &verifyKey{raw: rk, algs: usable}
		s.all = append(s.all, vk)
		if rk.kid != "" {
			s.byKID[rk.kid] = append(s.byKID[rk.kid], vk)
		}
	}
	return s
}

// maxKeylessTries bounds the keys tried for a token without a kid, so that
// such a token costs a few signature checks, not one per published key.
const maxKeylessTries = 4

// candidates returns the keys to try for a token naming kid ("" for none)
// and signed with alg, and whether the set knows kid at all (a known kid
// whose keys do not fit alg is a bad token, not a reason to refetch).
func (s *keySet) candidates(kid string, alg algSet, buf []*verifyKey) ([]*verifyKey, bool) {
	out := buf[:0]
	if kid != "" {
		ks, known := s.byKID[kid]
		for _, k := range ks {
			if k.algs&alg != 0 {
				out = append(out, k)
			}
		}
		return out, known
	}
	for _, k := range s.all {
		if k.algs&alg != 0 && len(out) < maxKeylessTries {
			out = append(out, k)
		}
	}
	return out, true
}

// sameKeys reports whether a and b hold the same keys (kid and material),
// in any order.
func sameKeys(a, b []*rawKey) bool {
	if len(a) != len(b) {
		return false
	}
	have := make(map[[32]byte]bool, len(a))
	for _, k := range a {
		have[k.id] = true
	}
	for _, k := range b {
		if !have[k.id] {
			return false
		}
	}
	return true
}

// maxJWKSKeys bounds how many keys a JWK Set may hold: a real issuer
// publishes a handful.
const maxJWKSKeys = 100

// parseJWKS parses a JWK Set. Keys that are not for signatures are left
// out; keys that are private, too weak or of a type we do not know are
// skipped, each with a note in skipped, so that one exotic key cannot take
// the whole set down. A set with no usable key is an error.
func parseJWKS(data []byte) (keys []*rawKey, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("parsing JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`parsing JWK Set: no "keys" member`)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, nil, fmt.Errorf("JWK Set holds %d keys, more than %d", len(doc.Keys), maxJWKSKeys)
	}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw, "")
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if k != nil {
			keys = append(keys, k)
		}
	}
	switch {
	case len(keys) == 0 && len(skipped) == 0:
		return nil, nil, errNoSignatureKeys
	case len(keys) == 0:
		return nil, skipped, fmt.Errorf("JWK Set has no usable signature key (%s)", strings.Join(skipped, "; "))
	}
	return keys, skipped, nil
}

// errNoSignatureKeys is parseJWKS's error for a well-formed JWK Set that
// holds no signature key at all: empty, or only keys for encryption. From
// an issuer that is its word that it signs with nothing; a set whose keys
// we refuse (private, symmetric, weak, unparseable) is another error.
var errNoSignatureKeys = errors.New("JWK Set holds no signature key")

// parseJWK parses one JWK. It returns nil, nil for a key that is not meant
// for verifying signatures (use "enc", key_ops without "verify").
// kidOverride, when not empty, replaces the JWK's kid.
func parseJWK(raw []byte, kidOverride string) (*rawKey, error) {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing JWK: %w", err)
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
	private, err := jwk.IsPrivateKey(key)
	if err != nil {
		// Symmetric ("oct") keys land here: never usable, whatever the
		// token says.
		return nil, fmt.Errorf("JWK %q is not an asymmetric key", kid)
	}
	if private {
		return nil, fmt.Errorf("JWK %q holds private key material; publish only public keys", kid)
	}
	var pub any
	if err := jwk.Export(key, &pub); err != nil {
		return nil, fmt.Errorf("JWK %q: %w", kid, err)
	}
	// jwk.Export returns pointers for some types and values for others.
	switch p := pub.(type) {
	case *ed25519.PublicKey:
		pub = *p
	case rsa.PublicKey:
		pub = &p
	case ecdsa.PublicKey:
		pub = &p
	}
	var jwkAlg string
	if a, ok := key.Algorithm(); ok {
		jwkAlg = a.String()
	}
	rk, err := newRawKey(kid, pub, jwkAlg)
	if err != nil {
		return nil, fmt.Errorf("JWK %q: %w", kid, err)
	}
	return rk, nil
}

// loadKeyFile reads the local key file at path (resolved by the caller;
// kc.File as written): PEM, JWK or JWK Set. A local file is under the operator's control, so a key
// in it that cannot be used is an error, not noise.
func loadKeyFile(path string, kc KeyConfig) ([]*rawKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		var probe struct {
			Keys json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("not a JWK: %w", err)
		}
		if probe.Keys != nil {
			keys, skipped, err := parseJWKS(data)
			if err != nil {
				return nil, err
			}
			if len(skipped) > 0 {
				return nil, errors.New(strings.Join(skipped, "; "))
			}
			if kc.KID != "" {
				if len(keys) > 1 {
					return nil, errors.New("kid can only be set for a file holding one key")
				}
				k, err := newRawKey(kc.KID, keys[0].key, singleAlg(keys[0].algs))
				if err != nil {
					return nil, err
				}
				keys[0] = k
			}
			return keys, nil
		}
		k, err := parseJWK(data, kc.KID)
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, errors.New(`the JWK is not a signature verification key (see "use" and "key_ops")`)
		}
		return []*rawKey{k}, nil
	}
	return parsePEMKeys(data, kc.KID)
}

// singleAlg returns the name of the one algorithm in s (a key bound to an
// alg by its JWK), or "" when s holds several.
func singleAlg(s algSet) string {
	if names := algNames(s); len(names) == 1 {
		return names[0]
	}
	return ""
}

// parsePEMKeys parses PUBLIC KEY, RSA PUBLIC KEY and CERTIFICATE blocks.
// Private keys are refused: the gateway only verifies.
func parsePEMKeys(data []byte, kid string) ([]*rawKey, error) {
	var keys []*rawKey
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
			return nil, fmt.Errorf("PEM block %q is a private key; give the public key", b.Type)
		default:
			return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parsing PEM block %q: %w", b.Type, err)
		}
		k, err := newRawKey(kid, pub, "")
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM block and not JSON: want a PEM public key or certificate, a JWK or a JWK Set")
	}
	if kid != "" && len(keys) > 1 {
		return nil, errors.New("kid can only be set for a file holding one key")
	}
	return keys, nil
}
