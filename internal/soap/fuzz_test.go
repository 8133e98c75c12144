package soap

import (
	"net/http"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// FuzzEnvelope feeds a Content-Type, a SOAPAction and a body through
// ReadBinding and Parse. Neither may panic, and a message Parse accepts
// must be stable: written back out by etree and parsed again it has the
// same version, operation and header presence, so that what a policy
// checked is what a later reader sees. Seeds: testdata/fuzz/FuzzEnvelope
// and the envelopes below.
func FuzzEnvelope(f *testing.F) {
	req, err := os.ReadFile("testdata/request-2k.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("text/xml; charset=utf-8", `"urn:gatehouse:demo:products/CreateProduct"`, req)
	f.Add(`application/soap+xml; action="urn:a"`, "", []byte(env12Open+`<env:Header><h:T xmlns:h="urn:h"/></env:Header><env:Body><tns:GetProduct/></env:Body></env:Envelope>`))
	f.Add("text/xml", `""`, []byte(`<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><Op xmlns="urn:x" a="1"/></Body></Envelope>`))
	f.Add("text/xml", "x", []byte(env11Open+`<soap:Body><tns:A/><tns:B/></soap:Body></soap:Envelope>`))
	f.Fuzz(func(t *testing.T, contentType, action string, body []byte) {
		h := http.Header{"Content-Type": {contentType}, "Soapaction": {action}}
		b, berr := ReadBinding(h)
		m, err := Parse(body, xmlscan.Limits{MaxDepth: 16, MaxElements: 200})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse returned %T %v, want *Error", err, err)
			}
			return
		}
		if berr == nil {
			_ = m.CheckBinding(b)
		}
		if m.Body == nil || m.Body.Parent() != m.Envelope || m.Envelope != m.Doc.Root() {
			t.Fatalf("accepted a message whose Body is not in its Envelope\n%q", body)
		}
		out, err := m.Doc.WriteToBytes()
		if err != nil {
			t.Fatalf("writing the accepted document: %v", err)
		}
		again, err := Parse(out, xmlscan.Limits{MaxDepth: 16, MaxElements: 200, MaxBytes: 1 << 22})
		if err != nil {
			t.Fatalf("accepted document refused after a round trip: %v\nin:  %q\nout: %q", err, body, out)
		}
		if again.Version != m.Version || again.Operation != m.Operation || (again.Header == nil) != (m.Header == nil) {
			t.Fatalf("round trip changed the message: %v %v %v -> %v %v %v\nin:  %q\nout: %q",
				m.Version, m.Operation, m.Header != nil, again.Version, again.Operation, again.Header != nil, body, out)
		}
	})
}
