package soap

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/demo"
)

func TestParseWSDLDemo(t *testing.T) {
	ops, err := ParseWSDL(demo.WSDL("http://127.0.0.1:8080/soap/products"))
	if err != nil {
		t.Fatal(err)
	}
	want := []WSDLOperation{
		{Name: "GetProduct", Element: xml.Name{Space: demo.Namespace, Local: "GetProduct"}, Version: V11, Action: demo.SOAPActionGetProduct},
		{Name: "CreateProduct", Element: xml.Name{Space: demo.Namespace, Local: "CreateProduct"}, Version: V11, Action: demo.SOAPActionCreateProduct},
		{Name: "GetProductCost", Element: xml.Name{Space: demo.Namespace, Local: "GetProductCost"}, Version: V11, Action: demo.SOAPActionGetProductCost},
	}
	if len(ops) != len(want) {
		t.Fatalf("got %d operations %+v, want %d", len(ops), ops, len(want))
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("operation %d: got %+v, want %+v", i, ops[i], want[i])
		}
	}
}

// wsdl12 is a description with a SOAP 1.2 document binding whose message
// part is in another namespace, an rpc-style SOAP 1.1 binding and an HTTP
// binding that is not SOAP.
const wsdl12 = `<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" targetNamespace="urn:svc"
    xmlns:tns="urn:svc" xmlns:m="urn:messages"
    xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:http="http://schemas.xmlsoap.org/wsdl/http/">
  <message name="In"><part name="parameters" element="m:Order"/></message>
  <message name="RpcIn"><part name="a" type="xs:string"/><part name="b" type="xs:string"/></message>
  <portType name="PT">
    <operation name="Place"><input message="tns:In"/></operation>
    <operation name="Add"><input message="tns:RpcIn"/></operation>
  </portType>
  <binding name="B12" type="tns:PT">
    <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Place"><soap12:operation soapAction="urn:svc:Place"/><input><soap12:body use="literal"/></input></operation>
  </binding>
  <binding name="Rpc" type="tns:PT">
    <soap:binding style="rpc" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Add"><soap:operation soapAction=""/><input><soap:body use="literal" namespace="urn:rpc"/></input></operation>
  </binding>
  <binding name="H" type="tns:PT"><http:binding verb="POST"/></binding>
</definitions>`

func TestParseWSDL(t *testing.T) {
	ops, err := ParseWSDL([]byte(wsdl12))
	if err != nil {
		t.Fatal(err)
	}
	want := []WSDLOperation{
		{Name: "Place", Element: xml.Name{Space: "urn:messages", Local: "Order"}, Version: V12, Action: "urn:svc:Place"},
		{Name: "Add", Element: xml.Name{Space: "urn:rpc", Local: "Add"}, Version: V11, Action: ""},
	}
	if len(ops) != len(want) {
		t.Fatalf("got %+v, want %+v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("operation %d: got %+v, want %+v", i, ops[i], want[i])
		}
	}
}

func TestParseWSDLErrors(t *testing.T) {
	tests := []struct{ name, doc, msg string }{
		{"not xml", "nope", "xmlscan:"},
		{"dtd", `<!DOCTYPE definitions><definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>`, "markup declaration"},
		{"not wsdl", `<definitions/>`, "not a WSDL 1.1"},
		{"import", strings.Replace(wsdl12, `<message name="In">`, `<import namespace="urn:x" location="x.wsdl"/><message name="In">`, 1), "wsdl:import"},
		{"no soap binding", `<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>`, "no SOAP 1.1 or 1.2 binding"},
		{"missing port type", strings.Replace(wsdl12, `type="tns:PT">
    <soap12`, `type="tns:Nope">
    <soap12`, 1), `portType "Nope" not found`},
		{"undeclared prefix in value", strings.Replace(wsdl12, `element="m:Order"`, `element="q:Order"`, 1), "prefix q is not declared"},
		{"document with type part", strings.Replace(wsdl12, `element="m:Order"`, `type="m:Order"`, 1), "names a type"},
		{"document with two parts", strings.Replace(wsdl12, `style="rpc"`, `style="document"`, 1), "needs exactly one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWSDL([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "soap: wsdl: ") {
				t.Errorf("got %v, want an error containing %q", err, tt.msg)
			}
		})
	}
}
