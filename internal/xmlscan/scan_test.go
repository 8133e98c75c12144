package xmlscan

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/beevik/etree"
	validator "github.com/mattermost/xml-roundtrip-validator"
)

const soapEnv = `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tns="urn:gatehouse:demo:products">
  <!-- a comment is allowed -->
  <soap:Header/>
  <soap:Body><tns:GetProduct><tns:id>p-1 &amp; &#x41;<![CDATA[<raw>]]></tns:id></tns:GetProduct></soap:Body>
</soap:Envelope>
`

func TestScanAccepts(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"soap envelope", soapEnv},
		{"bare root", `<r/>`},
		{"utf-8 bom", "\xef\xbb\xbf<r/>"},
		{"bom then declaration", "\xef\xbb\xbf<?xml version=\"1.0\"?><r/>"},
		{"declaration upper-case UTF-8", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><r/>`},
		{"white space and comments around the root", "\n<!-- before -->\n<r/>\n<!-- after -->\n"},
		{"default namespace", `<r xmlns="urn:a"><c xmlns="urn:b"/></r>`},
		{"same local name in different namespaces", `<r xmlns:a="urn:a" xmlns:b="urn:b" a:x="1" b:x="2" x="3"/>`},
		{"redeclared prefix in a child", `<r xmlns:a="urn:a"><a:c xmlns:a="urn:b" a:x="1"/></r>`},
		{"prefix and default namespace on the same uri", `<r xmlns="urn:a" xmlns:a="urn:a" x="1" a:x="2"/>`},
		{"xml prefix without declaration", `<r xml:lang="en" xml:space="preserve"/>`},
		{"xml:id", `<r xml:id="Body-1"><c xml:id=" _a.2 "/></r>`},
		{"xml prefix declared correctly", `<r xmlns:xml="http://www.w3.org/XML/1998/namespace"/>`},
		{"default namespace undeclared", `<r xmlns="urn:a"><c xmlns=""/></r>`},
		{"declaration after use in the same tag", `<a:r a:x="1" xmlns:a="urn:a"/>`},
		{"entities and character references", `<r a="&lt;&gt;&amp;&apos;&quot;&#60;">&#x10FFFF;</r>`},
		{"non-ascii names", `<ñ ü="1"/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Scan([]byte(tt.doc), Limits{}); err != nil {
				t.Fatalf("Scan = %v, want nil", err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(TrimBOM([]byte(tt.doc))); err != nil {
				t.Fatalf("etree refuses what Scan accepts: %v", err)
			}
		})
	}
}

// refusal is a document Scan refuses, and how.
type refusal struct {
	name  string
	doc   string
	kind  Kind
	limit string
}

// refusals are the documents TestScanRefuses and TestParseRefusals refuse.
func refusals() []refusal {
	const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>`
	deep := strings.Repeat("<a>", 65) + strings.Repeat("</a>", 65)
	wide := "<r>" + strings.Repeat("<a/>", 10000) + "</r>"
	manyComments := "<r>" + strings.Repeat("<!---->", 10000) + "</r>"
	manyCDATA := "<r>" + strings.Repeat("<![CDATA[x]]>", 10000) + "</r>"
	var attrs, decls strings.Builder
	for i := range 65 {
		fmt.Fprintf(&attrs, ` a%d="v"`, i)
	}
	for i := range 33 {
		fmt.Fprintf(&decls, ` xmlns:p%d="urn:%d"`, i, i)
	}
	var totalNS strings.Builder
	totalNS.WriteString("<r>")
	for i := range 513 {
		fmt.Fprintf(&totalNS, `<c xmlns:p="urn:%d"/>`, i)
	}
	totalNS.WriteString("</r>")

	return []refusal{
		// Declarations: no DTD means no entity expansion and no XXE.
		{"billion laughs", billionLaughs, DTD, ""},
		{"external entity", `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`, DTD, ""},
		{"parameter entity", `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/evil.dtd"> %p;]><r/>`, DTD, ""},
		{"external dtd", `<!DOCTYPE r SYSTEM "http://127.0.0.1:1/r.dtd"><r/>`, DTD, ""},
		{"doctype inside the root", `<r><!DOCTYPE r></r>`, DTD, ""},
		{"entity declaration alone", `<!ENTITY x "y"><r/>`, DTD, ""},
		{"undefined entity", `<r>&x;</r>`, Malformed, ""},
		{"entity in attribute", `<r a="&x;"/>`, Malformed, ""},
		{"character reference to NUL", `<r a="&#0;"/>`, Malformed, ""},
		{"character reference out of range", `<r>&#x110000;</r>`, Malformed, ""},
		{"raw less-than in attribute", `<r a="<"/>`, Malformed, ""},
		// encoding/xml reads these as U+FFFD; libxml2 refuses them.
		{"character reference to a surrogate", `<r>&#xD800;</r>`, Malformed, ""},
		{"decimal character reference to a surrogate", `<r>a&#57343;</r>`, Malformed, ""},
		{"character reference to a surrogate in an attribute", `<r b="1" a="x&#xDBFF;"/>`, Malformed, ""},

		// Processing instructions.
		{"pi in body", `<r><?php echo 1; ?></r>`, ProcInst, ""},
		{"pi before root", `<?xml-stylesheet href="x"?><r/>`, ProcInst, ""},
		{"pi after root", `<r/><?x?>`, ProcInst, ""},
		{"declaration after white space", ` <?xml version="1.0"?><r/>`, ProcInst, ""},
		{"declaration after comment", `<!----><?xml version="1.0"?><r/>`, ProcInst, ""},
		{"second declaration", `<?xml version="1.0"?><?xml version="1.0"?><r/>`, ProcInst, ""},
		{"declaration inside root", `<r><?xml version="1.0"?></r>`, ProcInst, ""},
		{"declaration upper case", `<r><?XML version="1.0"?></r>`, ProcInst, ""},

		// Encodings.
		{"utf-16 declared", `<?xml version="1.0" encoding="UTF-16"?><r/>`, Encoding, ""},
		{"latin-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?><r/>`, Encoding, ""},
		{"utf-16le bom", "\xff\xfe<\x00r\x00/\x00>\x00", Encoding, ""},
		{"utf-16be bom", "\xfe\xff\x00<\x00r\x00/\x00>", Encoding, ""},
		{"invalid utf-8", "<r>\xff</r>", Malformed, ""},
		{"xml 1.1", `<?xml version="1.1"?><r/>`, Malformed, ""},
		// encoding/xml reads the XML declaration leniently; libxml2
		// refuses each of these.
		{"declaration without version", `<?xml encoding="UTF-8"?><r/>`, Malformed, ""},
		{"empty declaration", `<?xml?><r/>`, Malformed, ""},
		{"declaration out of order", `<?xml version="1.0" standalone="yes" encoding="UTF-8"?><r/>`, Malformed, ""},
		{"declaration version not first", `<?xml encoding="UTF-8" version="1.0"?><r/>`, Malformed, ""},
		{"declaration without white space", `<?xml version="1.0"encoding="UTF-8"?><r/>`, Malformed, ""},
		{"declaration standalone maybe", `<?xml version="1.0" standalone="YES"?><r/>`, Malformed, ""},
		{"declaration empty encoding", `<?xml version="1.0" encoding=""?><r/>`, Malformed, ""},
		{"declaration unknown pseudo-attribute", `<?xml version="1.0" foo="bar"?><r/>`, Malformed, ""},
		{"declaration repeated version", `<?xml version="1.0" version="1.0"?><r/>`, Malformed, ""},
		{"declaration unquoted version", `<?xml version=1.0?><r/>`, Malformed, ""},
		{"declaration mismatched quotes", `<?xml version="1.0'?><r/>`, Malformed, ""},
		{"declaration nul", "<?xml\x00version=\"1.0\"?><r/>", Malformed, ""},

		// Duplicates: Go's parsers keep the last, libxml2 refuses.
		{"duplicate attribute", `<r a="1" a="2"/>`, DuplicateAttribute, ""},
		{"duplicate prefixed attribute", `<r xmlns:p="urn:p" p:a="1" p:a="2"/>`, DuplicateAttribute, ""},
		{"two prefixes one namespace", `<r xmlns:p="urn:p" xmlns:q="urn:p" p:a="1" q:a="2"/>`, DuplicateAttribute, ""},
		{"two prefixes one namespace, declared late", `<r p:a="1" q:a="2" xmlns:q="urn:p" xmlns:p="urn:p"/>`, DuplicateAttribute, ""},
		{"inherited prefix and own prefix", `<r xmlns:p="urn:p"><c xmlns:q="urn:p" p:a="1" q:a="2"/></r>`, DuplicateAttribute, ""},
		{"duplicate xmlns", `<r xmlns="urn:a" xmlns="urn:b"/>`, DuplicateNamespace, ""},
		{"duplicate xmlns:p", `<r xmlns:p="urn:a" xmlns:p="urn:b"/>`, DuplicateNamespace, ""},
		{"duplicate xmlns:p same uri", `<r xmlns:p="urn:a" xmlns:p="urn:a"/>`, DuplicateNamespace, ""},
		// xml:id values are IDs to libxml2, which reports these.
		{"duplicate xml:id", `<r xml:id="a"><c xml:id=" a"/></r>`, DuplicateAttribute, ""},
		{"xml:id not an NCName", `<r xml:id="1 2"/>`, Malformed, ""},
		{"xml:id with a colon", `<r xml:id="a:b"/>`, Malformed, ""},
		{"empty xml:id", `<r xml:id=" "/>`, Malformed, ""},

		// Namespaces.
		{"undeclared element prefix", `<p:r/>`, Namespace, ""},
		{"undeclared attribute prefix", `<r p:a="1"/>`, Namespace, ""},
		{"prefix out of scope", `<r><c xmlns:p="urn:p"/><p:c/></r>`, Namespace, ""},
		{"empty prefix", `<:r/>`, Namespace, ""},
		{"empty local name", `<r: xmlns:r="urn:r"/>`, Namespace, ""},
		{"colon attribute", `<r :a="1"/>`, Namespace, ""},
		{"local name starting with a digit", `<a:r xmlns:a="urn:a"><a:0/></a:r>`, Namespace, ""},
		{"attribute local name starting with a dot", `<a:r xmlns:a="urn:a" a:.x="1"/>`, Namespace, ""},
		{"prefix starting with a hyphen", `<r xmlns:-a="urn:a"/>`, Namespace, ""},
		{"xmlns colon", `<r xmlns:="urn:a"/>`, Namespace, ""},
		{"undeclaring a prefix", `<r xmlns:p=""/>`, Namespace, ""},
		{"declaring xmlns", `<r xmlns:xmlns="urn:a"/>`, Namespace, ""},
		{"rebinding xml", `<r xmlns:xml="urn:a"/>`, Namespace, ""},
		{"binding the xml namespace", `<r xmlns:x="http://www.w3.org/XML/1998/namespace"/>`, Namespace, ""},
		{"binding the xmlns namespace", `<r xmlns:x="http://www.w3.org/2000/xmlns/"/>`, Namespace, ""},
		{"default to the xml namespace", `<r xmlns="http://www.w3.org/XML/1998/namespace"/>`, Namespace, ""},
		// Namespace names libxml2 cannot parse as URI references: a
		// namespace error, fatal in lxml and xmlsec1.
		{"namespace name with a space", `<r xmlns:p="a b"/>`, Namespace, ""},
		{"namespace name with a bad escape", `<r xmlns:p="%zz"/>`, Namespace, ""},
		{"default namespace name with a bracket", `<r xmlns="urn[:x"/>`, Namespace, ""},
		{"namespace name with a port not a number", `<r xmlns:p="http://a:b/"/>`, Namespace, ""},
		{"namespace name with two fragments", `<r xmlns:p="a#b#c"/>`, Namespace, ""},
		{"namespace name with a byte order mark", "<r xmlns:p=\"\ufeffurn:x\"/>", Namespace, ""},
		{"namespace name with a colon in a relative path", `<r xmlns:p="1a:b"/>`, Namespace, ""},
		{"namespace name with an ampersand", `<r xmlns:p="urn:a?b=1&amp;c=2"/>`, Namespace, ""},

		// Structure.
		{"empty", ``, Malformed, ""},
		{"only white space", " \n", Malformed, ""},
		{"two roots", `<r/><r/>`, Malformed, ""},
		{"trailing garbage", `<r/>garbage`, Malformed, ""},
		{"text before root", `x<r/>`, Malformed, ""},
		// A reference to white space is not white space (libxml2 refuses).
		{"character reference after the root", `<r/>&#32;`, Malformed, ""},
		{"character reference before the root", "&#x20;\n<r/>", Malformed, ""},
		{"cdata outside root", `<r/><![CDATA[ ]]>`, Malformed, ""},
		{"unclosed", `<r><c>`, Malformed, ""},
		{"mismatched end tag", `<r></s>`, Malformed, ""},
		{"mismatched prefix", `<a:r xmlns:a="urn:a" xmlns:b="urn:a"></b:r>`, Malformed, ""},
		{"stray end tag", `</r>`, Malformed, ""},
		{"comment ending in dash", `<r><!-- x ---></r>`, Malformed, ""},
		{"double dash in comment", `<r><!-- a -- b --></r>`, Malformed, ""},
		// encoding/xml does not check a comment's characters; libxml2 does.
		{"control character in comment", "<r><!-- \x01 --></r>", Malformed, ""},
		{"non-character in comment", "<!-- \uffff --><r/>", Malformed, ""},
		{"invalid utf-8 in comment", "<r/><!-- \xff -->", Malformed, ""},
		{"unquoted attribute", `<r a=1/>`, Malformed, ""},
		{"attributes not separated", `<r a="1"b="2"/>`, Malformed, ""},
		{"namespaced attributes not separated", `<A xmlns:q="0"xmlns:p="1"p:A=""q:A=""/>`, Malformed, ""},
		{"attributes not separated, single quotes", `<r a='1'b='2'></r>`, Malformed, ""},
		{"nul byte", "<r>\x00</r>", Malformed, ""},

		// Limits, each one past its default.
		{"too many bytes", "<r>" + strings.Repeat(" ", DefaultMaxBytes) + "</r>", Limit, LimitBytes},
		{"deep nesting", deep, Limit, LimitDepth},
		{"wide element", wide, Limit, LimitElements},
		{"comments count as nodes", manyComments, Limit, LimitElements},
		{"cdata sections count as nodes", manyCDATA, Limit, LimitElements},
		{"too many attributes", "<r" + attrs.String() + "/>", Limit, LimitAttributes},
		{"too many namespace declarations", "<r" + decls.String() + "/>", Limit, LimitNamespaceDecls},
		{"too many namespace declarations in total", totalNS.String(), Limit, LimitTotalNamespaceDecls},
		{"huge text", "<r>" + strings.Repeat("x", DefaultMaxTextBytes+1) + "</r>", Limit, LimitTextBytes},
		{"huge text split by cdata", "<r>" + strings.Repeat("x", DefaultMaxTextBytes/2) + "<![CDATA[" + strings.Repeat("y", DefaultMaxTextBytes/2) + "]]>z</r>", Limit, LimitTextBytes},
		{"huge text split by comments", "<r>" + strings.Repeat(strings.Repeat("x", 1000)+"<!---->", 66) + "</r>", Limit, LimitTextBytes},
		{"huge comment", "<r/><!--" + strings.Repeat("x", DefaultMaxTextBytes+1) + "-->", Limit, LimitTextBytes},
		{"huge attribute", `<r a="` + strings.Repeat("x", DefaultMaxAttributeBytes+1) + `"/>`, Limit, LimitAttributeBytes},
		{"attribute of entity references", `<r a="` + strings.Repeat("&amp;", DefaultMaxAttributeBytes+1) + `"/>`, Limit, LimitAttributeBytes},
		{"long element name", "<" + strings.Repeat("n", DefaultMaxNameBytes+1) + "/>", Limit, LimitNameBytes},
		{"long attribute name", "<r " + strings.Repeat("n", DefaultMaxNameBytes+1) + `="1"/>`, Limit, LimitNameBytes},
	}
}

func TestScanRefuses(t *testing.T) {
	tests := refusals()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Scan([]byte(tt.doc), Limits{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Scan = %v, want an *Error of kind %v", err, tt.kind)
			}
			if e.Kind != tt.kind || e.Limit != tt.limit {
				t.Errorf("got kind %v limit %q, want kind %v limit %q (%v)", e.Kind, e.Limit, tt.kind, tt.limit, err)
			}
			if !strings.HasPrefix(err.Error(), "xmlscan: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestScanLimitsAtTheEdge holds each limit exactly: a document at the limit
// passes, one past it is refused.
func TestScanLimitsAtTheEdge(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }
	children := func(n int) string { return "<r>" + strings.Repeat("<a/>", n-1) + "</r>" }
	attrs := func(n int) string {
		var b strings.Builder
		b.WriteString("<r")
		for i := range n {
			fmt.Fprintf(&b, ` a%d="v"`, i)
		}
		return b.String() + "/>"
	}
	decls := func(n int) string {
		var b strings.Builder
		b.WriteString("<r")
		for i := range n {
			fmt.Fprintf(&b, ` xmlns:p%d="urn:%d"`, i, i)
		}
		return b.String() + "/>"
	}
	totalDecls := func(n int) string {
		return "<r>" + strings.Repeat(`<c xmlns="urn:c"/>`, n) + "</r>"
	}
	text := func(n int) string { return "<r>" + strings.Repeat("x", n) + "</r>" }
	attr := func(n int) string { return `<r a="` + strings.Repeat("x", n) + `"/>` }
	name := func(n int) string { return "<p:" + strings.Repeat("n", n-2) + ` xmlns:p="urn:p"/>` }
	bytesDoc := func(n int) string { return "<r>" + strings.Repeat(" ", n-len("<r></r>")) + "</r>" }

	tests := []struct {
		limit string
		lim   Limits
		at    int
		doc   func(int) string
	}{
		{LimitBytes, Limits{MaxBytes: 100}, 100, bytesDoc},
		{LimitDepth, Limits{MaxDepth: 5}, 5, nest},
		{LimitElements, Limits{MaxElements: 7}, 7, children},
		{LimitAttributes, Limits{MaxAttributes: 3}, 3, attrs},
		{LimitNamespaceDecls, Limits{MaxNamespaceDecls: 2}, 2, decls},
		{LimitTotalNamespaceDecls, Limits{MaxTotalNamespaceDecls: 4}, 4, totalDecls},
		{LimitTextBytes, Limits{MaxTextBytes: 10}, 10, text},
		{LimitAttributeBytes, Limits{MaxAttributeBytes: 10}, 10, attr},
		{LimitNameBytes, Limits{MaxNameBytes: 10}, 10, name},
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			if err := Scan([]byte(tt.doc(tt.at)), tt.lim); err != nil {
				t.Errorf("at the limit: Scan = %v, want nil", err)
			}
			err := Scan([]byte(tt.doc(tt.at+1)), tt.lim)
			var e *Error
			if !errors.As(err, &e) || e.Kind != Limit || e.Limit != tt.limit {
				t.Errorf("past the limit: Scan = %v, want a %s limit error", err, tt.limit)
			}
		})
	}
}

// TestScanNeverFetches serves a DTD and an external entity on 127.0.0.1 and
// checks that scanning documents naming them never asks for them.
func TestScanNeverFetches(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`<!ENTITY % all "<!ENTITY send SYSTEM 'http://127.0.0.1/leak'>"> %all;`))
	}))
	defer srv.Close()
	docs := []string{
		`<!DOCTYPE r SYSTEM "` + srv.URL + `/r.dtd"><r/>`,
		`<!DOCTYPE r [<!ENTITY % p SYSTEM "` + srv.URL + `/p.dtd"> %p;]><r>&send;</r>`,
		`<!DOCTYPE r [<!ENTITY x SYSTEM "` + srv.URL + `/x">]><r>&x;</r>`,
	}
	for _, doc := range docs {
		var e *Error
		if err := Scan([]byte(doc), Limits{}); !errors.As(err, &e) || e.Kind != DTD {
			t.Errorf("Scan(%q) = %v, want a DTD error", doc, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server was asked %d times, want 0", n)
	}
}

func TestErrorOffset(t *testing.T) {
	doc := "\xef\xbb\xbf<r><?pi?></r>"
	var e *Error
	if err := Scan([]byte(doc), Limits{}); !errors.As(err, &e) {
		t.Fatalf("Scan = %v, want an *Error", err)
	}
	if got, want := e.Offset, int64(strings.Index(doc, "<?pi")); got != want {
		t.Errorf("offset %d, want %d", got, want)
	}
	if got, want := e.Code(), "xml_pi_forbidden"; got != want {
		t.Errorf("code %q, want %q", got, want)
	}
}

func TestKindCodes(t *testing.T) {
	want := map[Kind]string{
		Malformed:          "xml_malformed",
		DTD:                "xml_dtd_forbidden",
		ProcInst:           "xml_pi_forbidden",
		Limit:              "xml_limit_exceeded",
		DuplicateAttribute: "xml_duplicate_attribute",
		DuplicateNamespace: "xml_duplicate_namespace",
		Namespace:          "xml_namespace_error",
		Encoding:           "xml_encoding_unsupported",
	}
	for k, code := range want {
		if got := k.Code(); got != code {
			t.Errorf("Kind(%d).Code() = %q, want %q", k, got, code)
		}
	}
}

// TestValidatorAgrees holds Scan to github.com/mattermost/xml-roundtrip-
// validator: the validator's own attack documents (CVE-2020-29509/10/11)
// are refused by Scan without RoundTripCheck, and the documents Scan
// accepts pass the validator, with and without RoundTripCheck.
func TestValidatorAgrees(t *testing.T) {
	attacks := []string{
		`<x::Root/>`,
		`<Root><x::Element></::Element></Root>`,
		`<Root><Element ::attr="foo"></Element></Root>`,
		`<Root></x::Element></Root>`,
		`<x:>`,
		`</x:>`,
		`<Root :="value"/>`,
		`<Root x:="value"/>`,
		`<Root xmlns="x" xmlns:="y"></Root>`,
		`<Root><! <<!-- -->!-- x --> y></Root>`,
		`<! ">" <X/>>`,
		`<!name <!-- comment --><nesting <more nesting>>>`,
		`<Root ::attr="x">]]><x::Element/></Root>`,
		`<:Root xmlns:="urn:x"/>`,
	}
	for _, doc := range attacks {
		if err := Scan([]byte(doc), Limits{}); err == nil {
			t.Errorf("Scan(%q) = nil, want a refusal", doc)
		}
	}
	for _, doc := range []string{soapEnv, `<a:r xmlns:a="urn:a" xmlns:b="urn:b" a:x="1" b:x="2"><c xmlns="urn:c" xml:lang="en"/></a:r>`} {
		if err := Scan([]byte(doc), Limits{}); err != nil {
			t.Errorf("Scan(%q) = %v", doc, err)
		}
		if err := Scan([]byte(doc), Limits{RoundTripCheck: true}); err != nil {
			t.Errorf("Scan(%q) with RoundTripCheck = %v", doc, err)
		}
		if err := validator.Validate(strings.NewReader(doc)); err != nil {
			t.Errorf("validator refuses %q, which Scan accepts: %v", doc, err)
		}
	}
}
