package authserver

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Token types of RFC 8693 §3.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeSAML2       = "urn:ietf:params:oauth:token-type:saml2"

	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// clientAssertionAlgs are the algorithms accepted for private_key_jwt.
var clientAssertionAlgs = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

// authenticated is a client that proved itself, and how.
type authenticated struct {
	c      *client
	method string
	cert   *x509.Certificate // tls_client_auth
}

// authenticateClient finds and checks the client of a token, introspection
// or revocation request, under the failure limits.
func (srv *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (*authenticated, string, *oauthError) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic {
		var err1, err2 error
		// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, "", invalidClient("malformed Basic credentials", nil)
		}
	} else if r.Header.Get("Authorization") != "" {
		return nil, "", invalidClient("unsupported Authorization scheme", nil)
	}
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	assertion, assertionType := form.Get("client_assertion"), form.Get("client_assertion_type")

	used := 0
	for _, b := range []bool{hasBasic, formSecret != "", assertion != ""} {
		if b {
			used++
		}
	}
	if used > 1 {
		return nil, "", badRequest("invalid_request", "more than one client authentication method", nil)
	}
	var id string
	switch {
	case hasBasic:
		id = basicID
		if formID != "" && formID != basicID {
			return nil, "", badRequest("invalid_request", "client_id differs from the Basic credentials", nil)
		}
	case assertion != "":
		if assertionType != clientAssertionType {
			return nil, "", badRequest("invalid_request", "unsupported client_assertion_type", nil)
		}
		sub, err := unverifiedSubject(assertion)
		if err != nil {
			return nil, "", invalidClient("malformed client assertion", err)
		}
		id = sub
		if formID != "" && formID != sub {
			return nil, "", badRequest("invalid_request", "client_id differs from the client assertion's sub", nil)
		}
	default:
		id = formID
	}
	if id == "" {
		return nil, "", invalidClient("client authentication is required", nil)
	}
	ip := srv.clientIP(r)
	if e := srv.checkBudget(ctx, ip.String(), id); e != nil {
		return nil, id, e
	}
	a, e := srv.verifyClient(ctx, r, id, hasBasic, basicSecret, formSecret, assertion)
	if e != nil {
		if e.code == "invalid_client" {
			if le := srv.spendBudget(ctx, ip.String(), id); le != nil {
				return nil, id, le
			}
		}
		return nil, id, e
	}
	return a, id, nil
}

func (srv *Server) verifyClient(ctx context.Context, r *http.Request, id string, hasBasic bool, basicSecret, formSecret, assertion string) (*authenticated, *oauthError) {
	c, ok := srv.s.clients[id]
	// An unknown client costs the same failure as a wrong secret, and the
	// same answer: which client ids exist is not for callers to learn.
	switch {
	case !ok:
		return nil, invalidClient("client authentication failed", fmt.Errorf("unknown client %q", id))
	case hasBasic:
		if !c.allows(config.AuthSecretBasic) || !c.secret.verify(basicSecret) {
			return nil, invalidClient("client authentication failed", errors.New("client_secret_basic: wrong secret or method not allowed"))
		}
		return &authenticated{c: c, method: config.AuthSecretBasic}, nil
	case formSecret != "":
		if !c.allows(config.AuthSecretPost) || !c.secret.verify(formSecret) {
			return nil, invalidClient("client authentication failed", errors.New("client_secret_post: wrong secret or method not allowed"))
		}
		return &authenticated{c: c, method: config.AuthSecretPost}, nil
	case assertion != "":
		if !c.allows(config.AuthPrivateKeyJWT) {
			return nil, invalidClient("client authentication failed", errors.New("private_key_jwt not allowed"))
		}
		if e := srv.verifyAssertion(ctx, c, assertion); e != nil {
			return nil, e
		}
		return &authenticated{c: c, method: config.AuthPrivateKeyJWT}, nil
	}
	if c.allows(config.AuthNone) {
		// A public client: its grants (authorization_code with PKCE,
		// refresh_token bound to it) carry their own proof.
		return &authenticated{c: c, method: config.AuthNone}, nil
	}
	if !c.allows(config.AuthTLSClient) {
		return nil, invalidClient("client authentication failed", errors.New("no credentials and tls_client_auth not allowed"))
	}
	cert := verifiedLeaf(r)
	if cert == nil {
		return nil, invalidClient("client authentication failed", errors.New("tls_client_auth: no verified client certificate"))
	}
	if !c.matchesCert(cert) {
		return nil, invalidClient("client authentication failed", fmt.Errorf("tls_client_auth: certificate %q does not match", cert.Subject.String()))
	}
	return &authenticated{c: c, method: config.AuthTLSClient, cert: cert}, nil
}

// verifiedLeaf returns the client certificate the listener verified (RFC
// 8705 §2.1 PKI method); an unverified one does not authenticate.
func verifiedLeaf(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// matchesCert applies every configured tls_client_auth name (RFC 8705 §2.1.2:
// exactly one is expected; all given must match).
func (c *client) matchesCert(cert *x509.Certificate) bool {
	if c.subjectDN != "" && cert.Subject.String() != c.subjectDN {
		return false
	}
	if c.sanDNS != "" && !slices.Contains(cert.DNSNames, c.sanDNS) {
		return false
	}
	if c.sanURI != "" && !slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return u.String() == c.sanURI }) {
		return false
	}
	return true
}

// unverifiedSubject reads a client assertion's sub without verifying it,
// only to find the client whose keys will verify it.
func unverifiedSubject(assertion string) (string, error) {
	if len(assertion) > 16<<10 {
		return "", errors.New("assertion too large")
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	return c.Sub, nil
}

// maxAssertionLife bounds how far in the future a client assertion's exp
// may be: the jti replay cache must hold it that long.
const maxAssertionLife = 10 * time.Minute

// verifyAssertion checks a private_key_jwt client assertion (RFC 7523 §3):
// signed by one of the client's keys, iss and sub the client, aud this
// server (its issuer or token endpoint), not expired, jti not seen before.
func (srv *Server) verifyAssertion(ctx context.Context, c *client, assertion string) *oauthError {
	fail := func(cause error) *oauthError { return invalidClient("client authentication failed", cause) }
	msg, err := jws.Parse([]byte(assertion))
	if err != nil || len(msg.Signatures()) != 1 {
		return fail(fmt.Errorf("private_key_jwt: %v", err))
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, _ := hdr.Algorithm()
	if !slices.Contains(clientAssertionAlgs, alg.String()) {
		return fail(fmt.Errorf("private_key_jwt: algorithm %q not allowed", alg))
	}
	kid, _ := hdr.KeyID()
	var payload []byte
	verified := false
	for i := range c.jwks.Len() {
		k, _ := c.jwks.Key(i)
		if kk, ok := k.KeyID(); kid != "" && ok && kk != kid {
			continue
		}
		if ka, ok := k.Algorithm(); ok && ka.String() != alg.String() {
			continue
		}
		sa, ok := jwa.LookupSignatureAlgorithm(alg.String())
		if !ok {
			continue
		}
		if p, err := jws.Verify([]byte(assertion), jws.WithKey(sa, k)); err == nil {
			payload, verified = p, true
			break
		}
	}
	if !verified {
		return fail(errors.New("private_key_jwt: signature does not verify with the client's keys"))
	}
	var cl struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *float64        `json:"exp"`
		Nbf *float64        `json:"nbf"`
		JTI string          `json:"jti"`
	}
	if err := json.Unmarshal(payload, &cl); err != nil {
		return fail(fmt.Errorf("private_key_jwt: claims: %v", err))
	}
	now := srv.now()
	const skew = 30 * time.Second
	switch {
	case cl.Iss != c.id || cl.Sub != c.id:
		return fail(errors.New("private_key_jwt: iss and sub must be the client_id"))
	case !audienceHas(cl.Aud, srv.s.issuer, srv.s.issuer+PathToken, srv.s.issuer+PathIntrospect, srv.s.issuer+PathRevoke):
		return fail(errors.New("private_key_jwt: aud is not this server"))
	case cl.Exp == nil:
		return fail(errors.New("private_key_jwt: no exp"))
	case cl.JTI == "" || len(cl.JTI) > 256:
		return fail(errors.New("private_key_jwt: jti missing or too long"))
	}
	exp := time.Unix(int64(*cl.Exp), 0)
	if !now.Before(exp.Add(skew)) {
		return fail(errors.New("private_key_jwt: expired"))
	}
	if exp.Sub(now) > maxAssertionLife {
		return fail(fmt.Errorf("private_key_jwt: exp more than %v ahead", maxAssertionLife))
	}
	if cl.Nbf != nil && now.Add(skew).Before(time.Unix(int64(*cl.Nbf), 0)) {
		return fail(errors.New("private_key_jwt: not yet valid"))
	}
	fresh, err := srv.st.SetNX(ctx, assertionPref+c.id+":"+cl.JTI, []byte("1"), exp.Add(skew).Sub(now))
	if err != nil {
		return unavailable(fmt.Errorf("private_key_jwt replay cache: %w", err))
	}
	if !fresh {
		return fail(errors.New("private_key_jwt: jti already used"))
	}
	return nil
}

// audienceHas reports whether a JSON aud (a string or an array) holds one
// of want.
func audienceHas(raw json.RawMessage, want ...string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return slices.Contains(want, one)
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return slices.ContainsFunc(many, func(a string) bool { return slices.Contains(want, a) })
	}
	return false
}

// checkBudget refuses a request from an address or for a client whose
// failure budget is spent.
func (srv *Server) checkBudget(ctx context.Context, ip, id string) *oauthError {
	for _, b := range srv.budgets(ip, id) {
		d, err := srv.st.Allow(ctx, b.key, []store.Limit{b.limit}, 0)
		if err != nil {
			return unavailable(fmt.Errorf("failure limit: %w", err))
		}
		if !d.Allowed || d.Remaining < 1 {
			return srv.limited(d, b.limit)
		}
	}
	return nil
}

// spendBudget records one failure against the address and the client.
func (srv *Server) spendBudget(ctx context.Context, ip, id string) *oauthError {
	for _, b := range srv.budgets(ip, id) {
		if _, err := srv.st.Allow(ctx, b.key, []store.Limit{b.limit}, 1); err != nil {
			return unavailable(fmt.Errorf("failure limit: %w", err))
		}
	}
	return nil
}

type budget struct {
	key   string
	limit store.Limit
}

func (srv *Server) budgets(ip, id string) []budget {
	return []budget{
		{failIPPrefix + ip, store.Limit{Rate: srv.s.failuresIP, Period: time.Minute}},
		{failClientPref + id, store.Limit{Rate: srv.s.failuresCl, Period: time.Minute}},
	}
}

func (srv *Server) limited(d store.Decision, l store.Limit) *oauthError {
	retry := d.RetryAfter
	if retry <= 0 {
		retry = l.Interval()
	}
	return &oauthError{status: http.StatusTooManyRequests, code: "slow_down", desc: "too many failed client authentications; retry later",
		retryAfter: retry, cause: errors.New("failure limit reached")}
}

// tokenResponse is the RFC 6749 §5.1 / RFC 8693 §2.2.1 response.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	IDToken         string `json:"id_token,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`

	jti string    // the token's id, for what must be revoked with it
	exp time.Time // its expiry
}

// accessClaims are an RFC 9068 access token's claims.
type accessClaims struct {
	Iss      string            `json:"iss"`
	Sub      string            `json:"sub"`
	Aud      string            `json:"aud"`
	ClientID string            `json:"client_id"`
	Scope    string            `json:"scope,omitempty"`
	JTI      string            `json:"jti"`
	Iat      int64             `json:"iat"`
	Nbf      int64             `json:"nbf"`
	Exp      int64             `json:"exp"`
	Cnf      map[string]string `json:"cnf,omitempty"`
	Act      map[string]any    `json:"act,omitempty"`
	// AuthTime, ACR and SID describe the end user's login (RFC 9068 §2.2.1,
	// OpenID Connect session id), for tokens of the authorization code grant.
	AuthTime int64  `json:"auth_time,omitempty"`
	ACR      string `json:"acr,omitempty"`
	SID      string `json:"sid,omitempty"`
	// Extra are the client's fixed claims, merged into the JSON object.
	Extra map[string]string `json:"-"`
}

// MarshalJSON writes the registered claims and then the client's fixed
// claims, which the configuration keeps apart from the registered names.
func (c accessClaims) MarshalJSON() ([]byte, error) {
	type plain accessClaims
	b, err := json.Marshal(plain(c))
	if err != nil || len(c.Extra) == 0 {
		return b, err
	}
	extra, err := json.Marshal(c.Extra)
	if err != nil {
		return nil, err
	}
	// Both are JSON objects: join them as {registered..., extra...}.
	return append(append(b[:len(b)-1], ','), extra[1:]...), nil
}

// token serves the token endpoint.
func (srv *Server) token(w http.ResponseWriter, r *http.Request) {
	form, e := parseForm(w, r)
	if e != nil {
		srv.fail(w, r, e, "")
		return
	}
	ctx := r.Context()
	a, id, e := srv.authenticateClient(ctx, r, form)
	if e != nil {
		srv.fail(w, r, e, id)
		return
	}
	grant := form.Get("grant_type")
	var resp *tokenResponse
	switch grant {
	case "":
		e = badRequest("invalid_request", "grant_type is required", nil)
	case config.GrantClientCredentials, config.GrantTokenExchange, config.GrantAuthorizationCode, config.GrantRefreshToken:
		if !slices.Contains(a.c.grants, grant) {
			e = badRequest("unauthorized_client", "the client may not use this grant type", nil)
			break
		}
		switch grant {
		case config.GrantClientCredentials:
			resp, e = srv.clientCredentials(r, a, form)
		case config.GrantTokenExchange:
			resp, e = srv.tokenExchange(r, a, form)
		case config.GrantAuthorizationCode:
			resp, e = srv.authorizationCode(r, a, form)
		default:
			resp, e = srv.refreshGrant(r, a, form)
		}
	default:
		e = badRequest("unsupported_grant_type", "supported: client_credentials, token exchange, authorization_code, refresh_token", nil)
	}
	if e != nil {
		srv.fail(w, r, e, a.c.id)
		return
	}
	writeJSON(w, resp)
}

func (srv *Server) clientCredentials(r *http.Request, a *authenticated, form url.Values) (*tokenResponse, *oauthError) {
	scopes, e := grantScopes(form.Get("scope"), a.c.scopes)
	if e != nil {
		return nil, e
	}
	aud, e := srv.audience(a.c, form)
	if e != nil {
		return nil, e
	}
	return srv.issue(r, a, issueRequest{sub: a.c.id, aud: aud, scopes: scopes, grant: config.GrantClientCredentials})
}

// grantScopes parses the requested scope: none asked means every scope
// the client is registered for (RFC 6749 §3.3); one not in allowed is
// invalid_scope.
func grantScopes(requested string, allowed []string) ([]string, *oauthError) {
	if strings.TrimSpace(requested) == "" {
		return allowed, nil
	}
	var out []string
	for s := range strings.FieldsSeq(requested) {
		if !slices.Contains(allowed, s) {
			return nil, badRequest("invalid_scope", fmt.Sprintf("scope %q is not granted to this client", s), nil)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// audience picks the token's aud: the one asked for with audience or
// resource (RFC 8693 §2.1, RFC 8707) if the client may have it, else the
// client's first.
func (srv *Server) audience(c *client, form url.Values) (string, *oauthError) {
	want := form.Get("audience")
	if want == "" {
		want = form.Get("resource")
	}
	if want == "" {
		return c.audience[0], nil
	}
	if !slices.Contains(c.audience, want) {
		return "", badRequest("invalid_target", "the client may not get tokens for this audience", nil)
	}
	return want, nil
}

type issueRequest struct {
	sub    string
	aud    string
	scopes []string
	act    map[string]any
	grant  string
	// exp, when set, caps the token's expiry (an exchanged token does not
	// outlive its subject token).
	exp time.Time
	// bind, when set, is the binding the caller established (token
	// exchange verifies the request's DPoP proof itself, once, since a
	// proof is spent by its first verification).
	bind *binding
	// authTime, acr and sid: the end user's login, for the code and
	// refresh grants.
	authTime int64
	acr, sid string
}

// binding is an access token's confirmation (RFC 7800 cnf): a DPoP key's
// thumbprint (RFC 9449 §6), a client certificate's (RFC 8705 §3.1), both
// or neither.
type binding struct {
	jkt, x5t string
}

// issue signs an access token for a, bound to the DPoP key of the
// request's proof if it carries one, else to the client certificate when
// the client authenticated with it.
func (srv *Server) issue(r *http.Request, a *authenticated, req issueRequest) (*tokenResponse, *oauthError) {
	now := srv.now()
	exp := now.Add(a.c.lifetime)
	if !req.exp.IsZero() && req.exp.Before(exp) {
		exp = req.exp
	}
	c := accessClaims{
		Iss: srv.s.issuer, Sub: req.sub, Aud: req.aud, ClientID: a.c.id,
		Scope: strings.Join(req.scopes, " "), JTI: newJTI(),
		Iat: now.Unix(), Nbf: now.Unix(), Exp: exp.Unix(), Act: req.act,
		Extra: a.c.claims, AuthTime: req.authTime, ACR: req.acr, SID: req.sid,
	}
	tokenType := "Bearer"
	if b := req.bind; b != nil {
		if b.jkt != "" || b.x5t != "" {
			c.Cnf = map[string]string{}
		}
		if b.jkt != "" {
			c.Cnf["jkt"] = b.jkt
			tokenType = "DPoP"
		}
		if b.x5t != "" {
			c.Cnf["x5t#S256"] = b.x5t
		}
	} else if len(r.Header.Values("DPoP")) > 0 {
		jkt, err := srv.dpop.Verify(r.Context(), r, "", "")
		if err != nil {
			if d, ok := policy.AsDenial(err); ok {
				// RFC 9449 §5: a bad proof at the token endpoint is
				// invalid_dpop_proof, 400.
				return nil, badRequest("invalid_dpop_proof", d.Detail, d.Err)
			}
			return nil, unavailable(err)
		}
		c.Cnf = map[string]string{"jkt": jkt}
		tokenType = "DPoP"
	} else if a.cert != nil {
		tp, _ := mtls.Thumbprint(r)
		c.Cnf = map[string]string{"x5t#S256": tp}
	}
	key := srv.ring.signing()
	tok, err := key.Sign(mustJSON(c), "at+jwt")
	if err != nil {
		return nil, serverError(err)
	}
	srv.log.Info("access token issued", "client_id", a.c.id, "grant", req.grant, "sub", req.sub, "aud", req.aud,
		"scope", c.Scope, "jti", c.JTI, "exp", exp.Unix(), "token_type", tokenType, "auth_method", a.method, "kid", key.KeyID())
	srv.audit.Record(audit.Event{Kind: audit.TokenIssue, Time: now, RequestID: r.Header.Get("X-Request-Id"), ClientIP: srv.clientIP(r),
		Principal: req.sub, ClientID: a.c.id, JTI: c.JTI, KeyID: key.KeyID(), Expires: exp, Policy: "authorization_server",
		Detail: req.grant + " scope=" + c.Scope + " aud=" + req.aud})
	return &tokenResponse{
		AccessToken: string(tok), TokenType: tokenType, ExpiresIn: c.Exp - now.Unix(), Scope: c.Scope,
		jti: c.JTI, exp: exp,
	}, nil
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// storeReplay is the DPoP replay cache in the state store, so that a proof
// used on one instance is refused on every other.
type storeReplay struct {
	st  store.Store
	now func() time.Time
}

func (s storeReplay) Seen(ctx context.Context, key string, exp time.Time) (bool, error) {
	ttl := exp.Sub(s.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	fresh, err := s.st.SetNX(ctx, "authserver:dpop:"+key, []byte("1"), ttl)
	return !fresh, err
}
