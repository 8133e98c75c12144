package demo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Names of the SOAP ProductService. Requests built elsewhere (tests, other
// packages' fixtures) should use these rather than repeat the strings.
const (
	// Namespace is the target namespace of the service's WSDL and schema:
	// the operation elements and all their children are in it
	// (elementFormDefault="qualified").
	Namespace = "urn:gatehouse:demo:products"
	// ServiceName is the wsdl:service name.
	ServiceName = "ProductService"
	// EnvelopeNamespace is the SOAP 1.1 envelope namespace, the only SOAP
	// version the service speaks.
	EnvelopeNamespace = "http://schemas.xmlsoap.org/soap/envelope/"
	// SOAPActionGetProduct is the soapAction of GetProduct.
	SOAPActionGetProduct = Namespace + "/GetProduct"
	// SOAPActionCreateProduct is the soapAction of CreateProduct.
	SOAPActionCreateProduct = Namespace + "/CreateProduct"
	// SOAPActionGetProductCost is the soapAction of GetProductCost, the
	// operation whose messages the demo gateway wants encrypted.
	SOAPActionGetProductCost = Namespace + "/GetProductCost"
)

// SOAP 1.1 fault codes (section 4.4.1), as QNames with the "soap" prefix
// that every envelope the service writes binds to EnvelopeNamespace.
const (
	FaultVersionMismatch = "soap:VersionMismatch"
	FaultMustUnderstand  = "soap:MustUnderstand"
	FaultClient          = "soap:Client"
	FaultServer          = "soap:Server"
)

// Codes carried in the ProductFault detail of a fault about a product.
const (
	ProductFaultNotFound  = "not_found"
	ProductFaultInvalid   = "invalid_product"
	ProductFaultStoreFull = "store_full"
)

// actorNext is the SOAP 1.1 actor URI meaning "the next SOAP node", which
// is this service: a header for it is as much ours as one with no actor.
const actorNext = "http://schemas.xmlsoap.org/soap/actor/next"

// SOAPHandler returns the SOAP 1.1 document/literal ProductService backed
// by s, mounted at whatever path the caller chooses:
//
//   - GET or HEAD with a query parameter named wsdl (any case, e.g. ?wsdl
//     or ?WSDL) returns the WSDL 1.1 as text/xml, its soap:address being
//     endpointURL(r), XML-escaped. A nil endpointURL means the request's
//     own URL: http or https (per r.TLS), r.Host and r.URL's path. Behind
//     a gateway, pass a function that returns the gateway's public URL,
//     so that clients reading the WSDL call the gateway.
//   - POST with Content-Type text/xml (charset utf-8 if any; else 415) and
//     a body of at most MaxBodyBytes (else 413) is a SOAP request. Its Body
//     holds exactly one element, {Namespace}GetProduct or
//     {Namespace}CreateProduct, which selects the operation. A SOAPAction
//     header, when present and not empty, must name the same operation.
//   - Anything else gets 405 with an Allow header.
//
// Successful calls answer 200 with the response envelope. Every failure of
// a SOAP request answers 500 with a SOAP 1.1 Fault (WS-I BP R1126):
// soap:Client for a request the client must change (malformed XML, a DTD,
// a processing instruction, an unknown operation or element, a SOAPAction
// mismatch, an invalid product, a product not found), soap:VersionMismatch
// for a non-1.1 envelope, soap:MustUnderstand for a mustUnderstand="1"
// header addressed to this service (it understands none), soap:Server for
// a full store. Faults about a product carry a {Namespace}ProductFault
// detail with a code and, for an invalid product, the refused field.
//
// Because the service processes no header, a gateway in front that
// verifies a wsse:Security header with mustUnderstand="1" must remove it
// before forwarding, as SOAP 1.1 asks of an intermediary that processed a
// header.
func SOAPHandler(s *Store, endpointURL func(r *http.Request) string) http.Handler {
	if s == nil {
		panic("demo: SOAPHandler: nil store")
	}
	if endpointURL == nil {
		endpointURL = requestURL
	}
	return &soapHandler{store: s, endpointURL: endpointURL}
}

type soapHandler struct {
	store       *Store
	endpointURL func(*http.Request) string
}

// requestURL is the default endpointURL: where the request was sent.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}).String()
}

func (h *soapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wsdl := wantsWSDL(r.URL.RawQuery)
	switch {
	case wsdl && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		doc := WSDL(h.endpointURL(r))
		hd := w.Header()
		hd.Set("Content-Type", "text/xml; charset=utf-8")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Length", strconv.Itoa(len(doc)))
		w.WriteHeader(http.StatusOK)
		w.Write(doc)
	case wsdl:
		w.Header().Set("Allow", "GET, HEAD")
		writePlain(w, http.StatusMethodNotAllowed, "the WSDL is served to GET and HEAD")
	case r.Method == http.MethodPost:
		h.serveSOAP(w, r)
	default:
		// The endpoint itself only takes POST; its ?wsdl twin is a
		// different resource (the query is part of the URI).
		w.Header().Set("Allow", "POST")
		writePlain(w, http.StatusMethodNotAllowed, "SOAP requests are POSTed; GET ?wsdl returns the service description")
	}
}

// wantsWSDL reports whether the query has a parameter named wsdl, in any
// case, as SOAP stacks differ in how they spell it.
func wantsWSDL(rawQuery string) bool {
	for part := range strings.SplitSeq(rawQuery, "&") {
		name, _, _ := strings.Cut(part, "=")
		if strings.EqualFold(name, "wsdl") {
			return true
		}
	}
	return false
}

func (h *soapHandler) serveSOAP(w http.ResponseWriter, r *http.Request) {
	// A wrong media type or an oversized body is refused at the HTTP level:
	// the client may not even speak SOAP, so a Fault would not help it.
	if err := checkMediaType(r.Header.Get("Content-Type"), "text/xml"); err != nil {
		writePlain(w, http.StatusUnsupportedMediaType, err.Error()+" (SOAP 1.1)")
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			writePlain(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		writePlain(w, http.StatusBadRequest, err.Error())
		return
	}
	resp, fault := h.call(r, body)
	if fault != nil {
		writeEnvelope(w, http.StatusInternalServerError, fault.marshal())
		return
	}
	writeEnvelope(w, http.StatusOK, resp)
}

// call parses and runs one SOAP request, returning the marshalled content
// of the response Body or a fault.
func (h *soapHandler) call(r *http.Request, body []byte) ([]byte, *soapFault) {
	// encoding/xml expands no DTD, but a document that brings one is
	// refused before any parsing: no legitimate SOAP 1.1 message has one
	// (SOAP 1.1 section 3), so it can only be a probe (XXE, entity
	// expansion) and deserves a clear answer, not a parser's accident.
	if containsFold(body, []byte("<!DOCTYPE")) {
		return nil, clientFault("a SOAP message must not contain a document type declaration")
	}
	op, fields, fault := parseEnvelope(body)
	if fault != nil {
		return nil, fault
	}
	if fault := checkSOAPAction(r.Header.Values("SOAPAction"), op); fault != nil {
		return nil, fault
	}
	return op.run(h.store, fields)
}

// checkSOAPAction cross-checks the SOAPAction header with the operation
// chosen by the Body. A missing or empty ("") header is accepted, as WS-I
// BP allows a client to leave the intent to the Body.
func checkSOAPAction(values []string, op *operation) *soapFault {
	if len(values) > 1 {
		return clientFault("more than one SOAPAction header")
	}
	if len(values) == 0 {
		return nil
	}
	v := strings.TrimSpace(values[0])
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || v == op.action {
		return nil
	}
	return clientFault(fmt.Sprintf("SOAPAction %s does not match the operation %s in the Body (want %s)",
		strconv.Quote(v), op.name, strconv.Quote(op.action)))
}

// An operation is one of the service's operations and the child elements
// its request element may have, in schema order.
type operation struct {
	name   string
	action string
	fields []string
	run    func(s *Store, fields map[string]string) ([]byte, *soapFault)
}

var operations = map[string]*operation{
	"GetProduct": {
		name:   "GetProduct",
		action: SOAPActionGetProduct,
		fields: []string{"id"},
		run:    getProduct,
	},
	"CreateProduct": {
		name:   "CreateProduct",
		action: SOAPActionCreateProduct,
		fields: []string{"name", "price", "currency"},
		run:    createProduct,
	},
	"GetProductCost": {
		name:   "GetProductCost",
		action: SOAPActionGetProductCost,
		fields: []string{"id"},
		run:    getProductCost,
	},
}

// CostRatio is the demo's purchase cost of a product as a share of its
// price: the confidential figure GetProductCost answers.
const CostRatio = 0.62

func getProductCost(s *Store, fields map[string]string) ([]byte, *soapFault) {
	id, ok := fields["id"]
	if !ok {
		return nil, clientFault("GetProductCost: id is required")
	}
	p, err := s.Get(id)
	if err != nil {
		f := clientFault("product not found")
		f.detail = &productFault{Code: ProductFaultNotFound}
		return nil, f
	}
	cost := math.Round(p.Price*CostRatio*100) / 100
	return marshalResponse(getProductCostResponse{ID: p.ID, Cost: strconv.FormatFloat(cost, 'f', -1, 64), Currency: p.Currency})
}

func getProduct(s *Store, fields map[string]string) ([]byte, *soapFault) {
	id, ok := fields["id"]
	if !ok {
		return nil, clientFault("GetProduct: id is required")
	}
	p, err := s.Get(id)
	if err != nil {
		f := clientFault("product not found")
		f.detail = &productFault{Code: ProductFaultNotFound}
		return nil, f
	}
	return marshalResponse(getProductResponse{Product: toXML(p)})
}

func createProduct(s *Store, fields map[string]string) ([]byte, *soapFault) {
	p, err := createFromFields(s, fields)
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		f := clientFault("invalid product: " + verr.Field + " " + verr.Reason)
		f.detail = &productFault{Code: ProductFaultInvalid, Field: verr.Field}
		return nil, f
	case errors.Is(err, ErrStoreFull):
		f := &soapFault{code: FaultServer, str: fmt.Sprintf("product store is full (at most %d products)", s.Max())}
		f.detail = &productFault{Code: ProductFaultStoreFull}
		return nil, f
	case err != nil:
		return nil, &soapFault{code: FaultServer, str: "could not store the product"}
	}
	return marshalResponse(createProductResponse{Product: toXML(p)})
}

// createFromFields checks the fields that only exist in the XML form (a
// missing or unparsable price, an empty currency element), in schema order
// with the Store's own checks, and creates the product.
func createFromFields(s *Store, fields map[string]string) (Product, error) {
	if err := validateName(fields["name"]); err != nil {
		return Product{}, err
	}
	priceText, ok := fields["price"]
	if !ok {
		return Product{}, &ValidationError{Field: "price", Reason: "is required"}
	}
	price, err := parseDecimal(priceText)
	if err != nil {
		return Product{}, &ValidationError{Field: "price", Reason: "must be an xs:decimal number"}
	}
	if c, ok := fields["currency"]; ok && c == "" {
		// The element is optional, but when present it must match the
		// schema's [A-Z]{3}; only its absence means the default.
		return Product{}, validateCurrency(c)
	}
	return s.Create(NewProduct{Name: fields["name"], Price: price, Currency: fields["currency"]})
}

// parseDecimal parses an xs:decimal lexical form (optional sign, digits
// with an optional fraction, no exponent), after the white space collapse
// that xs:decimal applies. strconv.ParseFloat alone would also take "NaN",
// "Inf", exponents and hex floats, which the schema does not allow.
func parseDecimal(s string) (float64, error) {
	s = strings.Trim(s, " \t\r\n")
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || digits == "" || digits == "." {
		return 0, errors.New("not a decimal")
	}
	intPart, frac, _ := strings.Cut(digits, ".")
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, errors.New("not a decimal")
			}
		}
	}
	return strconv.ParseFloat(s, 64)
}

// productXML is a Product as the schema's tns:Product. The elements are
// unprefixed and carry no xmlns of their own, so they inherit the default
// namespace that the enclosing response element declares: they are
// qualified, as elementFormDefault="qualified" requires.
type productXML struct {
	ID       string `xml:"id"`
	Name     string `xml:"name"`
	Price    string `xml:"price"`
	Currency string `xml:"currency"`
}

func toXML(p Product) productXML {
	return productXML{
		ID:       p.ID,
		Name:     p.Name,
		Price:    strconv.FormatFloat(p.Price, 'f', -1, 64), // xs:decimal: no exponent
		Currency: p.Currency,
	}
}

type getProductResponse struct {
	XMLName xml.Name   `xml:"urn:gatehouse:demo:products GetProductResponse"`
	Product productXML `xml:"product"`
}

type getProductCostResponse struct {
	XMLName  xml.Name `xml:"urn:gatehouse:demo:products GetProductCostResponse"`
	ID       string   `xml:"id"`
	Cost     string   `xml:"cost"`
	Currency string   `xml:"currency"`
}

type createProductResponse struct {
	XMLName xml.Name   `xml:"urn:gatehouse:demo:products CreateProductResponse"`
	Product productXML `xml:"product"`
}

func marshalResponse(v any) ([]byte, *soapFault) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, &soapFault{code: FaultServer, str: "could not encode the response"}
	}
	return b, nil
}

// A soapFault is a SOAP 1.1 Fault about to be sent.
type soapFault struct {
	code   string // a Fault* constant
	str    string // faultstring, for people
	detail *productFault
}

// productFault is the {Namespace}ProductFault detail entry.
type productFault struct {
	XMLName xml.Name `xml:"urn:gatehouse:demo:products ProductFault"`
	Code    string   `xml:"code"`
	Field   string   `xml:"field,omitempty"`
}

func clientFault(s string) *soapFault {
	return &soapFault{code: FaultClient, str: s}
}

// marshal writes the Fault element. Its children faultcode, faultstring
// and detail are unqualified (WS-I BP R1001); the envelope declares no
// default namespace, so unprefixed means no namespace here.
func (f *soapFault) marshal() []byte {
	var b bytes.Buffer
	b.WriteString("<soap:Fault><faultcode>")
	b.WriteString(f.code)
	b.WriteString("</faultcode><faultstring>")
	xml.EscapeText(&b, []byte(f.str))
	b.WriteString("</faultstring>")
	if f.detail != nil {
		d, err := xml.Marshal(f.detail)
		if err == nil {
			b.WriteString("<detail>")
			b.Write(d)
			b.WriteString("</detail>")
		}
	}
	b.WriteString("</soap:Fault>")
	return b.Bytes()
}

const (
	envelopeHead = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<soap:Envelope xmlns:soap="` + EnvelopeNamespace + `"><soap:Body>`
	envelopeTail = "</soap:Body></soap:Envelope>\n"
)

func writeEnvelope(w http.ResponseWriter, status int, content []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "text/xml; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(envelopeHead)+len(content)+len(envelopeTail)))
	w.WriteHeader(status)
	io.WriteString(w, envelopeHead)
	w.Write(content)
	io.WriteString(w, envelopeTail)
}

func writePlain(w http.ResponseWriter, status int, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// containsFold reports whether sub (ASCII) is within b, ignoring ASCII case.
func containsFold(b, sub []byte) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
