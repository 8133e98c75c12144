package xmlscan

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// slowParse is what Parse must equal: Scan, then etree on the normalized
// bytes, as soap.Parse did before Parse existed.
func slowParse(data []byte, lim Limits) (*etree.Document, error) {
	lim = lim.WithDefaults()
	if err := Scan(data, lim); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = lim.MaxDepth
	if err := doc.ReadFromBytes(NormalizeAttributeWhitespace(TrimBOM(data))); err != nil {
		return nil, err
	}
	return doc, nil
}

// treeDiff describes the first difference between two trees, or returns
// "": token types, names, attributes in order, text with its whitespace
// and CDATA flags, comments, processing instructions, and each token's
// parent and index.
func treeDiff(got, want *etree.Element, path string) string {
	if got.Space != want.Space || got.Tag != want.Tag {
		return fmt.Sprintf("%s: element %s:%s, want %s:%s", path, got.Space, got.Tag, want.Space, want.Tag)
	}
	if len(got.Attr) != len(want.Attr) {
		return fmt.Sprintf("%s: %d attributes, want %d", path, len(got.Attr), len(want.Attr))
	}
	for i := range got.Attr {
		g, w := got.Attr[i], want.Attr[i]
		if g.Space != w.Space || g.Key != w.Key || g.Value != w.Value || g.Element() != got {
			return fmt.Sprintf("%s: attribute %d is %s:%s=%q, want %s:%s=%q", path, i, g.Space, g.Key, g.Value, w.Space, w.Key, w.Value)
		}
	}
	if len(got.Child) != len(want.Child) {
		return fmt.Sprintf("%s: %d children, want %d", path, len(got.Child), len(want.Child))
	}
	for i := range got.Child {
		g, w := got.Child[i], want.Child[i]
		p := fmt.Sprintf("%s/%d", path, i)
		if reflect.TypeOf(g) != reflect.TypeOf(w) {
			return fmt.Sprintf("%s: %T, want %T", p, g, w)
		}
		if g.Parent() != got || g.Index() != i {
			return fmt.Sprintf("%s: parent or index wrong", p)
		}
		switch g := g.(type) {
		case *etree.Element:
			if d := treeDiff(g, w.(*etree.Element), p); d != "" {
				return d
			}
		case *etree.CharData:
			w := w.(*etree.CharData)
			if g.Data != w.Data || g.IsWhitespace() != w.IsWhitespace() || g.IsCData() != w.IsCData() {
				return fmt.Sprintf("%s: text %q (ws %v, cdata %v), want %q (ws %v, cdata %v)", p, g.Data, g.IsWhitespace(), g.IsCData(), w.Data, w.IsWhitespace(), w.IsCData())
			}
		case *etree.Comment:
			if w := w.(*etree.Comment); g.Data != w.Data {
				return fmt.Sprintf("%s: comment %q, want %q", p, g.Data, w.Data)
			}
		case *etree.ProcInst:
			if w := w.(*etree.ProcInst); g.Target != w.Target || g.Inst != w.Inst {
				return fmt.Sprintf("%s: <?%s %s?>, want <?%s %s?>", p, g.Target, g.Inst, w.Target, w.Inst)
			}
		case *etree.Directive:
			if w := w.(*etree.Directive); g.Data != w.Data {
				return fmt.Sprintf("%s: directive %q, want %q", p, g.Data, w.Data)
			}
		}
	}
	return ""
}

func docDiff(got, want *etree.Document) string {
	if d := treeDiff(&got.Element, &want.Element, ""); d != "" {
		return d
	}
	gb, err1 := got.WriteToBytes()
	wb, err2 := want.WriteToBytes()
	if err1 != nil || err2 != nil || string(gb) != string(wb) {
		return fmt.Sprintf("written %q (%v), want %q (%v)", gb, err1, wb, err2)
	}
	return ""
}

// crlfEnv is soapEnv as a Windows client sends it.
var crlfEnv = strings.ReplaceAll(soapEnv, "\n", "\r\n")

func TestParseSeeds(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		fast bool // whether the one-pass path reads it
	}{
		{"soap envelope", soapEnv, true},
		{"soap envelope with CR LF", crlfEnv, true},
		{"bare root", `<r/>`, true},
		{"empty root with end tag", `<r></r>`, true},
		{"utf-8 bom", "\xef\xbb\xbf<r/>", true},
		{"bom then declaration", "\xef\xbb\xbf<?xml version=\"1.0\"?><r/>", true},
		{"declaration with standalone", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><r/>`, true},
		{"declaration single quotes", `<?xml version='1.0' encoding='utf-8'?>` + "\n<r/>\n", true},
		{"white space and comments around the root", "\n<!-- before -->\n<r/>\n<!-- after -->\n", true},
		{"default namespace", `<r xmlns="urn:a"><c xmlns="urn:b"/></r>`, true},
		{"same local name in different namespaces", `<r xmlns:a="urn:a" xmlns:b="urn:b" a:x="1" b:x="2" x="3"/>`, true},
		{"redeclared prefix in a child", `<r xmlns:a="urn:a"><a:c xmlns:a="urn:b" a:x="1"/></r>`, true},
		{"prefix scope ends with its element", `<r xmlns:a="urn:a"><c xmlns:b="urn:b" b:x="1"/><a:c b:x="1" xmlns:b="urn:c"/></r>`, true},
		{"default namespace undeclared", `<r xmlns="urn:a"><c xmlns=""/></r>`, true},
		{"declaration after use in the same tag", `<a:r a:x="1" xmlns:a="urn:a"/>`, true},
		{"xml prefix without declaration", `<r xml:lang="en" xml:space="preserve"/>`, true},
		{"entities and character references", `<r a="&lt;&gt;&amp;&apos;&quot;&#60;">&#x10FFFF;&#9;&#13;</r>`, true},
		{"attribute white space normalized", "<r a=\"x\ty\nz\r\nw\rv\" b='&#9;&#10;&#13; \t'/>", true},
		{"white space around equals and in tags", "<r\n a = \"1\"\tb\r\n=\n'2' ><c\n/></r\n>", true},
		{"quotes inside values", `<r a="it's" b='say "hi"' c="]]>"/>`, true},
		{"text with CR", "<r>a\rb\r\nc\n\rd&#13;\r</r>", true},
		{"non-ascii text and values", "<r a=\"é€😀\">ü €😀</r>", true},
		{"cdata", `<r>a<![CDATA[<b>&amp;]]]>c<![CDATA[]]><![CDATA[ ]]></r>`, true},
		{"cdata with CR", "<r><![CDATA[a\r\nb\rc]]></r>", true},
		{"comments inside", "<r> <!-- c é --> <c/><!----></r>", true},
		{"whitespace only text", "<r>\n  <c> </c>\t</r>", true},
		{"greater-than in text", `<r>a > b</r>`, true},
		{"names with dots, hyphens and digits", `<a.b-c_1 x.y-z_2="1"><_a/></a.b-c_1>`, true},

		// Outside the subset: the same tree, the slow way.
		{"non-ascii names", `<ñ ü="1"/>`, false},
		{"xml prefix declared correctly", `<r xmlns:xml="http://www.w3.org/XML/1998/namespace"/>`, false},
		{"bracket before greater-than", `<r>a]>b</r>`, false},
		{"declaration with extra white space", `<?xml  version="1.0"?><r/>`, false},
		{"long character reference", `<r>&#x000000041;</r>`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := slowParse([]byte(tt.doc), Limits{})
			if err != nil {
				t.Fatalf("the slow path refuses the seed: %v", err)
			}
			sub, ok := ParseSubset([]byte(tt.doc), Limits{})
			if ok != tt.fast {
				t.Fatalf("ParseSubset ok = %v, want %v", ok, tt.fast)
			}
			if ok {
				if d := docDiff(sub, want); d != "" {
					t.Fatalf("ParseSubset: %s", d)
				}
			}
			got, err := Parse([]byte(tt.doc), Limits{})
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			if d := docDiff(got, want); d != "" {
				t.Fatalf("Parse: %s", d)
			}
		})
	}
}

// TestParseRefusals checks that Parse refuses every document Scan refuses
// with Scan's very error, and that none of them is read by the one-pass
// path.
func TestParseRefusals(t *testing.T) {
	tests := append(refusals(),
		refusal{"dtd after declaration", `<?xml version="1.0"?><!DOCTYPE r><r/>`, DTD, ""},
		refusal{"entity reference without dtd", `<r>&lol;</r>`, Malformed, ""},
		refusal{"reference without semicolon", `<r>&amp</r>`, Malformed, ""},
		refusal{"empty character reference", `<r>&#;</r>`, Malformed, ""},
		refusal{"character reference to a control", `<r>&#x1;</r>`, Malformed, ""},
		refusal{"character reference to FFFE", `<r a="&#xFFFE;"/>`, Malformed, ""},
		refusal{"cdata end in text", `<r>a]]>b</r>`, Malformed, ""},
		refusal{"truncated utf-8 in attribute", "<r a=\"\xc3\"/>", Malformed, ""},
		refusal{"overlong utf-8", "<r>\xc0\xaf</r>", Malformed, ""},
		refusal{"encoded surrogate", "<r>\xed\xa0\x80</r>", Malformed, ""},
		refusal{"control character in attribute", "<r a=\"\x01\"/>", Malformed, ""},
		refusal{"unterminated cdata", `<r><![CDATA[x</r>`, Malformed, ""},
		refusal{"unterminated comment", `<r><!-- x</r>`, Malformed, ""},
		refusal{"unterminated attribute", `<r a="x/>`, Malformed, ""},
		refusal{"unterminated start tag", `<r a="x"`, Malformed, ""},
		refusal{"end tag of another prefix", `<a:r xmlns:a="urn:a"></r>`, Malformed, ""},
		refusal{"end tag of the local name only", `<r xmlns:a="urn:a"><a:c></c></r>`, Malformed, ""},
		refusal{"end tag with attribute", `<r></r a="1">`, Malformed, ""},
		refusal{"slash not closing", `<r/ >`, Malformed, ""},
		refusal{"second root after text", "<r/>\n<r/>", Malformed, ""},
		refusal{"element after empty root", `<r/><c></c>`, Malformed, ""},
		refusal{"text after root", "<r/>\nx", Malformed, ""},
		refusal{"character reference outside root", `&#65;<r/>`, Malformed, ""},
		refusal{"attribute without value", `<r a/>`, Malformed, ""},
		refusal{"double colon name", `<a:b:c xmlns:a="urn:a"/>`, Malformed, ""},
		refusal{"undeclared after scope end", `<r><c xmlns:p="urn:p"/><d p:a="1"/></r>`, Namespace, ""},
		refusal{"empty element scope ends", `<r><p:c xmlns:p="urn:p"/><p:d/></r>`, Namespace, ""},
		refusal{"duplicate via default and none", `<r xmlns:p="urn:p"><c xmlns:q="urn:p" q:a="1" p:a="2"/></r>`, DuplicateAttribute, ""},
		refusal{"utf-16 declared single quotes", `<?xml version='1.0' encoding='UTF-16'?><r/>`, Encoding, ""},
		refusal{"pi at start", `<?xml-stylesheet href="x"?><r/>`, ProcInst, ""},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.doc)
			if _, ok := ParseSubset(data, Limits{}); ok {
				t.Fatal("ParseSubset read a document Scan refuses")
			}
			scanErr := Scan(data, Limits{})
			doc, err := Parse(data, Limits{})
			if doc != nil || err == nil {
				t.Fatalf("Parse = %v, %v; want a refusal", doc, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind || e.Limit != tt.limit {
				t.Fatalf("Parse = %v, want kind %v limit %q", err, tt.kind, tt.limit)
			}
			if !reflect.DeepEqual(err, scanErr) {
				t.Errorf("Parse = %#v, Scan = %#v", err, scanErr)
			}
		})
	}
}

// TestParseSubsetLimits holds the one-pass path to each limit: at the
// limit it reads the document, past it it leaves it to Scan.
func TestParseSubsetLimits(t *testing.T) {
	lim := Limits{MaxDepth: 3, MaxElements: 4, MaxAttributes: 2, MaxNamespaceDecls: 1,
		MaxTotalNamespaceDecls: 2, MaxTextBytes: 8, MaxAttributeBytes: 4, MaxNameBytes: 8}
	tests := []struct {
		name     string
		at, past string
	}{
		{"depth", `<a><b><c/></b></a>`, `<a><b><c><d/></c></b></a>`},
		{"elements", `<a><b/><c/><d/></a>`, `<a><b/><c/><d/><e/></a>`},
		{"elements with comments", `<a><!--x--><c/><d/></a>`, `<a><!--x--><c/><d/><!----></a>`},
		{"elements with cdata", `<a><![CDATA[x]]><c/><d/></a>`, `<a><![CDATA[x]]><c/><d/><![CDATA[]]></a>`},
		{"attributes", `<a x="1" y="2"/>`, `<a x="1" y="2" z="3"/>`},
		{"namespace declarations", `<a xmlns:p="u"/>`, `<a xmlns:p="u" xmlns:q="v"/>`},
		{"total namespace declarations", `<a xmlns:p="u"><b xmlns:q="u"/></a>`, `<a xmlns:p="u"><b xmlns:q="u"/><b xmlns:r="u"/></a>`},
		{"text", `<a>12345678</a>`, `<a>123456789</a>`},
		{"text by references", `<a>&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;</a>`, `<a>&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;</a>`},
		{"text with cdata", `<a>1234<![CDATA[5678]]></a>`, `<a>1234<![CDATA[5678]]>9</a>`},
		{"text with comments", `<a>1234<!--5678--></a>`, `<a>1234<!--5678-->9</a>`},
		{"comment outside", `<a/><!--12345678-->`, `<a/><!--123456789-->`},
		{"attribute bytes", `<a x="1234"/>`, `<a x="12345"/>`},
		{"attribute bytes by references", `<a x="&lt;&lt;&lt;&lt;"/>`, `<a x="&lt;&lt;&lt;&lt;&lt;"/>`},
		{"element name", `<abcdefgh/>`, `<abcdefghi/>`},
		{"prefixed name", `<p:abcdef xmlns:p="u"/>`, `<p:abcdefg xmlns:p="u"/>`},
		{"attribute name", `<a abcdefgh="1"/>`, `<a abcdefghi="1"/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Scan([]byte(tt.at), lim); err != nil {
				t.Fatalf("Scan refuses the document at the limit: %v", err)
			}
			if _, ok := ParseSubset([]byte(tt.at), lim); !ok {
				t.Error("ParseSubset leaves the document at the limit to the slow path")
			}
			if Scan([]byte(tt.past), lim) == nil {
				t.Fatal("Scan accepts the document past the limit")
			}
			if _, ok := ParseSubset([]byte(tt.past), lim); ok {
				t.Error("ParseSubset reads the document past the limit")
			}
		})
	}
	if _, ok := ParseSubset([]byte(`<a/>`), Limits{RoundTripCheck: true}); ok {
		t.Error("ParseSubset reads a document under RoundTripCheck")
	}
	if _, ok := ParseSubset([]byte(`<a/>  `), Limits{MaxBytes: 5}); ok {
		t.Error("ParseSubset reads a document past MaxBytes")
	}
}

// FuzzParse is the differential check of Parse: for any input, Parse
// refuses with Scan's error or returns the tree Scan and etree build, and
// ParseSubset never reads a document Scan refuses. Seeds: the corpus in
// testdata/fuzz/FuzzParse (FuzzScan's, to start with) and the documents
// below.
func FuzzParse(f *testing.F) {
	for _, s := range append(slices.Clip(fuzzSeeds),
		crlfEnv,
		"<r a=\"x\ty\r\nz&#9;\" b='&lt;]]>'>a\r\nb&#13;&#x20AC;é<![CDATA[\r]]]><!-- - --></r>",
		`<r><c xmlns:p="urn:p"/><p:d/></r>`,
	) {
		f.Add([]byte(s))
	}
	lim := Limits{MaxDepth: 8, MaxElements: 64, MaxAttributes: 4, MaxNamespaceDecls: 2, MaxTotalNamespaceDecls: 8,
		MaxTextBytes: 64, MaxAttributeBytes: 32, MaxNameBytes: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, scanErr := slowParse(data, lim)
		sub, ok := ParseSubset(data, lim)
		got, err := Parse(data, lim)
		if scanErr != nil {
			if ok {
				t.Fatalf("ParseSubset read what the slow path refuses (%v)\n%q", scanErr, data)
			}
			if !reflect.DeepEqual(err, scanErr) {
				t.Fatalf("Parse = %v, Scan = %v\n%q", err, scanErr, data)
			}
			return
		}
		if err != nil {
			t.Fatalf("Parse = %v, the slow path accepts\n%q", err, data)
		}
		if d := docDiff(got, want); d != "" {
			t.Fatalf("Parse: %s\n%q", d, data)
		}
		if ok {
			if d := docDiff(sub, want); d != "" {
				t.Fatalf("ParseSubset: %s\n%q", d, data)
			}
		}
	})
}

// benchDoc is a 3 KB SOAP message of the shape the gateway sees most.
var benchDoc = func() []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><soap:Header/><soap:Body wsu:Id="Body-1"><m:CreateProduct xmlns:m="urn:gatehouse:demo:products">`)
	for i := 0; b.Len() < 3000; i++ {
		fmt.Fprintf(&b, `<m:line n="%d"><m:sku>SKU-%04d</m:sku><m:name>Pour-over kettle &amp; filter</m:name><m:qty>2</m:qty></m:line>`, i, i)
	}
	b.WriteString(`</m:CreateProduct></soap:Body></soap:Envelope>`)
	return []byte(b.String())
}()

// BenchmarkParse is the one-pass path on benchDoc; BenchmarkParseSlow is
// what it replaces, Scan and then etree.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchDoc, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSlow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := slowParse(benchDoc, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
