// Package dpop verifies DPoP proofs (RFC 9449): the JWT a client signs with
// its own key for each request, proving that it holds the key an access
// token is bound to.
//
// A Verifier checks one proof against the request it came with: the
// header's form, typ, alg and embedded public key, the signature under that
// key, htm and htu against the request, iat within a window, ath against
// the access token, the key's thumbprint against the token's cnf.jkt, and
// finally that the proof was not used before. Server-provided nonces
// (RFC 9449 §8-9) are not supported: a proof's nonce claim is ignored, and
// freshness rests on the iat window and the replay cache.
package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Code is the denial code of a bad proof (RFC 9449 §7.1).
const Code = "invalid_dpop_proof"

// Defaults of Options.
const (
	// DefaultMaxAge is how old a proof may be. RFC 9449 §11.1 leaves the
	// window to the server and asks for a short one; a minute absorbs
	// slow clients and moderate clock drift while keeping the replay
	// cache small.
	DefaultMaxAge = 60 * time.Second
	// DefaultFutureSkew is how far in the future a proof's iat may be, for
	// clients whose clocks run slightly fast.
	DefaultFutureSkew = 5 * time.Second
	// DefaultMaxProofSize bounds the DPoP header: a proof with a 4096-bit
	// RSA key is about 1.5 KB.
	DefaultMaxProofSize = 8 << 10
	// maxJTI bounds the jti: RFC 9449 asks for 96 bits of randomness, a
	// UUID or a base64url string of a few dozen characters.
	maxJTI = 256
)

// DefaultAlgorithms are the algorithms accepted when Options.Algorithms is
// empty.
var DefaultAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// Algorithms lists every algorithm a Verifier can accept: asymmetric
// signatures only (RFC 9449 §4.2 forbids MAC algorithms and none).
var Algorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// minRSABits is the smallest RSA key accepted (RFC 7518 §3.3).
const minRSABits = 2048

// Causes of refusals, for errors.Is on a Denial's Err.
var (
	ErrHeader    = errors.New("dpop: request needs exactly one well-formed DPoP header")
	ErrMalformed = errors.New("dpop: proof is not a well-formed compact JWS")
	ErrType      = errors.New(`dpop: proof typ is not "dpop+jwt"`)
	ErrAlgorithm = errors.New("dpop: proof algorithm not allowed")
	ErrKey       = errors.New("dpop: proof jwk is missing, private, or unfit for the algorithm")
	ErrCritical  = errors.New("dpop: proof has critical header parameters")
	ErrSignature = errors.New("dpop: proof signature does not verify with its jwk")
	ErrClaims    = errors.New("dpop: proof claims are malformed")
	ErrJTI       = errors.New("dpop: proof jti missing or too long")
	ErrMethod    = errors.New("dpop: proof htm does not match the request method")
	ErrURL       = errors.New("dpop: proof htu does not match the request URL")
	ErrIssuedAt  = errors.New("dpop: proof iat outside the accepted window")
	ErrATH       = errors.New("dpop: proof ath does not match the access token")
	ErrKeyBind   = errors.New("dpop: proof key does not match the token's cnf.jkt")
	ErrReplay    = errors.New("dpop: proof already used")
)

// Options configure a Verifier. The zero value gives the defaults.
type Options struct {
	// Algorithms are the accepted proof algorithms, from Algorithms.
	// Empty: DefaultAlgorithms.
	Algorithms []string
	// MaxAge is how long after its iat a proof is accepted. 0:
	// DefaultMaxAge.
	MaxAge time.Duration
	// FutureSkew is how far past now a proof's iat may be. 0:
	// DefaultFutureSkew; a negative value means none.
	FutureSkew time.Duration
	// MaxProofSize bounds the DPoP header in bytes. 0: DefaultMaxProofSize.
	MaxProofSize int
	// Now is the clock. nil: time.Now.
	Now func() time.Time
	// ReplayCache records used proofs. nil: a MemoryReplayCache of
	// DefaultReplayCacheSize entries on Now.
	ReplayCache ReplayCache
	// PublicURL returns the absolute URL the client used for r, against
	// which htu is checked (its query is ignored). nil: RequestURL, right
	// when clients reach the gateway directly. Behind a proxy, derive it
	// from the configured public origin or from X-Forwarded-Proto and
	// X-Forwarded-Host sent by a trusted proxy, never from headers any
	// client can set.
	PublicURL func(r *http.Request) string
	// Realm names the protection space in challenges. "": "gatehouse".
	Realm string
}

// Verifier verifies DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	algs       []jwa.SignatureAlgorithm
	algsAttr   string
	maxAge     time.Duration
	futureSkew time.Duration
	maxSize    int
	now        func() time.Time
	replay     ReplayCache
	publicURL  func(*http.Request) string
	realm      string

	mu      sync.RWMutex
	headers map[string]headerKey // see header
}

// CheckAlgorithm returns an error unless name is one of Algorithms.
func CheckAlgorithm(name string) error {
	if !slices.Contains(Algorithms, name) {
		return fmt.Errorf("dpop: algorithm %q not supported for proofs (supported: %s)", name, strings.Join(Algorithms, ", "))
	}
	return nil
}

// NewVerifier returns a Verifier with opts. An algorithm outside Algorithms
// is a programming error (config validates with CheckAlgorithm first) and
// panics.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{
		maxAge:     opts.MaxAge,
		futureSkew: opts.FutureSkew,
		maxSize:    opts.MaxProofSize,
		now:        opts.Now,
		replay:     opts.ReplayCache,
		publicURL:  opts.PublicURL,
		realm:      opts.Realm,
		headers:    make(map[string]headerKey),
	}
	names := opts.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	for _, n := range names {
		if err := CheckAlgorithm(n); err != nil {
			panic(err)
		}
		a, ok := jwa.LookupSignatureAlgorithm(n)
		if !ok || a.IsSymmetric() {
			panic("dpop: algorithm " + n + " unknown to jwx")
		}
		v.algs = append(v.algs, a)
	}
	v.algsAttr = strings.Join(names, " ")
	if v.maxAge <= 0 {
		v.maxAge = DefaultMaxAge
	}
	switch {
	case v.futureSkew == 0:
		v.futureSkew = DefaultFutureSkew
	case v.futureSkew < 0:
		v.futureSkew = 0
	}
	if v.maxSize <= 0 {
		v.maxSize = DefaultMaxProofSize
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.replay == nil {
		v.replay = NewMemoryReplayCache(DefaultReplayCacheSize, v.now)
	}
	if v.publicURL == nil {
		v.publicURL = RequestURL
	}
	if v.realm == "" {
		v.realm = "gatehouse"
	}
	return v
}

// Challenge returns a DPoP WWW-Authenticate challenge (RFC 9449 §7.1):
// `DPoP realm="…"`, then attrs (name, value pairs; empty values left out),
// then the accepted algorithms as algs.
func (v *Verifier) Challenge(attrs ...string) string {
	return authn.Challenge("DPoP", v.realm, append(attrs, "algs", v.algsAttr)...)
}

// claims are the proof's claims (RFC 9449 §4.2).
type claims struct {
	JTI string   `json:"jti"`
	HTM string   `json:"htm"`
	HTU string   `json:"htu"`
	IAT *float64 `json:"iat"`
	ATH string   `json:"ath"`
}

// Verify checks the DPoP proof of r and returns the thumbprint (RFC 7638,
// SHA-256, base64url) of the key that signed it.
//
// accessToken, when not empty, is the token the request presents; the
// proof must carry its hash as ath (RFC 9449 §4.3 check 11). wantJKT, when
// not empty, is the token's cnf.jkt; the proof's key must have that
// thumbprint (§7.1). With both empty Verify checks a proof on its own, as
// at a token endpoint.
//
// A bad proof is a *policy.Denial, 401 invalid_dpop_proof with a DPoP
// challenge, whose Err wraps one of the Err* causes. The proof is recorded
// in the replay cache only once everything else checked out, so that a
// forged proof cannot use up the jti of a genuine one. A replay cache
// failure is returned as an internal error: the request fails closed.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, accessToken, wantJKT string) (string, error) {
	vals := r.Header.Values("DPoP")
	if len(vals) != 1 {
		return "", v.refuse(ErrHeader, fmt.Sprintf("%d DPoP headers", len(vals)))
	}
	proof := vals[0]
	if len(proof) > v.maxSize {
		return "", v.refuse(ErrHeader, fmt.Sprintf("%d bytes, limit %d", len(proof), v.maxSize))
	}
	if !compactJWS(proof) {
		// Also keeps jws.Parse from taking the JSON serialisation, and
		// catches two proofs folded into one header by a proxy.
		return "", v.refuse(ErrMalformed, "not three base64url parts")
	}
	hk, err := v.header(proof)
	if err != nil {
		return "", err
	}
	jkt := hk.jkt
	if wantJKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(wantJKT)) != 1 {
		return "", v.refuse(ErrKeyBind, "")
	}
	payload, err := jws.VerifyCompactFast(hk.key, []byte(proof), hk.alg)
	if err != nil {
		return "", v.refuse(ErrSignature, err.Error())
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", v.refuse(ErrClaims, err.Error())
	}
	if c.JTI == "" || len(c.JTI) > maxJTI {
		return "", v.refuse(ErrJTI, "")
	}
	if c.HTM != r.Method {
		return "", v.refuse(ErrMethod, fmt.Sprintf("htm %q, request %q", c.HTM, r.Method))
	}
	pub := v.publicURL(r)
	want, ok := normalizeURL(pub)
	if !ok {
		// The gateway's own view of the URL is broken: a config problem
		// (PublicURL), not the client's.
		return "", fmt.Errorf("dpop: request URL %q is not an absolute http(s) URL", pub)
	}
	if got, ok := normalizeURL(c.HTU); !ok || got != want {
		return "", v.refuse(ErrURL, fmt.Sprintf("htu %q, request %q", c.HTU, want))
	}
	if c.IAT == nil || math.IsNaN(*c.IAT) || math.IsInf(*c.IAT, 0) {
		return "", v.refuse(ErrIssuedAt, "no numeric iat")
	}
	now := v.now()
	iat := unixTime(*c.IAT)
	if iat.Before(now.Add(-v.maxAge)) || iat.After(now.Add(v.futureSkew)) {
		return "", v.refuse(ErrIssuedAt, fmt.Sprintf("iat %s, now %s", iat.Format(time.RFC3339), now.Format(time.RFC3339)))
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		ath := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(ath)) != 1 {
			return "", v.refuse(ErrATH, "")
		}
	}
	// jkt and jti together: a jti is only unique per client key.
	seen, err := v.replay.Seen(ctx, jkt+"."+c.JTI, iat.Add(v.maxAge))
	if err != nil {
		return "", fmt.Errorf("dpop: replay cache: %w", err)
	}
	if seen {
		return "", v.refuse(ErrReplay, "")
	}
	return jkt, nil
}

// headerKey is what a proof's protected header yields once checked.
type headerKey struct {
	alg jwa.SignatureAlgorithm
	key any // the raw public key
	jkt string
}

// maxHeaderCache bounds the cache of checked headers.
const maxHeaderCache = 4096

// header checks the protected header of proof (typ, alg, crit, jwk) and
// returns its algorithm, key and thumbprint. A client sends the same
// header, byte for byte, with every proof it signs with one key, so the
// result is cached by the header's encoded form: parsing the header and
// its JWK costs about as much as an RSA signature check.
func (v *Verifier) header(proof string) (headerKey, error) {
	enc, _, _ := strings.Cut(proof, ".")
	v.mu.RLock()
	hk, ok := v.headers[enc]
	v.mu.RUnlock()
	if ok {
		return hk, nil
	}
	msg, err := jws.ParseString(proof)
	if err != nil {
		return hk, v.refuse(ErrMalformed, err.Error())
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return hk, v.refuse(ErrMalformed, "not exactly one signature")
	}
	hdr := sigs[0].ProtectedHeaders()
	if typ, _ := hdr.Type(); !strings.EqualFold(typ, "dpop+jwt") && !strings.EqualFold(typ, "application/dpop+jwt") {
		return hk, v.refuse(ErrType, fmt.Sprintf("typ %q", typ))
	}
	alg, ok := hdr.Algorithm()
	if !ok || !slices.Contains(v.algs, alg) {
		return hk, v.refuse(ErrAlgorithm, fmt.Sprintf("alg %q", alg.String()))
	}
	if _, ok := hdr.Critical(); ok {
		// No extension is understood, so any crit header must fail
		// (RFC 7515 §4.1.11).
		return hk, v.refuse(ErrCritical, "")
	}
	key, ok := hdr.JWK()
	if !ok {
		return hk, v.refuse(ErrKey, "no jwk header")
	}
	raw, err := publicKey(key, alg)
	if err != nil {
		return hk, v.refuse(ErrKey, err.Error())
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return hk, v.refuse(ErrKey, "thumbprint: "+err.Error())
	}
	hk = headerKey{alg: alg, key: raw, jkt: base64.RawURLEncoding.EncodeToString(tp)}
	v.mu.Lock()
	if len(v.headers) >= maxHeaderCache {
		// Crude but bounded: a flood of fresh keys costs re-parsing,
		// never memory.
		clear(v.headers)
	}
	v.headers[enc] = hk
	v.mu.Unlock()
	return hk, nil
}

// refuse builds the Denial of a bad proof. The public description is the
// cause's text without the package prefix; detail goes to the log only.
func (v *Verifier) refuse(cause error, detail string) *policy.Denial {
	desc := strings.TrimPrefix(cause.Error(), "dpop: ")
	err := cause
	if detail != "" {
		err = fmt.Errorf("%w: %s", cause, detail)
	}
	return &policy.Denial{
		Status: http.StatusUnauthorized,
		Code:   Code,
		Detail: desc,
		Header: http.Header{"Www-Authenticate": {v.Challenge("error", Code, "error_description", desc)}},
		Err:    err,
	}
}

// compactJWS reports whether s has the shape of a compact JWS: three
// non-empty base64url parts (a signature is required: alg none has none).
func compactJWS(s string) bool {
	dots, run := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if run == 0 {
				return false
			}
			dots++
			run = 0
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_':
			run++
		default:
			return false
		}
	}
	return dots == 2 && run > 0
}

// publicKey returns the raw public key of k after checking that it is an
// asymmetric public key fit for alg: an EC key on alg's curve, an Ed25519
// key for EdDSA, an RSA key of at least 2048 bits for RS* and PS*. A key
// with private members is refused: a client that sends its private key
// has leaked it, and whoever sees the header can sign with it.
func publicKey(k jwk.Key, alg jwa.SignatureAlgorithm) (any, error) {
	asym, ok := k.(jwk.AsymmetricKey)
	if !ok {
		return nil, fmt.Errorf("key type %s is not asymmetric", k.KeyType())
	}
	if asym.IsPrivate() {
		return nil, errors.New("jwk holds private key material")
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, err
	}
	switch pk := raw.(type) {
	case *ecdsa.PublicKey:
		var want elliptic.Curve
		switch alg {
		case jwa.ES256():
			want = elliptic.P256()
		case jwa.ES384():
			want = elliptic.P384()
		case jwa.ES512():
			want = elliptic.P521()
		}
		if want == nil || pk.Curve != want {
			return nil, fmt.Errorf("EC key on %s unfit for %s", pk.Curve.Params().Name, alg)
		}
	case ed25519.PublicKey:
		if alg != jwa.EdDSA() {
			return nil, fmt.Errorf("Ed25519 key unfit for %s", alg)
		}
	case *rsa.PublicKey:
		switch alg {
		case jwa.RS256(), jwa.RS384(), jwa.RS512(), jwa.PS256(), jwa.PS384(), jwa.PS512():
		default:
			return nil, fmt.Errorf("RSA key unfit for %s", alg)
		}
		if pk.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, want at least %d", pk.N.BitLen(), minRSABits)
		}
	default:
		return nil, fmt.Errorf("key type %T not supported", raw)
	}
	return raw, nil
}

// unixTime converts a NumericDate, fractions included.
func unixTime(secs float64) time.Time {
	// Clamp so that absurd values compare as far past or future instead
	// of overflowing.
	const limit = 1 << 40
	secs = max(min(secs, limit), -limit)
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9))
}
