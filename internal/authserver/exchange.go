package authserver

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// tokenExchange serves the RFC 8693 grant. The subject token is one of our
// access tokens (exchanged for a down-scoped one, for another audience) or
// a SAML 2.0 assertion from a trusted issuer. The new token's act claim
// names the client that exchanged it (or the actor token's subject), with
// any earlier act nested inside (§4.1).
//
// What a subject token promises carries through: a token bound to a DPoP
// key or a client certificate is exchanged only with a proof of that key
// (a DPoP proof on this request) or over a connection with that
// certificate, and the new token is bound the same way; a holder-of-key
// assertion only with proof of its confirmed key, the new token bound to
// the key that proved it. The client must be entitled to the subject token
// (§4.4): it names the client (aud, client_id, azp), its may_act names
// the actor, or the client's may_exchange lists the token's client.
func (srv *Server) tokenExchange(r *http.Request, a *authenticated, form url.Values) (*tokenResponse, *oauthError) {
	subject, typ := form.Get("subject_token"), form.Get("subject_token_type")
	if subject == "" || typ == "" {
		return nil, badRequest("invalid_request", "subject_token and subject_token_type are required", nil)
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken && rt != TokenTypeJWT {
		return nil, badRequest("invalid_request", "requested_token_type must be an access token or a JWT", nil)
	}
	switch typ {
	case TokenTypeAccessToken, TokenTypeJWT, TokenTypeSAML2:
	default:
		return nil, badRequest("invalid_request", "unsupported subject_token_type", nil)
	}
	actor := a.c.id
	var actorTok *verified
	if at := form.Get("actor_token"); at != "" {
		if att := form.Get("actor_token_type"); att != TokenTypeAccessToken && att != TokenTypeJWT {
			return nil, badRequest("invalid_request", "actor_token_type must be an access token or a JWT", nil)
		}
		v, err := srv.verifyOwn(at)
		if err == nil {
			err = srv.checkLive(v)
		}
		if err != nil {
			return nil, badRequest("invalid_grant", "the actor token is not valid", err)
		}
		actorTok, actor = v, v.claims.Sub
	}
	// The request's proofs, each verified once: a DPoP proof is spent by
	// its first verification.
	pf, e := srv.exchangeProof(r, a)
	if e != nil {
		return nil, e
	}
	if actorTok != nil {
		// An actor token bound to a key is no better than a subject token
		// bound to one: it acts only with its proof.
		if _, e := pf.carry(actorTok.claims.Cnf, "actor"); e != nil {
			return nil, e
		}
	}
	req := issueRequest{grant: config.GrantTokenExchange}
	allowed := a.c.scopes
	var prevAct any
	var bind *binding
	var samlID string // the exchanged assertion's ID
	var saml *samlAssertion
	switch typ {
	case TokenTypeAccessToken, TokenTypeJWT:
		v, err := srv.verifyOwn(subject)
		if err == nil {
			err = srv.checkLive(v)
		}
		if err != nil {
			return nil, badRequest("invalid_grant", "the subject token is not valid", err)
		}
		if e := entitled(a.c, v, actor); e != nil {
			return nil, e
		}
		if bind, e = pf.carry(v.claims.Cnf, "subject"); e != nil {
			return nil, e
		}
		req.sub = v.claims.Sub
		req.exp = time.Unix(v.claims.Exp, 0)
		prevAct = v.raw["act"]
		// Down-scoping only: never more than the subject token had.
		have := strings.Fields(v.claims.Scope)
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(s string) bool { return !slices.Contains(have, s) })
	case TokenTypeSAML2:
		as, e := srv.verifySAML(r, subject, pf)
		if e != nil {
			return nil, e
		}
		req.sub, bind = as.subject, as.bind
		req.exp = as.notOnOrAfter
		samlID, saml = as.id, as
	}
	if bind == nil {
		// An unbound subject: bound as any token of this client would be.
		bind = pf.own()
	}
	req.bind = bind
	req.act = map[string]any{"sub": actor}
	if prevAct != nil {
		req.act["act"] = prevAct
	}
	if req.scopes, e = grantScopes(form.Get("scope"), allowed); e != nil {
		return nil, e
	}
	if req.aud, e = srv.audience(a.c, form); e != nil {
		return nil, e
	}
	if samlID != "" {
		// Spent last, when nothing else can refuse the request: a request
		// refused for its scope or audience does not use the assertion up.
		if e := srv.spendSAML(r.Context(), saml); e != nil {
			return nil, e
		}
	}
	resp, e := srv.issue(r, a, req)
	if e != nil {
		return nil, e
	}
	if samlID != "" {
		if err := srv.rememberExchange(r.Context(), samlID, resp.jti, resp.exp); err != nil {
			if errors.Is(err, lifecycle.ErrCancelled) {
				return nil, badRequest("invalid_grant", "the SAML assertion is not valid", err)
			}
			return nil, unavailable(err)
		}
	}
	resp.IssuedTokenType = TokenTypeAccessToken
	return resp, nil
}

// proof is what a token exchange request proves it holds: the DPoP key of
// its proof (jkt, RFC 9449 §4 at the token endpoint) and the client
// certificate its connection presented and the listener verified.
type proof struct {
	jkt      string
	x5t      string
	leaf     *x509.Certificate
	tlsAuthn bool // the client authenticated with that certificate
}

// exchangeProof verifies the request's DPoP proof, if any.
func (srv *Server) exchangeProof(r *http.Request, a *authenticated) (*proof, *oauthError) {
	pf := &proof{tlsAuthn: a.cert != nil}
	if leaf := verifiedLeaf(r); leaf != nil {
		pf.leaf = leaf
		pf.x5t, _ = mtls.Thumbprint(r)
	}
	if len(r.Header.Values("DPoP")) > 0 {
		jkt, err := srv.dpop.Verify(r.Context(), r, "", "")
		if err != nil {
			if d, ok := policy.AsDenial(err); ok {
				// RFC 9449 §5: a bad proof at the token endpoint is
				// invalid_dpop_proof, 400.
				return nil, badRequest("invalid_dpop_proof", d.Detail, d.Err)
			}
			return nil, unavailable(err)
		}
		pf.jkt = jkt
	}
	return pf, nil
}

// own is the binding of a new token whose subject promised none: the
// DPoP key of the proof, else the certificate the client authenticated
// with, as issue does for every grant.
func (pf *proof) own() *binding {
	switch {
	case pf.jkt != "":
		return &binding{jkt: pf.jkt}
	case pf.tlsAuthn:
		return &binding{x5t: pf.x5t}
	}
	return &binding{}
}

// carry checks that the request proves every binding of cnf (a token's
// confirmation) and returns the new token's binding: the same, or nil when
// cnf binds nothing. Refusals are invalid_grant: the grant is not usable
// without its proof.
func (pf *proof) carry(cnf map[string]string, which string) (*binding, *oauthError) {
	jkt, x5t := cnf["jkt"], cnf["x5t#S256"]
	if jkt == "" && x5t == "" {
		return nil, nil
	}
	if jkt != "" && pf.jkt != jkt {
		return nil, badRequest("invalid_grant", "the "+which+" token is bound to a DPoP key: send a DPoP proof made with that key",
			fmt.Errorf("%s token bound to jkt %q, proof by %q", which, jkt, pf.jkt))
	}
	if x5t != "" && pf.x5t != x5t {
		return nil, badRequest("invalid_grant", "the "+which+" token is bound to a client certificate this connection did not present",
			fmt.Errorf("%s token bound to x5t#S256 %q, connection has %q", which, x5t, pf.x5t))
	}
	return &binding{jkt: jkt, x5t: x5t}, nil
}

// entitled reports whether client c may exchange the subject token v for
// actor (RFC 8693 §4.4): the token names c as its audience, client_id or
// azp; or its may_act names the actor (sub) or the client (client_id); or
// c's may_exchange lists the token's client.
func entitled(c *client, v *verified, actor string) *oauthError {
	if v.claims.ClientID == c.id || slices.Contains(c.mayExch, v.claims.ClientID) {
		return nil
	}
	if s, _ := v.raw["azp"].(string); s == c.id {
		return nil
	}
	switch aud := v.raw["aud"].(type) {
	case string:
		if aud == c.id {
			return nil
		}
	case []any:
		if slices.Contains(aud, any(c.id)) {
			return nil
		}
	}
	if ma, ok := v.raw["may_act"].(map[string]any); ok {
		if s, _ := ma["sub"].(string); s != "" && s == actor {
			return nil
		}
		if s, _ := ma["client_id"].(string); s != "" && s == c.id {
			return nil
		}
	}
	return badRequest("invalid_grant", "this client is not entitled to the subject token",
		fmt.Errorf("subject token of client %q, exchanged by %q", v.claims.ClientID, c.id))
}

// SAML 2.0 names.
const (
	maxSAMLBytes    = 64 << 10
	samlClockSkew   = 30 * time.Second
	maxSAMLLifetime = time.Hour
)

// samlAssertion is what token exchange takes from a verified assertion.
type samlAssertion struct {
	id, issuer, subject string
	notOnOrAfter        time.Time
	bind                *binding // the proven holder-of-key, nil for bearer
	verified            *saml2.Assertion
}

// tokenEndpoint is the token endpoint's public URL: the one audience and
// Recipient an assertion may name besides the issuer-configured audience.
func (srv *Server) tokenEndpoint() string { return srv.s.issuer + PathToken }

// verifySAML checks a SAML 2.0 assertion given as an RFC 8693 saml2
// subject token (base64url; standard base64 is accepted too): XML that
// survives a round trip (no parser-differential tricks), exactly one
// enveloped XML-DSig signature by a trusted issuer's certificate over the
// whole assertion, and, read from the verified canonical assertion only
// (internal/saml2), the issuer and a NameID. Then the lifecycle every door
// shares (internal/saml2/lifecycle): validity with skew, the audience
// (every AudienceRestriction names the issuer's configured audience,
// default this server's issuer, or the token endpoint's URL, RFC 7522
// §3), not cancelled at the STS, and a subject confirmation that holds
// here: holder-of-key, proven by a DPoP proof made with the confirmed key
// or by the confirmed certificate on the connection; or bearer; either
// with its NotBefore/NotOnOrAfter, a Recipient (if any) that is the token
// endpoint, an Address (if any) that is the client's, no InResponseTo.
// An assertion is exchanged once, spent under the key every door shares,
// so a OneTimeUse assertion used at a saml route is not exchanged, and the
// other way round.
func (srv *Server) verifySAML(r *http.Request, tok string, pf *proof) (*samlAssertion, *oauthError) {
	invalid := func(err error) *oauthError {
		return badRequest("invalid_grant", "the SAML assertion is not valid", err)
	}
	raw, err := decodeB64(tok)
	if err != nil {
		return nil, invalid(errors.New("saml2 token is not base64"))
	}
	if len(raw) > maxSAMLBytes {
		return nil, invalid(fmt.Errorf("assertion larger than %d bytes", maxSAMLBytes))
	}
	// The XML firewall's parser, as at the SOAP doors that take the same
	// assertion (soap.Parse): encoding/xml alone reads documents libxml2
	// refuses (a DTD, attributes run together, a surrogate reference),
	// and a door laxer than the others would accept what they refuse.
	// RoundTripCheck keeps the check this door made before.
	lim := xmlscan.DefaultLimits()
	lim.MaxBytes, lim.RoundTripCheck = maxSAMLBytes, true
	doc, err := xmlscan.Parse(raw, lim)
	if err != nil {
		return nil, invalid(fmt.Errorf("assertion XML: %w", err))
	}
	root := doc.Root()
	if root != nil && root.Tag == "EncryptedAssertion" && root.NamespaceURI() == saml2.NamespaceAssertion {
		if root, err = srv.decryptSAML(root); err != nil {
			return nil, invalid(err)
		}
	}
	if root == nil || root.Tag != "Assertion" || root.NamespaceURI() != saml2.NamespaceAssertion {
		return nil, invalid(errors.New("not a SAML 2.0 Assertion"))
	}
	// The issuer is read unverified only to choose the certificates; the
	// verified one must then be the same.
	var claimed string
	for _, c := range root.ChildElements() {
		if c.Tag == "Issuer" && c.NamespaceURI() == saml2.NamespaceAssertion {
			claimed = strings.TrimSpace(c.Text())
			break
		}
	}
	if claimed == "" {
		return nil, invalid(errors.New("assertion has no Issuer"))
	}
	trust, ok := srv.s.samlIssuers[claimed]
	if !ok {
		return nil, invalid(fmt.Errorf("assertion issuer %q is not trusted", claimed))
	}
	now := srv.now()
	// saml2.Verify rather than goxmldsig: it takes ECDSA signature values
	// as XML-DSig 1.1 has them (r||s, what our STS writes), where goxmldsig
	// wants ASN.1 DER; and it refuses signature wrapping by identity.
	a, err := saml2.Verify(root, saml2.VerifyOptions{Trusted: trust.certs, Now: now})
	if err != nil {
		return nil, invalid(fmt.Errorf("assertion signature: %w", err))
	}
	if a.Issuer != trust.issuer {
		return nil, invalid(errors.New("signed assertion's Issuer differs"))
	}
	ctx := r.Context()
	lc := lifecycle.New(srv.st)
	rules := lifecycle.Rules{Audiences: []string{trust.audience, srv.tokenEndpoint()}, Skew: samlClockSkew}
	if err := lc.Check(ctx, a, now, rules); err != nil {
		if errors.Is(err, lifecycle.ErrUnavailable) {
			return nil, unavailable(err)
		}
		return nil, invalid(err)
	}
	if a.NotOnOrAfter.Sub(now) > maxSAMLLifetime {
		return nil, invalid(fmt.Errorf("assertion valid for more than %v", maxSAMLLifetime))
	}
	ep := lifecycle.Endpoint{URLs: []string{srv.tokenEndpoint()}, ClientIP: srv.clientIP(r)}
	as := &samlAssertion{id: a.ID, issuer: trust.issuer, subject: a.NameID, notOnOrAfter: a.NotOnOrAfter}
	if a.Confirmation(saml2.MethodHolderOfKey) != nil {
		// A holder-of-key assertion is exchanged only by its holder, even
		// when it also offers bearer: whoever copied it has not the key.
		c, err := lifecycle.Confirmation(a, saml2.MethodHolderOfKey, now, samlClockSkew, ep)
		if err != nil {
			return nil, invalid(err)
		}
		if as.bind, err = pf.holds(c); err != nil {
			return nil, badRequest("invalid_grant", "the SAML assertion is holder-of-key: prove its key with a DPoP proof or its client certificate", err)
		}
	} else if _, err := lifecycle.Confirmation(a, saml2.MethodBearer, now, samlClockSkew, ep); err != nil {
		return nil, invalid(err)
	}
	as.verified = a
	return as, nil
}

// spendSAML uses the verified assertion up, under the one store key every
// door shares (see verifySAML).
func (srv *Server) spendSAML(ctx context.Context, as *samlAssertion) *oauthError {
	if err := lifecycle.New(srv.st).Use(ctx, as.verified, srv.now(), samlClockSkew, true); err != nil {
		if errors.Is(err, lifecycle.ErrUnavailable) {
			return unavailable(err)
		}
		return badRequest("invalid_grant", "the SAML assertion is not valid", err)
	}
	return nil
}

// holds returns the binding of a request that proves the holder-of-key
// confirmation c: a DPoP proof made with the confirmed key (the new token
// DPoP-bound to it), or the confirmed certificate (or one with the
// confirmed key) on the connection, verified by the listener (the new
// token bound to it).
func (pf *proof) holds(c *saml2.Confirmation) (*binding, error) {
	if pf.jkt != "" {
		want, err := jwkThumbprint(c.Key)
		if err != nil {
			return nil, err
		}
		if want == pf.jkt {
			return &binding{jkt: pf.jkt}, nil
		}
	}
	if pf.leaf != nil {
		same := false
		if c.Certificate != nil {
			same = c.Certificate.Equal(pf.leaf)
		} else if k, ok := c.Key.(interface{ Equal(crypto.PublicKey) bool }); ok {
			same = k.Equal(pf.leaf.PublicKey)
		}
		if same {
			return &binding{x5t: pf.x5t}, nil
		}
	}
	return nil, fmt.Errorf("no proof of the confirmed key (DPoP proof by %q, client certificate %v)", pf.jkt, pf.leaf != nil)
}

// jwkThumbprint is the RFC 7638 SHA-256 thumbprint of a public key, as a
// DPoP proof's jkt.
func jwkThumbprint(pub crypto.PublicKey) (string, error) {
	k, err := jwk.Import(pub)
	if err != nil {
		return "", fmt.Errorf("holder-of-key: %w", err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("holder-of-key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}
