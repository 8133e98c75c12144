package soap

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

func TestReadBinding(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		want    Binding
		errCode string
	}{
		{"soap 1.1 quoted action", http.Header{"Content-Type": {"text/xml; charset=utf-8"}, "Soapaction": {`"urn:a/Op"`}}, Binding{V11, "urn:a/Op", true}, ""},
		{"soap 1.1 unquoted action", http.Header{"Content-Type": {"text/xml"}, "Soapaction": {"urn:a/Op"}}, Binding{V11, "urn:a/Op", true}, ""},
		{"soap 1.1 empty action", http.Header{"Content-Type": {"text/xml"}, "Soapaction": {`""`}}, Binding{V11, "", true}, ""},
		{"soap 1.1 no action", http.Header{"Content-Type": {"text/xml; charset=UTF-8"}}, Binding{V11, "", false}, ""},
		{"soap 1.1 two actions", http.Header{"Content-Type": {"text/xml"}, "Soapaction": {`"a"`, `"b"`}}, Binding{}, CodeAction},
		{"soap 1.1 stray quote", http.Header{"Content-Type": {"text/xml"}, "Soapaction": {`"a`}}, Binding{}, CodeAction},
		{"soap 1.1 inner quote", http.Header{"Content-Type": {"text/xml"}, "Soapaction": {`"a"b"`}}, Binding{}, CodeAction},
		{"soap 1.2 action", http.Header{"Content-Type": {`application/soap+xml; charset=utf-8; action="urn:a/Op"`}}, Binding{V12, "urn:a/Op", true}, ""},
		{"soap 1.2 no action", http.Header{"Content-Type": {"application/soap+xml"}}, Binding{V12, "", false}, ""},
		{"soap 1.2 ignores SOAPAction", http.Header{"Content-Type": {"application/soap+xml"}, "Soapaction": {`"x"`}}, Binding{V12, "", false}, ""},
		{"media type case", http.Header{"Content-Type": {"Application/SOAP+XML"}}, Binding{V12, "", false}, ""},
		{"latin-1", http.Header{"Content-Type": {"text/xml; charset=iso-8859-1"}}, Binding{}, CodeContentType},
		{"utf-16", http.Header{"Content-Type": {"application/soap+xml; charset=utf-16"}}, Binding{}, CodeContentType},
		{"json", http.Header{"Content-Type": {"application/json"}}, Binding{}, CodeContentType},
		{"application/xml", http.Header{"Content-Type": {"application/xml"}}, Binding{}, CodeContentType},
		{"no content type", http.Header{}, Binding{}, CodeContentType},
		{"two content types", http.Header{"Content-Type": {"text/xml", "text/xml"}}, Binding{}, CodeContentType},
		{"bad content type", http.Header{"Content-Type": {"text/xml; ;"}}, Binding{}, CodeContentType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadBinding(tt.header)
			if tt.errCode != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.errCode {
					t.Fatalf("got %+v, %v; want an error with code %s", got, err, tt.errCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %+v", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

const (
	env11Open = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tns="urn:gatehouse:demo:products">`
	env12Open = `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tns="urn:gatehouse:demo:products">`
)

func TestParse(t *testing.T) {
	getProduct := xml.Name{Space: demo.Namespace, Local: "GetProduct"}
	tests := []struct {
		name      string
		doc       string
		version   Version
		op        xml.Name
		hasHeader bool
		errCode   string
	}{
		{"soap 1.1", `<?xml version="1.0"?>` + env11Open + `<soap:Body><tns:GetProduct><tns:id>p-1</tns:id></tns:GetProduct></soap:Body></soap:Envelope>`, V11, getProduct, false, ""},
		{"soap 1.2 with header", env12Open + `<env:Header><h:T xmlns:h="urn:h"/></env:Header><env:Body><tns:GetProduct/></env:Body></env:Envelope>`, V12, getProduct, true, ""},
		{"default namespaces", `<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><GetProduct xmlns="urn:gatehouse:demo:products"/></Body></Envelope>`, V11, getProduct, false, ""},
		{"white space and comments", env11Open + "\n <!-- c -->\n <soap:Header/>\n <soap:Body>\n <!-- c --><tns:GetProduct/>\n </soap:Body>\n</soap:Envelope>\n", V11, getProduct, true, ""},
		{"unqualified operation", env11Open + `<soap:Body><GetProduct/></soap:Body></soap:Envelope>`, V11, xml.Name{Local: "GetProduct"}, false, ""},
		{"empty body", env11Open + `<soap:Body/></soap:Envelope>`, V11, xml.Name{}, false, ""},

		{"not an envelope", `<tns:GetProduct xmlns:tns="urn:gatehouse:demo:products"/>`, 0, xml.Name{}, false, CodeEnvelope},
		{"envelope in no namespace", `<Envelope><Body/></Envelope>`, 0, xml.Name{}, false, CodeVersionMismatch},
		{"envelope in a wrong namespace", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope"><s:Body/></s:Envelope>`, 0, xml.Name{}, false, CodeVersionMismatch},
		{"no body", env11Open + `<soap:Header/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"two bodies", env11Open + `<soap:Body/><soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"two headers", env11Open + `<soap:Header/><soap:Header/><soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"header after body", env11Open + `<soap:Body/><soap:Header/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"element after body", env11Open + `<soap:Body/><tns:X/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"foreign element in envelope", env11Open + `<tns:X/><soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"unknown soap element", env11Open + `<soap:Trailer/><soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"body of the other version", env11Open + `<env:Body xmlns:env="http://www.w3.org/2003/05/soap-envelope"/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"text in envelope", env11Open + `x<soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"text in body", env11Open + `<soap:Body>x<tns:GetProduct/></soap:Body></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"cdata in body", env11Open + `<soap:Body><![CDATA[x]]></soap:Body></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"text in header", env11Open + `<soap:Header>x</soap:Header><soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"unqualified header block", env11Open + `<soap:Header><T/></soap:Header><soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},
		{"two operations", env11Open + `<soap:Body><tns:GetProduct/><tns:CreateProduct/></soap:Body></soap:Envelope>`, 0, xml.Name{}, false, CodeEnvelope},

		// The scan runs first: its codes come through.
		{"dtd", `<!DOCTYPE x>` + env11Open + `<soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, "xml_dtd_forbidden"},
		{"pi", env11Open + `<soap:Body><?x?></soap:Body></soap:Envelope>`, 0, xml.Name{}, false, "xml_pi_forbidden"},
		{"trailing envelope", env11Open + `<soap:Body/></soap:Envelope>` + env11Open + `<soap:Body/></soap:Envelope>`, 0, xml.Name{}, false, "xml_malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.doc), xmlscan.Limits{})
			if tt.errCode != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.errCode {
					t.Fatalf("got %v, want an error with code %s", err, tt.errCode)
				}
				if !strings.HasPrefix(err.Error(), "soap: ") && !strings.HasPrefix(err.Error(), "xmlscan: ") {
					t.Errorf("error %q lacks a package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if m.Version != tt.version || m.Operation != tt.op || (m.Header != nil) != tt.hasHeader {
				t.Errorf("got version %v op %v header %v, want %v %v %v", m.Version, m.Operation, m.Header != nil, tt.version, tt.op, tt.hasHeader)
			}
			if m.Body == nil || m.Body.Parent() != m.Envelope || m.Envelope != m.Doc.Root() {
				t.Errorf("Body and Envelope are not the document's")
			}
			if (m.OperationElement == nil) != (m.Operation == xml.Name{}) {
				t.Errorf("OperationElement %v does not agree with Operation %v", m.OperationElement, m.Operation)
			}
		})
	}
}

func TestCheckBinding(t *testing.T) {
	m11, err := Parse([]byte(env11Open+`<soap:Body/></soap:Envelope>`), xmlscan.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m12, err := Parse([]byte(env12Open+`<env:Body/></env:Envelope>`), xmlscan.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		m    *Message
		b    Version
		fail bool
	}{{m11, V11, false}, {m12, V12, false}, {m11, V12, true}, {m12, V11, true}}
	for _, tt := range tests {
		err := tt.m.CheckBinding(Binding{Version: tt.b})
		var e *Error
		if got := errors.As(err, &e) && e.Code == CodeVersionMismatch; got != tt.fail {
			t.Errorf("envelope %v, binding %v: got %v, want mismatch %v", tt.m.Version, tt.b, err, tt.fail)
		}
	}
}

func TestQName(t *testing.T) {
	tests := []struct {
		in   string
		want xml.Name
		ok   bool
	}{
		{"{urn:a}Op", xml.Name{Space: "urn:a", Local: "Op"}, true},
		{"{http://x/y}Op", xml.Name{Space: "http://x/y", Local: "Op"}, true},
		{"Op", xml.Name{Local: "Op"}, true},
		{"{}Op", xml.Name{Local: "Op"}, true},
		{"{urn:a}", xml.Name{}, false},
		{"", xml.Name{}, false},
		{"{urn:a Op", xml.Name{}, false},
		{"tns:Op", xml.Name{}, false},
		{"{urn:a}Op}", xml.Name{}, false},
		{"{urn:a}O p", xml.Name{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseQName(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseQName(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && ParseQNameRoundTrip(got) != got {
			t.Errorf("QName(%v) does not parse back", got)
		}
	}
}

// ParseQNameRoundTrip formats n and parses it again.
func ParseQNameRoundTrip(n xml.Name) xml.Name {
	got, _ := ParseQName(QName(n))
	return got
}

func TestVersion(t *testing.T) {
	for _, v := range []Version{V11, V12} {
		if got := VersionOf(v.Namespace()); got != v {
			t.Errorf("VersionOf(%s.Namespace()) = %v", v, got)
		}
	}
	if VersionOf("") != 0 || Version(0).Namespace() != "" || Version(0).String() != "unknown" {
		t.Error("the zero Version is not unknown")
	}
}
