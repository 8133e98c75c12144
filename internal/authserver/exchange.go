package authserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/saml2"
	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// tokenExchange serves the RFC 8693 grant. The subject token is one of our
// access tokens (exchanged for a down-scoped one, for another audience) or
// a SAML 2.0 assertion from a trusted issuer. The new token's act claim
// names the client that exchanged it (or the actor token's subject), with
// any earlier act nested inside (§4.1).
func (srv *Server) tokenExchange(r *http.Request, a *authenticated, form url.Values) (*tokenResponse, *oauthError) {
	subject, typ := form.Get("subject_token"), form.Get("subject_token_type")
	if subject == "" || typ == "" {
		return nil, badRequest("invalid_request", "subject_token and subject_token_type are required", nil)
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken && rt != TokenTypeJWT {
		return nil, badRequest("invalid_request", "requested_token_type must be an access token or a JWT", nil)
	}
	req := issueRequest{grant: config.GrantTokenExchange}
	allowed := a.c.scopes
	var prevAct any
	switch typ {
	case TokenTypeAccessToken, TokenTypeJWT:
		v, err := srv.verifyOwn(subject)
		if err == nil {
			err = srv.checkLive(v)
		}
		if err != nil {
			return nil, badRequest("invalid_grant", "the subject token is not valid", err)
		}
		req.sub = v.claims.Sub
		req.exp = time.Unix(v.claims.Exp, 0)
		prevAct = v.raw["act"]
		// Down-scoping only: never more than the subject token had.
		have := strings.Fields(v.claims.Scope)
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(s string) bool { return !slices.Contains(have, s) })
	case TokenTypeSAML2:
		as, err := srv.verifySAML(r.Context(), subject)
		if err != nil {
			var oe *oauthError
			if errors.As(err, &oe) {
				return nil, oe
			}
			return nil, badRequest("invalid_grant", "the SAML assertion is not valid", err)
		}
		req.sub = as.subject
	default:
		return nil, badRequest("invalid_request", "unsupported subject_token_type", nil)
	}
	actor := a.c.id
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
		actor = v.claims.Sub
	}
	req.act = map[string]any{"sub": actor}
	if prevAct != nil {
		req.act["act"] = prevAct
	}
	var e *oauthError
	if req.scopes, e = grantScopes(form.Get("scope"), allowed); e != nil {
		return nil, e
	}
	if req.aud, e = srv.audience(a.c, form); e != nil {
		return nil, e
	}
	resp, e := srv.issue(r, a, req)
	if e != nil {
		return nil, e
	}
	resp.IssuedTokenType = TokenTypeAccessToken
	return resp, nil
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
}

// verifySAML checks a SAML 2.0 assertion given as an RFC 8693 saml2
// subject token (base64url; standard base64 is accepted too): XML that
// survives a round trip (no parser-differential tricks), exactly one
// enveloped XML-DSig signature (RSA-SHA256 or ECDSA-SHA256 over SHA-256
// digests) by a trusted issuer's certificate over the whole assertion, and,
// read from the verified canonical assertion only (internal/saml2), the
// issuer, the validity window, our audience and a NameID. The assertion is
// single-use.
func (srv *Server) verifySAML(ctx context.Context, tok string) (*samlAssertion, error) {
	raw, err := decodeB64(tok)
	if err != nil {
		return nil, errors.New("saml2 token is not base64")
	}
	if len(raw) > maxSAMLBytes {
		return nil, fmt.Errorf("assertion larger than %d bytes", maxSAMLBytes)
	}
	if err := rtvalidator.Validate(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("assertion XML does not round-trip: %w", err)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("assertion XML: %w", err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Assertion" || root.NamespaceURI() != saml2.NamespaceAssertion {
		return nil, errors.New("not a SAML 2.0 Assertion")
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
		return nil, errors.New("assertion has no Issuer")
	}
	trust, ok := srv.s.samlIssuers[claimed]
	if !ok {
		return nil, fmt.Errorf("assertion issuer %q is not trusted", claimed)
	}
	now := srv.now()
	// saml2.Verify rather than goxmldsig: it takes ECDSA signature values
	// as XML-DSig 1.1 has them (r||s, what our STS writes), where goxmldsig
	// wants ASN.1 DER; and it refuses signature wrapping by identity.
	a, err := saml2.Verify(root, saml2.VerifyOptions{Trusted: trust.certs, Now: now})
	if err != nil {
		return nil, fmt.Errorf("assertion signature: %w", err)
	}
	if a.Issuer != trust.issuer {
		return nil, errors.New("signed assertion's Issuer differs")
	}
	if err := a.Check(now, samlClockSkew); err != nil {
		return nil, fmt.Errorf("assertion validity: %w", err)
	}
	if a.NotOnOrAfter.Sub(now) > maxSAMLLifetime {
		return nil, fmt.Errorf("assertion valid for more than %v", maxSAMLLifetime)
	}
	// Each AudienceRestriction must include us (SAML core §2.5.1.4), and
	// there must be one.
	if !a.AudienceOK(trust.audience) {
		return nil, errors.New("assertion audience is not this server")
	}
	as := &samlAssertion{id: a.ID, issuer: trust.issuer, subject: a.NameID, notOnOrAfter: a.NotOnOrAfter}
	fresh, err := srv.st.SetNX(ctx, assertionPref+"saml:"+as.issuer+":"+as.id, []byte("1"), as.notOnOrAfter.Add(samlClockSkew).Sub(now))
	if err != nil {
		return nil, unavailable(fmt.Errorf("saml replay cache: %w", err))
	}
	if !fresh {
		return nil, errors.New("assertion already used")
	}
	return as, nil
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
