package xmlguard

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/render"
)

const (
	ct11 = "text/xml; charset=utf-8"
	ct12 = "application/soap+xml; charset=utf-8"
)

func env11(body string) string {
	return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tns="urn:gatehouse:demo:products"><soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

func env12(body string) string {
	return `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tns="urn:gatehouse:demo:products"><env:Body>` + body + `</env:Body></env:Envelope>`
}

var (
	getProduct    = `<tns:GetProduct><tns:id>p-1</tns:id></tns:GetProduct>`
	createProduct = `<tns:CreateProduct><tns:name>n</tns:name><tns:price>1</tns:price></tns:CreateProduct>`
)

func newGuard(t testing.TB, n *config.Node, proto policy.Protocol) *Guard {
	t.Helper()
	p, err := New(n, soapEnv(proto))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*Guard)
}

// request is an HTTP request for a test case.
type request struct {
	method, contentType, action, body string
}

func (r request) exchange(proto policy.Protocol) *policy.Exchange {
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(method, "/soap/products", body)
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	if r.action != "" {
		hr.Header.Set("SOAPAction", r.action)
	}
	ex := policytest.Exchange(hr)
	ex.Route.Protocol = proto
	return ex
}

// verdict applies g and returns "" for allowed, else the denial's status
// and code, "500 error" for an internal error.
func verdict(t *testing.T, g *Guard, ex *policy.Exchange) (int, string) {
	t.Helper()
	err := g.Apply(context.Background(), ex)
	if err == nil {
		return 0, ""
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("Apply = %v, want nil or a Denial", err)
	}
	if d.Err == nil || !strings.HasPrefix(d.Err.Error(), "xmlguard: ") && d.Code != "body_too_large" {
		t.Errorf("Denial.Err = %v, want an xmlguard cause for the log", d.Err)
	}
	return d.StatusCode(), d.Code
}

func TestApplyREST(t *testing.T) {
	g := newGuard(t, policytest.Node(t, "max_bytes: 4KiB\nmax_depth: 8\n"), policy.REST)
	tests := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"plain xml", request{body: `<order><item sku="1"/></order>`, contentType: "application/xml"}, 0, ""},
		{"any content type is scanned", request{body: `{"json": true}`, contentType: "application/json"}, 400, "xml_malformed"},
		{"no body", request{}, 0, ""},
		{"get without body", request{method: http.MethodGet}, 0, ""},
		{"billion laughs", request{body: `<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>`}, 400, "xml_dtd_forbidden"},
		{"xxe", request{body: `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`}, 400, "xml_dtd_forbidden"},
		{"pi", request{body: `<r><?php system('id'); ?></r>`}, 400, "xml_pi_forbidden"},
		{"deep", request{body: strings.Repeat("<a>", 9) + strings.Repeat("</a>", 9)}, 400, "xml_limit_exceeded"},
		{"too large", request{body: "<r>" + strings.Repeat(" ", 4<<10) + "</r>"}, 413, "body_too_large"},
		{"duplicate attribute", request{body: `<r a="1" a="2"/>`}, 400, "xml_duplicate_attribute"},
		{"duplicate xmlns", request{body: `<r xmlns:p="urn:a" xmlns:p="urn:b"/>`}, 400, "xml_duplicate_namespace"},
		{"undeclared prefix", request{body: `<p:r/>`}, 400, "xml_namespace_error"},
		{"utf-16", request{body: `<?xml version="1.0" encoding="UTF-16"?><r/>`}, 400, "xml_encoding_unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := verdict(t, g, tt.req.exchange(policy.REST))
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %q, want %d %q", status, code, tt.status, tt.code)
			}
		})
	}
}

func TestApplySOAP(t *testing.T) {
	const (
		getAction    = `"` + demo.SOAPActionGetProduct + `"`
		createAction = `"` + demo.SOAPActionCreateProduct + `"`
	)
	list := policytest.Node(t, "soap:\n  operations: [\"{urn:gatehouse:demo:products}GetProduct\"]\n")
	wsdl := writeDemoWSDL(t, "soap:\n  wsdl: products.wsdl\n")
	wsdlLoose := writeDemoWSDL(t, "soap:\n  wsdl: products.wsdl\n  require_action_match: false\n")
	both := policytest.Node(t, "soap:\n  versions: [\"1.1\", \"1.2\"]\n  operations: [\"{urn:gatehouse:demo:products}GetProduct\"]\n")
	none := policytest.Node(t, "")

	tests := []struct {
		name   string
		cfg    *config.Node
		proto  policy.Protocol
		req    request
		status int
		code   string
	}{
		{"allowed by list", list, policy.SOAP11, request{contentType: ct11, action: getAction, body: env11(getProduct)}, 0, ""},
		{"not in list", list, policy.SOAP11, request{contentType: ct11, action: createAction, body: env11(createProduct)}, 400, CodeOperationNotAllowed},
		{"list ignores the action", list, policy.SOAP11, request{contentType: ct11, action: createAction, body: env11(getProduct)}, 0, ""},
		{"empty body element", list, policy.SOAP11, request{contentType: ct11, body: env11("")}, 400, CodeOperationNotAllowed},
		{"same local name, other namespace", list, policy.SOAP11, request{contentType: ct11, body: env11(`<x:GetProduct xmlns:x="urn:evil"/>`)}, 400, CodeOperationNotAllowed},
		{"smuggled second operation", list, policy.SOAP11, request{contentType: ct11, body: env11(getProduct + createProduct)}, 400, "soap_envelope_invalid"},
		{"no allow-list: any operation", none, policy.SOAP11, request{contentType: ct11, body: env11(createProduct)}, 0, ""},
		{"no allow-list: still the envelope", none, policy.SOAP11, request{contentType: ct11, body: `<tns:GetProduct xmlns:tns="urn:x"/>`}, 400, "soap_envelope_invalid"},

		{"wsdl: get", wsdl, policy.SOAP11, request{contentType: ct11, action: getAction, body: env11(getProduct)}, 0, ""},
		{"wsdl: create", wsdl, policy.SOAP11, request{contentType: ct11, action: createAction, body: env11(createProduct)}, 0, ""},
		{"wsdl: unquoted action", wsdl, policy.SOAP11, request{contentType: ct11, action: demo.SOAPActionGetProduct, body: env11(getProduct)}, 0, ""},
		{"wsdl: action of another operation", wsdl, policy.SOAP11, request{contentType: ct11, action: createAction, body: env11(getProduct)}, 400, CodeActionMismatch},
		{"wsdl: no action", wsdl, policy.SOAP11, request{contentType: ct11, body: env11(getProduct)}, 400, CodeActionMismatch},
		{"wsdl: empty action", wsdl, policy.SOAP11, request{contentType: ct11, action: `""`, body: env11(getProduct)}, 400, CodeActionMismatch},
		{"wsdl: unknown operation", wsdl, policy.SOAP11, request{contentType: ct11, action: getAction, body: env11(`<tns:DeleteProduct/>`)}, 400, CodeOperationNotAllowed},
		{"wsdl loose: any action", wsdlLoose, policy.SOAP11, request{contentType: ct11, action: createAction, body: env11(getProduct)}, 0, ""},

		{"1.2 route", both, policy.SOAP12, request{contentType: ct12 + `; action="x"`, body: env12(getProduct)}, 0, ""},
		{"1.2 envelope as text/xml", both, policy.SOAP12, request{contentType: ct11, body: env12(getProduct)}, 400, "soap_version_mismatch"},
		{"1.1 envelope as soap+xml", both, policy.SOAP11, request{contentType: ct12, body: env11(getProduct)}, 400, "soap_version_mismatch"},
		{"1.2 not accepted on a 1.1 route", list, policy.SOAP11, request{contentType: ct12, body: env12(getProduct)}, 400, "soap_version_mismatch"},
		{"unknown envelope namespace", none, policy.SOAP11, request{contentType: ct11, body: `<s:Envelope xmlns:s="urn:soap"><s:Body/></s:Envelope>`}, 400, "soap_version_mismatch"},
		{"json content type", none, policy.SOAP11, request{contentType: "application/json", body: env11(getProduct)}, 415, "soap_content_type_invalid"},
		{"latin-1 charset", none, policy.SOAP11, request{contentType: "text/xml; charset=iso-8859-1", body: env11(getProduct)}, 415, "soap_content_type_invalid"},
		{"no content type", none, policy.SOAP11, request{body: env11(getProduct)}, 415, "soap_content_type_invalid"},
		{"dtd in an envelope", none, policy.SOAP11, request{contentType: ct11, body: `<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:1/">]>` + env11(`<tns:GetProduct>&e;</tns:GetProduct>`)}, 400, "xml_dtd_forbidden"},
		{"pi in the body", none, policy.SOAP11, request{contentType: ct11, body: env11(`<?evil?>` + getProduct)}, 400, "xml_pi_forbidden"},
		{"duplicate attribute via two prefixes", none, policy.SOAP11, request{contentType: ct11, body: env11(`<tns:GetProduct xmlns:a="urn:x" xmlns:b="urn:x" a:id="1" b:id="2"/>`)}, 400, "xml_duplicate_attribute"},
		{"empty post", none, policy.SOAP11, request{contentType: ct11}, 400, "soap_envelope_invalid"},
		{"wsdl fetch", wsdl, policy.SOAP11, request{method: http.MethodGet}, 0, ""},
		{"trailing garbage", none, policy.SOAP11, request{contentType: ct11, body: env11(getProduct) + "<x/>"}, 400, "xml_malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuard(t, tt.cfg, tt.proto)
			status, code := verdict(t, g, tt.req.exchange(tt.proto))
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %q, want %d %q", status, code, tt.status, tt.code)
			}
		})
	}
}

// TestBodyReachesUpstream checks that a checked body is still there, byte
// for byte, for the policies and the upstream after the guard.
func TestBodyReachesUpstream(t *testing.T) {
	g := newGuard(t, policytest.Node(t, ""), policy.SOAP11)
	body := env11(getProduct)
	ex := request{contentType: ct11, body: body}.exchange(policy.SOAP11)
	if err := g.Apply(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(ex.Request.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != body {
		t.Errorf("upstream body = %q, want %q", got, body)
	}
}

// TestDenialRendersAsFault renders a denial on SOAP routes and checks that
// it is a Client/Sender fault carrying the code and nothing of the input.
func TestDenialRendersAsFault(t *testing.T) {
	tests := []struct {
		proto policy.Protocol
		want  []string
	}{
		{policy.SOAP11, []string{"<faultcode>soap:Client</faultcode>", "xml_dtd_forbidden"}},
		{policy.SOAP12, []string{"<env:Value>env:Sender</env:Value>", "gh:xml_dtd_forbidden"}},
	}
	for _, tt := range tests {
		g := newGuard(t, policytest.Node(t, ""), tt.proto)
		secret := "file:///etc/shadow-canary"
		ct := ct11
		if tt.proto == policy.SOAP12 {
			ct = ct12
		}
		ex := request{contentType: ct, body: `<!DOCTYPE r [<!ENTITY x SYSTEM "` + secret + `">]><r>&x;</r>`}.exchange(tt.proto)
		d, ok := policy.AsDenial(g.Apply(context.Background(), ex))
		if !ok {
			t.Fatalf("%v: not denied", tt.proto)
		}
		w := httptest.NewRecorder()
		render.Denial(w, ex.Request, tt.proto, "rid", d)
		out := w.Body.String()
		if w.Code != http.StatusBadRequest {
			t.Errorf("%v: status %d, want 400", tt.proto, w.Code)
		}
		for _, s := range tt.want {
			if !strings.Contains(out, s) {
				t.Errorf("%v: fault %s lacks %q", tt.proto, out, s)
			}
		}
		if strings.Contains(out, secret) || strings.Contains(out, "ENTITY") {
			t.Errorf("%v: fault %s echoes the request", tt.proto, out)
		}
	}
}
