// Package saml is the "saml" policy: it accepts SOAP requests carrying a
// SAML 2.0 assertion in the WS-Security header (SAML Token Profile 1.1),
// signed by a trusted issuer (the embedded STS, or configured
// certificates), valid now, for this audience, not cancelled at the STS and
// not replayed when OneTimeUse; and proves the sender's right to it by its
// confirmation method: for holder-of-key, a message signature over Body and
// Timestamp made with the confirmed key; for sender-vouches, a trusted
// sender's signature over the assertion and the Body; for bearer, TLS.
//
// The assertion's NameID and attributes become the Principal, read only
// from the verified canonical assertion (internal/saml2), and per-operation
// rules authorize by role. A message without an assertion is handed to the
// wssecurity policy configured inside, if any: on one route, SAML callers
// and UsernameToken or X.509 callers both get in, each checked by its own
// rules, and the first that recognises the message decides.
package saml

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/soap"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/wsse"
	"github.com/gatehouse/gatehouse/internal/wstrust"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Unit registers the saml policy. wssecurity is the factory of the
// policy a `wssecurity:` block configures for messages without an
// assertion: the wssecurity unit's, handed in by internal/builtin so that
// this unit does not import another (docs/architecture.md, "Layers").
func Unit(wssecurity policy.Factory) policy.Unit {
	return policy.Unit{Name: "saml", New: Factory(wssecurity)}
}

// Factory returns the saml policy's factory (see Unit).
func Factory(wssecurity policy.Factory) policy.Factory {
	return func(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
		return build(cfg, env, wssecurity)
	}
}

const (
	nsWSSE = wsse.NamespaceWSSE
	nsWSU  = wsse.NamespaceWSU
)

// ErrDenied is wrapped by the internal cause of every Denial of this
// policy.
var ErrDenied = errors.New("saml: refused")

func deny(status int, code, detail, format string, args ...any) *policy.Denial {
	return &policy.Denial{Status: status, Code: code, Detail: detail,
		Err: fmt.Errorf("%w: %s", ErrDenied, fmt.Sprintf(format, args...))}
}

func invalidToken(format string, args ...any) *policy.Denial {
	return deny(http.StatusUnauthorized, wsse.CodeInvalidSecurityToken, "An invalid security token was provided", format, args...)
}

func failedAuth(format string, args ...any) *policy.Denial {
	return deny(http.StatusUnauthorized, wsse.CodeFailedAuthentication, "The security token could not be authenticated or authorized", format, args...)
}

func invalidSecurity(format string, args ...any) *policy.Denial {
	return deny(http.StatusBadRequest, wsse.CodeInvalidSecurity, "An error was discovered processing the <wsse:Security> header", format, args...)
}

// Policy is the saml policy. It is safe for concurrent use.
type Policy struct {
	s        *settings
	now      func() time.Time
	store    store.Store
	fallback policy.Policy
	client   *http.Client
	lc       *lifecycle.Lifecycle

	stsMu      sync.Mutex
	stsIssuer  string
	stsCert    *x509.Certificate
	stsFetched time.Time

	cacheMu sync.Mutex
	cache   map[[32]byte]cached
}

type cached struct {
	valid bool
	until time.Time
}

var _ policy.Policy = (*Policy)(nil)

// build builds the policy from cfg (see Config), the fallback with
// newFallback. It uses env.Now, and env.Store for one-time-use assertions,
// the embedded STS's published certificate and its cancellations; a nil
// env.Store gets a process-local memory store (and `sts: true` then trusts
// nothing).
func build(cfg *config.Node, env *policy.Env, newFallback policy.Factory) (policy.Policy, error) {
	s, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	p := &Policy{s: s, now: env.Clock(), store: env.StateStore(), cache: map[[32]byte]cached{}}
	p.lc = lifecycle.New(p.store)
	if s.wssecurityCfg != nil {
		if newFallback == nil {
			return nil, cfg.Errorf("wssecurity", "saml: no wssecurity policy type is registered")
		}
		if p.fallback, err = newFallback(s.wssecurityCfg, env); err != nil {
			return nil, err
		}
	}
	if s.remote != nil {
		p.client = &http.Client{Timeout: s.remote.timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return p, nil
}

// Apply checks the request. Denials carry wsse fault codes: 400
// wsse:InvalidSecurity for a malformed header, 401 wsse:InvalidSecurityToken
// for an assertion that is not good, 401 wsse:FailedAuthentication when the
// sender cannot use it (confirmation, replay, TLS) and 403
// wsse:FailedAuthentication when its roles do not allow the operation.
func (p *Policy) Apply(ctx context.Context, ex *policy.Exchange) error {
	body, err := ex.Body(p.s.maxBodyBytes)
	if err != nil {
		return err
	}
	m, err := soap.Parse(body, xmlscan.Limits{MaxBytes: p.s.maxBodyBytes})
	if err != nil {
		return invalidSecurity("%v", err)
	}
	sec, secIndex, d := securityHeader(m)
	if d != nil {
		return d
	}
	var assertion *etree.Element
	if sec != nil {
		for _, c := range sec.ChildElements() {
			enc := isEncryptedAssertion(c)
			if enc || c.Tag == "Assertion" && c.NamespaceURI() == saml2.NamespaceAssertion {
				if assertion != nil {
					return invalidSecurity("more than one SAML assertion in the Security header")
				}
				assertion = c
				if enc {
					var d *policy.Denial
					if assertion, d = p.decryptAssertion(c); d != nil {
						return d
					}
				} else if p.s.dec != nil && p.s.dec.required {
					return failedAuth("an unencrypted assertion, and decryption.required is set")
				}
			}
		}
	}
	if assertion == nil {
		if p.fallback != nil {
			return p.fallback.Apply(ctx, ex)
		}
		return failedAuth("no SAML assertion in the Security header")
	}
	pr, d, err := p.check(ctx, ex, m, sec, assertion)
	if err != nil {
		return err
	}
	if d != nil {
		return d
	}
	if d := p.authorize(m, pr); d != nil {
		return d
	}
	ex.Principal = pr
	if !p.s.keepHeader {
		nb, err := wsse.RemoveHeaderBlock(body, secIndex)
		if err != nil {
			return fmt.Errorf("saml: removing the Security header: %w", err)
		}
		ex.SetBody(nb)
	}
	return nil
}

// securityHeader finds the one Security header for this node (no actor or
// role, or next / ultimate receiver) and its index among the Header's
// elements.
func securityHeader(m *soap.Message) (*etree.Element, int, *policy.Denial) {
	if m.Header == nil {
		return nil, 0, nil
	}
	var sec *etree.Element
	idx := 0
	for i, h := range m.Header.ChildElements() {
		if h.Tag != "Security" || h.NamespaceURI() != nsWSSE {
			continue
		}
		actor := ""
		for _, a := range h.Attr {
			if (a.Key == "actor" || a.Key == "role") && a.Space != "" && a.NamespaceURI() == m.Version.Namespace() {
				actor = a.Value
			}
		}
		switch actor {
		case "", "http://schemas.xmlsoap.org/soap/actor/next", "http://www.w3.org/2003/05/soap-envelope/role/next", "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver":
		default:
			continue
		}
		if sec != nil {
			return nil, 0, invalidSecurity("more than one Security header for this node")
		}
		sec, idx = h, i
	}
	return sec, idx, nil
}

// check verifies the assertion and its confirmation and returns the
// principal.
func (p *Policy) check(ctx context.Context, ex *policy.Exchange, m *soap.Message, sec, el *etree.Element) (*policy.Principal, *policy.Denial, error) {
	now := p.now()
	ids, err := xmlsig.NewIDIndex(m.Envelope)
	if err != nil {
		return nil, invalidSecurity("%v", err), nil
	}
	// The issuer is read unverified only to choose the certificates; the
	// verified one must then be the same.
	var claimed string
	if iss := firstChild(el, saml2.NamespaceAssertion, "Issuer"); iss != nil {
		claimed = strings.TrimSpace(iss.Text())
	}
	trusted, _, err := p.trusted(ctx, claimed, now)
	if err != nil {
		return nil, nil, err
	}
	if len(trusted) == 0 {
		return nil, invalidToken("issuer %q is not trusted", claimed), nil
	}
	a, err := saml2.Verify(el, saml2.VerifyOptions{Trusted: trusted, Now: now, IDs: ids})
	if err != nil {
		return nil, invalidToken("%v", err), nil
	}
	if a.Issuer != claimed {
		return nil, invalidToken("the verified issuer %q differs from %q", a.Issuer, claimed), nil
	}
	// Validity, audience and cancellation: the one lifecycle every door
	// of the gateway applies (internal/saml2/lifecycle). A cancellation is
	// honoured whoever issued the assertion: only the STS writes them.
	if err := p.lc.Check(ctx, a, now, lifecycle.Rules{Audiences: []string{p.s.audience}, Skew: p.s.skew}); err != nil {
		if errors.Is(err, lifecycle.ErrUnavailable) {
			return nil, nil, fmt.Errorf("saml: %w", err)
		}
		return nil, invalidToken("%v", err), nil
	}
	var ts *etree.Element
	for _, c := range sec.ChildElements() {
		if c.Tag == "Timestamp" && c.NamespaceURI() == nsWSU {
			if ts != nil {
				return nil, invalidSecurity("more than one Timestamp"), nil
			}
			ts = c
		}
	}
	if ts != nil {
		if d := (wsse.Freshness{MaxAge: p.s.maxAge, FutureSkew: p.s.skew, Refused: ErrDenied}).CheckTimestamp(ts, now); d != nil {
			return nil, d, nil
		}
	}
	method, msgSig, d := p.confirm(ex, m, sec, el, ts, ids, a, now)
	if d != nil {
		return nil, d, nil
	}
	if p.s.remote != nil {
		ok, err := p.validateRemote(ctx, a, now)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, invalidToken("the STS says assertion %s is invalid", a.ID), nil
		}
	}
	if msgSig != nil {
		if d, err := p.spendSignature(ctx, msgSig, ts, a, now); d != nil || err != nil {
			return nil, d, err
		}
	}
	// OneTimeUse: spent once under the key every door shares, last, so
	// that a request refused for another reason does not spend it.
	if err := p.lc.Use(ctx, a, now, p.s.skew, false); err != nil {
		if errors.Is(err, lifecycle.ErrUnavailable) {
			return nil, nil, fmt.Errorf("saml: %w", err)
		}
		return nil, failedAuth("%v: replay", err), nil
	}
	pr := &policy.Principal{
		Subject:  a.NameID,
		Consumer: a.NameID,
		Method:   "saml",
		Claims: map[string]any{
			"saml_issuer":       a.Issuer,
			"saml_assertion_id": a.ID,
			"saml_confirmation": method,
			"saml_name_format":  a.NameIDFormat,
		},
	}
	for k, v := range a.Attributes {
		pr.Claims[k] = slices.Clone(v)
	}
	return pr, nil, nil
}

// confirm proves the sender's right to the assertion and returns the
// method that did and, for holder-of-key and sender-vouches, the verified
// message signature (which check spends in the replay cache).
func (p *Policy) confirm(ex *policy.Exchange, m *soap.Message, sec, el, ts *etree.Element, ids *xmlsig.IDIndex, a *saml2.Assertion, now time.Time) (string, *xmlsig.Signature, *policy.Denial) {
	var sig *etree.Element
	for _, c := range sec.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == xmlsig.NamespaceDSig {
			if sig != nil {
				return "", nil, invalidSecurity("more than one message Signature")
			}
			sig = c
		}
	}
	var tried []string
	// Each confirmation's data (its times, Recipient, Address, no
	// InResponseTo) is checked by the lifecycle, as at every other door.
	ep := lifecycle.Endpoint{URLs: p.recipients(ex), ClientIP: ex.ClientIP}
	if c := a.Confirmation(saml2.MethodHolderOfKey); c != nil && p.s.hok {
		c, err := lifecycle.Confirmation(a, saml2.MethodHolderOfKey, now, p.s.skew, ep)
		if err != nil {
			return "", nil, failedAuth("%v", err)
		}
		if sig == nil || ts == nil {
			return "", nil, failedAuth("holder-of-key assertion without a message signature and Timestamp")
		}
		v, d := p.verifyMessage(sig, ids, c.Key, m.Body, ts)
		if d != nil {
			return "", nil, d
		}
		return saml2.MethodHolderOfKey, v, nil
	} else if c != nil {
		tried = append(tried, "holder-of-key")
	}
	if c := a.Confirmation(saml2.MethodSenderVouches); c != nil && p.s.sv {
		if _, err := lifecycle.Confirmation(a, saml2.MethodSenderVouches, now, p.s.skew, ep); err != nil {
			return "", nil, failedAuth("%v", err)
		}
		if sig == nil {
			return "", nil, failedAuth("sender-vouches assertion without a message signature")
		}
		cert := senderCert(sig, sec, ids)
		if cert == nil || !slices.ContainsFunc(p.s.senders, cert.Equal) {
			return "", nil, failedAuth("sender-vouches signature not by a trusted sender")
		}
		if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return "", nil, failedAuth("sender certificate not valid now")
		}
		v, d := p.verifyMessage(sig, ids, cert.PublicKey, m.Body, el)
		if d != nil {
			return "", nil, d
		}
		return saml2.MethodSenderVouches, v, nil
	} else if c != nil {
		tried = append(tried, "sender-vouches")
	}
	if c := a.Confirmation(saml2.MethodBearer); c != nil && p.s.bearer {
		if p.s.bearerTLS && !ex.TLS {
			return "", nil, failedAuth("bearer assertion over a connection without TLS")
		}
		if _, err := lifecycle.Confirmation(a, saml2.MethodBearer, now, p.s.skew, ep); err != nil {
			return "", nil, invalidToken("%v", err)
		}
		return saml2.MethodBearer, nil, nil
	} else if c != nil {
		tried = append(tried, "bearer")
	}
	return "", nil, failedAuth("no accepted subject confirmation (assertion offers %v)", tried)
}

// verifyMessage verifies the message signature with key and checks, by
// identity, that it covers every element of must.
func (p *Policy) verifyMessage(sigEl *etree.Element, ids *xmlsig.IDIndex, key any, must ...*etree.Element) (*xmlsig.Signature, *policy.Denial) {
	sig, err := xmlsig.Parse(sigEl, xmlsig.Options{})
	if err != nil {
		return nil, deny(http.StatusBadRequest, wsse.CodeUnsupportedAlgorithm, "An unsupported signature or encryption algorithm was used", "%v", err)
	}
	covered, err := sig.Verify(ids, key)
	if err != nil {
		return nil, deny(http.StatusUnauthorized, wsse.CodeFailedCheck, "The signature or decryption was invalid", "message signature: %v", err)
	}
	for _, el := range must {
		if !slices.Contains(covered, el) {
			return nil, deny(http.StatusUnauthorized, wsse.CodeFailedCheck, "The signature or decryption was invalid", "the message signature does not cover %s", el.Tag)
		}
	}
	return sig, nil
}

// spendSignature spends a verified holder-of-key or sender-vouches
// message signature in the replay cache shared with the wssecurity
// policy and the STS (xmlsig.Spend, keyed on the canonical SignedInfo):
// without it, a captured message would be accepted again for as long as
// its Timestamp is fresh. The key is kept while the message could be
// accepted: its Timestamp's window, or without a Timestamp (sender-vouches)
// the assertion's life.
func (p *Policy) spendSignature(ctx context.Context, sig *xmlsig.Signature, ts *etree.Element, a *saml2.Assertion, now time.Time) (*policy.Denial, error) {
	ttl := p.s.maxAge + p.s.skew
	if ts == nil {
		ttl = a.NotOnOrAfter.Add(p.s.skew).Sub(now)
	}
	if err := xmlsig.Spend(ctx, p.store, sig, ttl); err != nil {
		if errors.Is(err, xmlsig.ErrReplay) {
			return failedAuth("the message signature over the same SignedInfo was accepted before (assertion %s): replay", a.ID), nil
		}
		return nil, fmt.Errorf("saml: %w", err)
	}
	return nil, nil
}

// senderCert returns the BinarySecurityToken of this Security header that
// the signature's KeyInfo references, or nil.
func senderCert(sig, sec *etree.Element, ids *xmlsig.IDIndex) *x509.Certificate {
	ki := firstChild(sig, xmlsig.NamespaceDSig, "KeyInfo")
	str := firstChild(ki, nsWSSE, "SecurityTokenReference")
	ref := firstChild(str, nsWSSE, "Reference")
	if ref == nil {
		return nil
	}
	id, ok := strings.CutPrefix(ref.SelectAttrValue("URI", ""), "#")
	el := ids.Lookup(id)
	if !ok || el == nil || el.Parent() != sec || el.Tag != "BinarySecurityToken" || el.NamespaceURI() != nsWSSE {
		return nil
	}
	der, err := xmlsig.DecodeBase64(el.Text())
	if err != nil {
		return nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	return c
}

// trusted returns the certificates of the issuer and whether it is the
// embedded STS.
func (p *Policy) trusted(ctx context.Context, issuer string, now time.Time) ([]*x509.Certificate, bool, error) {
	if certs, ok := p.s.issuers[issuer]; ok {
		return certs, false, nil
	}
	if !p.s.sts {
		return nil, false, nil
	}
	p.stsMu.Lock()
	defer p.stsMu.Unlock()
	// Re-read at most every 30s: the STS may start after this policy
	// (it is built after the routes) or on another instance.
	if p.stsCert == nil || now.Sub(p.stsFetched) > 30*time.Second {
		iss, cert, err := wstrust.LoadPublished(ctx, p.store)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, false, fmt.Errorf("saml: reading the STS certificate: %w", err)
		default:
			p.stsIssuer, p.stsCert = iss, cert
		}
		p.stsFetched = now
	}
	if p.stsCert != nil && issuer == p.stsIssuer {
		return []*x509.Certificate{p.stsCert}, true, nil
	}
	return nil, false, nil
}

// recipients are this endpoint's URLs a confirmation's Recipient may
// name: the configured ones (the public URLs behind a proxy), else the URL
// the request reached the gateway at.
func (p *Policy) recipients(ex *policy.Exchange) []string {
	if len(p.s.recipients) > 0 {
		return p.s.recipients
	}
	scheme := "http"
	if ex.TLS {
		scheme = "https"
	}
	return []string{scheme + "://" + ex.Request.Host + ex.Request.URL.EscapedPath()}
}

// authorize applies the per-operation rules.
func (p *Policy) authorize(m *soap.Message, pr *policy.Principal) *policy.Denial {
	if len(p.s.rules) == 0 {
		return nil
	}
	roles, _ := pr.Claims[p.s.rolesAttr].([]string)
	for _, r := range p.s.rules {
		if r.local != "*" && (r.local != m.Operation.Local || r.space != m.Operation.Space) {
			continue
		}
		if len(r.roles) == 0 || slices.ContainsFunc(r.roles, func(s string) bool { return slices.Contains(roles, s) }) {
			return nil
		}
		return deny(http.StatusForbidden, wsse.CodeFailedAuthentication, "The security token could not be authenticated or authorized",
			"%q (roles %v) may not call {%s}%s", pr.Subject, roles, m.Operation.Space, m.Operation.Local)
	}
	return deny(http.StatusForbidden, wsse.CodeFailedAuthentication, "The security token could not be authenticated or authorized",
		"no rule allows {%s}%s", m.Operation.Space, m.Operation.Local)
}

// validateRemote asks the configured STS with the Validate binding,
// remembering the answer for the cache time (never past expiry; by
// default only an "invalid" one, which cannot turn valid again).
func (p *Policy) validateRemote(ctx context.Context, a *saml2.Assertion, now time.Time) (bool, error) {
	key := sha256.Sum256(a.Canonical)
	p.cacheMu.Lock()
	c, ok := p.cache[key]
	p.cacheMu.Unlock()
	if ok && now.Before(c.until) {
		return c.valid, nil
	}
	msg := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"><s:Header><wsa:Action>` +
		wstrust.NamespaceWST + `/RST/Validate</wsa:Action></s:Header><s:Body><wst:RequestSecurityToken xmlns:wst="` + wstrust.NamespaceWST + `"><wst:TokenType>` +
		wstrust.TokenTypeStatus + `</wst:TokenType><wst:RequestType>` + wstrust.RequestValidate + `</wst:RequestType><wst:ValidateTarget>` +
		string(a.Canonical) + `</wst:ValidateTarget></wst:RequestSecurityToken></s:Body></s:Envelope>`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.s.remote.url, strings.NewReader(msg))
	if err != nil {
		return false, fmt.Errorf("saml: validate_with_sts: %w", err)
	}
	req.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+wstrust.NamespaceWST+`/RST/Validate"`)
	res, err := p.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("saml: validate_with_sts: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return false, fmt.Errorf("saml: validate_with_sts: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("saml: validate_with_sts: status %d", res.StatusCode)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil || bytes.Contains(b, []byte("<!")) {
		return false, fmt.Errorf("saml: validate_with_sts: the response is not acceptable XML")
	}
	code := doc.FindElement("//Status/Code")
	if code == nil || code.NamespaceURI() != wstrust.NamespaceWST {
		return false, fmt.Errorf("saml: validate_with_sts: no wst:Status in the response")
	}
	valid := strings.TrimSpace(code.Text()) == wstrust.StatusValid
	until := now.Add(p.s.remote.cache)
	if !valid {
		until = now.Add(p.s.remote.invalidFor)
	}
	if a.NotOnOrAfter.Before(until) {
		until = a.NotOnOrAfter
	}
	p.cacheMu.Lock()
	if len(p.cache) >= 4096 {
		clear(p.cache)
	}
	p.cache[key] = cached{valid: valid, until: until}
	p.cacheMu.Unlock()
	return valid, nil
}

func firstChild(el *etree.Element, ns, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}
