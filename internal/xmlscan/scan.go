// Package xmlscan is the XML firewall's pre-parse check: one streaming pass
// over a document that enforces size and shape limits and refuses the
// constructs behind XML's classic attacks before any tree is built.
//
// Scan refuses document type declarations and every other markup
// declaration (so no entity expansion and no external entity, XXE, can
// ever happen), processing instructions (the XML declaration at the very
// start is allowed), encodings other than UTF-8, duplicate attributes and
// namespace declarations, undeclared prefixes and names that are not
// namespace-well-formed, more than one root element and anything but white
// space and comments outside it. What it accepts, a tree parser such as
// github.com/beevik/etree reads with the same meaning.
//
// # Why encoding/xml's token stream and not a byte scanner
//
// The scan runs encoding/xml's Decoder.RawToken, the very tokenizer etree
// (and so the SOAP, XML-DSig and SAML code of Gatehouse) builds its trees
// from. Checking with the tokenizer that later parses means the scan and the
// parser cannot disagree about where a token starts or ends, which is how
// parser-differential attacks are made; a byte scanner of our own would be
// faster but would be a second XML parser whose every divergence from
// encoding/xml is a potential bypass. Since Go 1.22 encoding/xml refuses
// "--" in comments and "]]>" in text, and it never fetches or expands
// entities. What it still lets through (duplicate attributes, undeclared
// prefixes, colons in odd places, unmatched end tags in raw mode, DTDs)
// is what Scan refuses. So is what encoding/xml reads and libxml2 (behind
// xmlsec1, lxml, PHP and most SOAP stacks) refuses: attributes with no
// white space between them, an XML declaration out of its grammar,
// references to surrogates or outside the root element, characters XML
// does not allow in comments, namespace names that are not URI
// references, and xml:id values that are not NCNames or repeat;
// TestScanAgreesWithLibxml2 holds Scan to libxml2. Those rules also
// refuse every construct github.com/mattermost/xml-roundtrip-validator
// looks for (CVE-2020-29509, CVE-2020-29510, CVE-2020-29511: names that
// change on a round trip through encoding/xml, and directives); the tests
// and FuzzScan hold Scan to the validator, and Limits.RoundTripCheck runs
// it on every element as well.
//
// # Parse: one pass for the common case
//
// Scanning and then building a tree tokenizes every message twice. Parse
// does both in one pass for the subset of XML machine-written messages
// use, with a tokenizer of its own; the argument above is why it is built
// the way it is. The tree it returns is the tree its own tokenizer saw, so
// there is no second parser downstream to disagree with it; it reads only
// a subset narrow enough to be sure of (ASCII names, the predefined
// entities, no declarations or processing instructions); and on anything
// else, or anything Scan would refuse, it hands the document to Scan and
// etree unchanged. FuzzParse holds it to giving exactly the tree, or the
// error, of Scan followed by etree.
package xmlscan

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	validator "github.com/mattermost/xml-roundtrip-validator"
)

// Namespace names with fixed meanings (Namespaces in XML 1.0, §3).
const (
	NamespaceXML   = "http://www.w3.org/XML/1998/namespace"
	NamespaceXMLNS = "http://www.w3.org/2000/xmlns/"
)

// Limits bound one document. Scan treats a zero or negative field as the
// default (see DefaultLimits), never as "unlimited": a firewall that can
// be switched off by omission is no firewall.
type Limits struct {
	// MaxBytes is the document's size in bytes, byte order mark included.
	MaxBytes int64
	// MaxDepth is how deeply elements may nest; the root is at depth 1.
	MaxDepth int
	// MaxElements counts the nodes markup creates: elements, comments and
	// CDATA sections. Comments and CDATA sections count because each one
	// becomes a node of the tree (and splits the text around it) as
	// surely as an element does.
	MaxElements int
	// MaxAttributes is the number of attributes on one element, namespace
	// declarations included.
	MaxAttributes int
	// MaxNamespaceDecls is the number of namespace declarations (xmlns and
	// xmlns:p attributes) on one element.
	MaxNamespaceDecls int
	// MaxTotalNamespaceDecls is the number of namespace declarations in the
	// whole document.
	MaxTotalNamespaceDecls int
	// MaxTextBytes is the size of one run of character data between two
	// tags (text and CDATA sections, decoded, plus the comments among them)
	// and of one comment.
	MaxTextBytes int
	// MaxAttributeBytes is the size of one attribute value, decoded.
	MaxAttributeBytes int
	// MaxNameBytes is the length of an element or attribute name, its
	// prefix and colon included.
	MaxNameBytes int
	// RoundTripCheck also puts every start tag through
	// github.com/mattermost/xml-roundtrip-validator's CheckToken, which
	// refuses names that change on a round trip through encoding/xml
	// (CVE-2020-29509, CVE-2020-29511). Scan's own name and namespace
	// rules already refuse every such name known (the tests and FuzzScan
	// hold Scan to the validator), so this is belt and braces, at about
	// three times the cost of the scan: 60 µs and 100 KB more for a 2 KB
	// message.
	RoundTripCheck bool
}

// Default limits: generous for SOAP messages (a WS-Security header with a
// certificate and a signature is a few kilobytes and a dozen levels deep),
// tight enough that no document within them costs more than a few
// megabytes of tree.
const (
	DefaultMaxBytes               = 1 << 20
	DefaultMaxDepth               = 64
	DefaultMaxElements            = 10000
	DefaultMaxAttributes          = 64
	DefaultMaxNamespaceDecls      = 32
	DefaultMaxTotalNamespaceDecls = 512
	DefaultMaxTextBytes           = 64 << 10
	DefaultMaxAttributeBytes      = 8 << 10
	DefaultMaxNameBytes           = 256
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:               DefaultMaxBytes,
		MaxDepth:               DefaultMaxDepth,
		MaxElements:            DefaultMaxElements,
		MaxAttributes:          DefaultMaxAttributes,
		MaxNamespaceDecls:      DefaultMaxNamespaceDecls,
		MaxTotalNamespaceDecls: DefaultMaxTotalNamespaceDecls,
		MaxTextBytes:           DefaultMaxTextBytes,
		MaxAttributeBytes:      DefaultMaxAttributeBytes,
		MaxNameBytes:           DefaultMaxNameBytes,
	}
}

// WithDefaults returns l with every unset (zero or negative) field set to
// its default: the limits Scan applies.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	def := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	def(&l.MaxDepth, d.MaxDepth)
	def(&l.MaxElements, d.MaxElements)
	def(&l.MaxAttributes, d.MaxAttributes)
	def(&l.MaxNamespaceDecls, d.MaxNamespaceDecls)
	def(&l.MaxTotalNamespaceDecls, d.MaxTotalNamespaceDecls)
	def(&l.MaxTextBytes, d.MaxTextBytes)
	def(&l.MaxAttributeBytes, d.MaxAttributeBytes)
	def(&l.MaxNameBytes, d.MaxNameBytes)
	return l
}

// Kind classifies why a document was refused.
type Kind uint8

const (
	// Malformed: not well-formed XML, or not one root element with only
	// white space and comments around it.
	Malformed Kind = iota + 1
	// DTD: a document type declaration or another markup declaration
	// (<!DOCTYPE, <!ENTITY, <!ELEMENT, ...).
	DTD
	// ProcInst: a processing instruction, or an XML declaration that is
	// not at the very start.
	ProcInst
	// Limit: one of Limits was exceeded; Error.Limit names it.
	Limit
	// DuplicateAttribute: two attributes of one element with the same
	// qualified name or the same expanded name.
	DuplicateAttribute
	// DuplicateNamespace: one element declares the same prefix (or the
	// default namespace) twice.
	DuplicateNamespace
	// Namespace: an undeclared prefix, a name that is not a QName, or a
	// declaration that Namespaces in XML forbids.
	Namespace
	// Encoding: an encoding other than UTF-8 was declared or used.
	Encoding
)

// Code returns the stable denial code for k, as the xmlguard policy shows it
// to clients: xml_malformed, xml_dtd_forbidden, xml_pi_forbidden,
// xml_limit_exceeded, xml_duplicate_attribute, xml_duplicate_namespace,
// xml_namespace_error or xml_encoding_unsupported.
func (k Kind) Code() string {
	switch k {
	case DTD:
		return "xml_dtd_forbidden"
	case ProcInst:
		return "xml_pi_forbidden"
	case Limit:
		return "xml_limit_exceeded"
	case DuplicateAttribute:
		return "xml_duplicate_attribute"
	case DuplicateNamespace:
		return "xml_duplicate_namespace"
	case Namespace:
		return "xml_namespace_error"
	case Encoding:
		return "xml_encoding_unsupported"
	default:
		return "xml_malformed"
	}
}

// Names of the limits, as Error.Limit reports them; they are the xmlguard
// config fields.
const (
	LimitBytes               = "max_bytes"
	LimitDepth               = "max_depth"
	LimitElements            = "max_elements"
	LimitAttributes          = "max_attributes"
	LimitNamespaceDecls      = "max_namespace_decls"
	LimitTotalNamespaceDecls = "max_total_namespace_decls"
	LimitTextBytes           = "max_text_bytes"
	LimitAttributeBytes      = "max_attribute_bytes"
	LimitNameBytes           = "max_name_bytes"
)

// Error is why Scan refused a document.
type Error struct {
	Kind Kind
	// Limit names the exceeded limit when Kind is Limit.
	Limit string
	// Offset is the byte offset in the document of the token at fault.
	Offset int64
	// Msg says what was wrong. It may quote names from the document, so it
	// is for logs; the Kind's code and a generic detail are for clients.
	Msg string
	// Err is the encoding/xml syntax error behind a Malformed, if any.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("xmlscan: %s at byte %d", e.Msg, e.Offset)
}

func (e *Error) Unwrap() error { return e.Err }

// Code returns e.Kind.Code().
func (e *Error) Code() string { return e.Kind.Code() }

// bom is the UTF-8 byte order mark.
var bom = []byte("\xef\xbb\xbf")

// TrimBOM returns data without a leading UTF-8 byte order mark. XML 1.0
// §4.3.3 allows one, some SOAP stacks send it, and encoding/xml would read
// it as text before the root element.
func TrimBOM(data []byte) []byte { return bytes.TrimPrefix(data, bom) }

// binding is one namespace declaration in scope.
type binding struct {
	prefix, uri string
	depth       int
}

// element is an open element.
type element struct {
	space, local string // raw prefix and local name, for the end tag
}

// scanner holds one Scan's state.
type scanner struct {
	lim        Limits
	data       []byte
	d          *xml.Decoder
	stack      []element
	ns         []binding
	nodes      int
	totalNS    int
	text       int // bytes of character data since the last tag
	rootSeen   bool
	rootClosed bool
	encoding   string          // a non-UTF-8 encoding the declaration named
	ids        map[string]bool // xml:id values seen
	tokStart   int64
}

// Scan checks data against lim (zero fields: the defaults) and the rules in
// the package documentation. It returns nil or an *Error. A leading UTF-8
// byte order mark is allowed; a UTF-16 or UTF-32 one is an Encoding error.
// Scan reads data only; it never fetches anything.
func Scan(data []byte, lim Limits) error {
	lim = lim.WithDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return &Error{Kind: Limit, Limit: LimitBytes, Msg: fmt.Sprintf("document of %d bytes exceeds %d", len(data), lim.MaxBytes)}
	}
	body := TrimBOM(data)
	off := int64(len(data) - len(body))
	if hasWideBOM(body) {
		return &Error{Kind: Encoding, Msg: "UTF-16 or UTF-32 byte order mark; only UTF-8 is accepted"}
	}
	s := &scanner{lim: lim, data: body, stack: make([]element, 0, 16), ns: make([]binding, 0, 16)}
	s.d = xml.NewDecoder(bytes.NewReader(body))
	// Strict mode and no Entity map are the defaults: only the five
	// predefined entities and character references exist, so there is
	// nothing to expand. CharsetReader is called only for a declared
	// encoding that is not UTF-8; refusing there gives a precise error.
	s.d.CharsetReader = func(label string, _ io.Reader) (io.Reader, error) {
		s.encoding = label
		return nil, errors.New("unsupported encoding")
	}
	if err := s.run(); err != nil {
		if e, ok := err.(*Error); ok {
			e.Offset += off
		}
		return err
	}
	return nil
}

// hasWideBOM reports whether b starts with a UTF-16 or UTF-32 byte order
// mark (FE FF, FF FE, or 00 00 FE FF).
func hasWideBOM(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xFE, 0xFF}) || bytes.HasPrefix(b, []byte{0xFF, 0xFE}) ||
		bytes.HasPrefix(b, []byte{0, 0, 0xFE, 0xFF})
}

func (s *scanner) fail(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Offset: s.tokStart, Msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) limit(name, format string, args ...any) *Error {
	e := s.fail(Limit, format, args...)
	e.Limit = name
	return e
}

func (s *scanner) run() error {
	for {
		s.tokStart = s.d.InputOffset()
		tok, err := s.d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			if s.encoding != "" {
				return s.fail(Encoding, "encoding %q declared; only UTF-8 is accepted", s.encoding)
			}
			return &Error{Kind: Malformed, Offset: s.tokStart, Msg: "not well-formed: " + err.Error(), Err: err}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			err = s.start(t)
		case xml.EndElement:
			err = s.end(t)
		case xml.CharData:
			err = s.charData(t)
		case xml.Comment:
			err = s.comment(t)
		case xml.ProcInst:
			err = s.procInst(t)
		case xml.Directive:
			err = s.fail(DTD, "markup declaration <!%s", clip(t, 16))
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !s.rootSeen:
		return s.fail(Malformed, "no root element")
	case len(s.stack) > 0:
		return s.fail(Malformed, "unexpected end of document inside <%s>", s.stack[len(s.stack)-1].qname())
	}
	return nil
}

func (e element) qname() string {
	if e.space == "" {
		return e.local
	}
	return e.space + ":" + e.local
}

// clip returns b's first n bytes as a string, for messages.
func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func (s *scanner) node() error {
	s.nodes++
	if s.nodes > s.lim.MaxElements {
		return s.limit(LimitElements, "more than %d elements, comments and CDATA sections", s.lim.MaxElements)
	}
	return nil
}

func (s *scanner) start(t xml.StartElement) error {
	if s.rootClosed {
		return s.fail(Malformed, "second root element <%s>", rawName(t.Name))
	}
	s.rootSeen = true
	s.text = 0
	if err := s.node(); err != nil {
		return err
	}
	depth := len(s.stack) + 1
	if depth > s.lim.MaxDepth {
		return s.limit(LimitDepth, "elements nested deeper than %d", s.lim.MaxDepth)
	}
	if err := s.checkName(t.Name, "element"); err != nil {
		return err
	}
	if len(t.Attr) > 1 {
		if err := s.attrsSeparated(t.Name); err != nil {
			return err
		}
	}
	if len(t.Attr) > 0 && surrogateRef(s.raw()) {
		return s.fail(Malformed, "not well-formed: character reference to a surrogate in an attribute of <%s>", rawName(t.Name))
	}
	if len(t.Attr) > s.lim.MaxAttributes {
		return s.limit(LimitAttributes, "element <%s> has %d attributes, more than %d", rawName(t.Name), len(t.Attr), s.lim.MaxAttributes)
	}

	// Namespace declarations first: they apply to the element's own name
	// and to all of its attributes, wherever they stand in the tag.
	decls := 0
	for i, a := range t.Attr {
		if err := s.checkName(a.Name, "attribute"); err != nil {
			return err
		}
		if len(a.Value) > s.lim.MaxAttributeBytes {
			return s.limit(LimitAttributeBytes, "attribute %s of %d bytes exceeds %d", rawName(a.Name), len(a.Value), s.lim.MaxAttributeBytes)
		}
		prefix, ok := declaredPrefix(a.Name)
		if !ok {
			continue
		}
		for _, b := range t.Attr[:i] {
			if p, ok := declaredPrefix(b.Name); ok && p == prefix {
				if prefix == "" {
					return s.fail(DuplicateNamespace, "element <%s> declares the default namespace twice", rawName(t.Name))
				}
				return s.fail(DuplicateNamespace, "element <%s> declares prefix %s twice", rawName(t.Name), prefix)
			}
		}
		if err := s.checkDecl(prefix, a.Value); err != nil {
			return err
		}
		decls++
		s.totalNS++
		if decls > s.lim.MaxNamespaceDecls {
			return s.limit(LimitNamespaceDecls, "element <%s> declares more than %d namespaces", rawName(t.Name), s.lim.MaxNamespaceDecls)
		}
		if s.totalNS > s.lim.MaxTotalNamespaceDecls {
			return s.limit(LimitTotalNamespaceDecls, "more than %d namespace declarations", s.lim.MaxTotalNamespaceDecls)
		}
		s.ns = append(s.ns, binding{prefix: prefix, uri: a.Value, depth: depth})
	}

	if t.Name.Space != "" {
		if _, ok := s.lookup(t.Name.Space); !ok {
			return s.fail(Namespace, "element <%s>: prefix %s is not declared", rawName(t.Name), t.Name.Space)
		}
	}
	for i, a := range t.Attr {
		if _, ok := declaredPrefix(a.Name); ok {
			continue
		}
		uri := ""
		if a.Name.Space != "" {
			var ok bool
			if uri, ok = s.lookup(a.Name.Space); !ok {
				return s.fail(Namespace, "attribute %s on <%s>: prefix %s is not declared", rawName(a.Name), rawName(t.Name), a.Name.Space)
			}
		}
		if a.Name.Space == "xml" && a.Name.Local == "id" {
			if err := s.xmlID(a.Value); err != nil {
				return err
			}
		}
		// Quadratic in the attributes of one element, which MaxAttributes
		// bounds; for the handful an element has, cheaper than a map.
		for _, b := range t.Attr[:i] {
			if _, ok := declaredPrefix(b.Name); ok {
				continue
			}
			if b.Name == a.Name {
				return s.fail(DuplicateAttribute, "element <%s> has attribute %s twice", rawName(t.Name), rawName(a.Name))
			}
			if b.Name.Local != a.Name.Local || b.Name.Space == "" || a.Name.Space == "" {
				continue
			}
			if u, _ := s.lookup(b.Name.Space); u == uri {
				return s.fail(DuplicateAttribute, "element <%s> has attributes %s and %s, both {%s}%s", rawName(t.Name), rawName(b.Name), rawName(a.Name), uri, a.Name.Local)
			}
		}
	}
	if s.lim.RoundTripCheck {
		if err := validator.CheckToken(t); err != nil {
			return s.fail(Namespace, "element <%s> would not survive a round trip through encoding/xml: %v", rawName(t.Name), err)
		}
	}
	s.stack = append(s.stack, element{space: t.Name.Space, local: t.Name.Local})
	return nil
}

// attrsSeparated refuses a start tag in which an attribute follows the
// previous one's closing quote without white space between them
// (<r a="1"b="2"/>): XML requires it (production [40], STag), libxml2 and
// the other parsers behind the gateway refuse the tag, and encoding/xml
// alone reads it, so accepting it would let the firewall and the upstream
// disagree on what the message is. It reads the tag's raw bytes: outside
// a quoted value, a quote opens or closes one.
func (s *scanner) attrsSeparated(name xml.Name) error {
	tag := s.raw()
	var quote byte
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		switch {
		case quote != 0:
			if c != quote {
				continue
			}
			quote = 0
			if i+1 < len(tag) {
				switch tag[i+1] {
				case ' ', '\t', '\r', '\n', '/', '>':
				default:
					return s.fail(Malformed, "not well-formed: no white space between attributes of <%s>", rawName(name))
				}
			}
		case c == '"' || c == '\'':
			quote = c
		}
	}
	return nil
}

// xmlID refuses an xml:id attribute whose value, white space at either
// end aside, is not an ASCII NCName, or repeats one seen before. xml:id
// (W3C, 2005) makes the value an ID without a DTD: libxml2 reports a
// value that is not an NCName, and a second element with the same ID, as
// errors (lxml raises them), while encoding/xml and etree take any value
// any number of times, so the gateway and the upstream could resolve a
// reference to a different element, or the upstream refuse the message.
// Non-ASCII IDs are refused too, failing closed: libxml2 judges their
// letters by XML 1.0's 1998 tables, which unicode.IsLetter does not
// follow.
func (s *scanner) xmlID(v string) error {
	v = strings.Trim(v, " \t\r\n")
	ok := v != ""
	for i := 0; i < len(v) && ok; i++ {
		c := v[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' ||
			i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '-')
	}
	if !ok {
		return s.fail(Malformed, "xml:id %q is not an NCName", clip([]byte(v), 32))
	}
	if s.ids[v] {
		return s.fail(DuplicateAttribute, "xml:id %q given twice", clip([]byte(v), 32))
	}
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[v] = true
	return nil
}

// declaredPrefix reports whether the attribute named n is a namespace
// declaration and which prefix it declares ("" for the default namespace).
// encoding/xml's raw tokens name xmlns:p as {xmlns p} and xmlns as {"" xmlns}.
func declaredPrefix(n xml.Name) (string, bool) {
	switch {
	case n.Space == "xmlns":
		return n.Local, true
	case n.Space == "" && n.Local == "xmlns":
		return "", true
	}
	return "", false
}

// checkDecl applies Namespaces in XML 1.0 §3 to one declaration.
func (s *scanner) checkDecl(prefix, uri string) error {
	switch {
	case prefix == "xmlns":
		return s.fail(Namespace, "the prefix xmlns must not be declared")
	case prefix == "xml" && uri != NamespaceXML:
		return s.fail(Namespace, "the prefix xml must not be bound to another namespace")
	case prefix != "xml" && uri == NamespaceXML:
		return s.fail(Namespace, "only the prefix xml may be bound to %s", NamespaceXML)
	case uri == NamespaceXMLNS:
		return s.fail(Namespace, "no prefix may be bound to %s", NamespaceXMLNS)
	case prefix != "" && uri == "":
		// Undeclaring a prefix is XML 1.1 only.
		return s.fail(Namespace, "prefix %s is bound to the empty namespace name", prefix)
	case uri != "" && !uriReference(uri):
		return s.fail(Namespace, "namespace name %q is not a URI reference", clip([]byte(uri), 64))
	}
	return nil
}

// lookup returns the namespace prefix is bound to.
func (s *scanner) lookup(prefix string) (string, bool) {
	if prefix == "xml" {
		return NamespaceXML, true
	}
	for i := len(s.ns) - 1; i >= 0; i-- {
		if s.ns[i].prefix == prefix {
			return s.ns[i].uri, true
		}
	}
	return "", false
}

// checkName refuses names that are not QNames (Namespaces in XML 1.0 §4)
// and overlong ones. encoding/xml's raw tokens split a name at its only
// colon, so a colon left in either part, or an empty part, is a name like
// ":a", "a:" or "xmlns:" that tools read differently.
func (s *scanner) checkName(n xml.Name, what string) error {
	size := len(n.Local)
	if n.Space != "" {
		size += len(n.Space) + 1
	}
	if size > s.lim.MaxNameBytes {
		return s.limit(LimitNameBytes, "%s name of %d bytes exceeds %d", what, size, s.lim.MaxNameBytes)
	}
	if !ncName(n.Local) || n.Space != "" && !ncName(n.Space) {
		return s.fail(Namespace, "%s name %q is not a qualified name", what, rawName(n))
	}
	return nil
}

// ncName reports whether s, a part of a name encoding/xml accepted, is an
// NCName: not empty, no colon, and starting with a letter or '_'.
// encoding/xml checks only the first character of the whole name, so "a:0"
// passes it with a local part "0" that no namespace-aware parser accepts,
// and that encoding/xml itself refuses once written out as "<0 xmlns=...>".
// Letters are unicode.IsLetter, a little stricter than XML's NameStartChar.
func ncName(s string) bool {
	if s == "" || strings.IndexByte(s, ':') >= 0 {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r == '_' || unicode.IsLetter(r)
}

func rawName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func (s *scanner) end(t xml.EndElement) error {
	s.text = 0
	if len(s.stack) == 0 {
		return s.fail(Malformed, "end tag </%s> without a start tag", rawName(t.Name))
	}
	top := s.stack[len(s.stack)-1]
	if top.space != t.Name.Space || top.local != t.Name.Local {
		return s.fail(Malformed, "end tag </%s> does not match <%s>", rawName(t.Name), top.qname())
	}
	depth := len(s.stack)
	s.stack = s.stack[:depth-1]
	for len(s.ns) > 0 && s.ns[len(s.ns)-1].depth == depth {
		s.ns = s.ns[:len(s.ns)-1]
	}
	if len(s.stack) == 0 {
		s.rootClosed = true
	}
	return nil
}

func (s *scanner) charData(t xml.CharData) error {
	cdata := bytes.HasPrefix(s.data[s.tokStart:], []byte("<![CDATA["))
	if len(s.stack) == 0 {
		// The raw bytes, not the decoded text: a character reference
		// such as &#32; decodes to white space, but XML allows no
		// reference outside the root element (production [27], Misc),
		// and libxml2 refuses the document.
		if cdata || !isSpace(s.raw()) {
			return s.fail(Malformed, "text outside the root element")
		}
		return nil
	}
	if cdata {
		if err := s.node(); err != nil {
			return err
		}
	} else if surrogateRef(s.raw()) {
		return s.fail(Malformed, "not well-formed: character reference to a surrogate")
	}
	s.text += len(t)
	if s.text > s.lim.MaxTextBytes {
		return s.limit(LimitTextBytes, "text of more than %d bytes", s.lim.MaxTextBytes)
	}
	return nil
}

func (s *scanner) comment(t xml.Comment) error {
	if err := s.node(); err != nil {
		return err
	}
	if len(t) > s.lim.MaxTextBytes {
		return s.limit(LimitTextBytes, "comment of %d bytes exceeds %d", len(t), s.lim.MaxTextBytes)
	}
	if len(s.stack) > 0 {
		s.text += len(t)
		if s.text > s.lim.MaxTextBytes {
			return s.limit(LimitTextBytes, "text of more than %d bytes", s.lim.MaxTextBytes)
		}
	}
	// encoding/xml refuses "--" inside a comment but not a comment ending
	// in "--->", which XML 1.0 §2.5 forbids too.
	if bytes.HasSuffix(t, []byte("-")) {
		return s.fail(Malformed, "comment ends with -")
	}
	// encoding/xml checks the characters of text, not of comments; a
	// comment holding a control character, U+FFFE or bad UTF-8 is not
	// well-formed (production [15] is made of Char) and libxml2 refuses
	// the document.
	if !validChars(t) {
		return s.fail(Malformed, "not well-formed: comment holds a character XML does not allow")
	}
	return nil
}

// validChars reports whether b is UTF-8 made only of XML characters
// (XML 1.0 §2.2, production [2]).
func validChars(b []byte) bool {
	for len(b) > 0 {
		if c := b[0]; c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 || !isChar(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

func (s *scanner) procInst(t xml.ProcInst) error {
	// encoding/xml reports the XML declaration as a ProcInst with target
	// "xml" wherever it appears, and has already checked its version and
	// encoding; it is allowed only as the very first bytes (XML 1.0 §2.8).
	if t.Target == "xml" && s.tokStart == 0 {
		if !xmlDeclOK(s.raw()) {
			return s.fail(Malformed, "not well-formed: XML declaration")
		}
		return nil
	}
	if strings.EqualFold(t.Target, "xml") {
		return s.fail(ProcInst, "XML declaration not at the start of the document")
	}
	return s.fail(ProcInst, "processing instruction <?%s", clip([]byte(t.Target), 32))
}

// raw returns the bytes of the token RawToken last returned.
func (s *scanner) raw() []byte {
	end := s.d.InputOffset()
	if s.tokStart < 0 || end > int64(len(s.data)) || s.tokStart > end {
		return nil
	}
	return s.data[s.tokStart:end]
}

// surrogateRef reports whether raw, text or a start tag as written, holds
// a character reference to a surrogate code point (&#xD800; to &#xDFFF;).
// XML 1.0 §4.1 (WFC: Legal Character) forbids one and libxml2 refuses the
// document, but encoding/xml decodes it to U+FFFD, so the gateway would
// read a text the upstream never accepts. Other references to
// non-characters encoding/xml refuses itself. A "&#" in text or in an
// attribute value always starts a character reference (encoding/xml
// refuses a bare '&'), and CDATA sections are separate tokens.
func surrogateRef(raw []byte) bool {
	for {
		i := bytes.Index(raw, []byte("&#"))
		if i < 0 {
			return false
		}
		raw = raw[i+2:]
		base := uint32(10)
		if len(raw) > 0 && raw[0] == 'x' {
			base, raw = 16, raw[1:]
		}
		var n uint32
	digits:
		for len(raw) > 0 {
			var v uint32
			switch c := raw[0]; {
			case '0' <= c && c <= '9':
				v = uint32(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				v = uint32(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				v = uint32(c-'A') + 10
			default:
				break digits
			}
			// Saturate: anything past U+10FFFF is refused by encoding/xml.
			n = min(n*base+v, 0x110000)
			raw = raw[1:]
		}
		if n >= 0xD800 && n <= 0xDFFF {
			return true
		}
	}
}

// xmlDeclOK reports whether raw, an XML declaration from "<?xml" to
// "?>", follows XML 1.0 §2.8 (productions [23] to [26], [32], [80] and
// [81]): version="1.0" first and required, then optionally encoding with
// a well-formed name, then optionally standalone="yes" or "no", white
// space before each, quotes matched. encoding/xml reads the declaration's
// pseudo-attributes leniently (in any order, without white space, with
// version missing, unknown ones and repeats ignored, standalone unchecked)
// where libxml2 refuses the document; the encoding's value encoding/xml
// has already held to UTF-8 by then.
func xmlDeclOK(raw []byte) bool {
	b, ok := bytes.CutPrefix(raw, []byte("<?xml"))
	if !ok {
		return false
	}
	if b, ok = bytes.CutSuffix(b, []byte("?>")); !ok {
		return false
	}
	space := func() bool {
		n := len(b)
		b = bytes.TrimLeft(b, " \t\r\n")
		return len(b) < n
	}
	// attr reads name Eq quoted-value, or returns false.
	attr := func(name string) ([]byte, bool) {
		rest, ok := bytes.CutPrefix(b, []byte(name))
		if !ok {
			return nil, false
		}
		b = rest
		space()
		if len(b) == 0 || b[0] != '=' {
			return nil, false
		}
		b = b[1:]
		space()
		if len(b) == 0 || b[0] != '"' && b[0] != '\'' {
			return nil, false
		}
		end := bytes.IndexByte(b[1:], b[0])
		if end < 0 {
			return nil, false
		}
		v := b[1 : 1+end]
		b = b[2+end:]
		return v, true
	}
	if !space() {
		return false
	}
	if v, ok := attr("version"); !ok || string(v) != "1.0" {
		return false
	}
	sp := space()
	if sp && bytes.HasPrefix(b, []byte("encoding")) {
		if v, ok := attr("encoding"); !ok || !encName(v) {
			return false
		}
		sp = space()
	}
	if sp && bytes.HasPrefix(b, []byte("standalone")) {
		if v, ok := attr("standalone"); !ok || string(v) != "yes" && string(v) != "no" {
			return false
		}
		space()
	}
	return len(b) == 0
}

// encName reports whether s is an EncName (XML 1.0 production [81]).
func encName(s []byte) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return len(s) > 0
}

// isSpace reports whether b is only XML white space (XML 1.0 §2.3 S).
func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
