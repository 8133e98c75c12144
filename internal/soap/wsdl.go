package soap

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// WSDL 1.1 namespaces.
const (
	NamespaceWSDL       = "http://schemas.xmlsoap.org/wsdl/"
	NamespaceWSDLSOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
	NamespaceWSDLSOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
)

// WSDLOperation is one operation of one SOAP binding of a WSDL.
type WSDLOperation struct {
	// Name is the wsdl:operation name.
	Name string
	// Element is the qualified name of the Body child a request for the
	// operation carries: the input message's part element (document
	// style), or {soap:body namespace}Name (rpc style).
	Element xml.Name
	// Version is the SOAP version of the binding (soap: or soap12:).
	Version Version
	// Action is the binding's soapAction for the operation; "" when the
	// binding gives none.
	Action string
}

// WSDLLimits bound a WSDL read by ParseWSDL: larger than a message's, as
// descriptions with big schemas are common, but still bounded, since a
// WSDL may come from somewhere less trusted than the config.
var WSDLLimits = xmlscan.Limits{
	MaxBytes:               8 << 20,
	MaxDepth:               64,
	MaxElements:            200000,
	MaxAttributes:          64,
	MaxNamespaceDecls:      64,
	MaxTotalNamespaceDecls: 4096,
	MaxTextBytes:           1 << 20,
	MaxAttributeBytes:      8 << 10,
	MaxNameBytes:           256,
}

// ParseWSDL reads the SOAP 1.1 and 1.2 bindings of a WSDL 1.1 document and
// returns their operations, in document order. It reads one document:
// wsdl:import is refused rather than silently ignored, since the operations
// it would bring in would be missing from the result. Errors are prefixed
// "soap: wsdl: ".
func ParseWSDL(data []byte) ([]WSDLOperation, error) {
	if err := xmlscan.Scan(data, WSDLLimits); err != nil {
		return nil, fmt.Errorf("soap: wsdl: %w", err)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = WSDLLimits.MaxDepth
	if err := doc.ReadFromBytes(xmlscan.TrimBOM(data)); err != nil {
		return nil, fmt.Errorf("soap: wsdl: %w", err)
	}
	w := &wsdlReader{
		messages:  map[string]*etree.Element{},
		portTypes: map[string]*etree.Element{},
	}
	ops, err := w.read(doc.Root())
	if err != nil {
		return nil, fmt.Errorf("soap: wsdl: %w", err)
	}
	return ops, nil
}

type wsdlReader struct {
	tns       string
	messages  map[string]*etree.Element
	portTypes map[string]*etree.Element
}

func (w *wsdlReader) read(root *etree.Element) ([]WSDLOperation, error) {
	if root == nil || root.Tag != "definitions" || root.NamespaceURI() != NamespaceWSDL {
		return nil, errors.New("the root element is not a WSDL 1.1 wsdl:definitions")
	}
	w.tns = root.SelectAttrValue("targetNamespace", "")
	var bindings []*etree.Element
	for _, e := range root.ChildElements() {
		if e.NamespaceURI() != NamespaceWSDL {
			continue
		}
		name := e.SelectAttrValue("name", "")
		switch e.Tag {
		case "import":
			return nil, fmt.Errorf("wsdl:import of %q is not supported: give the imported description as one document", e.SelectAttrValue("location", ""))
		case "message":
			w.messages[name] = e
		case "portType":
			w.portTypes[name] = e
		case "binding":
			bindings = append(bindings, e)
		}
	}
	var ops []WSDLOperation
	for _, b := range bindings {
		got, err := w.binding(b)
		if err != nil {
			return nil, fmt.Errorf("binding %q: %w", b.SelectAttrValue("name", ""), err)
		}
		ops = append(ops, got...)
	}
	if len(ops) == 0 {
		return nil, errors.New("no SOAP 1.1 or 1.2 binding with operations")
	}
	return ops, nil
}

// soapChild returns e's first child named local in the SOAP 1.1 or 1.2
// WSDL binding namespace, and that binding's version.
func soapChild(e *etree.Element, local string) (*etree.Element, Version) {
	for _, c := range e.ChildElements() {
		if c.Tag != local {
			continue
		}
		switch c.NamespaceURI() {
		case NamespaceWSDLSOAP11:
			return c, V11
		case NamespaceWSDLSOAP12:
			return c, V12
		}
	}
	return nil, 0
}

func (w *wsdlReader) binding(b *etree.Element) ([]WSDLOperation, error) {
	sb, version := soapChild(b, "binding")
	if sb == nil {
		return nil, nil // an HTTP or MIME binding: not SOAP
	}
	style := sb.SelectAttrValue("style", "document")
	ptName, err := w.local(b, b.SelectAttrValue("type", ""))
	if err != nil {
		return nil, fmt.Errorf("type: %w", err)
	}
	pt := w.portTypes[ptName]
	if pt == nil {
		return nil, fmt.Errorf("portType %q not found", ptName)
	}
	var ops []WSDLOperation
	for _, bo := range b.SelectElements("operation") {
		if bo.NamespaceURI() != NamespaceWSDL {
			continue
		}
		op := WSDLOperation{Name: bo.SelectAttrValue("name", ""), Version: version}
		opStyle := style
		if so, _ := soapChild(bo, "operation"); so != nil {
			op.Action = so.SelectAttrValue("soapAction", "")
			opStyle = so.SelectAttrValue("style", style)
		}
		switch opStyle {
		case "rpc":
			// The Body child is the operation name in the namespace
			// soap:body gives (WSDL 1.1 §3.5).
			ns := ""
			if in := wsdlChild(bo, "input"); in != nil {
				if sbody, _ := soapChild(in, "body"); sbody != nil {
					ns = sbody.SelectAttrValue("namespace", "")
				}
			}
			op.Element = xml.Name{Space: ns, Local: op.Name}
		case "document":
			el, err := w.documentElement(pt, op.Name)
			if err != nil {
				return nil, fmt.Errorf("operation %q: %w", op.Name, err)
			}
			op.Element = el
		default:
			return nil, fmt.Errorf("operation %q: unknown style %q", op.Name, opStyle)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// documentElement returns the element of the one part of the input message
// of the port type's operation opName.
func (w *wsdlReader) documentElement(pt *etree.Element, opName string) (xml.Name, error) {
	var op *etree.Element
	for _, o := range pt.SelectElements("operation") {
		if o.NamespaceURI() == NamespaceWSDL && o.SelectAttrValue("name", "") == opName {
			op = o
			break
		}
	}
	if op == nil {
		return xml.Name{}, errors.New("not in the portType")
	}
	in := wsdlChild(op, "input")
	if in == nil {
		return xml.Name{}, errors.New("no input message")
	}
	msgName, err := w.local(in, in.SelectAttrValue("message", ""))
	if err != nil {
		return xml.Name{}, fmt.Errorf("input message: %w", err)
	}
	msg := w.messages[msgName]
	if msg == nil {
		return xml.Name{}, fmt.Errorf("message %q not found", msgName)
	}
	var parts []*etree.Element
	for _, p := range msg.SelectElements("part") {
		if p.NamespaceURI() == NamespaceWSDL {
			parts = append(parts, p)
		}
	}
	if len(parts) != 1 {
		// WS-I Basic Profile R2201: a document-literal request has one part.
		return xml.Name{}, fmt.Errorf("message %q has %d parts; document style needs exactly one", msgName, len(parts))
	}
	el := parts[0].SelectAttrValue("element", "")
	if el == "" {
		return xml.Name{}, fmt.Errorf("message %q: the part names a type, not an element (WS-I BP R2204)", msgName)
	}
	return resolveQName(parts[0], el)
}

func wsdlChild(e *etree.Element, local string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == NamespaceWSDL {
			return c
		}
	}
	return nil
}

// local resolves the QName value v on e and returns its local part, which
// must be in the target namespace: only that namespace's definitions are
// in the document.
func (w *wsdlReader) local(e *etree.Element, v string) (string, error) {
	n, err := resolveQName(e, v)
	if err != nil {
		return "", err
	}
	if n.Space != w.tns {
		return "", fmt.Errorf("%q is not in the target namespace %q", v, w.tns)
	}
	return n.Local, nil
}

// resolveQName resolves the QName value v ("p:local" or "local") with the
// namespace declarations in scope at e; an unprefixed name takes the
// default namespace, as XML Schema QName values do.
func resolveQName(e *etree.Element, v string) (xml.Name, error) {
	v = strings.TrimSpace(v)
	prefix, local, ok := strings.Cut(v, ":")
	if !ok {
		prefix, local = "", v
	}
	if local == "" || strings.Contains(local, ":") {
		return xml.Name{}, fmt.Errorf("%q is not a QName", v)
	}
	for p := e; p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" || prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return xml.Name{Space: a.Value, Local: local}, nil
			}
		}
	}
	if prefix != "" {
		return xml.Name{}, fmt.Errorf("%q: prefix %s is not declared", v, prefix)
	}
	return xml.Name{Local: local}, nil
}
