package soap

import (
	"encoding/xml"
	"strings"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// Message is a parsed SOAP envelope of a valid shape. It is read-only by
// convention: policies share it, so none may change the tree.
type Message struct {
	// Doc is the whole document.
	Doc *etree.Document
	// Version is the envelope's SOAP version, from its namespace.
	Version Version
	// Envelope is the root element.
	Envelope *etree.Element
	// Header is the env:Header element; nil when the envelope has none.
	Header *etree.Element
	// Body is the env:Body element; never nil.
	Body *etree.Element
	// Operation is the namespace-qualified name of the Body's child
	// element, the operation of a document/literal or rpc/literal call;
	// the zero Name when the Body is empty.
	Operation xml.Name
	// OperationElement is that child; nil when the Body is empty.
	OperationElement *etree.Element
}

// Parse checks data with the XML firewall under lim (zero fields: the
// defaults), builds its tree in the same pass (xmlscan.Parse), and checks
// that it is a SOAP envelope (see CheckShape). A document the firewall
// refuses is an *Error with the scan's code (xml_dtd_forbidden,
// xml_limit_exceeded, ...) wrapping the *xmlscan.Error; a shape problem is
// an *Error with CodeEnvelope or CodeVersionMismatch. The tree's attribute
// values are normalized as XML 1.0 §3.3.3 says (etree alone does not):
// it reads what the service and the signer's c14n read.
func Parse(data []byte, lim xmlscan.Limits) (*Message, error) {
	doc, err := xmlscan.Parse(data, lim)
	if err != nil {
		code := xmlscan.Malformed.Code()
		if se, ok := err.(*xmlscan.Error); ok {
			code = se.Code()
		}
		return nil, &Error{Code: code, Err: err}
	}
	return CheckShape(doc)
}

// CheckShape checks that doc, which must have passed xmlscan.Scan, is a
// SOAP 1.1 or 1.2 envelope of the shape both versions and the WS-I Basic
// Profile (R1011, R9980) require: exactly one Envelope element as the root,
// in the namespace of a known version; as its children, white space and
// comments aside, an optional Header and then exactly one Body, both in
// the envelope's namespace, and nothing after the Body; no text but white
// space in the Envelope, Header or Body; namespace-qualified header blocks;
// at most one element in the Body (a second one is an operation the
// gateway would not have checked). A root named Envelope in any other
// namespace is CodeVersionMismatch (SOAP 1.1 §4.4, SOAP 1.2 §5.4.7).
func CheckShape(doc *etree.Document) (*Message, error) {
	root := doc.Root()
	if root == nil {
		return nil, errorf(CodeEnvelope, "no root element")
	}
	m := &Message{Doc: doc, Envelope: root}
	ns := root.NamespaceURI()
	if root.Tag != "Envelope" {
		return nil, errorf(CodeEnvelope, "root element {%s}%s is not a SOAP Envelope", ns, root.Tag)
	}
	if m.Version = VersionOf(ns); m.Version == 0 {
		return nil, errorf(CodeVersionMismatch, "Envelope in namespace %q, neither SOAP 1.1 nor 1.2", ns)
	}
	for _, tok := range root.Child {
		switch t := tok.(type) {
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, errorf(CodeEnvelope, "text in the Envelope")
			}
		case *etree.Element:
			if t.NamespaceURI() != ns {
				return nil, errorf(CodeEnvelope, "element {%s}%s in the Envelope", t.NamespaceURI(), t.Tag)
			}
			switch {
			case m.Body != nil:
				return nil, errorf(CodeEnvelope, "element %s after the Body", t.Tag)
			case t.Tag == "Header" && m.Header == nil:
				m.Header = t
			case t.Tag == "Header":
				return nil, errorf(CodeEnvelope, "a second Header")
			case t.Tag == "Body":
				m.Body = t
			default:
				return nil, errorf(CodeEnvelope, "element %s in the Envelope", t.Tag)
			}
		}
	}
	if m.Body == nil {
		return nil, errorf(CodeEnvelope, "no Body")
	}
	if m.Header != nil {
		for _, tok := range m.Header.Child {
			switch t := tok.(type) {
			case *etree.CharData:
				if !t.IsWhitespace() {
					return nil, errorf(CodeEnvelope, "text in the Header")
				}
			case *etree.Element:
				if t.NamespaceURI() == "" {
					return nil, errorf(CodeEnvelope, "header block %s is not namespace-qualified", t.Tag)
				}
			}
		}
	}
	for _, tok := range m.Body.Child {
		switch t := tok.(type) {
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, errorf(CodeEnvelope, "text in the Body")
			}
		case *etree.Element:
			if m.OperationElement != nil {
				return nil, errorf(CodeEnvelope, "more than one element in the Body")
			}
			m.OperationElement = t
			m.Operation = xml.Name{Space: t.NamespaceURI(), Local: t.Tag}
		}
	}
	return m, nil
}

// CheckBinding checks the message's version against the HTTP binding's: a
// SOAP 1.2 envelope sent as text/xml, or a 1.1 one as application/soap+xml,
// is CodeVersionMismatch.
func (m *Message) CheckBinding(b Binding) error {
	if b.Version != m.Version {
		return errorf(CodeVersionMismatch, "SOAP %s envelope sent with the SOAP %s Content-Type", m.Version, b.Version)
	}
	return nil
}

// QName formats n in Clark notation, "{namespace}local", or "local" when n
// has no namespace.
func QName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

// ParseQName parses Clark notation, "{namespace}local" or "local", as
// QName writes it. The local part must be a non-empty name without a colon
// or braces; "{}local" is "local".
func ParseQName(s string) (xml.Name, bool) {
	var n xml.Name
	if rest, ok := strings.CutPrefix(s, "{"); ok {
		space, local, ok := strings.Cut(rest, "}")
		if !ok {
			return xml.Name{}, false
		}
		n.Space, s = space, local
	}
	if s == "" || strings.ContainsAny(s, "{}: \t\r\n") {
		return xml.Name{}, false
	}
	n.Local = s
	return n, true
}
