// Package authn is the contract of authenticators: the parts of the
// `authenticate` policy that each prove a caller from one kind of
// credential (JWT, introspected token, API key, client certificate).
//
// An authenticator keeps three answers apart, so that the policy can
// compose several of them:
//
//   - ErrNoCredentials: the request carries no credential of its kind; the
//     next authenticator is tried ("not mine").
//   - a *Declined: the request carries a credential where this
//     authenticator reads, but not one of its kind (an opaque token where
//     the jwt authenticator reads JWTs, a JWT of another issuer, a token
//     type the introspection endpoint says it does not handle). It is a
//     "not mine" (errors.Is(err, ErrNoCredentials) holds): the next
//     authenticator is tried; and it carries the refusal the request gets
//     when no authenticator takes the credential, so that a credential no
//     one recognises is refused as invalid rather than treated as absent.
//   - a *policy.Denial: it carries one and it is not good (401
//     invalid_token, 400 invalid_request, 403 ...); the request is refused
//     and no other authenticator is tried.
//   - any other error: an internal failure (a key server unreachable with
//     no keys cached); the request fails closed.
package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/registry"
)

// ErrNoCredentials is returned by an Authenticator when the request carries
// none of the credentials it reads.
var ErrNoCredentials = errors.New("authn: no credentials")

// Declined is the answer of an authenticator to a credential that is not
// of its kind (see the package doc). errors.Is(d, ErrNoCredentials) holds.
// It deliberately does not unwrap to its Refusal: code that looks for a
// *policy.Denial must not take a "not mine" for a refusal.
type Declined struct {
	// Refusal is what the request gets when no authenticator of the chain
	// takes the credential: the refusal this authenticator would give.
	Refusal *policy.Denial
}

// Decline returns a *Declined carrying refusal.
func Decline(refusal *policy.Denial) error { return &Declined{Refusal: refusal} }

func (d *Declined) Error() string {
	return "authn: credential not of this kind (" + d.Refusal.Error() + ")"
}

// Is makes a Declined a "not mine": errors.Is(d, ErrNoCredentials).
func (d *Declined) Is(target error) bool { return target == ErrNoCredentials }

// An Authenticator proves who is calling. Built once per config load, safe
// for concurrent use.
type Authenticator interface {
	// Authenticate returns the caller, ErrNoCredentials, a *Declined, a
	// *policy.Denial or an internal error, as the package doc says.
	Authenticate(ctx context.Context, ex *policy.Exchange) (*policy.Principal, error)
	// Challenge returns this authenticator's WWW-Authenticate challenge for
	// a request that carried no credentials at all, e.g.
	// `Bearer realm="api"`, or "" when its scheme has none (mTLS, API keys).
	Challenge() string
}

// Env is what an authenticator's factory may use.
type Env struct {
	*policy.Env
	// Realm names the protection space in challenges.
	Realm string
}

// Policy returns the policy Env the authenticator is built in, or an empty
// one when there is none, so that a factory reads its fields (nil-able by
// their contracts: Store, Pool, TrustedProxies, Revocations) and calls its
// accessors without checking for a nil Env first.
func (e *Env) Policy() *policy.Env {
	if e == nil || e.Env == nil {
		return &policy.Env{}
	}
	return e.Env
}

// A Factory builds an authenticator from its raw config, strictly and
// completely at load time (see policy.Factory).
type Factory func(cfg *config.Node, env *Env) (Authenticator, error)

// Unit is a named authenticator type.
type Unit = registry.Unit[Factory]

// Registry maps authenticator type names to units; built once, read-only.
type Registry struct{ *registry.Registry[Factory] }

// NewRegistry returns a registry of units. A duplicate or empty name panics.
func NewRegistry(units ...Unit) *Registry {
	return &Registry{registry.New("authenticator", units...)}
}

// Build builds the authenticator a spec names.
func (r *Registry) Build(spec config.PolicySpec, env *Env) (Authenticator, error) {
	newAuth, err := r.Lookup(spec.Type)
	if err != nil {
		return nil, spec.Config.Errorf("", "%v", err)
	}
	a, err := newAuth(spec.Config, env)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("authn: unit %s returned a nil authenticator", spec.Type)
	}
	return a, nil
}

// Token is an access token found in a request.
type Token struct {
	// Scheme is "Bearer" or "DPoP" (RFC 9449), as the client sent it,
	// normalised to that spelling.
	Scheme string
	// Value is the token itself.
	Value string
}

// AuthorizationToken returns the Bearer or DPoP token of the Authorization
// header (RFC 6750 §2.1, RFC 9449 §7.1). It returns ErrNoCredentials when
// there is no such header or it uses another scheme (Basic belongs to some
// other authenticator), and a 400 invalid_request Denial when the header
// appears more than once or is malformed, since a request must not carry
// two credentials the gateway and the upstream could read differently.
func AuthorizationToken(r *http.Request, realm string) (Token, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return Token{}, ErrNoCredentials
	}
	if len(vals) > 1 {
		return Token{}, InvalidRequest(realm, "Bearer", "more than one Authorization header", nil)
	}
	scheme, value, spaced, ours := SplitAuthorization(vals[0])
	if !ours {
		return Token{}, ErrNoCredentials
	}
	if !spaced || value == "" || !isToken68(value) {
		return Token{}, InvalidRequest(realm, scheme, "malformed Authorization header", nil)
	}
	return Token{Scheme: scheme, Value: value}, nil
}

// SplitAuthorization splits an Authorization value into its scheme,
// spelled "Bearer" or "DPoP" whatever its case, and what follows the
// spaces after it; spaced reports that a space followed the scheme, ours
// that the scheme is one of the two. The value is not checked.
func SplitAuthorization(v string) (scheme, value string, spaced, ours bool) {
	scheme, value, spaced = strings.Cut(v, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		scheme = "Bearer"
	case strings.EqualFold(scheme, "DPoP"):
		scheme = "DPoP"
	default:
		return "", "", spaced, false
	}
	return scheme, strings.TrimLeft(value, " "), spaced, true
}

// isToken68 reports whether v is an RFC 9110 token68: the alphabet of
// base64url and base64 with trailing '='. It runs on every token of every
// request, so the alphabet is a table lookup.
func isToken68(v string) bool {
	i := 0
	for ; i < len(v) && token68Chars[v[i]]; i++ {
	}
	if i == 0 {
		return false
	}
	for ; i < len(v); i++ {
		if v[i] != '=' {
			return false
		}
	}
	return true
}

// token68Chars marks the bytes of token68 before its trailing '='.
var token68Chars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// Challenge formats an RFC 6750 §3 challenge: scheme realm="…" plus the
// given error attributes (pairs of name and value, values quoted).
func Challenge(scheme, realm string, attrs ...string) string {
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString(` realm="`)
	b.WriteString(quoteEscape(realm))
	b.WriteByte('"')
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" {
			continue
		}
		b.WriteString(", ")
		b.WriteString(attrs[i])
		b.WriteString(`="`)
		b.WriteString(quoteEscape(attrs[i+1]))
		b.WriteByte('"')
	}
	return b.String()
}

// quoteEscape makes s safe inside a quoted-string: backslash and quote are
// escaped, control characters dropped (they would split the header).
func quoteEscape(s string) string {
	if !strings.ContainsAny(s, "\"\\\r\n\x00") {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// InvalidToken is the RFC 6750 refusal of a token that is expired, revoked,
// malformed or otherwise not good: 401 invalid_token with a challenge in
// the token's scheme. desc is shown to the client (keep it generic: never
// echo the token); cause is logged.
func InvalidToken(realm, scheme, desc string, cause error) *policy.Denial {
	return denial(http.StatusUnauthorized, "invalid_token", realm, scheme, desc, cause)
}

// InvalidRequest is the RFC 6750 refusal of a malformed request: 400
// invalid_request.
func InvalidRequest(realm, scheme, desc string, cause error) *policy.Denial {
	return denial(http.StatusBadRequest, "invalid_request", realm, scheme, desc, cause)
}

// InsufficientScope is the RFC 6750 refusal of a token without the scopes
// the request needs: 403 insufficient_scope naming them.
func InsufficientScope(realm, scheme string, scopes []string) *policy.Denial {
	want := strings.Join(scopes, " ")
	d := &policy.Denial{
		Status: http.StatusForbidden,
		Code:   "insufficient_scope",
		Detail: "the token lacks the scope this request needs: " + want,
		Header: http.Header{"Www-Authenticate": {Challenge(scheme, realm, "error", "insufficient_scope", "scope", want)}},
	}
	return d
}

func denial(status int, code, realm, scheme, desc string, cause error) *policy.Denial {
	if scheme == "" {
		scheme = "Bearer"
	}
	return &policy.Denial{
		Status: status,
		Code:   code,
		Detail: desc,
		Header: http.Header{"Www-Authenticate": {Challenge(scheme, realm, "error", code, "error_description", desc)}},
		Err:    cause,
	}
}
