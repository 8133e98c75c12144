// Package introspect is the `introspect` authenticator: a bearer token is
// checked by the authorization server's RFC 7662 introspection endpoint,
// and the answer is cached for a while.
//
// It fails closed: when the endpoint is down, slow or answers nonsense, the
// request is refused with 503 introspection_unavailable (and Retry-After),
// never let through, and nothing is cached, so the first request after the
// endpoint recovers is checked afresh. An endpoint's refusal of the token
// itself (a 400 such as invalid_request) is no outage: the token is
// refused, 401 invalid_token; a 400 unsupported_token_type (node-oidc-
// provider's answer to a JWT) is "not mine", so that a jwt authenticator
// on the same route can take the token. See refusal.
package introspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/bound"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Unit is the `introspect` authenticator type.
var Unit = authn.Unit{Name: "introspect", New: func(cfg *config.Node, env *authn.Env) (authn.Authenticator, error) {
	return New(cfg, env)
}}

// maxResponse bounds an introspection response; a larger one is a broken
// or hostile endpoint.
const maxResponse = 1 << 20

// maxToken bounds the tokens sent for introspection. Real access tokens,
// JWTs with many claims included, stay well below.
const maxToken = 16 << 10

// ErrUnavailable is the cause of the refusal of a request whose token could
// not be introspected: the endpoint could not be reached, timed out, or
// answered something other than a well-formed RFC 7662 response.
var ErrUnavailable = errors.New("introspect: introspection endpoint unavailable")

// Authenticator introspects tokens. Safe for concurrent use; Close releases
// its idle connections.
type Authenticator struct {
	p      *parsed
	realm  string
	now    func() time.Time
	client *http.Client
	tr     *http.Transport
	pos    *cache // active tokens
	neg    *cache // refused tokens, apart so a flood of bad tokens cannot evict good ones
	flight flight
	bound  *bound.Checker
	log    *slog.Logger
	// latency is the endpoint's latency histogram.
	latency telemetry.RemoteLatency
	// lastComplaint is when a misconfiguration was last logged (Unix ns).
	lastComplaint atomic.Int64
}

// answer is what introspecting a token decided: a principal, or a refusal.
type answer struct {
	principal *policy.Principal // nil when refused
	desc      string            // the public reason of a refusal
	jkt, x5t  string            // the token's binding (cnf, RFC 9449 §6.2, RFC 8705 §3.2)
	// declined: the endpoint does not handle this kind of token
	// (unsupported_token_type): "not mine" (authn.Declined).
	declined bool
}

var (
	_ authn.Authenticator = (*Authenticator)(nil)
	_ policy.Closer       = (*Authenticator)(nil)
)

// New builds an introspect authenticator from its config. It does not
// contact the endpoint: an authorization server that is down at load time
// must not stop the gateway from starting, and requests fail closed until
// it is back.
func New(cfg *config.Node, env *authn.Env) (*Authenticator, error) {
	p, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	penv := env.Policy()
	a := &Authenticator{p: p, realm: env.Realm, now: penv.Clock(), log: penv.Log(),
		latency: penv.Telemetry().Introspection(p.endpoint)}
	a.tr = &http.Transport{
		// No proxy from the environment: tokens and the client secret go
		// only where the config says.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: p.timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.roots},
		TLSHandshakeTimeout:   p.timeout,
		ResponseHeaderTimeout: p.timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	a.client = &http.Client{
		Transport: a.tr,
		Timeout:   p.timeout,
		// A redirect would resend the token somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if !p.noCache {
		a.pos, a.neg = newCache(p.size), newCache(p.size)
	}
	a.bound = bound.New(bound.Options{Realm: a.realm, Now: a.now, PublicOrigin: p.dpopOrigin, TrustedProxies: penv.TrustedProxies, Ignore: p.ignoreBinding, Store: penv.Store})
	return a, nil
}

// Challenge returns the Bearer challenge of the realm.
func (a *Authenticator) Challenge() string { return authn.Challenge("Bearer", a.realm) }

// Close releases the idle connections to the endpoint. Introspections in
// flight end by their timeout.
func (a *Authenticator) Close() error {
	a.tr.CloseIdleConnections()
	return nil
}

// Authenticate introspects the request's Bearer or DPoP token (from the
// Authorization header) and returns its principal. It returns
// ErrNoCredentials without such a token; a 401 invalid_token Denial for a
// token the endpoint says is inactive or refuses to introspect (400), or
// that is expired, not yet valid, for another audience or issuer, or
// DPoP-bound and used as a bearer token; an authn.Declined for a token the
// endpoint does not handle (400 unsupported_token_type); a 503
// introspection_unavailable Denial when the endpoint cannot answer or
// refuses the gateway's client credentials; ctx's error when ctx ends
// first.
//
// The returned Principal is the caller's own copy, but its Scopes and
// Claims are shared with other requests bearing the same token and must not
// be modified.
func (a *Authenticator) Authenticate(ctx context.Context, ex *policy.Exchange) (*policy.Principal, error) {
	tok, err := authn.AuthorizationToken(ex.Request, a.realm)
	if err != nil {
		return nil, err
	}
	if len(tok.Value) > maxToken {
		return nil, authn.InvalidToken(a.realm, tok.Scheme, "the token is too large", nil)
	}
	k := hashToken(tok.Value)
	if a.pos != nil {
		now := a.now()
		if ans, ok := a.pos.get(&k, now); ok {
			return a.decide(ctx, ex.Request, ans, tok)
		}
		if ans, ok := a.neg.get(&k, now); ok {
			return a.refusedOr(ctx, ex.Request, ans, tok)
		}
	}
	return a.miss(ctx, ex.Request, tok, k)
}

// miss introspects a token that is not cached. It is apart from
// Authenticate so that the key escapes to the heap, for the closure, only
// on this path.
func (a *Authenticator) miss(ctx context.Context, r *http.Request, tok authn.Token, k key) (*policy.Principal, error) {
	ans, err := a.flight.do(ctx, &k, func() (*answer, error) { return a.introspect(ctx, tok.Value, &k) })
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("introspect: %w", ctx.Err())
		}
		return nil, unavailable(err)
	}
	return a.refusedOr(ctx, r, ans, tok)
}

// refusedOr answers a token the endpoint declined as "not mine"
// (authn.Declined, refused 401 invalid_token when no other authenticator
// takes it), and decides any other answer.
func (a *Authenticator) refusedOr(ctx context.Context, r *http.Request, ans *answer, tok authn.Token) (*policy.Principal, error) {
	if ans.declined {
		return nil, authn.Decline(authn.InvalidToken(a.realm, tok.Scheme, ans.desc, errDeclined))
	}
	return a.decide(ctx, r, ans, tok)
}

// errDeclined is the logged cause of a token refused as unsupported_token_type.
var errDeclined = errors.New("introspect: the endpoint does not handle this type of token (unsupported_token_type)")

// hashToken returns the SHA-256 of token. Most opaque tokens fit the stack
// buffer, which spares the allocation of []byte(token); longer ones (JWTs
// sent for introspection) pay it.
func hashToken(token string) key {
	var buf [512]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], token)])
	}
	return sha256.Sum256([]byte(token))
}

// decide applies what must be checked on every request, cached answer or
// not: the refusal, and the token's binding, which an introspection answer
// carries in cnf as a JWT does (a DPoP proof by its key, its client
// certificate; internal/authn/bound).
func (a *Authenticator) decide(ctx context.Context, r *http.Request, ans *answer, tok authn.Token) (*policy.Principal, error) {
	if ans.principal == nil {
		return nil, authn.InvalidToken(a.realm, tok.Scheme, ans.desc, nil)
	}
	if ans.jkt != "" || ans.x5t != "" {
		if err := a.bound.Check(ctx, r, tok, ans.jkt, ans.x5t); err != nil {
			return nil, err
		}
	}
	pr := *ans.principal
	return &pr, nil
}

func unavailable(err error) *policy.Denial {
	return &policy.Denial{
		Status: http.StatusServiceUnavailable,
		Code:   "introspection_unavailable",
		Detail: "the token cannot be checked at the moment; try again later",
		Header: http.Header{"Retry-After": {"1"}},
		Err:    err,
	}
}

// introspect asks the endpoint about token and caches the answer. It runs
// once per token at a time (see flight), on a context detached from the
// request that started it but bounded by the timeout.
func (a *Authenticator) introspect(ctx context.Context, token string, k *key) (*answer, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.p.timeout)
	defer cancel()
	start := time.Now()
	ans, err := a.call(ctx, token, k)
	// The endpoint's time, whatever its answer; ErrUnavailable is a
	// failure (unreachable, too slow, an unusable answer).
	a.latency.Observe(ctx, time.Since(start).Seconds(), err == nil)
	return ans, err
}

// call is one round trip to the endpoint (introspect).
func (a *Authenticator) call(ctx context.Context, token string, k *key) (*answer, error) {
	form := url.Values{"token": {token}, "token_type_hint": {a.p.hint}}
	if a.p.basic == "" {
		form.Set("client_id", a.p.clientID)
		form.Set("client_secret", a.p.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.p.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if a.p.basic != "" {
		req.Header.Set("Authorization", a.p.basic)
	}
	res, err := a.client.Do(req)
	if err != nil {
		// The *url.Error names the endpoint, never the form.
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the response: %v", ErrUnavailable, err)
	}
	if len(body) > maxResponse {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrUnavailable, maxResponse)
	}
	now := a.now()
	var ans *answer
	var exp time.Time
	if res.StatusCode == http.StatusOK {
		var resp map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&resp); err != nil || dec.More() || resp == nil {
			return nil, fmt.Errorf("%w: response is not a JSON object", ErrUnavailable)
		}
		if ans, exp, err = a.evaluate(resp, now); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	} else if ans, err = a.refusal(res, body); err != nil {
		return nil, err
	}
	if a.pos != nil && ans.desc != descNotYet {
		if ans.principal != nil {
			until := now.Add(a.p.ttl)
			if !exp.IsZero() && exp.Before(until) {
				until = exp
			}
			a.pos.put(k, ans, until, now)
		} else {
			a.neg.put(k, ans, now.Add(a.p.negTTL), now)
		}
	}
	return ans, nil
}

// refusal reads an answer other than 200. What it means is decided by
// who is at fault:
//
//   - the token: 400 (RFC 6749 §5.2 errors such as invalid_request, as
//     an endpoint answers a token it cannot parse, or
//     unsupported_token_type, as node-oidc-provider answers a JWT),
//     413 and 422. The token is refused, 401 invalid_token, and the
//     answer cached like an inactive token's; unsupported_token_type is a
//     "not mine" (authn.Declined) so that a jwt authenticator after this
//     one can take the JWT.
//   - the gateway's own client credentials: 401, 403, or a 400
//     invalid_client or unauthorized_client. No token can be checked
//     until the config is fixed: 503 introspection_unavailable, an error
//     logged (at most once a minute), nothing cached. Not 401: the
//     client's token may be good, and its client must not be told to
//     throw it away for the gateway's mistake.
//   - the endpoint: 5xx, 429, and any other status (404, 405, 415: the
//     endpoint URL is wrong). 503 introspection_unavailable, as for a
//     transport error or a timeout; the unexpected ones are logged.
func (a *Authenticator) refusal(res *http.Response, body []byte) (*answer, error) {
	code := oauthError(res, body)
	switch st := res.StatusCode; {
	case (st == http.StatusBadRequest && code != "invalid_client" && code != "unauthorized_client") ||
		st == http.StatusRequestEntityTooLarge || st == http.StatusUnprocessableEntity:
		if code == "unsupported_token_type" {
			return &answer{desc: descUnsupported, declined: true}, nil
		}
		return &answer{desc: descRefused}, nil
	case st == http.StatusBadRequest, st == http.StatusUnauthorized, st == http.StatusForbidden:
		a.complain("introspect: the introspection endpoint refused the gateway's client credentials; no token can be checked until client_id and client_secret are fixed",
			"status", res.StatusCode, "error", code)
		return nil, fmt.Errorf("%w: endpoint refused the gateway's client credentials (%s %s)", ErrUnavailable, res.Status, code)
	case st >= 500, st == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: endpoint answered %s", ErrUnavailable, res.Status)
	default:
		a.complain("introspect: the introspection endpoint answered an unexpected status; is endpoint the introspection URL?",
			"status", res.StatusCode, "error", code)
		return nil, fmt.Errorf("%w: endpoint answered %s", ErrUnavailable, res.Status)
	}
}

// oauthError returns the "error" member of an RFC 6749 §5.2 error
// response body, or "" (not JSON, no such member, not a plain code).
func oauthError(res *http.Response, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) > 64 || !isErrorCode(e.Error) {
		return ""
	}
	return e.Error
}

// isErrorCode reports whether s has RFC 6749's error code alphabet
// (%x20-21 / %x23-5B / %x5D-7E), without spaces, so that it is safe to log.
func isErrorCode(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// complain logs a misconfiguration at error level, at most once a minute:
// every request would otherwise log it.
func (a *Authenticator) complain(msg string, args ...any) {
	now := a.now().UnixNano()
	last := a.lastComplaint.Load()
	if last != 0 && now-last < int64(time.Minute) {
		return
	}
	if a.lastComplaint.CompareAndSwap(last, now) {
		a.log.Error(msg, append(args, "endpoint", a.p.endpoint)...)
	}
}

// Public reasons of refusals.
const (
	descInactive = "the token is not active"
	descBinding  = "the token's binding cannot be read"
	descExpired  = "the token has expired"
	descNotYet   = "the token is not valid yet"
	descAudience = "the token is not meant for this audience"
	descIssuer   = "the token is from an issuer not accepted here"
	// descRefused: the endpoint refused to introspect the token (400).
	descRefused = "the token is not valid"
	// descUnsupported: the endpoint does not handle this kind of token.
	descUnsupported = "the token is not of a type accepted here"
)

// evaluate turns an introspection response into an answer, with the token's
// expiry (zero if it has none). A response that breaks RFC 7662's types is
// an error: it says nothing reliable about the token.
func (a *Authenticator) evaluate(resp map[string]any, now time.Time) (*answer, time.Time, error) {
	active, ok := resp["active"].(bool)
	if !ok {
		return nil, time.Time{}, errors.New(`response has no boolean "active"`)
	}
	if !active {
		return &answer{desc: descInactive}, time.Time{}, nil
	}
	exp, _, err := authn.TimeClaim(resp, "exp")
	if err != nil {
		return nil, time.Time{}, err
	}
	nbf, _, err := authn.TimeClaim(resp, "nbf")
	if err != nil {
		return nil, time.Time{}, err
	}
	sub, err := authn.StringClaim(resp, "sub")
	if err != nil {
		return nil, time.Time{}, err
	}
	clientID, err := authn.StringClaim(resp, "client_id")
	if err != nil {
		return nil, time.Time{}, err
	}
	iss, err := authn.StringClaim(resp, "iss")
	if err != nil {
		return nil, time.Time{}, err
	}
	aud, err := authn.StringsClaim(resp, "aud", false)
	if err != nil {
		return nil, time.Time{}, err
	}
	scopes, err := authn.StringsClaim(resp, a.p.scopeField, true)
	if err != nil {
		return nil, time.Time{}, err
	}
	switch {
	case !exp.IsZero() && !now.Before(exp.Add(a.p.leeway)):
		return &answer{desc: descExpired}, exp, nil
	case !nbf.IsZero() && now.Add(a.p.leeway).Before(nbf):
		return &answer{desc: descNotYet}, exp, nil
	case a.p.issuer != "" && iss != a.p.issuer:
		return &answer{desc: descIssuer}, exp, nil
	case len(a.p.audiences) > 0 && !slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(a.p.audiences, s) }):
		return &answer{desc: descAudience}, exp, nil
	}
	subject, consumer := sub, clientID
	if subject == "" {
		// A client credentials token speaks for the client itself.
		subject = clientID
	}
	if consumer == "" {
		consumer = subject
	}
	ans := &answer{principal: &policy.Principal{
		Subject:  subject,
		ClientID: clientID,
		Consumer: consumer,
		Scopes:   scopes,
		Claims:   resp,
		Method:   "introspection",
	}}
	if ans.jkt, ans.x5t, err = bound.Cnf(resp["cnf"]); err != nil {
		// A binding that cannot be read must not be read as none.
		return &answer{desc: descBinding}, exp, nil
	}
	return ans, exp, nil
}
