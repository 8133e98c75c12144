// Package identity is the "identity" policy: it tells the upstream who the
// caller is, from the Principal an earlier `authenticate` policy set, in
// request headers, in a short-lived JWT signed by the gateway, or both.
//
// Every header the policy sets, and every header it is told to strip, is
// first removed from the incoming request, on every request, whether
// authenticated or not, so that a client can never supply them itself.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the identity policy.
var Unit = policy.Unit{Name: "identity", New: New}

// Identity strips identity headers from requests and sets them, and the
// minted token, from the principal. It is built once per config load and
// safe for concurrent use.
type Identity struct {
	c     compiled
	nvals int // header values Apply may set per request
	// minLen and maxLen bound the protected names' lengths, so most
	// incoming headers are passed over by one comparison.
	minLen, maxLen int
	cache          *tokenCache // nil without jwt
	now            func() time.Time
	log            *slog.Logger
}

var _ policy.Policy = (*Identity)(nil)

// New builds an Identity from cfg (see Config). It loads the signing key,
// so a missing or unfit key fails the config load. env.Now is the clock
// for token times and the token cache (time.Now if nil); env.Logger
// receives a warning for each header value refused as unsafe.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	c, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	p := &Identity{c: *c, nvals: len(c.set), now: env.Clock(), log: env.Log()}
	p.minLen, p.maxLen = math.MaxInt, 0
	for _, k := range c.protect {
		p.minLen, p.maxLen = min(p.minLen, len(k)), max(p.maxLen, len(k))
	}
	if c.jwt != nil {
		p.nvals++
		p.cache = newTokenCache(c.jwt.cacheSize)
	}
	return p, nil
}

// Apply strips the protected headers, then, when the request has a
// principal, sets the configured headers and the token. A value that is
// empty is not set; one holding a control character is not set and is
// logged. It fails (closed) only if minting a token fails.
func (p *Identity) Apply(_ context.Context, ex *policy.Exchange) error {
	h := ex.Request.Header
	if h == nil {
		h = make(http.Header, p.nvals)
		ex.Request.Header = h
	}
	p.strip(h)
	pr := ex.Principal
	if pr == nil {
		return nil
	}
	// One allocation for every value set; each header gets a one-element
	// window (capacity 1) of it, so a later append by another writer
	// reallocates instead of clobbering a neighbour.
	vals := make([]string, p.nvals)
	i := 0
	for _, s := range p.c.set {
		v, why := s.value(pr)
		if v == "" {
			if why != "" {
				p.refuse(ex, s, why)
			}
			continue
		}
		if j := unsafeAt(v); j >= 0 {
			p.refuse(ex, s, fmt.Sprintf("the value holds control character 0x%02x at byte %d", v[j], j))
			continue
		}
		vals[i] = v
		h[s.key] = vals[i : i+1 : i+1]
		i++
	}
	if j := p.c.jwt; j != nil {
		tok, err := p.token(pr)
		if err != nil {
			return err
		}
		vals[i] = tok
		h[j.header] = vals[i : i+1 : i+1]
	}
	return nil
}

func (p *Identity) refuse(ex *policy.Exchange, s setter, why string) {
	// The value itself stays out of the log: it is what was refused.
	p.log.Warn("identity: header not forwarded", "header", s.key, "from", s.at, "reason", why, "request_id", ex.RequestID)
}

// strip removes every copy of the protected headers. The map is scanned
// rather than indexed because a request built outside net/http's parser
// may hold keys in any casing, and because CGI-style upstreams (PHP, WSGI,
// nginx with underscores_in_headers) read X-Auth_Subject as X-Auth-Subject:
// a name matching a protected one with '_' for '-' is stripped too.
func (p *Identity) strip(h http.Header) {
	for k := range h {
		if len(k) < p.minLen || len(k) > p.maxLen {
			continue
		}
		for _, name := range p.c.protect {
			if sameHeader(k, name) {
				delete(h, k)
				break
			}
		}
	}
}

// sameHeader reports whether k names the canonical header name, ignoring
// ASCII case and taking '_' for '-'.
func sameHeader(k, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := 0; i < len(k); i++ {
		a, b := k[i], name[i]
		if a == b {
			continue
		}
		if a == '_' {
			a = '-'
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// unsafeAt returns the index of the first control character in v (CR, LF,
// NUL, tab and the rest, and DEL), or -1. Tab is legal in HTTP field values
// but has no business in an identity and upsets some parsers.
func unsafeAt(v string) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return i
		}
	}
	return -1
}

// value returns the header value of s for pr, or "" and, when the value
// exists but cannot be sent, why.
func (s *setter) value(pr *policy.Principal) (string, string) {
	switch s.field {
	case fSubject:
		return pr.Subject, ""
	case fClientID:
		return pr.ClientID, ""
	case fConsumer:
		return pr.Consumer, ""
	case fScopes:
		switch len(pr.Scopes) {
		case 0:
			return "", ""
		case 1:
			return pr.Scopes[0], ""
		}
		return strings.Join(pr.Scopes, " "), ""
	case fMethod:
		return pr.Method, ""
	}
	v, ok := pr.Claims[s.claim]
	if !ok || v == nil {
		return "", ""
	}
	return claimText(v)
}

// claimText formats a claim for a header: strings as they are, numbers
// and booleans as text, a list of those joined by ",". Anything else
// (objects, nested lists) is not sent, with the reason.
func claimText(v any) (string, string) {
	if s, ok := scalarText(v); ok {
		return s, ""
	}
	var parts []string
	switch l := v.(type) {
	case []string:
		parts = l
	case []any:
		parts = make([]string, 0, len(l))
		for _, e := range l {
			s, ok := scalarText(e)
			if !ok {
				return "", fmt.Sprintf("a list element of type %T cannot be a header value", e)
			}
			parts = append(parts, s)
		}
	default:
		return "", fmt.Sprintf("a claim of type %T cannot be a header value", v)
	}
	return strings.Join(parts, ","), ""
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// token returns the header value carrying a token for pr: a cached one
// while more than half its lifetime remains, else a new one.
func (p *Identity) token(pr *policy.Principal) (string, error) {
	now := p.now()
	key, err := p.cacheKey(pr)
	if err != nil {
		return "", err
	}
	if v, ok := p.cache.get(key, now); ok {
		return v, nil
	}
	v, iat, err := p.mint(pr, now)
	if err != nil {
		return "", err
	}
	p.cache.put(key, v, iat.Add(p.c.jwt.ttl/2), now)
	return v, nil
}

// cacheKey hashes exactly the principal's fields that go into the token,
// each tagged and length-prefixed so that no two different principals
// encode alike ("ab"+"c" vs "a"+"bc", "42" vs 42). Every field comes from a
// verified credential, so a client cannot pick another caller's entry;
// SHA-256 keeps collisions out of reach too.
func (p *Identity) cacheKey(pr *policy.Principal) ([sha256.Size]byte, error) {
	var arr [256]byte
	b := appendStr(arr[:0], pr.Subject)
	b = appendStr(b, pr.ClientID)
	b = appendStr(b, pr.Method)
	b = binary.AppendUvarint(b, uint64(len(pr.Scopes)))
	for _, s := range pr.Scopes {
		b = appendStr(b, s)
	}
	for _, name := range p.c.jwt.claims {
		var err error
		if b, err = appendValue(b, pr.Claims[name], 0); err != nil {
			return [sha256.Size]byte{}, fmt.Errorf("identity: claim %q: %w", name, err)
		}
	}
	return sha256.Sum256(b), nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes a claim for the cache key: the common JSON shapes
// directly, anything else as its JSON (which allocates, but is rare).
// Absent and null both leave the claim out of the token, and encode alike.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 'n'), nil
	case string:
		return appendStr(append(b, 's'), x), nil
	case bool:
		if x {
			return append(b, 't'), nil
		}
		return append(b, 'f'), nil
	case float64:
		return strconv.AppendFloat(append(b, 'd'), x, 'g', -1, 64), nil
	case []any:
		if depth < 4 {
			b = binary.AppendUvarint(append(b, 'l'), uint64(len(x)))
			var err error
			for _, e := range x {
				if b, err = appendValue(b, e, depth+1); err != nil {
					return nil, err
				}
			}
			return b, nil
		}
	case []string:
		b = binary.AppendUvarint(append(b, 'L'), uint64(len(x)))
		for _, e := range x {
			b = appendStr(b, e)
		}
		return b, nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return appendStr(append(b, 'j'), string(enc)), nil
}

// mint signs a new token for pr issued at now, truncated to the second,
// and returns the header value and the issue time.
func (p *Identity) mint(pr *policy.Principal, now time.Time) (string, time.Time, error) {
	j := p.c.jwt
	iat := time.Unix(now.Unix(), 0)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("identity: jti: %w", err)
	}
	claims := make(map[string]any, 9+len(j.claims))
	for _, name := range j.claims {
		if v := pr.Claims[name]; v != nil {
			claims[name] = v
		}
	}
	claims["iss"] = j.issuer
	claims["aud"] = j.audience
	if pr.Subject != "" {
		claims["sub"] = pr.Subject
	}
	if pr.ClientID != "" {
		claims["client_id"] = pr.ClientID
	}
	if len(pr.Scopes) > 0 {
		claims["scope"] = strings.Join(pr.Scopes, " ")
	}
	if pr.Method != "" {
		claims[MethodClaim] = pr.Method
	}
	claims["iat"] = iat.Unix()
	claims["exp"] = iat.Add(j.ttl).Unix()
	claims["jti"] = base64.RawURLEncoding.EncodeToString(jti[:])
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: encoding token claims: %w", err)
	}
	tok, err := j.key.Sign(payload, "JWT")
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: %w", err)
	}
	if j.bearer {
		return "Bearer " + string(tok), iat, nil
	}
	return string(tok), iat, nil
}
