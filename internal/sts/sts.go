// Package sts is Gatehouse's embedded WS-Trust 1.3 security token service:
// it issues signed SAML 2.0 assertions to SOAP clients and validates,
// renews and cancels them, at one endpoint (default /sts) that speaks SOAP
// 1.1 and 1.2 and serves its WSDL with the WS-SecurityPolicy it requires.
//
// Requesters authenticate with a WS-Security UsernameToken or an
// X.509-signed request, checked by the wssecurity policy's own rules
// (wssecurity.Policy.Verify). An assertion is issued only to a configured
// subject, for a configured relying party (the AppliesTo address becomes
// its audience), with the subject's roles, groups and email as attributes;
// Bearer assertions carry a bearer confirmation, PublicKey ones (holder of
// key) the requester's certificate, which must be the one that signed the
// request. Every issued assertion is recorded by ID in the state store;
// a cancellation is written there too, so that every instance, and every
// saml policy reading the same store, sees it at once.
package sts

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/wssecurity"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/soap"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/wsse"
	"github.com/gatehouse/gatehouse/internal/wstrust"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// Deps are what a Server needs besides its config.
type Deps struct {
	// Store holds the signing key, the registry of issued assertions and
	// cancellations, and the authentication's replay caches. Required.
	Store store.Store
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger is the operational log. Nil: slog.Default().
	Logger *slog.Logger
	// Config places errors (file, line, field); may be nil.
	Config *config.Config
	// BaseDir resolves relative files (key and certificate).
	BaseDir string
	// Audit records issued and cancelled assertions. Nil: discard.
	Audit *audit.Log
	// TrustedProxies are the peers whose forwarding headers name the
	// client address that failed authentications are counted against.
	TrustedProxies []netip.Prefix
	// Metrics counts the requests by operation and outcome (metrics.go).
	// Nil: nothing is counted.
	Metrics *telemetry.Metrics
}

// Server is the STS. It is safe for concurrent use.
type Server struct {
	s      *settings
	st     store.Store
	now    func() time.Time
	log    *slog.Logger
	audit  *audit.Log
	auth   *wssecurity.Policy
	signer *saml2.Signer
	wsdl   []byte
	// trusted are the proxies whose forwarding headers are believed.
	trusted []netip.Prefix
	// lc keeps the assertions' lifecycle (cancellation, one-time use) in
	// the store, shared with every other door that accepts them.
	lc      *lifecycle.Lifecycle
	metrics *telemetry.Metrics
}

// New builds the STS from cfg: it checks the config, builds the
// authentication (a wssecurity policy from cfg.Authentication), loads or
// makes the signing key and publishes the issuer's certificate in the
// store for relying parties.
func New(cfg config.STS, deps Deps) (*Server, error) {
	if deps.Store == nil {
		return nil, errors.New("sts: no state store")
	}
	s, err := newSettings(&cfg, deps.Config, deps.BaseDir)
	if err != nil {
		return nil, err
	}
	srv := &Server{s: s, st: deps.Store, now: deps.Now, log: deps.Logger, audit: deps.Audit, trusted: deps.TrustedProxies, lc: lifecycle.New(deps.Store),
		metrics: deps.Metrics}
	if srv.now == nil {
		srv.now = time.Now
	}
	if srv.log == nil {
		srv.log = slog.Default()
	}
	srv.log = srv.log.With("component", "sts")
	if cfg.Authentication.IsZero() {
		return nil, configError(deps.Config, "authentication", "required field is missing (the settings of a wssecurity policy)")
	}
	srv.auth, err = wssecurity.Build(cfg.Authentication, &policy.Env{
		Route:  policy.Route{Name: "sts", Protocol: policy.SOAP12},
		Logger: srv.log, Now: srv.now, Store: deps.Store,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if srv.signer, err = srv.loadSigner(ctx); err != nil {
		return nil, err
	}
	if err := wstrust.Publish(ctx, srv.st, s.issuer, srv.signer.Certificate()); err != nil {
		return nil, err
	}
	srv.wsdl = wsdl(s.path)
	return srv, nil
}

// Certificate returns the certificate whose key signs the assertions: what
// relying parties trust.
func (srv *Server) Certificate() *x509.Certificate { return srv.signer.Certificate() }

// Issuer returns the assertions' Issuer.
func (srv *Server) Issuer() string { return srv.s.issuer }

// Path returns the endpoint path.
func (srv *Server) Path() string { return srv.s.path }

// Owns reports whether the cleaned request path is the STS endpoint.
func (srv *Server) Owns(path string) bool { return path == srv.s.path }

// Close releases nothing today; it is there so the gateway retires an STS
// like its other per-load parts.
func (srv *Server) Close() error { return nil }

// fault is a WS-Trust (or WS-Security) fault: its code's local name in the
// wst namespace, the HTTP status and the reason shown.
type fault struct {
	code   string // wst local name
	status int
	reason string
	err    error // logged
	// retryAfter, when set, is sent as Retry-After (a 429).
	retryAfter time.Duration
}

func (f *fault) Error() string { return "sts: " + f.code + ": " + f.err.Error() }

// WS-Trust 1.3 §11 fault codes.
const (
	FaultInvalidRequest        = "InvalidRequest"
	FaultFailedAuthentication  = "FailedAuthentication"
	FaultRequestFailed         = "RequestFailed"
	FaultInvalidSecurityToken  = "InvalidSecurityToken"
	FaultBadRequest            = "BadRequest"
	FaultExpiredData           = "ExpiredData"
	FaultInvalidScope          = "InvalidScope"
	FaultUnableToRenew         = "UnableToRenew"
	faultReasonInvalidRequest  = "The request was invalid or malformed"
	faultReasonFailedAuth      = "Authentication failed"
	faultReasonRequestFailed   = "The specified request failed"
	faultReasonInvalidSecToken = "Security token has been revoked, expired or is otherwise invalid"
)

func newFault(code string, err error) *fault {
	f := &fault{code: code, err: err}
	switch code {
	case FaultInvalidRequest, FaultBadRequest:
		f.status, f.reason = http.StatusBadRequest, faultReasonInvalidRequest
	case FaultFailedAuthentication:
		f.status, f.reason = http.StatusUnauthorized, faultReasonFailedAuth
	case FaultInvalidSecurityToken:
		f.status, f.reason = http.StatusUnauthorized, faultReasonInvalidSecToken
	case FaultExpiredData:
		f.status, f.reason = http.StatusUnauthorized, "The request data is out-of-date"
	case FaultInvalidScope:
		f.status, f.reason = http.StatusForbidden, "The request scope is invalid"
	case FaultUnableToRenew:
		f.status, f.reason = http.StatusBadRequest, "The requested renewal failed"
	default:
		f.status, f.reason = http.StatusInternalServerError, faultReasonRequestFailed
	}
	return f
}

// ServeHTTP serves the endpoint: GET with ?wsdl the WSDL, POST an RST.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if _, ok := r.URL.Query()["wsdl"]; !ok {
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "POST a WS-Trust RequestSecurityToken, or GET ?wsdl", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(srv.wsdl)))
		if r.Method == http.MethodGet {
			w.Write(srv.wsdl)
		}
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v12 := strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/soap+xml")
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return
	}
	if len(body) > MaxRequestBytes {
		f := newFault(FaultInvalidRequest, fmt.Errorf("request larger than %d bytes", MaxRequestBytes))
		srv.count(nil, f)
		srv.writeFault(w, v12, "", f)
		return
	}
	ip := srv.clientIP(r)
	if f := srv.overBudget(r.Context(), ip); f != nil {
		srv.count(nil, f)
		srv.writeFault(w, v12, "", f)
		return
	}
	out, err := srv.Handle(r.Context(), body, r.TLS != nil)
	if err != nil {
		var f *fault
		if errors.As(err, &f) && f.code == FaultFailedAuthentication {
			srv.spendFailure(r.Context(), ip)
		}
		if !errors.As(err, &f) {
			srv.log.Error("sts: request failed", "err", err)
			f = newFault(FaultRequestFailed, err)
		}
		if out != nil {
			v12 = out.V12
		}
		srv.count(out, f)
		srv.writeFault(w, v12, out.relatesTo(), f)
		return
	}
	srv.count(out, nil)
	srv.writeResponse(w, out)
}

// Output is the answer to one RST.
type Output struct {
	// V12 reports a SOAP 1.2 request, answered in 1.2.
	V12 bool
	// RelatesTo is the request's wsa:MessageID, "" without one.
	RelatesTo string
	// Action is the response's wsa:Action.
	Action string
	// Body is the response's Body element (an RSTR or RSTRC).
	Body *etree.Element
	// requestType is the RST's request type, "" when it was not read.
	requestType string
}

func (o *Output) relatesTo() string {
	if o == nil {
		return ""
	}
	return o.RelatesTo
}

// Handle answers one RST message (tls: whether it came over TLS). On
// error, which is a *fault for every refusal and anything else for an
// internal failure, Output still tells the SOAP version and RelatesTo
// when the message got that far. It is ServeHTTP without HTTP, for
// tests and benchmarks.
func (srv *Server) Handle(ctx context.Context, body []byte, tls bool) (*Output, error) {
	m, err := soap.Parse(body, xmlscan.Limits{MaxBytes: MaxRequestBytes})
	if err != nil {
		return nil, newFault(FaultInvalidRequest, err)
	}
	out := &Output{V12: m.Version == soap.V12, RelatesTo: messageID(m)}
	req, err := parseRST(m.OperationElement)
	if err != nil {
		return out, newFault(FaultInvalidRequest, err)
	}
	out.requestType = req.requestType
	if a := action(m); a != "" && !actionMatches(a, req.requestType) {
		return out, newFault(FaultInvalidRequest, fmt.Errorf("wsa:Action %q does not match RequestType %q", a, req.requestType))
	}
	var caller *wsse.Result
	if req.requestType != RequestValidate || srv.s.validateAuth {
		res, err := srv.auth.Verify(ctx, body, tls)
		if err != nil {
			if d, ok := policy.AsDenial(err); ok {
				return out, newFault(FaultFailedAuthentication, fmt.Errorf("%s: %w", d.Code, d))
			}
			return out, err
		}
		caller = res
	}
	switch req.requestType {
	case RequestIssue:
		out.Body, err = srv.issue(ctx, req, caller)
		out.Action = wstBase + "RSTRC/IssueFinal"
	case RequestValidate:
		out.Body, err = srv.validate(ctx, req)
		out.Action = wstBase + "RSTR/ValidateFinal"
	case RequestRenew:
		out.Body, err = srv.renew(ctx, req, caller)
		out.Action = wstBase + "RSTR/RenewFinal"
	case RequestCancel:
		out.Body, err = srv.cancel(ctx, req, caller)
		out.Action = wstBase + "RSTR/CancelFinal"
	}
	if err != nil {
		return out, err
	}
	return out, nil
}

// action returns the message's wsa:Action, "" without one.
func action(m *soap.Message) string {
	for _, ns := range []string{nsWSA, nsWSA2004} {
		if a := childNS(m.Header, ns, "Action"); a != nil {
			return strings.TrimSpace(a.Text())
		}
	}
	return ""
}

// actionMatches reports whether the RST's wsa:Action fits its RequestType.
func actionMatches(action, requestType string) bool {
	return action == wstBase+"RST/"+strings.TrimPrefix(requestType, wstBase)
}

// messageID returns wsa:MessageID (or adal-node's wsa:messageID), for
// wsa:RelatesTo.
func messageID(m *soap.Message) string {
	for _, ns := range []string{nsWSA, nsWSA2004} {
		for _, n := range []string{"MessageID", "messageID"} {
			if e := childNS(m.Header, ns, n); e != nil {
				return strings.TrimSpace(e.Text())
			}
		}
	}
	return ""
}

// record is an issued assertion in the registry.
type record struct {
	Subject   string    `json:"sub"`
	Audience  string    `json:"aud"`
	KeyType   string    `json:"key_type"`
	NotAfter  time.Time `json:"exp"`
	Renewable bool      `json:"renewable"`
}

func (srv *Server) issue(ctx context.Context, req *rst, caller *wsse.Result) (*etree.Element, error) {
	switch req.tokenType {
	case "", saml2.TokenTypeSAML20, TokenTypeSAML2Assertion:
	default:
		return nil, newFault(FaultBadRequest, fmt.Errorf("token type %q: only SAML 2.0 assertions are issued", req.tokenType))
	}
	sub, ok := srv.s.subjects[caller.Principal.Subject]
	if !ok {
		return nil, newFault(FaultFailedAuthentication, fmt.Errorf("subject %q is not configured to receive assertions", caller.Principal.Subject))
	}
	if req.appliesTo == "" {
		return nil, newFault(FaultInvalidRequest, errors.New("no AppliesTo: the relying party is required"))
	}
	rp, ok := srv.s.parties[req.appliesTo]
	if !ok {
		return nil, newFault(FaultInvalidScope, fmt.Errorf("AppliesTo %q is not a known relying party", req.appliesTo))
	}
	keyType := req.keyType
	var hok *x509.Certificate
	switch keyType {
	case "", KeyTypeBearer:
		keyType = KeyTypeBearer
		if req.useKey != nil {
			return nil, newFault(FaultInvalidRequest, errors.New("UseKey with a Bearer KeyType"))
		}
	case KeyTypePublicKey:
		// The key bound must be the requester's: the one that signed this
		// request, which proves possession of its private half.
		if caller.Certificate == nil {
			return nil, newFault(FaultInvalidRequest, errors.New("KeyType PublicKey needs an X.509-signed request (proof of possession)"))
		}
		hok = caller.Certificate
		if req.useKey != nil && !req.useKey.Equal(caller.Certificate) {
			return nil, newFault(FaultInvalidRequest, errors.New("UseKey is not the certificate that signed the request"))
		}
	default:
		return nil, newFault(FaultInvalidRequest, fmt.Errorf("KeyType %q is not supported (Bearer or PublicKey)", req.keyType))
	}
	authn := saml2.AuthnPassword
	if caller.Principal.Method == "wss-x509" {
		authn = saml2.AuthnX509
	}
	return srv.mint(ctx, req, sub, rp, keyType, hok, authn, RequestIssue)
}

// mint makes, signs and records an assertion and returns the RSTR (in an
// RSTRC for Issue).
func (srv *Server) mint(ctx context.Context, req *rst, sub *subject, rp *party, keyType string, hok *x509.Certificate, authn, requestType string) (*etree.Element, error) {
	now := srv.now().UTC().Truncate(time.Millisecond)
	exp := now.Add(rp.lifetime)
	if !req.expires.IsZero() && req.expires.After(now) && req.expires.Before(exp) {
		exp = req.expires.UTC()
	}
	a := &saml2.Assertion{
		Issuer: srv.s.issuer, IssueInstant: now, NameID: sub.name,
		NotBefore: now, NotOnOrAfter: exp,
		Audiences:    [][]string{{rp.audience}},
		OneTimeUse:   rp.oneTimeUse,
		AuthnContext: authn, AuthnInstant: now,
		Attributes: sub.attrs,
	}
	if keyType == KeyTypePublicKey {
		a.Confirmations = []saml2.Confirmation{{Method: saml2.MethodHolderOfKey, Certificate: hok, Key: hok.PublicKey}}
	} else {
		a.Confirmations = []saml2.Confirmation{{Method: saml2.MethodBearer, NotOnOrAfter: exp}}
	}
	el := saml2.Build(a)
	if err := srv.signer.Sign(el); err != nil {
		return nil, err
	}
	rec, _ := json.Marshal(record{Subject: sub.name, Audience: rp.audience, KeyType: keyType, NotAfter: exp, Renewable: true})
	if err := srv.st.Set(ctx, issuedPrefix+a.ID, rec, exp.Sub(now)+srv.s.renewGrace+ClockSkew); err != nil {
		return nil, fmt.Errorf("sts: recording the assertion: %w", err)
	}
	srv.log.Info("sts: issued", "id", a.ID, "sub", sub.name, "aud", rp.audience, "key_type", keyType, "exp", exp, "request", requestType)
	srv.audit.Record(audit.Event{Kind: audit.STSIssue, Time: now, Principal: sub.name, JTI: a.ID, Expires: exp,
		Policy: "sts", Detail: requestType + " aud=" + rp.audience + " key_type=" + keyType})

	rstr := newRSTR(req.context)
	tt := cmp.Or(req.tokenType, saml2.TokenTypeSAML20)
	rstr.CreateElement("wst:TokenType").SetText(tt)
	if rp.encrypt != nil {
		var err error
		if el, err = encryptFor(el, rp.encrypt); err != nil {
			return nil, err
		}
	}
	rstr.CreateElement("wst:RequestedSecurityToken").AddChild(el)
	for _, n := range []string{"wst:RequestedAttachedReference", "wst:RequestedUnattachedReference"} {
		str := rstr.CreateElement(n).CreateElement("wsse:SecurityTokenReference")
		str.CreateAttr("xmlns:wsse", nsWSSE)
		str.CreateAttr("xmlns:wsse11", nsWSSE11)
		str.CreateAttr("wsse11:TokenType", saml2.TokenTypeSAML20)
		ki := str.CreateElement("wsse:KeyIdentifier")
		ki.CreateAttr("ValueType", saml2.ValueTypeSAMLID)
		ki.SetText(a.ID)
	}
	at := rstr.CreateElement("wsp:AppliesTo")
	at.CreateAttr("xmlns:wsp", nsWSP)
	epr := at.CreateElement("wsa:EndpointReference")
	epr.CreateAttr("xmlns:wsa", nsWSA)
	epr.CreateElement("wsa:Address").SetText(rp.audience)
	lt := rstr.CreateElement("wst:Lifetime")
	lt.CreateAttr("xmlns:wsu", nsWSU)
	lt.CreateElement("wsu:Created").SetText(saml2.FormatTime(now))
	lt.CreateElement("wsu:Expires").SetText(saml2.FormatTime(exp))
	rstr.CreateElement("wst:KeyType").SetText(keyType)
	if requestType != RequestIssue {
		return rstr, nil
	}
	// WS-Trust 1.3 §4.4: the final Issue response is a collection.
	rstrc := etree.NewElement("wst:RequestSecurityTokenResponseCollection")
	rstrc.CreateAttr("xmlns:wst", NamespaceWST)
	rstr.RemoveAttr("xmlns:wst")
	rstrc.AddChild(rstr)
	return rstrc, nil
}

func newRSTR(context string) *etree.Element {
	rstr := etree.NewElement("wst:RequestSecurityTokenResponse")
	rstr.CreateAttr("xmlns:wst", NamespaceWST)
	if context != "" {
		rstr.CreateAttr("Context", context)
	}
	return rstr
}

// check verifies a target assertion as ours: signature by our key, our
// issuer, not cancelled; and its record. Times and audience are the
// caller's to check.
func (srv *Server) check(ctx context.Context, el *etree.Element) (*saml2.Assertion, *record, error) {
	a, err := saml2.Verify(el, saml2.VerifyOptions{Trusted: []*x509.Certificate{srv.signer.Certificate()}, Now: srv.now()})
	if err != nil {
		return nil, nil, err
	}
	if a.Issuer != srv.s.issuer {
		return nil, nil, fmt.Errorf("issuer %q is not this STS", a.Issuer)
	}
	gone, err := srv.lc.Cancelled(ctx, a.ID)
	if err != nil {
		return nil, nil, &errInternal{err}
	}
	if gone {
		return nil, nil, errCancelled
	}
	rec, err := srv.record(ctx, a.ID)
	if err != nil {
		// The assertion is returned for the caller's better fault: an
		// expired assertion's record expires from the registry too.
		return a, nil, err
	}
	return a, rec, nil
}

var errCancelled = errors.New("sts: the assertion was cancelled")

func (srv *Server) record(ctx context.Context, id string) (*record, error) {
	raw, err := srv.st.Get(ctx, issuedPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("sts: assertion %q is not in the registry (expired from it, or not issued here)", id)
	}
	if err != nil {
		return nil, &errInternal{fmt.Errorf("sts: registry: %w", err)}
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("sts: registry record %q is corrupt: %w", id, err)
	}
	return &rec, nil
}

func (srv *Server) validate(ctx context.Context, req *rst) (*etree.Element, error) {
	if req.target == nil {
		return nil, newFault(FaultInvalidRequest, errors.New("a Validate needs a ValidateTarget holding the assertion"))
	}
	code, reason := StatusValid, "valid"
	a, _, err := srv.check(ctx, req.target)
	if err == nil {
		// The same lifecycle as every other door (validity, cancellation),
		// the audience being any of our relying parties.
		err = srv.lc.Check(ctx, a, srv.now(), lifecycle.Rules{Skew: ClockSkew})
	}
	if err == nil {
		ok := false
		for aud := range srv.s.parties {
			ok = ok || a.AudienceOK(aud)
		}
		if !ok {
			err = errors.New("the audience is not a known relying party")
		}
	}
	if err == nil {
		// Validate is a status query: it does not spend a one-time
		// assertion, but one spent at any door is no longer valid.
		var spent bool
		if spent, err = srv.lc.Spent(ctx, a); err == nil && spent {
			err = fmt.Errorf("%w: assertion %s", lifecycle.ErrSpent, a.ID)
		}
	}
	if errors.Is(err, lifecycle.ErrUnavailable) {
		err = &errInternal{err}
	}
	if err != nil {
		var ie *errInternal
		if errors.As(err, &ie) {
			return nil, err
		}
		code, reason = StatusInvalid, "invalid"
		srv.log.Info("sts: validate: invalid", "err", err)
	}
	rstr := newRSTR(req.context)
	rstr.CreateElement("wst:TokenType").SetText(TokenTypeStatus)
	st := rstr.CreateElement("wst:Status")
	st.CreateElement("wst:Code").SetText(code)
	st.CreateElement("wst:Reason").SetText(reason)
	return rstr, nil
}

// errInternal marks store failures that must not read as "invalid".
type errInternal struct{ error }

func (srv *Server) renew(ctx context.Context, req *rst, caller *wsse.Result) (*etree.Element, error) {
	if req.target == nil {
		return nil, newFault(FaultInvalidRequest, errors.New("a Renew needs a RenewTarget holding the assertion"))
	}
	a, rec, err := srv.check(ctx, req.target)
	var ie *errInternal
	now := srv.now()
	switch {
	case errors.As(err, &ie):
		return nil, err
	case a != nil && a.NotOnOrAfter.Add(srv.s.renewGrace).Before(now):
		return nil, newFault(FaultExpiredData, fmt.Errorf("assertion %s expired at %s, beyond renew_grace", a.ID, a.NotOnOrAfter))
	case err != nil:
		return nil, newFault(FaultInvalidSecurityToken, err)
	}
	if a.NameID != caller.Principal.Subject {
		return nil, newFault(FaultFailedAuthentication, fmt.Errorf("%q may not renew %q's assertion", caller.Principal.Subject, a.NameID))
	}
	sub, ok := srv.s.subjects[a.NameID]
	rp, ok2 := srv.s.parties[rec.Audience]
	if !ok || !ok2 {
		return nil, newFault(FaultUnableToRenew, errors.New("the subject or relying party is no longer configured"))
	}
	var hok *x509.Certificate
	if rec.KeyType == KeyTypePublicKey {
		c := a.Confirmation(saml2.MethodHolderOfKey)
		if c == nil || c.Certificate == nil || caller.Certificate == nil || !c.Certificate.Equal(caller.Certificate) {
			return nil, newFault(FaultFailedAuthentication, errors.New("a holder-of-key assertion is renewed only in a request signed with its key"))
		}
		hok = c.Certificate
	}
	// An assertion is renewed once: a second renewal of the same one
	// would fork it.
	first, err := srv.st.SetNX(ctx, renewedPrefix+a.ID, []byte("1"), a.NotOnOrAfter.Add(srv.s.renewGrace+ClockSkew).Sub(now))
	if err != nil {
		return nil, fmt.Errorf("sts: registry: %w", err)
	}
	if !first {
		return nil, newFault(FaultUnableToRenew, fmt.Errorf("assertion %s was renewed before", a.ID))
	}
	return srv.mint(ctx, req, sub, rp, rec.KeyType, hok, a.AuthnContext, RequestRenew)
}

func (srv *Server) cancel(ctx context.Context, req *rst, caller *wsse.Result) (*etree.Element, error) {
	id := req.targetID
	var exp time.Time
	if req.target != nil {
		// Signature and issuer only: an expired or already cancelled
		// assertion may still be cancelled (idempotent).
		a, err := saml2.Verify(req.target, saml2.VerifyOptions{Trusted: []*x509.Certificate{srv.signer.Certificate()}, Now: srv.now()})
		if err != nil || a.Issuer != srv.s.issuer {
			return nil, newFault(FaultInvalidSecurityToken, fmt.Errorf("cancel target: %v", err))
		}
		id, exp = a.ID, a.NotOnOrAfter
	}
	if id == "" {
		return nil, newFault(FaultInvalidRequest, errors.New("a Cancel needs a CancelTarget"))
	}
	rec, err := srv.record(ctx, id)
	var ie *errInternal
	if errors.As(err, &ie) {
		return nil, err
	}
	if err != nil {
		return nil, newFault(FaultInvalidSecurityToken, err)
	}
	if rec.Subject != caller.Principal.Subject {
		return nil, newFault(FaultFailedAuthentication, fmt.Errorf("%q may not cancel %q's assertion", caller.Principal.Subject, rec.Subject))
	}
	if exp.IsZero() {
		exp = rec.NotAfter
	}
	now := srv.now()
	if err := srv.lc.Cancel(ctx, id, exp.Add(srv.s.renewGrace+ClockSkew).Sub(now)); err != nil {
		return nil, fmt.Errorf("sts: recording the cancellation: %w", err)
	}
	if err := srv.st.Publish(ctx, CancelChannel, []byte(id+" "+strconv.FormatInt(exp.Unix(), 10))); err != nil {
		// The registry entry is what every validation reads; the message
		// is a courtesy to local caches.
		srv.log.Warn("sts: publishing a cancellation", "id", id, "err", err)
	}
	srv.log.Info("sts: cancelled", "id", id, "sub", rec.Subject)
	srv.audit.Record(audit.Event{Kind: audit.STSCancel, Principal: rec.Subject, JTI: id, Expires: exp, Policy: "sts"})
	rstr := newRSTR(req.context)
	rstr.CreateElement("wst:RequestedTokenCancelled")
	return rstr, nil
}

// writeResponse writes the SOAP envelope around el.
func (srv *Server) writeResponse(w http.ResponseWriter, out *Output) {
	srv.write(w, out.Envelope(), out.V12, http.StatusOK)
}

// Envelope returns the response document: the SOAP envelope with
// wsa:Action and wsa:RelatesTo around Body.
func (o *Output) Envelope() *etree.Document {
	doc := etree.NewDocument()
	env := envelope(doc, o.V12)
	h := env.SelectElement("Header")
	h.CreateElement("wsa:Action").SetText(o.Action)
	if o.RelatesTo != "" {
		h.CreateElement("wsa:RelatesTo").SetText(o.RelatesTo)
	}
	env.SelectElement("Body").AddChild(o.Body)
	return doc
}

// writeFault writes a WS-Trust fault: SOAP 1.1 faultcode wst:Code, SOAP
// 1.2 Code Sender (Receiver for RequestFailed) with Subcode wst:Code. The
// reason is the fixed text of the code; the cause is only logged.
func (srv *Server) writeFault(w http.ResponseWriter, v12 bool, relatesTo string, f *fault) {
	srv.log.Info("sts: fault", "code", f.code, "err", f.err)
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(f.retryAfter))
	}
	doc := etree.NewDocument()
	env := envelope(doc, v12)
	env.CreateAttr("xmlns:wst", NamespaceWST)
	h := env.SelectElement("Header")
	h.CreateElement("wsa:Action").SetText("http://www.w3.org/2005/08/addressing/soap/fault")
	if relatesTo != "" {
		h.CreateElement("wsa:RelatesTo").SetText(relatesTo)
	}
	fe := env.SelectElement("Body").CreateElement("s:Fault")
	if v12 {
		code := fe.CreateElement("s:Code")
		val := "s:Sender"
		if f.status >= 500 {
			val = "s:Receiver"
		}
		code.CreateElement("s:Value").SetText(val)
		code.CreateElement("s:Subcode").CreateElement("s:Value").SetText("wst:" + f.code)
		r := fe.CreateElement("s:Reason").CreateElement("s:Text")
		r.CreateAttr("xml:lang", "en")
		r.SetText(f.reason)
	} else {
		fe.CreateElement("faultcode").SetText("wst:" + f.code)
		fe.CreateElement("faultstring").SetText(f.reason)
	}
	srv.write(w, doc, v12, f.status)
}

func envelope(doc *etree.Document, v12 bool) *etree.Element {
	env := doc.CreateElement("s:Envelope")
	if v12 {
		env.CreateAttr("xmlns:s", soap.V12.Namespace())
	} else {
		env.CreateAttr("xmlns:s", soap.V11.Namespace())
	}
	env.CreateAttr("xmlns:wsa", nsWSA)
	env.CreateElement("s:Header")
	env.CreateElement("s:Body")
	return env
}

func (srv *Server) write(w http.ResponseWriter, doc *etree.Document, v12 bool, status int) {
	var buf bytes.Buffer
	doc.WriteTo(&buf)
	if v12 {
		w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
