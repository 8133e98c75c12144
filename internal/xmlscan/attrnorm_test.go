package xmlscan

import (
	"bytes"
	"testing"

	"github.com/beevik/etree"
)

func TestNormalizeAttributeWhitespace(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"tab", "<a b=\"x\ty\"/>", `<a b="x y"/>`},
		{"line feed", "<a b=\"x\ny\"/>", `<a b="x y"/>`},
		{"CR LF is one space", "<a b=\"x\r\ny\"/>", `<a b="x y"/>`},
		{"lone CR", "<a b=\"x\ry\"/>", `<a b="x y"/>`},
		{"two LFs are two spaces", "<a b=\"x\n\ny\"/>", `<a b="x  y"/>`},
		{"single quotes", "<a b='x\ty'/>", `<a b='x y'/>`},
		{"other quote inside", "<a b=\"it's\tx\" c='say \"\n\"'/>", `<a b="it's x" c='say " "'/>`},
		{"character references stay", "<a b=\"x&#9;y&#xA;z&#13;\"/>", "<a b=\"x&#9;y&#xA;z&#13;\"/>"},
		{"white space between attributes stays", "<a\tb=\"1\"\r\n c='2'\n>t</a\n>", "<a\tb=\"1\"\r\n c='2'\n>t</a\n>"},
		{"text stays", "<a>x\ty\r\nz</a>", "<a>x\ty\r\nz</a>"},
		{"greater-than in a value", "<a b=\"1>\t2\">\t</a>", "<a b=\"1> 2\">\t</a>"},
		{"comment stays", "<a><!-- b=\"x\ty\" --></a>", "<a><!-- b=\"x\ty\" --></a>"},
		{"CDATA stays", "<a><![CDATA[<b c=\"x\ty\">]]></a>", "<a><![CDATA[<b c=\"x\ty\">]]></a>"},
		{"XML declaration stays", "<?xml version=\"1.0\"\n encoding=\"UTF-8\"?>\n<a b=\"\t\"/>", "<?xml version=\"1.0\"\n encoding=\"UTF-8\"?>\n<a b=\" \"/>"},
		{"nested", "<e:a xmlns:e=\"urn:e\"><e:b x=\"1\t\" y=\"\n2\"/></e:a>", `<e:a xmlns:e="urn:e"><e:b x="1 " y=" 2"/></e:a>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(NormalizeAttributeWhitespace([]byte(tt.in)))
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNormalizeAttributeWhitespaceTree checks the values the tree reads:
// literal white space is a space, a character reference its character,
// as libxml2 reads them.
func TestNormalizeAttributeWhitespaceTree(t *testing.T) {
	in := "<a lit=\"x\ty\r\nz\" ref=\"x&#9;y&#10;z\" both=\"&#9;\t\"/>"
	if err := Scan([]byte(in), Limits{}); err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(NormalizeAttributeWhitespace([]byte(in))); err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]string{"lit": "x y z", "ref": "x\ty\nz", "both": "\t "} {
		if got := doc.Root().SelectAttrValue(attr, "?"); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
}

func TestNormalizeAttributeWhitespaceUnchangedIsSame(t *testing.T) {
	in := []byte("<a b=\"1\"><c d='x &#9; y'>t\tu</c></a>")
	if got := NormalizeAttributeWhitespace(in); &got[0] != &in[0] {
		t.Error("a document without literal white space in values was copied")
	}
}

// FuzzNormalizeAttributeWhitespace holds the lexer to encoding/xml: what
// Scan accepts stays acceptable after normalization, with the same
// elements and attributes, and only attribute values changed, only in
// white space.
func FuzzNormalizeAttributeWhitespace(f *testing.F) {
	for _, s := range []string{
		"<a b=\"x\ty\"/>", "<a b='x\r\ny'><!--\t--><![CDATA[\t]]>\t</a>",
		"<?xml version=\"1.0\"?><a b=\"1>\t2\" c='\"\n'>x</a>", "<a b=\"&#9;\t\"/>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if Scan(in, Limits{}) != nil {
			return
		}
		out := NormalizeAttributeWhitespace(in)
		if err := Scan(out, Limits{}); err != nil {
			t.Fatalf("normalized document refused: %v\n%q\n%q", err, in, out)
		}
		d1, d2 := etree.NewDocument(), etree.NewDocument()
		if d1.ReadFromBytes(TrimBOM(in)) != nil || d2.ReadFromBytes(TrimBOM(out)) != nil {
			t.Fatalf("parse failed:\n%q\n%q", in, out)
		}
		var walk func(a, b *etree.Element)
		walk = func(a, b *etree.Element) {
			if a.FullTag() != b.FullTag() || len(a.Attr) != len(b.Attr) || a.Text() != b.Text() || len(a.ChildElements()) != len(b.ChildElements()) {
				t.Fatalf("trees differ at %s / %s:\n%q\n%q", a.FullTag(), b.FullTag(), in, out)
			}
			for i := range a.Attr {
				va, vb := []byte(a.Attr[i].Value), []byte(b.Attr[i].Value)
				if a.Attr[i].FullKey() != b.Attr[i].FullKey() || len(vb) > len(va) {
					t.Fatalf("attribute %s differs: %q / %q", a.Attr[i].FullKey(), va, vb)
				}
			}
			for i, c := range a.ChildElements() {
				walk(c, b.ChildElements()[i])
			}
		}
		walk(d1.Root(), d2.Root())
	})
}

// BenchmarkNormalizeAttributeWhitespace: the cost of the extra pass on a
// 2 KB signed SOAP message without literal white space in attribute
// values (nothing is copied) and with it.
func BenchmarkNormalizeAttributeWhitespace(b *testing.B) {
	msg := []byte(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="urn:wsu"><soap:Header><wsse:Security xmlns:wsse="urn:wsse" soap:mustUnderstand="1">` +
		`<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>2026-12-06T03:04:05Z</wsu:Created></wsu:Timestamp><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>` +
		`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>` +
		`<ds:Reference URI="#Body-1"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>` +
		`<ds:DigestValue>BrE/hlVvLNDTopX3kLdvRTnajes8RhHQtiSEUthoNRI=</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>` +
		`f4D52ovvTjAwJzDzw8Lm8wTPFOEV0yXMEezQejFu8LouamvEJuOpbPm+BSnTmRm5WBRSK3+2wcSRsQuCcFLFBxblxmY5ukBPX/SPu1zQsrA8qkgLfBBqHC2JqAghmwcw15CQshnhBJZcgrWwrbWwjZ2P7KFzJxYgV7m5PzqDzJInKd5oHEt9sb7nug2dju8rTWq3JCZBf2zV9lydXj2+3A8o4W7grwym0rZ8lWKXmrZxon9w44HzCtmuj8i3nZpOJhEksXzrChXO/JbYLiMUAlIe1xexjz1vlRkDQLFL6pERNEAXAxq2eYnWzFMFIw4B9lu8NH8e3GAKim7Q+afhGA==` +
		`</ds:SignatureValue></ds:Signature></wsse:Security></soap:Header><soap:Body wsu:Id="Body-1"><m:GetProduct xmlns:m="urn:m" a="1" b="2"><m:id>p-1001</m:id></m:GetProduct></soap:Body></soap:Envelope>`)
	ws := bytes.Replace(msg, []byte(`a="1"`), []byte("a=\"1\t2\n3\""), 1)
	for _, c := range []struct {
		name string
		in   []byte
	}{{"clean", msg}, {"literal white space", ws}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			b.ReportAllocs()
			for b.Loop() {
				NormalizeAttributeWhitespace(c.in)
			}
		})
	}
}
