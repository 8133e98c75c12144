package demo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// parseEnvelope reads a SOAP 1.1 request envelope and returns the
// operation its Body asks for and the text of the operation element's
// children, by local name.
//
// It is strict where looseness would let the same bytes mean different
// things to a gateway and to this service: one Envelope with at most one
// Header and then exactly one Body, nothing after the Body (WS-I BP R1011),
// exactly one element in the Body, only known children in the operation's
// namespace, each once and in schema order, with text content only; no
// processing instructions (SOAP 1.1 section 3) and no DTD or other
// directive anywhere. Comments and white space between elements are
// ignored.
func parseEnvelope(body []byte) (*operation, map[string]string, *soapFault) {
	// A UTF-8 byte order mark is allowed before the document (XML 1.0
	// section 4.3.3) and some SOAP stacks send one; the decoder would
	// take it for text.
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	p := &envParser{d: xml.NewDecoder(bytes.NewReader(body))}
	// Strict mode, no entity map and no CharsetReader are the decoder's
	// defaults: unknown entities, unclosed tags and any encoding but UTF-8
	// are syntax errors.
	op, fields, err := p.envelope()
	if err != nil {
		var f *soapFault
		if errors.As(err, &f) {
			return nil, nil, f
		}
		return nil, nil, clientFault("malformed XML: " + err.Error())
	}
	return op, fields, nil
}

type envParser struct {
	d      *xml.Decoder
	tokens int
}

// Error makes a *soapFault usable as an error inside the parser, so that
// structural faults and syntax errors travel the same way.
func (f *soapFault) Error() string { return f.code + ": " + f.str }

// token returns the next token, refusing those a SOAP message must not
// have. The XML declaration is allowed as the very first token only.
func (p *envParser) token() (xml.Token, error) {
	tok, err := p.d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, err
	}
	p.tokens++
	switch t := tok.(type) {
	case xml.ProcInst:
		if t.Target == "xml" && p.tokens == 1 {
			return p.token()
		}
		return nil, clientFault("a SOAP message must not contain processing instructions")
	case xml.Directive:
		return nil, clientFault("a SOAP message must not contain a document type declaration or other directives")
	case xml.StartElement:
		if err := checkPrefixes(t); err != nil {
			return nil, err
		}
	}
	return tok, nil
}

// checkPrefixes refuses names with an undeclared prefix. encoding/xml does
// not: it leaves the bare prefix where the namespace should be. A real
// namespace name is an absolute URI and so has a colon after its scheme;
// a prefix never has one, which tells the two apart.
func checkPrefixes(st xml.StartElement) error {
	undeclared := func(n xml.Name) bool {
		return n.Space != "" && !strings.Contains(n.Space, ":")
	}
	if undeclared(st.Name) {
		return clientFault("undeclared namespace prefix " + st.Name.Space + " on element " + st.Name.Local)
	}
	for _, a := range st.Attr {
		if a.Name.Space != "xmlns" && undeclared(a.Name) {
			return clientFault("undeclared namespace prefix " + a.Name.Space + " on attribute " + a.Name.Local)
		}
	}
	return nil
}

// next returns the next element start or end, skipping comments and white
// space; any other text is refused, as no element of ours has mixed
// content.
func (p *envParser) next() (xml.Token, error) {
	for {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement, xml.EndElement:
			return t, nil
		case xml.CharData:
			if !isXMLSpace(t) {
				return nil, clientFault("unexpected text between elements")
			}
		}
	}
}

// start is next, requiring an element start; what names the expectation
// in the fault.
func (p *envParser) start(what string) (xml.StartElement, error) {
	tok, err := p.next()
	if err == io.EOF {
		return xml.StartElement{}, clientFault("unexpected end of message; want " + what)
	}
	if err != nil {
		return xml.StartElement{}, err
	}
	st, ok := tok.(xml.StartElement)
	if !ok {
		return xml.StartElement{}, clientFault("want " + what)
	}
	return st, nil
}

// end is next, requiring an element end; what names the offender in the
// fault otherwise.
func (p *envParser) end(what string) error {
	tok, err := p.next()
	if err == io.EOF {
		return clientFault("unexpected end of message")
	}
	if err != nil {
		return err
	}
	if st, ok := tok.(xml.StartElement); ok {
		return clientFault(fmt.Sprintf("%s: unexpected element %s", what, qname(st.Name)))
	}
	return nil
}

func (p *envParser) envelope() (*operation, map[string]string, error) {
	root, err := p.start("a SOAP Envelope")
	if err != nil {
		return nil, nil, err
	}
	if root.Name.Local != "Envelope" {
		return nil, nil, clientFault("not a SOAP envelope: root element is " + qname(root.Name))
	}
	if root.Name.Space != EnvelopeNamespace {
		// SOAP 1.1 section 4.4.1: the node speaks only the 1.1 envelope.
		return nil, nil, &soapFault{code: FaultVersionMismatch,
			str: "only SOAP 1.1 is supported: the Envelope must be in namespace " + EnvelopeNamespace}
	}
	st, err := p.start("a SOAP Header or Body")
	if err != nil {
		return nil, nil, err
	}
	if st.Name == (xml.Name{Space: EnvelopeNamespace, Local: "Header"}) {
		if err := p.header(); err != nil {
			return nil, nil, err
		}
		if st, err = p.start("a SOAP Body"); err != nil {
			return nil, nil, err
		}
	}
	if st.Name != (xml.Name{Space: EnvelopeNamespace, Local: "Body"}) {
		return nil, nil, clientFault("want a SOAP Body, got " + qname(st.Name))
	}
	tok, err := p.next()
	if err == io.EOF {
		return nil, nil, clientFault("unexpected end of message in the SOAP Body")
	}
	if err != nil {
		return nil, nil, err
	}
	opStart, ok := tok.(xml.StartElement)
	if !ok {
		return nil, nil, clientFault("the SOAP Body is empty")
	}
	op, fields, err := p.operation(opStart)
	if err != nil {
		return nil, nil, err
	}
	if err := p.end("the SOAP Body must hold exactly one element"); err != nil {
		return nil, nil, err
	}
	if err := p.end("nothing may follow the SOAP Body"); err != nil {
		return nil, nil, err
	}
	// The decoder accepts several root elements in a row; a message is one.
	switch _, err := p.next(); {
	case err == io.EOF:
		return op, fields, nil
	case err != nil:
		return nil, nil, err
	default:
		return nil, nil, clientFault("unexpected content after the SOAP Envelope")
	}
}

// header checks the Header's entries: the service understands none, so an
// entry addressed to it (no actor, or the "next" actor) that must be
// understood is a MustUnderstand fault (SOAP 1.1 section 4.2.3); others
// are skipped.
func (p *envParser) header() error {
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				return clientFault("unexpected end of message in the SOAP Header")
			}
			return err
		}
		st, ok := tok.(xml.StartElement)
		if !ok {
			return nil // the Header's end
		}
		mustUnderstand, actor := "0", ""
		for _, a := range st.Attr {
			switch a.Name {
			case xml.Name{Space: EnvelopeNamespace, Local: "mustUnderstand"}:
				mustUnderstand = strings.TrimSpace(a.Value)
			case xml.Name{Space: EnvelopeNamespace, Local: "actor"}:
				actor = strings.TrimSpace(a.Value)
			}
		}
		switch mustUnderstand {
		case "0", "false":
		case "1", "true":
			if actor == "" || actor == actorNext {
				return &soapFault{code: FaultMustUnderstand,
					str: "header " + qname(st.Name) + " is marked mustUnderstand but this service processes no header"}
			}
		default:
			return clientFault("mustUnderstand must be 0 or 1")
		}
		if err := p.skip(); err != nil {
			return err
		}
	}
}

// skip consumes the rest of the element whose start was just read, with
// the same refusals as token.
func (p *envParser) skip() error {
	for depth := 1; depth > 0; {
		tok, err := p.token()
		if err != nil {
			if err == io.EOF {
				return clientFault("unexpected end of message")
			}
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// operation reads the operation element whose start is st.
func (p *envParser) operation(st xml.StartElement) (*operation, map[string]string, error) {
	op := operations[st.Name.Local]
	if st.Name.Space != Namespace || op == nil {
		return nil, nil, clientFault("unknown operation " + qname(st.Name))
	}
	fields := make(map[string]string, len(op.fields))
	last := -1
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				return nil, nil, clientFault("unexpected end of message in " + op.name)
			}
			return nil, nil, err
		}
		child, ok := tok.(xml.StartElement)
		if !ok {
			return op, fields, nil // the operation element's end
		}
		i := slices.Index(op.fields, child.Name.Local)
		switch {
		case child.Name.Space != Namespace || i < 0:
			return nil, nil, clientFault(fmt.Sprintf("%s: unexpected element %s", op.name, qname(child.Name)))
		case i == last:
			return nil, nil, clientFault(fmt.Sprintf("%s: element %s appears more than once", op.name, child.Name.Local))
		case i < last:
			return nil, nil, clientFault(fmt.Sprintf("%s: element %s is out of order; want %s", op.name, child.Name.Local, strings.Join(op.fields, ", ")))
		}
		last = i
		text, err := p.text(op.name + "/" + child.Name.Local)
		if err != nil {
			return nil, nil, err
		}
		fields[child.Name.Local] = text
	}
}

// text reads the text content of the element whose start was just read,
// up to its end. Comments are dropped; a child element is refused.
func (p *envParser) text(what string) (string, error) {
	var b strings.Builder
	for {
		tok, err := p.token()
		if err != nil {
			if err == io.EOF {
				return "", clientFault("unexpected end of message in " + what)
			}
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.StartElement:
			return "", clientFault(what + " must hold text only")
		case xml.EndElement:
			return b.String(), nil
		}
	}
}

func isXMLSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// qname renders a resolved name in Clark notation, {namespace}local, for
// faults.
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}
