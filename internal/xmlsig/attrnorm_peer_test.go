package xmlsig_test

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlscan"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// TestCanonicalAttributeWhitespaceMatchesLibxml2: documents with literal
// tabs, line feeds and carriage returns in attribute values (and
// character references for them) have, once read through
// xmlscan.NormalizeAttributeWhitespace, the exclusive canonical form
// libxml2 gives them (through Debian's python3-lxml, which python3-xmlsec
// signs with).
func TestCanonicalAttributeWhitespaceMatchesLibxml2(t *testing.T) {
	py := xmlsigtest.PythonPeers(t)
	docs := []string{
		"<a xmlns=\"urn:a\" b=\"x\ty\r\nz\" c=\"&#9;t&#10;&#13;\"><c d=\"1\n2\" e='\t'/>t\tu\r\nv</a>",
		"<p:a xmlns:p=\"urn:p\" xmlns:q=\"urn:q\" q:b=\"1\r2\n\n3\">\n\t<p:c p:d=\"\r\n\"/></p:a>",
		"<a b=\"&lt;\t&amp;\t&quot;\t>\"/>",
	}
	const script = `import sys
from lxml import etree
sys.stdout.buffer.write(etree.tostring(etree.fromstring(sys.stdin.buffer.read()), method="c14n", exclusive=True, with_comments=False))`
	for _, d := range docs {
		cmd := exec.Command(py, "-c", script)
		cmd.Stdin = bytes.NewReader([]byte(d))
		want, err := cmd.Output()
		if err != nil {
			t.Fatalf("lxml c14n of %q: %v", d, err)
		}
		if err := xmlscan.Scan([]byte(d), xmlscan.Limits{}); err != nil {
			t.Fatalf("scan %q: %v", d, err)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(xmlscan.NormalizeAttributeWhitespace([]byte(d))); err != nil {
			t.Fatal(err)
		}
		got, err := xmlsig.Canonicalize(doc.Root(), "")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("document %q:\n got %q\nwant %q (libxml2)", d, got, want)
		}
	}
}
