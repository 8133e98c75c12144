// Package soap holds the SOAP parts Gatehouse's policies share: the SOAP
// version of a request from its HTTP binding (Content-Type, SOAPAction or
// the action parameter) and from its envelope namespace, the envelope's
// shape (Envelope, optional Header, Body), the operation the Body asks for,
// and the operations of a WSDL 1.1 description.
//
// Every message is checked by the XML firewall (package xmlscan) in the
// pass that builds its tree, and no tree of a refused message is ever
// returned, so no code reading a Message ever sees a DTD, a
// processing instruction, a duplicate attribute or an undeclared prefix.
package soap

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// Envelope namespaces.
const (
	NamespaceSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NamespaceSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
)

// Media types of the two HTTP bindings.
const (
	MediaTypeSOAP11 = "text/xml"
	MediaTypeSOAP12 = "application/soap+xml"
)

// Version is a SOAP version. The zero Version is unknown.
type Version uint8

const (
	// V11 is SOAP 1.1 (W3C Note, 2000).
	V11 Version = iota + 1
	// V12 is SOAP 1.2 (W3C Recommendation, 2007).
	V12
)

// String returns "1.1", "1.2" or "unknown".
func (v Version) String() string {
	switch v {
	case V11:
		return "1.1"
	case V12:
		return "1.2"
	}
	return "unknown"
}

// Namespace returns v's envelope namespace; "" for an unknown version.
func (v Version) Namespace() string {
	switch v {
	case V11:
		return NamespaceSOAP11
	case V12:
		return NamespaceSOAP12
	}
	return ""
}

// VersionOf returns the version whose envelope namespace is ns, or 0.
func VersionOf(ns string) Version {
	switch ns {
	case NamespaceSOAP11:
		return V11
	case NamespaceSOAP12:
		return V12
	}
	return 0
}

// Stable error codes, shown to clients as the denial code (and so as the
// SOAP 1.2 fault subcode gh:<code>).
const (
	// CodeContentType: the Content-Type is not a SOAP media type, or names
	// a charset other than UTF-8.
	CodeContentType = "soap_content_type_invalid"
	// CodeVersionMismatch: the envelope is not in a known SOAP namespace,
	// or not in the one the Content-Type (or the route) says.
	CodeVersionMismatch = "soap_version_mismatch"
	// CodeEnvelope: the document is not a SOAP envelope of the required
	// shape.
	CodeEnvelope = "soap_envelope_invalid"
	// CodeAction: more than one SOAPAction header, or a malformed one.
	CodeAction = "soap_action_invalid"
)

// Error is a refusal of a message by this package. Code is one of the
// Code constants; Msg is for logs (it may quote the message).
type Error struct {
	Code string
	Msg  string
	// Err is the underlying cause (an *xmlscan.Error for a document the
	// scan refused), or nil.
	Err error
}

func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return "soap: " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Binding is what a request's HTTP headers say about its SOAP message.
type Binding struct {
	// Version is V11 for text/xml, V12 for application/soap+xml.
	Version Version
	// Action is the SOAPAction header (1.1) or the Content-Type's action
	// parameter (1.2), without its quotes; "" when absent or empty.
	Action string
	// HasAction reports whether the header or parameter was present at
	// all (a SOAP 1.1 SOAPAction of "" is present and empty).
	HasAction bool
}

// ReadBinding reads the SOAP HTTP binding of a request from its headers.
//
// SOAP 1.1 (§6.1) is Content-Type text/xml with the intent in the
// SOAPAction header, a quoted URI reference; an unquoted value is taken as
// written, since some clients send one. SOAP 1.2 (Part 2 §7) is
// application/soap+xml with the intent in the optional action parameter; a
// SOAPAction header on a 1.2 request is ignored, as the 1.2 binding does
// not define it. A charset parameter other than UTF-8 is refused, as is
// more than one SOAPAction header or Content-Type. Errors are *Error.
func ReadBinding(h http.Header) (Binding, error) {
	cts := h.Values("Content-Type")
	if len(cts) != 1 {
		return Binding{}, errorf(CodeContentType, "want one Content-Type header, got %d", len(cts))
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil {
		return Binding{}, errorf(CodeContentType, "Content-Type %q: %v", cts[0], err)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return Binding{}, errorf(CodeContentType, "charset %q; only UTF-8 is accepted", cs)
	}
	var b Binding
	switch mt {
	case MediaTypeSOAP11:
		b.Version = V11
		acts := h.Values("SOAPAction")
		switch len(acts) {
		case 0:
		case 1:
			b.HasAction = true
			b.Action, err = unquoteAction(acts[0])
			if err != nil {
				return Binding{}, err
			}
		default:
			return Binding{}, errorf(CodeAction, "%d SOAPAction headers", len(acts))
		}
	case MediaTypeSOAP12:
		b.Version = V12
		b.Action, b.HasAction = params["action"]
	default:
		return Binding{}, errorf(CodeContentType, "media type %q is neither %s (SOAP 1.1) nor %s (SOAP 1.2)", mt, MediaTypeSOAP11, MediaTypeSOAP12)
	}
	return b, nil
}

// unquoteAction strips the quotes of a SOAPAction value (SOAP 1.1 §6.1.1:
// a quoted string, "" meaning the intent is the request URI).
func unquoteAction(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	} else if strings.ContainsRune(v, '"') {
		return "", errorf(CodeAction, "SOAPAction %q is not a quoted string", v)
	}
	if strings.ContainsAny(v, "\"\\") {
		return "", errorf(CodeAction, "SOAPAction %q holds a quote or backslash", v)
	}
	return v, nil
}
