package demo

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

const soapPath = "/soap/products"

func newSOAPServer(t *testing.T, s *Store, endpointURL func(*http.Request) string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(soapPath, SOAPHandler(s, endpointURL))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// envelope wraps body content in a SOAP 1.1 envelope that binds the soap
// prefix and tns to Namespace, as most clients do.
func envelope(content string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` +
		`<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `" xmlns:tns="` + Namespace + `">` +
		`<soap:Body>` + content + `</soap:Body></soap:Envelope>`
}

func getProductXML(id string) string {
	return `<tns:GetProduct><tns:id>` + id + `</tns:id></tns:GetProduct>`
}

// node is a generic XML tree that keeps every element's resolved name, so
// tests can check namespaces, not only local names.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
	Text     string     `xml:",chardata"`
}

func parseTree(t *testing.T, b []byte) node {
	t.Helper()
	var n node
	if err := xml.Unmarshal(b, &n); err != nil {
		t.Fatalf("parsing %s: %v", b, err)
	}
	return n
}

// child returns n's only child with the given name, failing otherwise.
func (n node) child(t *testing.T, space, local string) node {
	t.Helper()
	var found []node
	for _, c := range n.Children {
		if c.XMLName.Space == space && c.XMLName.Local == local {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("<%s> has %d children {%s}%s, want 1; children: %v", n.XMLName.Local, len(found), space, local, names(n.Children))
	}
	return found[0]
}

func (n node) attr(space, local string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

func names(ns []node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, qname(n.XMLName))
	}
	return out
}

// soapBody checks the envelope around a response and returns its Body's
// single child.
func soapBody(t *testing.T, b []byte) node {
	t.Helper()
	env := parseTree(t, b)
	if env.XMLName != (xml.Name{Space: EnvelopeNamespace, Local: "Envelope"}) {
		t.Fatalf("root = %s, want the SOAP 1.1 Envelope", qname(env.XMLName))
	}
	if len(env.Children) != 1 {
		t.Fatalf("Envelope children = %v, want only Body", names(env.Children))
	}
	body := env.child(t, EnvelopeNamespace, "Body")
	if len(body.Children) != 1 {
		t.Fatalf("Body children = %v, want exactly one", names(body.Children))
	}
	return body.Children[0]
}

type fault struct {
	code, str     string
	detailCode    string
	detailField   string
	hasDetail     bool
	codeNamespace string
}

// parseFault checks that r is a SOAP 1.1 fault response and returns it.
func parseFault(t *testing.T, r response) fault {
	t.Helper()
	if r.status != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500 for a fault; body %s", r.status, r.body)
	}
	checkSOAPContentType(t, r)
	f := soapBody(t, r.body)
	if f.XMLName != (xml.Name{Space: EnvelopeNamespace, Local: "Fault"}) {
		t.Fatalf("Body holds %s, want soap:Fault", qname(f.XMLName))
	}
	// faultcode, faultstring and detail are unqualified (WS-I BP R1001).
	var out fault
	out.code = f.child(t, "", "faultcode").Text
	out.str = f.child(t, "", "faultstring").Text
	prefix, _, _ := strings.Cut(out.code, ":")
	env := parseTree(t, r.body)
	out.codeNamespace, _ = env.attr("xmlns", prefix)
	for _, c := range f.Children {
		if c.XMLName == (xml.Name{Local: "detail"}) {
			out.hasDetail = true
			pf := c.child(t, Namespace, "ProductFault")
			out.detailCode = pf.child(t, Namespace, "code").Text
			for _, fc := range pf.Children {
				if fc.XMLName == (xml.Name{Space: Namespace, Local: "field"}) {
					out.detailField = fc.Text
				}
			}
		}
	}
	return out
}

func checkSOAPContentType(t *testing.T, r response) {
	t.Helper()
	if got := r.header.Get("Content-Type"); got != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/xml; charset=utf-8", got)
	}
}

// parseProduct checks that el is a response element holding one
// tns:product with qualified children, and returns the product.
func parseProduct(t *testing.T, el node, wantLocal string) Product {
	t.Helper()
	if el.XMLName != (xml.Name{Space: Namespace, Local: wantLocal}) {
		t.Fatalf("response element = %s, want {%s}%s", qname(el.XMLName), Namespace, wantLocal)
	}
	p := el.child(t, Namespace, "product")
	if got := names(p.Children); strings.Join(got, " ") != strings.Join([]string{
		"{" + Namespace + "}id", "{" + Namespace + "}name", "{" + Namespace + "}price", "{" + Namespace + "}currency",
	}, " ") {
		t.Fatalf("product children = %v, want id, name, price, currency in %s", got, Namespace)
	}
	price, err := strconv.ParseFloat(p.Children[2].Text, 64)
	if err != nil {
		t.Fatalf("price %q: %v", p.Children[2].Text, err)
	}
	return Product{ID: p.Children[0].Text, Name: p.Children[1].Text, Price: price, Currency: p.Children[3].Text}
}

func post(t *testing.T, url, body string, header ...string) response {
	t.Helper()
	return do(t, "POST", url, "text/xml; charset=utf-8", strings.NewReader(body), header...)
}

// The WSDL as far as the tests read it. Nested structs rather than a>b
// paths, because a tag's namespace would apply to every step of a path.
type wsdlRef struct {
	Message string `xml:"message,attr"`
	Body    struct {
		Use string `xml:"use,attr"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ body"`
}

type wsdlDoc struct {
	XMLName         xml.Name `xml:"http://schemas.xmlsoap.org/wsdl/ definitions"`
	Name            string   `xml:"name,attr"`
	TargetNamespace string   `xml:"targetNamespace,attr"`
	Types           struct {
		Schema struct {
			TargetNamespace    string `xml:"targetNamespace,attr"`
			ElementFormDefault string `xml:"elementFormDefault,attr"`
			Elements           []struct {
				Name string `xml:"name,attr"`
			} `xml:"http://www.w3.org/2001/XMLSchema element"`
		} `xml:"http://www.w3.org/2001/XMLSchema schema"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ types"`
	Messages []struct {
		Name  string `xml:"name,attr"`
		Parts []struct {
			Name    string `xml:"name,attr"`
			Element string `xml:"element,attr"`
			Type    string `xml:"type,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ part"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ message"`
	PortType struct {
		Name       string `xml:"name,attr"`
		Operations []struct {
			Name   string  `xml:"name,attr"`
			Input  wsdlRef `xml:"http://schemas.xmlsoap.org/wsdl/ input"`
			Output wsdlRef `xml:"http://schemas.xmlsoap.org/wsdl/ output"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ operation"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ portType"`
	Binding struct {
		Name        string `xml:"name,attr"`
		Type        string `xml:"type,attr"`
		SOAPBinding struct {
			Style     string `xml:"style,attr"`
			Transport string `xml:"transport,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ binding"`
		Operations []struct {
			Name          string `xml:"name,attr"`
			SOAPOperation struct {
				SOAPAction string `xml:"soapAction,attr"`
				Style      string `xml:"style,attr"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ operation"`
			Input  wsdlRef `xml:"http://schemas.xmlsoap.org/wsdl/ input"`
			Output wsdlRef `xml:"http://schemas.xmlsoap.org/wsdl/ output"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ operation"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ binding"`
	Service struct {
		Name string `xml:"name,attr"`
		Port struct {
			Name    string `xml:"name,attr"`
			Binding string `xml:"binding,attr"`
			Address struct {
				Location string `xml:"location,attr"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ address"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ port"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ service"`
}

func fetchWSDL(t *testing.T, url string) wsdlDoc {
	t.Helper()
	r := do(t, "GET", url, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200; body %s", url, r.status, r.body)
	}
	checkSOAPContentType(t, r)
	var d wsdlDoc
	if err := xml.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("parsing the WSDL: %v", err)
	}
	return d
}

func TestWSDL(t *testing.T) {
	srv := newSOAPServer(t, NewStore(), nil)
	for _, query := range []string{"?wsdl", "?WSDL", "?Wsdl", "?wsdl=", "?x=1&wsdl"} {
		t.Run(query, func(t *testing.T) {
			d := fetchWSDL(t, srv.URL+soapPath+query)
			if d.Name != ServiceName || d.TargetNamespace != Namespace {
				t.Errorf("definitions name=%q targetNamespace=%q, want %q %q", d.Name, d.TargetNamespace, ServiceName, Namespace)
			}
			if d.Types.Schema.TargetNamespace != Namespace || d.Types.Schema.ElementFormDefault != "qualified" {
				t.Errorf("schema targetNamespace=%q elementFormDefault=%q, want %q qualified",
					d.Types.Schema.TargetNamespace, d.Types.Schema.ElementFormDefault, Namespace)
			}
			elements := map[string]bool{}
			for _, e := range d.Types.Schema.Elements {
				elements[e.Name] = true
			}
			// Document/literal (WS-I BP R2204, R2210): each message has one
			// part, and it refers to a global element of the schema.
			messages := map[string]string{}
			for _, m := range d.Messages {
				if len(m.Parts) != 1 || m.Parts[0].Element == "" || m.Parts[0].Type != "" {
					t.Errorf("message %s parts = %+v, want one part with an element", m.Name, m.Parts)
					continue
				}
				el := strings.TrimPrefix(m.Parts[0].Element, "tns:")
				if !elements[el] {
					t.Errorf("message %s refers to element %s, which the schema lacks", m.Name, m.Parts[0].Element)
				}
				messages[m.Name] = el
			}
			wantActions := map[string]string{"GetProduct": SOAPActionGetProduct, "CreateProduct": SOAPActionCreateProduct, "GetProductCost": SOAPActionGetProductCost}
			gotOps := map[string]bool{}
			for _, op := range d.PortType.Operations {
				gotOps[op.Name] = true
				in := messages[strings.TrimPrefix(op.Input.Message, "tns:")]
				out := messages[strings.TrimPrefix(op.Output.Message, "tns:")]
				// The wrapper element is named after the operation: that is
				// what the service dispatches on.
				if in != op.Name || out != op.Name+"Response" {
					t.Errorf("operation %s carries elements %q -> %q, want %s -> %sResponse", op.Name, in, out, op.Name, op.Name)
				}
			}
			if len(gotOps) != len(wantActions) {
				t.Errorf("portType operations = %v, want %v", gotOps, wantActions)
			}
			if d.Binding.SOAPBinding.Style != "document" || d.Binding.SOAPBinding.Transport != "http://schemas.xmlsoap.org/soap/http" {
				t.Errorf("soap:binding = %+v, want document style over SOAP HTTP", d.Binding.SOAPBinding)
			}
			if len(d.Binding.Operations) != len(wantActions) {
				t.Errorf("binding has %d operations, want %d", len(d.Binding.Operations), len(wantActions))
			}
			for _, op := range d.Binding.Operations {
				if want, ok := wantActions[op.Name]; !ok || op.SOAPOperation.SOAPAction != want {
					t.Errorf("binding operation %s soapAction = %q, want %q", op.Name, op.SOAPOperation.SOAPAction, want)
				}
				if op.SOAPOperation.Style != "document" || op.Input.Body.Use != "literal" || op.Output.Body.Use != "literal" {
					t.Errorf("binding operation %s style=%q input use=%q output use=%q, want document, literal, literal",
						op.Name, op.SOAPOperation.Style, op.Input.Body.Use, op.Output.Body.Use)
				}
			}
			if d.Service.Name != ServiceName || d.Service.Port.Binding != "tns:"+d.Binding.Name {
				t.Errorf("service %q port binding %q, want %q and tns:%s", d.Service.Name, d.Service.Port.Binding, ServiceName, d.Binding.Name)
			}
			if got, want := d.Service.Port.Address.Location, srv.URL+soapPath; got != want {
				t.Errorf("soap:address location = %q, want %q", got, want)
			}
		})
	}
}

func TestWSDLEndpointURL(t *testing.T) {
	// A gateway passes a function that names its own public URL; the WSDL
	// must carry it verbatim, whatever characters it has.
	const public = `https://gw.example:8443/soap/products?tenant=a&x="<y>"`
	srv := newSOAPServer(t, NewStore(), func(r *http.Request) string {
		if r.Header.Get("X-Forwarded-Host") != "gw.example:8443" {
			return "wrong"
		}
		return public
	})
	r := do(t, "GET", srv.URL+soapPath+"?wsdl", "", nil, "X-Forwarded-Host", "gw.example:8443")
	var d wsdlDoc
	if err := xml.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("parsing the WSDL: %v", err)
	}
	if got := d.Service.Port.Address.Location; got != public {
		t.Errorf("soap:address location = %q, want %q", got, public)
	}
}

func TestWSDLHead(t *testing.T) {
	srv := newSOAPServer(t, NewStore(), nil)
	full := do(t, "GET", srv.URL+soapPath+"?wsdl", "", nil)
	r := do(t, "HEAD", srv.URL+soapPath+"?wsdl", "", nil)
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Errorf("HEAD ?wsdl = %d with %d body bytes, want 200 and none", r.status, len(r.body))
	}
	if got, want := r.header.Get("Content-Length"), strconv.Itoa(len(full.body)); got != want {
		t.Errorf("HEAD Content-Length = %s, want %s", got, want)
	}
}

func TestSOAPHTTPErrors(t *testing.T) {
	srv := newSOAPServer(t, NewStore(), nil)
	valid := envelope(getProductXML("p-1001"))
	tests := []struct {
		name        string
		method      string
		query       string
		contentType string
		body        io.Reader
		wantStatus  int
		wantAllow   string
	}{
		{"GET without wsdl", "GET", "", "", nil, 405, "POST"},
		{"PUT", "PUT", "", "text/xml", strings.NewReader(valid), 405, "POST"},
		{"DELETE", "DELETE", "", "", nil, 405, "POST"},
		{"POST to the WSDL", "POST", "?wsdl", "text/xml", strings.NewReader(valid), 405, "GET, HEAD"},
		{"SOAP 1.2 media type", "POST", "", "application/soap+xml; charset=utf-8", strings.NewReader(valid), 415, ""},
		{"JSON", "POST", "", "application/json", strings.NewReader(`{}`), 415, ""},
		{"no content type", "POST", "", "", strings.NewReader(valid), 415, ""},
		{"another charset", "POST", "", "text/xml; charset=iso-8859-1", strings.NewReader(valid), 415, ""},
		{"too large", "POST", "", "text/xml", strings.NewReader(envelope(getProductXML(strings.Repeat("a", MaxBodyBytes)))), 413, ""},
		{"too large, chunked", "POST", "", "text/xml", unsized{strings.NewReader(envelope(getProductXML(strings.Repeat("a", MaxBodyBytes))))}, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, srv.URL+soapPath+tt.query, tt.contentType, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if bytes.Contains(r.body, []byte("Envelope")) {
				t.Errorf("an HTTP-level refusal carries an envelope: %s", r.body)
			}
		})
	}
}

func TestSOAPGetProduct(t *testing.T) {
	srv := newSOAPServer(t, NewStore(), nil)
	want := Product{ID: "p-1003", Name: "Milk Frother", Price: 39.99, Currency: "USD"}
	// Clients differ in how they qualify elements and send SOAPAction; all
	// of these are the same request.
	nodeSOAPStyle := `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="` + EnvelopeNamespace +
		`" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body><GetProduct xmlns="` + Namespace +
		`"><id>p-1003</id></GetProduct></soap:Body></soap:Envelope>`
	tests := []struct {
		name   string
		body   string
		header []string
	}{
		{"quoted SOAPAction", envelope(getProductXML("p-1003")), []string{"SOAPAction", strconv.Quote(SOAPActionGetProduct)}},
		{"unquoted SOAPAction", envelope(getProductXML("p-1003")), []string{"SOAPAction", SOAPActionGetProduct}},
		{"empty SOAPAction", envelope(getProductXML("p-1003")), []string{"SOAPAction", `""`}},
		{"no SOAPAction", envelope(getProductXML("p-1003")), nil},
		{"default namespace", nodeSOAPStyle, []string{"SOAPAction", `""`}},
		{"other prefixes, comments and white space", `<!-- c --><e:Envelope xmlns:e="` + EnvelopeNamespace + `">
			<e:Header/>
			<e:Body> <!-- c -->
				<p:GetProduct xmlns:p="` + Namespace + `">
					<p:id><!-- c -->p-1003</p:id>
				</p:GetProduct>
			</e:Body>
		</e:Envelope>
		`, nil},
		{"byte order mark", "\xef\xbb\xbf" + envelope(getProductXML("p-1003")), nil},
		{"header not for us", `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `"><soap:Header>` +
			`<x:Trace xmlns:x="urn:x" soap:mustUnderstand="1" soap:actor="urn:someone-else"/>` +
			`<x:Note xmlns:x="urn:x" soap:mustUnderstand="0"><x:n>1</x:n></x:Note>` +
			`</soap:Header><soap:Body>` + `<GetProduct xmlns="` + Namespace + `"><id>p-1003</id></GetProduct>` +
			`</soap:Body></soap:Envelope>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, srv.URL+soapPath, tt.body, tt.header...)
			if r.status != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", r.status, r.body)
			}
			checkSOAPContentType(t, r)
			if got := parseProduct(t, soapBody(t, r.body), "GetProductResponse"); got != want {
				t.Errorf("product = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSOAPFaults(t *testing.T) {
	get := envelope(getProductXML("p-1001"))
	tests := []struct {
		name      string
		body      string
		header    []string
		wantCode  string
		wantStr   string // contained in the faultstring
		wantField string // ProductFault detail: field
		wantPF    string // ProductFault detail: code; "" for no detail
	}{
		{name: "product not found", body: envelope(getProductXML("p-9")), wantCode: FaultClient, wantStr: "product not found", wantPF: ProductFaultNotFound},
		{name: "SOAPAction mismatch", body: get, header: []string{"SOAPAction", strconv.Quote(SOAPActionCreateProduct)}, wantCode: FaultClient, wantStr: "does not match the operation GetProduct"},
		{name: "SOAPAction of no operation", body: get, header: []string{"SOAPAction", `"urn:evil"`}, wantCode: FaultClient, wantStr: "does not match"},
		{name: "two SOAPAction headers", body: get, header: []string{"SOAPAction", `""`, "SOAPAction", `""`}, wantCode: FaultClient, wantStr: "more than one SOAPAction"},
		{name: "DOCTYPE", body: `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>` + envelope(getProductXML("&lol2;"))[len(`<?xml version="1.0" encoding="UTF-8"?>`):], wantCode: FaultClient, wantStr: "document type declaration"},
		{name: "DOCTYPE in lower case", body: `<!doctype x>` + get, wantCode: FaultClient, wantStr: "document type declaration"},
		{name: "malformed XML", body: strings.TrimSuffix(get, "</soap:Envelope>"), wantCode: FaultClient, wantStr: "malformed XML"},
		{name: "mismatched tags", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `"><soap:Body></soap:Envelope>`, wantCode: FaultClient, wantStr: "malformed XML"},
		{name: "undeclared entity", body: envelope(getProductXML("&xxe;")), wantCode: FaultClient, wantStr: "malformed XML"},
		{name: "not XML", body: `hello`, wantCode: FaultClient, wantStr: "unexpected text"},
		{name: "empty", body: ``, wantCode: FaultClient, wantStr: "unexpected end of message"},
		{name: "encoding other than UTF-8", body: `<?xml version="1.0" encoding="ISO-8859-1"?><x/>`, wantCode: FaultClient, wantStr: "malformed XML"},
		{name: "processing instruction", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `" xmlns:tns="` + Namespace + `"><?pi x?><soap:Body>` + getProductXML("p-1001") + `</soap:Body></soap:Envelope>`, wantCode: FaultClient, wantStr: "processing instructions"},
		{name: "not an envelope", body: `<html><body/></html>`, wantCode: FaultClient, wantStr: "not a SOAP envelope"},
		{name: "envelope in no namespace", body: `<Envelope><Body>` + getProductXML("p-1001") + `</Body></Envelope>`, wantCode: FaultVersionMismatch, wantStr: "only SOAP 1.1"},
		{name: "undeclared prefix", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `"><soap:Body>` + getProductXML("p-1001") + `</soap:Body></soap:Envelope>`, wantCode: FaultClient, wantStr: "undeclared namespace prefix tns"},
		{name: "undeclared attribute prefix", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `" xsi:x="1"><soap:Body/></soap:Envelope>`, wantCode: FaultClient, wantStr: "undeclared namespace prefix xsi"},
		{name: "SOAP 1.2 envelope", body: `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tns="` + Namespace + `"><env:Body>` + getProductXML("p-1001") + `</env:Body></env:Envelope>`, wantCode: FaultVersionMismatch, wantStr: "only SOAP 1.1"},
		{name: "no Body", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `"><soap:Header/></soap:Envelope>`, wantCode: FaultClient, wantStr: "want a SOAP Body"},
		{name: "Body before Header", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `" xmlns:tns="` + Namespace + `"><soap:Body>` + getProductXML("p-1001") + `</soap:Body><soap:Header/></soap:Envelope>`, wantCode: FaultClient, wantStr: "nothing may follow the SOAP Body"},
		{name: "empty Body", body: envelope(``), wantCode: FaultClient, wantStr: "the SOAP Body is empty"},
		{name: "two elements in Body", body: envelope(getProductXML("p-1001") + getProductXML("p-1002")), wantCode: FaultClient, wantStr: "exactly one element"},
		{name: "text in Body", body: envelope(`p-1001`), wantCode: FaultClient, wantStr: "unexpected text"},
		{name: "second root", body: get + `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `"/>`, wantCode: FaultClient, wantStr: "after the SOAP Envelope"},
		{name: "unknown operation", body: envelope(`<tns:DeleteProduct><tns:id>p-1001</tns:id></tns:DeleteProduct>`), wantCode: FaultClient, wantStr: "unknown operation {" + Namespace + "}DeleteProduct"},
		{name: "operation in another namespace", body: envelope(`<GetProduct xmlns="urn:other"><id>p-1001</id></GetProduct>`), wantCode: FaultClient, wantStr: "unknown operation {urn:other}GetProduct"},
		{name: "unqualified child", body: envelope(`<tns:GetProduct><id>p-1001</id></tns:GetProduct>`), wantCode: FaultClient, wantStr: "unexpected element id"},
		{name: "unknown child", body: envelope(`<tns:GetProduct><tns:id>p-1001</tns:id><tns:admin>1</tns:admin></tns:GetProduct>`), wantCode: FaultClient, wantStr: "unexpected element {" + Namespace + "}admin"},
		{name: "duplicate child", body: envelope(`<tns:GetProduct><tns:id>p-1001</tns:id><tns:id>p-1002</tns:id></tns:GetProduct>`), wantCode: FaultClient, wantStr: "more than once"},
		{name: "nested element", body: envelope(`<tns:GetProduct><tns:id><tns:x/>p-1001</tns:id></tns:GetProduct>`), wantCode: FaultClient, wantStr: "text only"},
		{name: "missing id", body: envelope(`<tns:GetProduct/>`), wantCode: FaultClient, wantStr: "id is required"},
		{name: "mustUnderstand header", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `" xmlns:tns="` + Namespace + `"><soap:Header><w:Security xmlns:w="urn:w" soap:mustUnderstand="1"/></soap:Header><soap:Body>` + getProductXML("p-1001") + `</soap:Body></soap:Envelope>`, wantCode: FaultMustUnderstand, wantStr: "{urn:w}Security"},
		{name: "mustUnderstand header for the next actor", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `" xmlns:tns="` + Namespace + `"><soap:Header><w:S xmlns:w="urn:w" soap:actor="` + actorNext + `" soap:mustUnderstand="1"/></soap:Header><soap:Body>` + getProductXML("p-1001") + `</soap:Body></soap:Envelope>`, wantCode: FaultMustUnderstand, wantStr: "{urn:w}S"},
		{name: "bad mustUnderstand", body: `<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `" xmlns:tns="` + Namespace + `"><soap:Header><w:S xmlns:w="urn:w" soap:mustUnderstand="yes"/></soap:Header><soap:Body>` + getProductXML("p-1001") + `</soap:Body></soap:Envelope>`, wantCode: FaultClient, wantStr: "mustUnderstand must be 0 or 1"},

		{name: "create without name", body: envelope(`<tns:CreateProduct><tns:price>1</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "name is required", wantPF: ProductFaultInvalid, wantField: "name"},
		{name: "create with blank name", body: envelope(`<tns:CreateProduct><tns:name> </tns:name><tns:price>1</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "name is required", wantPF: ProductFaultInvalid, wantField: "name"},
		{name: "create with long name", body: envelope(`<tns:CreateProduct><tns:name>` + strings.Repeat("n", 201) + `</tns:name><tns:price>1</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "at most 200", wantPF: ProductFaultInvalid, wantField: "name"},
		{name: "create without price", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "price is required", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with zero price", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>0</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "greater than 0", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with negative price", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>-2.5</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "greater than 0", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with NaN price", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>NaN</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "xs:decimal", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with exponent price", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>1e3</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "xs:decimal", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with hex price", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>0x10</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "xs:decimal", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with two signs", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>+-1</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "xs:decimal", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with a lone dot", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>.</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "xs:decimal", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with huge price", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>1000000000.01</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "at most", wantPF: ProductFaultInvalid, wantField: "price"},
		{name: "create with lower-case currency", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>1</tns:price><tns:currency>eur</tns:currency></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "currency", wantPF: ProductFaultInvalid, wantField: "currency"},
		{name: "create with empty currency", body: envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>1</tns:price><tns:currency/></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "currency", wantPF: ProductFaultInvalid, wantField: "currency"},
		{name: "create with fields out of order", body: envelope(`<tns:CreateProduct><tns:price>1</tns:price><tns:name>a</tns:name></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "out of order"},
		{name: "create with a control character", body: envelope(`<tns:CreateProduct><tns:name>a&#x7f;</tns:name><tns:price>1</tns:price></tns:CreateProduct>`), wantCode: FaultClient, wantStr: "control characters", wantPF: ProductFaultInvalid, wantField: "name"},
	}
	s := NewStore()
	srv := newSOAPServer(t, s, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parseFault(t, post(t, srv.URL+soapPath, tt.body, tt.header...))
			if f.code != tt.wantCode {
				t.Errorf("faultcode = %q (%q), want %q", f.code, f.str, tt.wantCode)
			}
			if f.codeNamespace != EnvelopeNamespace {
				t.Errorf("faultcode prefix is bound to %q, want %q", f.codeNamespace, EnvelopeNamespace)
			}
			if !strings.Contains(f.str, tt.wantStr) {
				t.Errorf("faultstring = %q, want it to contain %q", f.str, tt.wantStr)
			}
			if f.hasDetail != (tt.wantPF != "") || f.detailCode != tt.wantPF || f.detailField != tt.wantField {
				t.Errorf("detail present=%v code=%q field=%q, want present=%v code=%q field=%q",
					f.hasDetail, f.detailCode, f.detailField, tt.wantPF != "", tt.wantPF, tt.wantField)
			}
		})
	}
	if got := s.Len(); got != 3 {
		t.Errorf("after only faulty requests the store holds %d products, want 3", got)
	}
}

func TestSOAPCreateThenGet(t *testing.T) {
	s := NewStore()
	srv := newSOAPServer(t, s, nil)
	tests := []struct {
		name    string
		content string
		want    Product // ID filled in from the response
	}{
		{"with currency", `<tns:CreateProduct><tns:name>Kettle &amp; Co &lt;1&gt;</tns:name><tns:price> 34.90 </tns:price><tns:currency>CHF</tns:currency></tns:CreateProduct>`,
			Product{Name: "Kettle & Co <1>", Price: 34.9, Currency: "CHF"}},
		{"default currency", `<tns:CreateProduct><tns:name>Scale</tns:name><tns:price>+12</tns:price></tns:CreateProduct>`,
			Product{Name: "Scale", Price: 12, Currency: "EUR"}},
		{"fraction without integer part", `<tns:CreateProduct><tns:name>Filter</tns:name><tns:price>.5</tns:price></tns:CreateProduct>`,
			Product{Name: "Filter", Price: 0.5, Currency: "EUR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, srv.URL+soapPath, envelope(tt.content), "SOAPAction", strconv.Quote(SOAPActionCreateProduct))
			if r.status != http.StatusOK {
				t.Fatalf("CreateProduct status = %d, want 200; body %s", r.status, r.body)
			}
			created := parseProduct(t, soapBody(t, r.body), "CreateProductResponse")
			want := tt.want
			want.ID = created.ID
			if created != want || !strings.HasPrefix(created.ID, "p-") {
				t.Errorf("created = %+v, want %+v with a p- id", created, want)
			}
			r = post(t, srv.URL+soapPath, envelope(getProductXML(created.ID)), "SOAPAction", strconv.Quote(SOAPActionGetProduct))
			if r.status != http.StatusOK {
				t.Fatalf("GetProduct status = %d, want 200; body %s", r.status, r.body)
			}
			if got := parseProduct(t, soapBody(t, r.body), "GetProductResponse"); got != want {
				t.Errorf("GetProduct = %+v, want %+v", got, want)
			}
			if got, err := s.Get(created.ID); err != nil || got != want {
				t.Errorf("store has %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestSOAPStoreFull(t *testing.T) {
	srv := newSOAPServer(t, NewBoundedStore(3), nil)
	f := parseFault(t, post(t, srv.URL+soapPath, envelope(`<tns:CreateProduct><tns:name>a</tns:name><tns:price>1</tns:price></tns:CreateProduct>`)))
	if f.code != FaultServer || f.detailCode != ProductFaultStoreFull {
		t.Errorf("fault = %+v, want %s with detail code %s", f, FaultServer, ProductFaultStoreFull)
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true}, {"+1.50", 1.5, true}, {"-0.5", -0.5, true}, {".5", 0.5, true}, {"5.", 5, true},
		{" \n 7 \t", 7, true}, {"007", 7, true},
		{"", 0, false}, {".", 0, false}, {"+", 0, false}, {"1e3", 0, false}, {"Inf", 0, false},
		{"NaN", 0, false}, {"0x1p3", 0, false}, {"1_000", 0, false}, {"1.2.3", 0, false}, {"--1", 0, false}, {"1-", 0, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseDecimal(tt.in)
			if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
				t.Errorf("parseDecimal(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func BenchmarkSOAPGetProduct(b *testing.B) {
	h := SOAPHandler(NewStore(), nil)
	body := []byte(envelope(getProductXML("p-1002")))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", soapPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", `"`+SOAPActionGetProduct+`"`)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkRESTGetProduct(b *testing.B) {
	h := RESTHandler(NewStore())
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/product/p-1002", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// TestGetProductCost: the third operation answers the cost of a product
// (CostRatio of its price, rounded to cents) and faults on an unknown id.
func TestGetProductCost(t *testing.T) {
	s := NewStore()
	srv := newSOAPServer(t, s, nil)
	p, err := s.Get("p-1001")
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, srv.URL+soapPath, envelope(`<tns:GetProductCost><tns:id>p-1001</tns:id></tns:GetProductCost>`), "SOAPAction", strconv.Quote(SOAPActionGetProductCost))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	el := soapBody(t, r.body)
	if el.XMLName != (xml.Name{Space: Namespace, Local: "GetProductCostResponse"}) || len(el.Children) != 3 {
		t.Fatalf("response %s with %v", qname(el.XMLName), names(el.Children))
	}
	want := strconv.FormatFloat(math.Round(p.Price*CostRatio*100)/100, 'f', -1, 64)
	if el.Children[0].Text != "p-1001" || el.Children[1].Text != want || el.Children[2].Text != p.Currency {
		t.Fatalf("got %s %s %s, want p-1001 %s %s", el.Children[0].Text, el.Children[1].Text, el.Children[2].Text, want, p.Currency)
	}
	r = post(t, srv.URL+soapPath, envelope(`<tns:GetProductCost><tns:id>p-0</tns:id></tns:GetProductCost>`), "SOAPAction", strconv.Quote(SOAPActionGetProductCost))
	if f := parseFault(t, r); f.code != FaultClient || f.detailCode != ProductFaultNotFound {
		t.Fatalf("unknown id: %+v", f)
	}
}
