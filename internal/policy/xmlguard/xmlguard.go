// Package xmlguard is the "xmlguard" policy, the XML firewall: it buffers
// the request body and, before anything else reads it, checks it with the
// streaming scan of package xmlscan (size and shape limits; no DTD, so no
// entity expansion and no XXE; no processing instructions; no duplicate
// attributes or namespace declarations; UTF-8 only). On SOAP routes it then
// checks the HTTP binding, the envelope and the operation against an
// allow-list or the service's WSDL.
//
// It belongs first in a chain, or right after cheap checks such as
// ipfilter: every later policy that reads the body (wssecurity, the
// upstream) then reads only bytes that passed. A message a later policy
// decrypts (wssecurity) is checked again, as decrypted (Guard.CheckPlaintext).
package xmlguard

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/soap"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// Unit registers the xmlguard policy.
var Unit = policy.Unit{Name: "xmlguard", New: New}

// Denial codes of this policy besides the scan's (xmlscan.Kind.Code) and
// the soap package's (soap.Code*); all are 400 except soap_content_type_
// invalid (415) and body_too_large (413, from policy.Exchange.Body).
const (
	// CodeOperationNotAllowed: the Body's operation is not in the
	// allow-list (or the WSDL), or the Body is empty.
	CodeOperationNotAllowed = "soap_operation_not_allowed"
	// CodeActionMismatch: the SOAPAction or action parameter is not the
	// WSDL's soapAction for the operation in the Body.
	CodeActionMismatch = "soap_action_mismatch"
)

// xencNS is the XML Encryption namespace: a Body whose only child is an
// xenc:EncryptedData has its operation checked after decryption.
const xencNS = "http://www.w3.org/2001/04/xmlenc#"

// Guard is the xmlguard policy. It is immutable and safe for concurrent
// use.
type Guard struct {
	s *settings
}

var (
	_ policy.Policy         = (*Guard)(nil)
	_ policy.Finisher       = (*Guard)(nil)
	_ policy.PlaintextCheck = (*Guard)(nil)
)

// deferred is what Apply leaves (Exchange.SetValue) when the Body arrived
// encrypted and the operation could not be checked: CheckPlaintext clears
// it, and FinishRequest refuses a request where it is still set.
type deferred struct{}

var opDeferred = &deferred{}

// New builds a Guard from cfg (see Config) for the route env.Route. A soap
// section on a REST route is a config error; a WSDL is read and checked
// here, at load.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	s, err := decode(cfg, env)
	if err != nil {
		return nil, err
	}
	return &Guard{s: s}, nil
}

// Apply buffers the body (413 body_too_large past max_bytes) and checks it.
//
// A request without a body passes when its method is GET, HEAD or OPTIONS
// (a ?wsdl fetch, the SOAP 1.2 GET binding) and on any method on a REST
// route, where there is no XML to check. Every other body is scanned,
// whatever its Content-Type says, since an upstream may parse XML it was
// not told about. On a SOAP route the Content-Type must be the binding of an
// accepted version, the envelope must be of that version and of the
// shape soap.CheckShape requires, and, with an allow-list, the Body's
// operation must be allowed and, with require_action_match, announced by
// its own soapAction.
//
// A message that passes is also registered as a policy.PlaintextCheck:
// when a later policy (wssecurity) decrypts it, these same checks run on
// the decrypted message (CheckPlaintext). With an allow-list, a Body whose
// only child is an xenc:EncryptedData has no operation to check yet: the
// check is deferred to CheckPlaintext, and FinishRequest refuses the
// request with soap_operation_not_allowed if no policy of the chain
// decrypted the Body, so a deferral never lets an unchecked operation
// through.
func (g *Guard) Apply(_ context.Context, ex *policy.Exchange) error {
	body, err := ex.Body(g.s.lim.MaxBytes)
	if err != nil {
		return err
	}
	if err := g.check(ex, body, true); err != nil {
		return err
	}
	ex.AddPlaintextCheck(g)
	return nil
}

// CheckPlaintext applies the guard to msg, the decrypted message a later
// policy forwards, as Apply would to that message arriving in clear (the
// same denials, statuses and codes), and then to the operation Apply
// deferred. The decrypted Body may not defer again.
func (g *Guard) CheckPlaintext(_ context.Context, ex *policy.Exchange, msg []byte) error {
	if int64(len(msg)) > g.s.lim.MaxBytes {
		// What Exchange.Body would say, had the message arrived so.
		return policy.Deny(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body exceeds %d bytes", g.s.lim.MaxBytes)).WithErr(policy.ErrBodyTooLarge)
	}
	if err := g.check(ex, msg, false); err != nil {
		return err
	}
	ex.SetValue(g, nil)
	return nil
}

// FinishRequest refuses a request whose operation check Apply deferred
// (the Body arrived encrypted) and no later policy ran (nothing decrypted
// the Body): the upstream would otherwise receive an operation nobody
// checked against the allow-list.
func (g *Guard) FinishRequest(_ context.Context, ex *policy.Exchange) error {
	if ex.Value(g) == opDeferred {
		return deny(CodeOperationNotAllowed, "operation not allowed",
			errors.New("xmlguard: the Body is encrypted and no policy of the route decrypted it, so its operation could not be checked"))
	}
	return nil
}

// check is Apply on body; canDefer says whether an encrypted Body may
// defer the operation check.
func (g *Guard) check(ex *policy.Exchange, body []byte, canDefer bool) error {
	ss := g.s.soap
	if len(body) == 0 {
		switch ex.Request.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return nil
		}
		if ss == nil {
			return nil
		}
		return deny(soap.CodeEnvelope, "empty request body", errors.New("xmlguard: empty body on a SOAP route"))
	}
	if ss == nil {
		if err := xmlscan.Scan(body, g.s.lim); err != nil {
			return scanDenial(err)
		}
		return nil
	}
	return g.applySOAP(ex, body, ss, canDefer)
}

func (g *Guard) applySOAP(ex *policy.Exchange, body []byte, ss *soapSettings, canDefer bool) error {
	b, err := soap.ReadBinding(ex.Request.Header)
	if err != nil {
		return soapDenial(err)
	}
	if !ss.versions[b.Version] {
		return deny(soap.CodeVersionMismatch, "SOAP version not accepted on this route",
			fmt.Errorf("xmlguard: SOAP %s Content-Type; accepted: %s", b.Version, versionList(ss.versions)))
	}
	m, err := soap.Parse(body, g.s.lim)
	if err != nil {
		return soapDenial(err)
	}
	if err := m.CheckBinding(b); err != nil {
		return soapDenial(err)
	}
	// Later policies (wssecurity) read this tree rather than parse the
	// body again; a refusal below ends the chain anyway.
	ex.SOAP = m
	if ss.ops == nil {
		return nil
	}
	if m.OperationElement == nil {
		return deny(CodeOperationNotAllowed, "operation not allowed", errors.New("xmlguard: empty Body"))
	}
	if canDefer && m.Operation == (xml.Name{Space: xencNS, Local: "EncryptedData"}) {
		ex.SetValue(g, opDeferred)
		return nil
	}
	actions, ok := ss.ops[opKey{version: m.Version, name: m.Operation}]
	if !ok {
		actions, ok = ss.ops[opKey{name: m.Operation}]
	}
	if !ok {
		return deny(CodeOperationNotAllowed, "operation not allowed",
			fmt.Errorf("xmlguard: operation %s (SOAP %s) is not allowed", soap.QName(m.Operation), m.Version))
	}
	if ss.matchAction && !actionMatches(b, actions) {
		return deny(CodeActionMismatch, "SOAP action does not match the operation",
			fmt.Errorf("xmlguard: action %q (present %v) for operation %s; the WSDL says %q", b.Action, b.HasAction, soap.QName(m.Operation), actions))
	}
	return nil
}

// actionMatches reports whether the request's action is one the WSDL gives
// the operation. A SOAP 1.1 request without SOAPAction counts as "" (the
// header is required there, so its absence is never a match for a real
// action); a SOAP 1.2 request without the optional action parameter
// passes, as there is nothing an upstream could dispatch on.
func actionMatches(b soap.Binding, actions []string) bool {
	if b.Version == soap.V12 && !b.HasAction {
		return true
	}
	return slices.Contains(actions, b.Action)
}

func deny(code, detail string, cause error) *policy.Denial {
	return policy.Deny(http.StatusBadRequest, code, detail).WithErr(cause)
}

// scanDenial turns a scan error into its denial. The detail names the kind
// of problem and, for limits, the limit, but never quotes the document.
func scanDenial(err error) *policy.Denial {
	var se *xmlscan.Error
	if !errors.As(err, &se) {
		return deny(xmlscan.Malformed.Code(), "malformed XML", fmt.Errorf("xmlguard: %w", err))
	}
	return deny(se.Code(), scanDetail(se), fmt.Errorf("xmlguard: %w", err))
}

func scanDetail(se *xmlscan.Error) string {
	switch se.Kind {
	case xmlscan.DTD:
		return "document type declarations are not allowed"
	case xmlscan.ProcInst:
		return "processing instructions are not allowed"
	case xmlscan.Limit:
		return "XML document exceeds " + se.Limit
	case xmlscan.DuplicateAttribute:
		return "duplicate attribute"
	case xmlscan.DuplicateNamespace:
		return "duplicate namespace declaration"
	case xmlscan.Namespace:
		return "XML namespace error"
	case xmlscan.Encoding:
		return "only UTF-8 is accepted"
	}
	return "malformed XML"
}

// soapDenial turns an error of package soap into its denial.
func soapDenial(err error) *policy.Denial {
	var e *soap.Error
	if !errors.As(err, &e) {
		return deny(soap.CodeEnvelope, "invalid SOAP message", fmt.Errorf("xmlguard: %w", err))
	}
	var se *xmlscan.Error
	if errors.As(e.Err, &se) {
		return scanDenial(se)
	}
	d := deny(e.Code, soapDetail(e.Code), fmt.Errorf("xmlguard: %w", err))
	if e.Code == soap.CodeContentType {
		d.Status = http.StatusUnsupportedMediaType
	}
	return d
}

func soapDetail(code string) string {
	switch code {
	case soap.CodeContentType:
		return "Content-Type is not a SOAP media type with UTF-8"
	case soap.CodeVersionMismatch:
		return "SOAP version mismatch"
	case soap.CodeAction:
		return "invalid SOAPAction"
	}
	return "invalid SOAP envelope"
}
