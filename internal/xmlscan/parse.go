package xmlscan

import (
	"bytes"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Parse checks data as Scan does under lim (zero fields: the defaults) and
// returns its tree: the tree etree's Document.ReadFromBytes builds of
// NormalizeAttributeWhitespace(TrimBOM(data)), which is what the SOAP,
// WS-Security and XML Encryption code read. A refused document is the
// *Error Scan returns for it.
//
// Most messages are read in one pass by a strict tokenizer of the subset
// of XML that machine-written messages use (see ParseSubset). Anything
// outside that subset, and anything the subset's checks would refuse, goes
// the old way, Scan and then etree, so Parse accepts exactly what Scan
// accepts, refuses it with the same *Error, and builds the same tree;
// FuzzParse holds it to that.
func Parse(data []byte, lim Limits) (*etree.Document, error) {
	lim = lim.WithDefaults()
	if doc, ok := parseSubset(data, lim); ok {
		return doc, nil
	}
	if err := Scan(data, lim); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	// Scan has refused every encoding but UTF-8, duplicate attributes and
	// anything deeper than lim.MaxDepth, so the other read settings do
	// not matter.
	doc.ReadSettings.MaxDepth = lim.MaxDepth
	if err := doc.ReadFromBytes(NormalizeAttributeWhitespace(TrimBOM(data))); err != nil {
		// Unreachable if Scan and etree agree; FuzzScan checks that.
		return nil, &Error{Kind: Malformed, Msg: "parsing the scanned document: " + err.Error(), Err: err}
	}
	return doc, nil
}

// ParseSubset is Parse's one-pass path alone: it returns the tree and true
// when data lies in the subset it reads, and nil and false otherwise, when
// Parse falls back to Scan and etree. It never returns a tree of a
// document Scan refuses. It is exported for tests and benchmarks, to know
// which path a document takes.
//
// The subset: UTF-8, an optional byte order mark, an optional XML
// declaration of version 1.0 (encoding UTF-8, standalone allowed) at the
// very start, ASCII names that are QNames, attributes separated by white
// space, text and attribute values with the five predefined entities and
// character references, CDATA sections, comments, and "]>" nowhere in
// text. Everything Scan refuses is outside it, as are processing
// instructions, declarations and Limits.RoundTripCheck.
func ParseSubset(data []byte, lim Limits) (*etree.Document, bool) {
	return parseSubset(data, lim.WithDefaults())
}

// xmlDecls are the XML declarations the subset reads, by their content
// after "<?xml ": what encoding/xml reports as the ProcInst's Inst.
var xmlDecls = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range []string{`version="1.0"`, `version='1.0'`} {
		for _, e := range []string{"", ` encoding="UTF-8"`, ` encoding="utf-8"`, ` encoding='UTF-8'`, ` encoding='utf-8'`} {
			for _, s := range []string{"", ` standalone="yes"`, ` standalone="no"`, ` standalone='yes'`, ` standalone='no'`} {
				m[v+e+s] = true
			}
		}
	}
	return m
}()

// fastParser is one ParseSubset. Every method returns false as soon as the
// document leaves the subset; nothing is refused here, only passed on.
type fastParser struct {
	lim      Limits
	data     []byte
	pos      int
	doc      *etree.Document
	stack    []*etree.Element // open elements; the last is the innermost
	ns       []binding
	nodes    int
	totalNS  int
	text     int // bytes of character data since the last tag, as Scan counts
	rootSeen bool
	buf      []byte // scratch for decoded text and values
	names    map[string]string
	attrs    []rawAttr
}

// rawAttr is one attribute of the start tag being read.
type rawAttr struct {
	qname        string // prefix:local as written
	space, local string // slices of qname
	value        string
}

func parseSubset(data []byte, lim Limits) (*etree.Document, bool) {
	if int64(len(data)) > lim.MaxBytes || lim.RoundTripCheck {
		return nil, false
	}
	p := &fastParser{
		lim:   lim,
		data:  TrimBOM(data),
		doc:   etree.NewDocument(),
		stack: make([]*etree.Element, 0, 16),
		ns:    make([]binding, 0, 16),
	}
	p.doc.ReadSettings.MaxDepth = lim.MaxDepth
	if !p.run() {
		return nil, false
	}
	return p.doc, true
}

func (p *fastParser) top() *etree.Element {
	if len(p.stack) == 0 {
		return &p.doc.Element
	}
	return p.stack[len(p.stack)-1]
}

func (p *fastParser) run() bool {
	if bytes.HasPrefix(p.data, []byte("<?xml")) && !p.decl() {
		return false
	}
	rootClosed := false
	for p.pos < len(p.data) {
		if p.data[p.pos] != '<' {
			start := p.pos
			t, ok := p.charData()
			if !ok {
				return false
			}
			if len(p.stack) == 0 {
				// As written: no reference, not even &#32;, outside
				// the root (Scan's charData says why).
				if !isSpace(p.data[start:p.pos]) {
					return false
				}
			} else if p.text += len(t); p.text > p.lim.MaxTextBytes {
				return false
			}
			p.newText(t)
			continue
		}
		rest := p.data[p.pos:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			if !p.comment() {
				return false
			}
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			if len(p.stack) == 0 || !p.cdata() {
				return false
			}
		case len(rest) > 1 && rest[1] == '/':
			if !p.end() {
				return false
			}
			rootClosed = len(p.stack) == 0
		case len(rest) > 1 && (rest[1] == '!' || rest[1] == '?'):
			return false
		default:
			if rootClosed || !p.start() {
				return false
			}
			p.rootSeen = true
			rootClosed = len(p.stack) == 0 // an empty root element
		}
	}
	return p.rootSeen && len(p.stack) == 0
}

// decl reads an XML declaration at the start of the document.
func (p *fastParser) decl() bool {
	end := bytes.Index(p.data, []byte("?>"))
	if end < 0 || !bytes.HasPrefix(p.data, []byte("<?xml ")) {
		return false
	}
	inst := string(p.data[len("<?xml "):end])
	if !xmlDecls[inst] {
		return false
	}
	p.doc.CreateProcInst("xml", inst)
	p.pos = end + 2
	return true
}

func (p *fastParser) node() bool {
	p.nodes++
	return p.nodes <= p.lim.MaxElements
}

// newText adds a character data token as etree's reader does: whitespace
// flagged, CDATA sections not told apart from text.
func (p *fastParser) newText(t string) {
	p.top().CreateText(t).SetData(t)
}

// charData reads text up to the next '<' or the end, decoded.
func (p *fastParser) charData() (string, bool) {
	d := p.data
	i := p.pos
	// The common case: nothing to decode, one string of the input.
	for i < len(d) {
		c := d[i]
		if c == '<' || c == '&' || c == '\r' || c == '>' || c >= utf8.RuneSelf || c < 0x20 && c != '\t' && c != '\n' {
			break
		}
		i++
	}
	if i == len(d) || d[i] == '<' {
		s := string(d[p.pos:i])
		p.pos = i
		return s, true
	}
	buf := append(p.buf[:0], d[p.pos:i]...)
	for i < len(d) && d[i] != '<' {
		c := d[i]
		switch {
		case c == '&':
			var ok bool
			if buf, i, ok = reference(buf, d, i); !ok {
				return "", false
			}
			continue
		case c == '\r':
			buf = append(buf, '\n')
			if i+1 < len(d) && d[i+1] == '\n' {
				i++
			}
		case c == '>':
			// "]]>" is refused in text; "]>" is left to the slow path
			// rather than following encoding/xml's reset of its
			// look-behind after a reference.
			if i > 0 && d[i-1] == ']' {
				return "", false
			}
			buf = append(buf, c)
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d[i:])
			if !isChar(r) || r == utf8.RuneError && n == 1 {
				return "", false
			}
			buf = append(buf, d[i:i+n]...)
			i += n
			continue
		case c < 0x20 && c != '\t' && c != '\n':
			return "", false
		default:
			buf = append(buf, c)
		}
		i++
	}
	p.pos = i
	p.buf = buf
	return string(buf), true
}

// reference decodes the entity or character reference at d[i] ('&') onto
// buf: the five predefined entities and character references to XML
// characters only.
func reference(buf, d []byte, i int) ([]byte, int, bool) {
	rest := d[i+1:]
	for _, e := range [...]struct {
		name string
		c    byte
	}{{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}} {
		if bytes.HasPrefix(rest, []byte(e.name)) {
			return append(buf, e.c), i + 1 + len(e.name), true
		}
	}
	if len(rest) < 3 || rest[0] != '#' {
		return buf, i, false
	}
	j, base := 1, rune(10)
	if rest[1] == 'x' {
		j, base = 2, 16
	}
	var r rune
	start := j
	for ; j < len(rest) && j-start < 7; j++ {
		c := rest[j]
		var v rune
		switch {
		case '0' <= c && c <= '9':
			v = rune(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			v = rune(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			v = rune(c-'A') + 10
		default:
			goto done
		}
		r = r*base + v
	}
done:
	if j == start || j >= len(rest) || rest[j] != ';' || !isChar(r) {
		return buf, i, false
	}
	return utf8.AppendRune(buf, r), i + 1 + j + 1, true
}

// isChar reports whether r is an XML character (XML 1.0 §2.2), as
// encoding/xml checks decoded text; surrogates are not, and are left to
// the slow path (encoding/xml turns a reference to one into U+FFFD).
func isChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func (p *fastParser) comment() bool {
	body := p.data[p.pos+4:]
	e := bytes.Index(body, []byte("--"))
	// encoding/xml ends a comment at the first "--", which must be
	// followed by '>'; Scan refuses one ending in '-'.
	if e < 0 || e+2 >= len(body) || body[e+2] != '>' || e > 0 && body[e-1] == '-' {
		return false
	}
	if !p.node() || e > p.lim.MaxTextBytes || !validChars(body[:e]) {
		return false
	}
	if len(p.stack) > 0 {
		if p.text += e; p.text > p.lim.MaxTextBytes {
			return false
		}
	}
	// encoding/xml hands comments over as they are written.
	p.top().CreateComment(string(body[:e]))
	p.pos += 4 + e + 3
	return true
}

func (p *fastParser) cdata() bool {
	body := p.data[p.pos+9:]
	e := bytes.Index(body, []byte("]]>"))
	if e < 0 || !p.node() {
		return false
	}
	raw := body[:e]
	buf := p.buf[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\r':
			buf = append(buf, '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(raw[i:])
			if !isChar(r) || r == utf8.RuneError && n == 1 {
				return false
			}
			buf = append(buf, raw[i:i+n]...)
			i += n
			continue
		case c < 0x20 && c != '\t' && c != '\n':
			return false
		default:
			buf = append(buf, c)
		}
		i++
	}
	p.buf = buf
	if p.text += len(buf); p.text > p.lim.MaxTextBytes {
		return false
	}
	p.newText(string(buf))
	p.pos += 9 + e + 3
	return true
}

// name reads an ASCII QName at p.pos and returns it and the index of its
// colon (-1 if none). Names repeat (a message of line items is the same
// few names over and over), so they are kept and handed out again rather
// than allocated each time.
func (p *fastParser) name() (string, int, bool) {
	b, colon, ok := p.rawName()
	if !ok {
		return "", 0, false
	}
	if s, ok := p.names[string(b)]; ok {
		return s, colon, true
	}
	s := string(b)
	if p.names == nil {
		p.names = make(map[string]string, 32)
	}
	p.names[s] = s
	return s, colon, true
}

// rawName is name without the string.
func (p *fastParser) rawName() ([]byte, int, bool) {
	d := p.data
	start, colon := p.pos, -1
	i := start
	first := true
	for ; i < len(d); i++ {
		c := d[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_':
		case '0' <= c && c <= '9' || c == '.' || c == '-':
			if first {
				return nil, 0, false
			}
		case c == ':':
			if first || colon >= 0 {
				return nil, 0, false
			}
			colon = i - start
			first = true
			continue
		case c >= utf8.RuneSelf:
			return nil, 0, false
		default:
			goto done
		}
		first = false
	}
done:
	if first || i-start > p.lim.MaxNameBytes {
		return nil, 0, false
	}
	p.pos = i
	return d[start:i], colon, true
}

func (p *fastParser) space() bool {
	s := p.pos
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
			continue
		}
		break
	}
	return p.pos > s
}

func split(qname string, colon int) (string, string) {
	if colon < 0 {
		return "", qname
	}
	return qname[:colon], qname[colon+1:]
}

func (p *fastParser) start() bool {
	if !p.node() {
		return false
	}
	depth := len(p.stack) + 1
	if depth > p.lim.MaxDepth {
		return false
	}
	p.pos++ // '<'
	qname, colon, ok := p.name()
	if !ok {
		return false
	}
	space, _ := split(qname, colon)
	attrs := p.attrs[:0]
	empty := false
	for {
		sp := p.space()
		if p.pos >= len(p.data) {
			return false
		}
		if c := p.data[p.pos]; c == '>' || c == '/' {
			if c == '/' {
				if p.pos+1 >= len(p.data) || p.data[p.pos+1] != '>' {
					return false
				}
				empty = true
				p.pos++
			}
			p.pos++
			break
		}
		if !sp {
			return false
		}
		an, acolon, ok := p.name()
		if !ok {
			return false
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '=' {
			return false
		}
		p.pos++
		p.space()
		v, ok := p.attrValue()
		if !ok {
			return false
		}
		as, al := split(an, acolon)
		attrs = append(attrs, rawAttr{qname: an, space: as, local: al, value: v})
	}
	p.attrs = attrs
	if len(attrs) > p.lim.MaxAttributes {
		return false
	}

	// Namespace declarations, as Scan checks them.
	nsMark := len(p.ns)
	decls := 0
	for i, a := range attrs {
		prefix, ok := declaredPrefix2(a.space, a.local)
		if !ok {
			continue
		}
		for _, b := range attrs[:i] {
			if q, ok := declaredPrefix2(b.space, b.local); ok && q == prefix {
				return false
			}
		}
		// The reserved prefixes and names are left to the slow path,
		// even where Scan allows them (xml bound to its own name).
		if prefix == "xml" || prefix == "xmlns" || a.value == NamespaceXML || a.value == NamespaceXMLNS || prefix != "" && a.value == "" ||
			a.value != "" && !uriReference(a.value) {
			return false
		}
		decls++
		p.totalNS++
		if decls > p.lim.MaxNamespaceDecls || p.totalNS > p.lim.MaxTotalNamespaceDecls {
			return false
		}
		p.ns = append(p.ns, binding{prefix: prefix, uri: a.value, depth: depth})
	}
	if space != "" {
		if _, ok := p.lookup(space); !ok {
			return false
		}
	}
	for i, a := range attrs {
		if _, ok := declaredPrefix2(a.space, a.local); ok {
			continue
		}
		uri := ""
		if a.space != "" {
			var ok bool
			if uri, ok = p.lookup(a.space); !ok {
				return false
			}
		}
		if a.space == "xml" && a.local == "id" {
			// Scan's xml:id checks are left to it.
			return false
		}
		for _, b := range attrs[:i] {
			if _, ok := declaredPrefix2(b.space, b.local); ok {
				continue
			}
			if b.qname == a.qname {
				return false
			}
			if b.local != a.local || b.space == "" || a.space == "" {
				continue
			}
			if u, _ := p.lookup(b.space); u == uri {
				return false
			}
		}
	}

	p.text = 0
	e := p.top().CreateElement(qname)
	if len(attrs) > 0 {
		e.Attr = make([]etree.Attr, 0, len(attrs))
		for _, a := range attrs {
			e.CreateAttr(a.qname, a.value)
		}
	}
	if empty {
		p.ns = p.ns[:nsMark]
		return true
	}
	p.stack = append(p.stack, e)
	return true
}

// declaredPrefix2 is declaredPrefix on a split raw name.
func declaredPrefix2(space, local string) (string, bool) {
	switch {
	case space == "xmlns":
		return local, true
	case space == "" && local == "xmlns":
		return "", true
	}
	return "", false
}

func (p *fastParser) lookup(prefix string) (string, bool) {
	if prefix == "xml" {
		return NamespaceXML, true
	}
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri, true
		}
	}
	return "", false
}

// attrValue reads a quoted attribute value, decoded and with its literal
// white space normalized as NormalizeAttributeWhitespace does.
func (p *fastParser) attrValue() (string, bool) {
	d := p.data
	if p.pos >= len(d) || d[p.pos] != '"' && d[p.pos] != '\'' {
		return "", false
	}
	q := d[p.pos]
	start := p.pos + 1
	i := start
	for i < len(d) {
		c := d[i]
		if c == q || c == '<' || c == '&' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	if i < len(d) && d[i] == q {
		if i-start > p.lim.MaxAttributeBytes {
			return "", false
		}
		p.pos = i + 1
		return string(d[start:i]), true
	}
	buf := append(p.buf[:0], d[start:i]...)
	for {
		if i >= len(d) {
			return "", false
		}
		c := d[i]
		switch {
		case c == q:
			if len(buf) > p.lim.MaxAttributeBytes {
				return "", false
			}
			p.buf = buf
			p.pos = i + 1
			return string(buf), true
		case c == '<':
			return "", false
		case c == '&':
			var ok bool
			if buf, i, ok = reference(buf, d, i); !ok {
				return "", false
			}
			continue
		case c == '\r':
			buf = append(buf, ' ')
			if i+1 < len(d) && d[i+1] == '\n' {
				i++
			}
		case c == '\t' || c == '\n':
			buf = append(buf, ' ')
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d[i:])
			if !isChar(r) || r == utf8.RuneError && n == 1 {
				return "", false
			}
			buf = append(buf, d[i:i+n]...)
			i += n
			continue
		case c < 0x20:
			return "", false
		default:
			buf = append(buf, c)
		}
		i++
	}
}

func (p *fastParser) end() bool {
	p.pos += 2 // "</"
	qname, _, ok := p.rawName()
	if !ok || len(p.stack) == 0 {
		return false
	}
	p.space()
	if p.pos >= len(p.data) || p.data[p.pos] != '>' {
		return false
	}
	p.pos++
	depth := len(p.stack)
	e := p.stack[depth-1]
	if e.Space == "" && string(qname) != e.Tag || e.Space != "" && (len(qname) != len(e.Space)+1+len(e.Tag) ||
		string(qname[:len(e.Space)]) != e.Space || qname[len(e.Space)] != ':' || string(qname[len(e.Space)+1:]) != e.Tag) {
		return false
	}
	p.stack = p.stack[:depth-1]
	for len(p.ns) > 0 && p.ns[len(p.ns)-1].depth == depth {
		p.ns = p.ns[:len(p.ns)-1]
	}
	p.text = 0
	return true
}
