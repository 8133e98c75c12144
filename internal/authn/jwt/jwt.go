// Package jwt is the `jwt` authenticator: a bearer token that is a signed
// JWT (RFC 7519, RFC 9068 access tokens) is verified locally with the
// issuer's public keys, from a JWKS URL, OIDC discovery or local files.
//
// Keys never come from the token: its jku, x5u, jwk and x5c headers are
// ignored, and there is no option to honour them (a token that brings its
// own key proves nothing). The token's alg must be in the configured
// allow-list and fit the key's type; "none" and HMAC can never be allowed.
//
// Remote key sets are fetched in the background from load on, refreshed
// at an interval (the bound on a withdrawn key's life), fetched again
// (rate limited) for a token naming an unknown kid or at once on an
// operator's request (RefreshKeySets), dropped when not refreshed for
// jwks_max_stale, and shared between all routes and reloads naming the
// same source (through policy.Env.Pool). A verified token is cached, by
// its SHA-256, until its exp or until its key leaves the set, so
// repeated tokens cost a map lookup.
//
// A token that is not a JWT of the configured issuer (an opaque token, a
// JWE, another issuer's JWT) is declined (authn.Declined), so that
// another authenticator of the route may take it; see verify.
package jwt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/bound"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// Unit is the `jwt` authenticator type.
var Unit = authn.Unit{Name: "jwt", New: func(cfg *config.Node, env *authn.Env) (authn.Authenticator, error) {
	return New(cfg, env)
}}

// Authenticator verifies JWT access tokens. Safe for concurrent use; Close
// releases its key source.
type Authenticator struct {
	s       *settings
	realm   string
	now     func() time.Time
	log     *slog.Logger
	src     keySource
	release func() error
	revs    *revocation.List
	cache   *cache // nil: disabled
	bound   *bound.Checker
	// derived is this authenticator's view of the source's current raw
	// set, rebuilt when the source installs a new one.
	derived atomic.Pointer[keySet]
	// verifications counts signature checks, for tests and benchmarks.
	verifications atomic.Int64
}

var (
	_ authn.Authenticator = (*Authenticator)(nil)
	_ policy.Closer       = (*Authenticator)(nil)
)

// New builds a jwt authenticator from its config. Local key files are read
// now (a bad one fails the load). A remote key set is fetched in the
// background: New does not wait for it, so a key server that is down at
// load does not stop the gateway; requests wait for the first fetch (at
// most fetch_timeout) and then fail closed with 503 jwks_unavailable.
// Authenticators with the same remote settings share one key set and one
// refresher through env.Pool.
func New(cfg *config.Node, env *authn.Env) (*Authenticator, error) {
	s, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{s: s, realm: env.Realm}
	penv := env.Policy()
	a.now, a.log, a.revs = penv.Clock(), penv.Log(), penv.Revocations
	if s.localKeys != nil {
		a.src = staticSource{set: &rawSet{keys: s.localKeys}}
		a.release = func() error { return nil }
	} else {
		rs := remoteSettings{
			jwksURL: s.jwksURL, settings: s, refresh: s.refresh, maxStale: s.maxStale, refetch: s.refetch,
			timeout: s.fetchTimeout, allowHTTP: s.allowHTTP,
		}
		if s.discovery {
			rs.issuer = s.issuer
		}
		r, release, err := usagepool.Acquire(penv.Pool, rs.poolKey(), func() (*remote, error) {
			return newRemote(rs, a.now, a.log, penv.Telemetry()), nil
		})
		if err != nil {
			return nil, cfg.Errorf("", "%v", err)
		}
		a.src, a.release = r, release
	}
	if s.cacheSize > 0 {
		a.cache = newCache(s.cacheSize)
	}
	a.bound = bound.New(bound.Options{Realm: a.realm, Now: a.now, PublicOrigin: s.dpopOrigin, TrustedProxies: penv.TrustedProxies, Ignore: s.ignoreBinding, Store: penv.Store})
	return a, nil
}

// Challenge returns the Bearer challenge of the realm.
func (a *Authenticator) Challenge() string { return authn.Challenge("Bearer", a.realm) }

// Close releases the key source: a shared one is closed when its last user
// lets go.
func (a *Authenticator) Close() error { return a.release() }

// Public reasons of refusals; generic on purpose, never the token.
const (
	descMalformed = "the token is malformed"
	descTooLarge  = "the token is too large"
	descAlg       = "the token's signature algorithm is not accepted"
	descCrit      = "the token requires an extension that is not supported"
	descTyp       = "the token is not of the accepted type"
	descKey       = "the token's signing key is not known"
	descSignature = "the token's signature is invalid"
	descExpired   = "the token has expired"
	descNotYet    = "the token is not valid yet"
	descFuture    = "the token was issued in the future"
	descTooOld    = "the token is too old"
	descIssuer    = "the token is from an issuer not accepted here"
	descAudience  = "the token is not meant for this audience"
	descRequired  = "the token lacks a required claim"
	descRevoked   = "the token has been revoked"
	descDPoP      = "the token is bound to a DPoP key and must be used with the DPoP scheme"
)

// failure is why a token was refused: the public reason and the cause.
// notMine marks a token that is not of this authenticator's kind (see
// verify): the request gets authn.Declined, and the next authenticator
// its chance.
type failure struct {
	desc    string
	cause   error
	notMine bool
}

func (f *failure) Error() string { return f.desc + ": " + f.cause.Error() }

func fail(desc string, cause error) error { return &failure{desc: desc, cause: cause} }

// notMine is the failure of a token that is not a JWT of this
// authenticator's issuer.
func notMine(desc string, cause error) error {
	return &failure{desc: desc, cause: cause, notMine: true}
}

// Authenticate verifies the request's token and returns its principal. It
// returns ErrNoCredentials without a token; a 400 invalid_request Denial
// for a malformed request (two Authorization headers, a token in more than
// one place, a token in the access_token query parameter when the query is
// not a configured source); a 401 invalid_token Denial for a token that is
// not good; a 503 jwks_unavailable Denial when no keys could be fetched
// yet; ctx's error when ctx ends first.
//
// The returned Principal is the caller's own copy, but its Scopes and
// Claims are shared with other requests bearing the same token (through
// the cache) and must not be modified.
func (a *Authenticator) Authenticate(ctx context.Context, ex *policy.Exchange) (*policy.Principal, error) {
	var (
		now    time.Time
		k      key
		hashed string // the token k is the hash of, once there is one
	)
	if a.cache != nil {
		if tok, ok := a.headerToken(ex.Request); ok && len(tok.Value) <= a.s.maxTokenBytes {
			now = a.now()
			k, hashed = key(sha256.Sum256(bytesOf(tok.Value))), tok.Value
			if v := a.cache.get(&k, now.UnixNano()); v != nil {
				return a.decide(ctx, ex.Request, v, tok)
			}
			// Not a token we know: the complete reading below refuses
			// what headerToken let through unchecked.
		}
	}
	tok, err := a.token(ex.Request)
	if err != nil {
		return nil, err
	}
	// Before any parsing: a huge token costs nothing but this comparison.
	if len(tok.Value) > a.s.maxTokenBytes {
		return nil, authn.InvalidToken(a.realm, tok.Scheme, descTooLarge,
			fmt.Errorf("jwt: token of %d bytes, more than %d", len(tok.Value), a.s.maxTokenBytes))
	}
	if now.IsZero() {
		now = a.now()
	}
	if a.cache == nil {
		return a.miss(ctx, ex, tok, nil, now)
	}
	// A token never empty here: hashed == tok.Value means that
	// headerToken read this very token and the cache does not have it,
	// so neither hashing it nor looking it up again.
	if hashed != tok.Value {
		k = key(sha256.Sum256(bytesOf(tok.Value)))
		if v := a.cache.get(&k, now.UnixNano()); v != nil {
			return a.decide(ctx, ex.Request, v, tok)
		}
	}
	return a.miss(ctx, ex, tok, &k, now)
}

// miss verifies a token not in the cache and caches the verdict under k
// (nil: no cache).
func (a *Authenticator) miss(ctx context.Context, ex *policy.Exchange, tok authn.Token, k *key, now time.Time) (*policy.Principal, error) {
	v, err := a.verify(ctx, tok.Value, now)
	if err != nil {
		var f *failure
		if errors.As(err, &f) {
			d := authn.InvalidToken(a.realm, tok.Scheme, f.desc, f)
			if f.notMine {
				return nil, authn.Decline(d)
			}
			return nil, d
		}
		return nil, err
	}
	if k != nil && v.until > now.UnixNano() {
		a.cache.put(k, v, now.UnixNano())
	}
	return a.decide(ctx, ex.Request, v, tok)
}

// decide applies what must be checked on every request, cached or not:
// revocation and the token's binding (a DPoP proof by its key, its client
// certificate; internal/authn/bound). It returns the caller's own copy of
// the principal.
func (a *Authenticator) decide(ctx context.Context, r *http.Request, v *verified, tok authn.Token) (*policy.Principal, error) {
	if v.jti != "" && a.revs.Revoked(v.jti) {
		return nil, authn.InvalidToken(a.realm, tok.Scheme, descRevoked, errors.New("jwt: jti revoked"))
	}
	if v.jkt != "" || v.x5t != "" {
		if err := a.bound.Check(ctx, r, tok, v.jkt, v.x5t); err != nil {
			return nil, err
		}
	}
	pr := *v.principal
	return &pr, nil
}

// unavailable is the refusal of a request that came while no keys exist.
func (a *Authenticator) unavailable(err error) *policy.Denial {
	return &policy.Denial{
		Status: http.StatusServiceUnavailable,
		Code:   "jwks_unavailable",
		Detail: "the token cannot be checked at the moment; try again later",
		Header: http.Header{"Retry-After": {strconv.Itoa(max(1, int(a.s.refetch/time.Second)))}},
		Err:    err,
	}
}

var b64 = base64.RawURLEncoding.Strict()

// errNoAlg is the failure of a JSON object that is no JOSE header.
var errNoAlg = errors.New(`jwt: header has no string "alg"`)

// header is the JOSE header members we read. jku, x5u, jwk and x5c are
// deliberately not among them: keys never come from the token.
type header struct {
	alg, kid, typ string
	crit          bool
}

func parseHeader(data []byte) (header, error) {
	m, err := decodeObject(data)
	if err != nil {
		return header{}, err
	}
	var h header
	var ok bool
	if h.alg, ok = m["alg"].(string); !ok {
		return header{}, errNoAlg
	}
	if v, present := m["kid"]; present {
		if h.kid, ok = v.(string); !ok {
			return header{}, errors.New(`jwt: header "kid" is not a string`)
		}
	}
	if v, present := m["typ"]; present {
		if h.typ, ok = v.(string); !ok {
			return header{}, errors.New(`jwt: header "typ" is not a string`)
		}
	}
	_, h.crit = m["crit"]
	return h, nil
}

// verifyJWS checks a signed token completely: its form, header, signature
// and claims, and returns what it established. A refusal is a *failure.
// (verify, in jwe.go, decrypts a nested JWT first.)
//
// What is "not mine" (authn.Declined) and what is refused follows the
// authn contract: a token that is not a JWT this authenticator could
// verify is not of its kind, and another authenticator of the route (an
// introspection of opaque tokens, a jwt of another issuer) may take it:
//
//   - not a compact JWS (three base64url parts): an opaque token, with
//     dots or without, a JWE (five parts), anything else;
//   - a first part that is not a JOSE header (a base64url JSON object
//     with a string "alg"), or a second part that is not a JSON object:
//     three parts that only look like a JWS;
//   - a JWT whose (not yet verified) "iss" is not this authenticator's
//     issuer: the issuer it names may be another authenticator's.
//
// Everything else, a JWT of our issuer that fails any check, is
// refused: nothing after us is asked. The unverified iss only chooses
// who verifies; it grants nothing.
func (a *Authenticator) verifyJWS(ctx context.Context, token string, now time.Time) (*verified, error) {
	dot1, dot2, ok := splitCompact(token)
	if !ok {
		return nil, notMine(descMalformed, errors.New("jwt: not a compact JWS"))
	}
	hdrJSON, err := b64.DecodeString(token[:dot1])
	if err != nil {
		return nil, notMine(descMalformed, fmt.Errorf("jwt: header: %w", err))
	}
	h, err := parseHeader(hdrJSON)
	if err != nil {
		return nil, malformed(hdrJSON, fmt.Errorf("jwt: header: %w", err))
	}
	payload, err := b64.DecodeString(token[dot1+1 : dot2])
	if err != nil {
		return nil, notMine(descMalformed, fmt.Errorf("jwt: payload: %w", err))
	}
	claims, err := decodeObject(payload)
	if err != nil {
		return nil, malformed(payload, fmt.Errorf("jwt: payload: %w", err))
	}
	if iss, _ := claims["iss"].(string); iss != a.s.issuer {
		return nil, notMine(descIssuer, fmt.Errorf("jwt: issuer %q", truncate(iss)))
	}
	bit, alg := algByName(h.alg)
	if bit == 0 || a.s.algs&bit == 0 {
		return nil, fail(descAlg, fmt.Errorf("jwt: alg %q not allowed", truncate(h.alg)))
	}
	if h.crit {
		// RFC 7515 §4.1.11: we understand no extension, so any "crit"
		// (which must not be empty) names one we must refuse.
		return nil, fail(descCrit, errors.New("jwt: crit header present"))
	}
	if a.s.typ != "" && normalizeTyp(h.typ) != a.s.typ {
		return nil, fail(descTyp, fmt.Errorf("jwt: typ %q, want %q", truncate(h.typ), a.s.typ))
	}
	sig, err := b64.DecodeString(token[dot2+1:])
	if err != nil || len(sig) == 0 {
		return nil, fail(descMalformed, errors.New("jwt: bad signature encoding"))
	}

	ks, err := a.keys(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, a.unavailable(err)
	}
	var buf [maxKeylessTries]*verifyKey
	cands, known := ks.candidates(h.kid, bit, buf[:])
	if !known {
		// Perhaps the issuer rotated its keys: fetch again (rate limited)
		// and look once more.
		a.refetched(ctx)
		ks, _ = a.keys(ctx)
		if ks != nil {
			cands, known = ks.candidates(h.kid, bit, buf[:])
		}
	}
	if len(cands) == 0 {
		if !known {
			return nil, fail(descKey, fmt.Errorf("jwt: unknown kid %q", truncate(h.kid)))
		}
		return nil, fail(descKey, fmt.Errorf("jwt: no key with kid %q fits alg %s", truncate(h.kid), alg.name))
	}
	var used *verifyKey
	for _, vk := range cands {
		a.verifications.Add(1)
		if alg.verify(vk.raw.key, token[:dot2], sig) {
			used = vk
			break
		}
	}
	if used == nil {
		return nil, fail(descSignature, errors.New("jwt: signature does not verify"))
	}
	// Only now, with the signature good, are the claims trusted.
	return a.checkClaims(claims, used.raw, now)
}

// malformed is the failure of a header or payload that decodeObject
// refused: a JSON object it refuses for what it holds (a duplicate member,
// nesting too deep) is someone's attempt at a JWT and is refused here, not
// passed on; anything else (not JSON, not an object, no alg) is not a JWT.
func malformed(data []byte, cause error) error {
	if json.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) && !errors.Is(cause, errNoAlg) {
		return fail(descMalformed, cause)
	}
	return notMine(descMalformed, cause)
}

// keys returns this authenticator's view of the source's current keys.
func (a *Authenticator) keys(ctx context.Context) (*keySet, error) {
	raw, err := a.src.current(ctx)
	if err != nil {
		return nil, err
	}
	return a.view(raw), nil
}

func (a *Authenticator) refetched(ctx context.Context) {
	if raw := a.src.refetch(ctx); raw != nil {
		a.view(raw)
	}
}

func (a *Authenticator) view(raw *rawSet) *keySet {
	if ks := a.derived.Load(); ks != nil && ks.raw == raw {
		return ks
	}
	ks := derive(raw, a.s.algs)
	if len(ks.all) == 0 {
		a.log.Warn("jwt: no key of the key set fits the allowed algorithms", "algorithms", algNames(a.s.algs))
	}
	a.derived.Store(ks)
	return ks
}

// checkClaims checks the registered claims and builds the verdict.
func (a *Authenticator) checkClaims(c map[string]any, used *rawKey, now time.Time) (*verified, error) {
	exp, hasExp, err := authn.TimeClaim(c, "exp")
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	nbf, hasNbf, err := authn.TimeClaim(c, "nbf")
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	iat, hasIat, err := authn.TimeClaim(c, "iat")
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	iss, err := authn.StringClaim(c, "iss")
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	aud, err := authn.StringsClaim(c, "aud", false)
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	leeway := a.s.leeway
	switch {
	case !hasExp:
		// RFC 9068 §2.2: exp is required; a token without one would be
		// good forever.
		return nil, fail(descRequired, errors.New(`jwt: no "exp" claim`))
	case !now.Before(exp.Add(leeway)):
		return nil, fail(descExpired, fmt.Errorf("jwt: expired at %v", exp))
	case hasNbf && now.Add(leeway).Before(nbf):
		return nil, fail(descNotYet, fmt.Errorf("jwt: not before %v", nbf))
	case hasIat && now.Add(leeway).Before(iat):
		return nil, fail(descFuture, fmt.Errorf("jwt: issued at %v, in the future", iat))
	case iss != a.s.issuer:
		return nil, fail(descIssuer, fmt.Errorf("jwt: issuer %q", truncate(iss)))
	case !slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(a.s.audiences, s) }):
		return nil, fail(descAudience, errors.New("jwt: no accepted audience"))
	}
	until := exp
	if a.s.maxAge > 0 {
		if !hasIat {
			return nil, fail(descRequired, errors.New(`jwt: no "iat" claim and max_age is set`))
		}
		old := iat.Add(a.s.maxAge)
		if !now.Before(old.Add(leeway)) {
			return nil, fail(descTooOld, fmt.Errorf("jwt: issued at %v, older than max_age", iat))
		}
		if old.Before(until) {
			until = old
		}
	}
	for _, name := range a.s.requiredClaims {
		if v, ok := c[name]; !ok || v == nil {
			return nil, fail(descRequired, fmt.Errorf("jwt: no %q claim", name))
		}
	}
	sub, err := authn.StringClaim(c, a.s.subjectClaim)
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	clientID, err := authn.StringClaim(c, "client_id")
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	if clientID == "" {
		if clientID, err = authn.StringClaim(c, "azp"); err != nil {
			return nil, fail(descMalformed, err)
		}
	}
	scopes, err := authn.StringsClaim(c, a.s.scopeClaim, true)
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	jti, err := authn.StringClaim(c, "jti")
	if err != nil {
		return nil, fail(descMalformed, err)
	}
	jkt, x5t, err := bound.Cnf(c["cnf"])
	if err != nil {
		return nil, fail(descMalformed, fmt.Errorf("%w: %w", errClaimType, err))
	}
	subject, consumer := sub, clientID
	if subject == "" {
		// A client credentials token speaks for the client itself.
		subject = clientID
	}
	if consumer == "" {
		consumer = subject
	}
	return &verified{
		principal: &policy.Principal{
			Subject:  subject,
			ClientID: clientID,
			Consumer: consumer,
			Scopes:   scopes,
			Claims:   c,
			Method:   "jwt",
		},
		until: until.UnixNano(),
		key:   used,
		jti:   jti,
		jkt:   jkt,
		x5t:   x5t,
	}, nil
}

// splitCompact returns the positions of the two dots of a compact JWS and
// whether token is one: three parts of base64url characters. A JWE (five
// parts) or anything with other characters is not.
func splitCompact(token string) (dot1, dot2 int, ok bool) {
	dot1, dot2 = -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return 0, 0, false
			}
		default:
			return 0, 0, false
		}
	}
	return dot1, dot2, dot1 > 0 && dot2 > dot1+1
}

// headerToken is the reading of the request that a cache hit needs: it
// returns what token would, and ok, when the token can only be in the one
// Authorization header (no from setting, and a query string token would
// not read), the header is there once and speaks Bearer or DPoP. It does
// not check that the value is a token68, as authn.AuthorizationToken
// does: the caller only uses a value that is in the cache, and every
// cached token passed splitCompact, whose alphabet is within token68's,
// so the check could not fail; scanning every token of every request for
// it was a tenth of the chain of bench/jwt.yaml. ok is false otherwise,
// and token does the complete reading.
func (a *Authenticator) headerToken(r *http.Request) (authn.Token, bool) {
	if !a.s.authzHeader || a.s.from != nil || queryToRead(r.URL.RawQuery, "") {
		return authn.Token{}, false
	}
	vals := r.Header["Authorization"]
	if len(vals) != 1 {
		return authn.Token{}, false
	}
	scheme, value, _, ours := authn.SplitAuthorization(vals[0])
	if !ours {
		return authn.Token{}, false
	}
	return authn.Token{Scheme: scheme, Value: value}, true
}

// queryToRead reports whether token must parse the query string q: to
// find the token in parameter queryParam ("": none), or to refuse one in
// access_token (a % escape may spell that name).
func queryToRead(q, queryParam string) bool {
	return q != "" && (queryParam != "" || strings.Contains(q, "access_token") || strings.Contains(q, "%"))
}

// token finds the request's token in the configured places.
func (a *Authenticator) token(r *http.Request) (authn.Token, error) {
	var tok authn.Token
	found := 0
	if a.s.authzHeader {
		t, err := authn.AuthorizationToken(r, a.realm)
		switch {
		case err == nil:
			tok, found = t, 1
		case !errors.Is(err, authn.ErrNoCredentials):
			return authn.Token{}, err
		}
	}
	var queryParam string
	if f := a.s.from; f != nil {
		queryParam = f.Query
		if f.Header != "" {
			switch vals := r.Header.Values(f.Header); {
			case len(vals) > 1:
				return authn.Token{}, authn.InvalidRequest(a.realm, "Bearer", "more than one "+f.Header+" header", nil)
			case len(vals) == 1 && vals[0] != "":
				v := vals[0]
				if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
					v = strings.TrimLeft(v[7:], " ")
				}
				tok, found = authn.Token{Scheme: "Bearer", Value: v}, found+1
			}
		}
		if f.Cookie != "" && r.Header.Get("Cookie") != "" {
			switch cs := r.CookiesNamed(f.Cookie); {
			case len(cs) > 1:
				return authn.Token{}, authn.InvalidRequest(a.realm, "Bearer", "more than one "+f.Cookie+" cookie", nil)
			case len(cs) == 1 && cs[0].Value != "":
				tok, found = authn.Token{Scheme: "Bearer", Value: cs[0].Value}, found+1
			}
		}
	}
	if q := r.URL.RawQuery; queryToRead(q, queryParam) {
		vals, err := url.ParseQuery(q)
		if err != nil {
			return authn.Token{}, authn.InvalidRequest(a.realm, "Bearer", "malformed query string", nil)
		}
		if queryParam != "access_token" && len(vals["access_token"]) > 0 {
			// RFC 6750 §2.3 allows it, but a URL ends up in logs and
			// browser history; refusing is safer than silently ignoring a
			// credential the client thinks it sent.
			return authn.Token{}, authn.InvalidRequest(a.realm, "Bearer",
				"a token in the URL query is not accepted; send it in the Authorization header", nil)
		}
		if queryParam != "" {
			switch vs := vals[queryParam]; {
			case len(vs) > 1:
				return authn.Token{}, authn.InvalidRequest(a.realm, "Bearer", "more than one "+queryParam+" query parameter", nil)
			case len(vs) == 1 && vs[0] != "":
				tok, found = authn.Token{Scheme: "Bearer", Value: vs[0]}, found+1
			}
		}
	}
	switch found {
	case 0:
		return authn.Token{}, authn.ErrNoCredentials
	case 1:
		return tok, nil
	default:
		return authn.Token{}, authn.InvalidRequest(a.realm, "Bearer", "the token was sent in more than one place", nil)
	}
}

// bytesOf views s as bytes without copying, for hashing and signature
// checks, which only read their input. It spares copying every token on
// the hot path.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
