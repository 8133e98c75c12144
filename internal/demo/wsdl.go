package demo

import (
	"bytes"
	"encoding/xml"
	"strings"
)

// wsdlLocationMark stands where the service's soap:address goes; the WSDL
// is split there once so that serving it costs one escape and three
// writes.
const wsdlLocationMark = "{{LOCATION}}"

// wsdlTemplate is the ProductService description: WSDL 1.1, SOAP 1.1 HTTP
// binding, document/literal wrapped, following the WS-I Basic Profile 1.1
// (one part named "parameters" per message, referring to an element; a
// soapAction per operation; faults described by an element and a
// soap:fault). The schema restricts each field as the Store does, so a
// schema-validating gateway and this service agree on what is valid.
const wsdlTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="` + ServiceName + `"
    targetNamespace="` + Namespace + `"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="` + Namespace + `">
  <wsdl:documentation>Gatehouse demo ProductService: reads and creates products of an in-memory catalogue.</wsdl:documentation>
  <wsdl:types>
    <xs:schema targetNamespace="` + Namespace + `" elementFormDefault="qualified">
      <xs:simpleType name="ProductId">
        <xs:restriction base="xs:string">
          <xs:minLength value="1"/>
          <xs:maxLength value="64"/>
        </xs:restriction>
      </xs:simpleType>
      <xs:simpleType name="ProductName">
        <xs:restriction base="xs:string">
          <xs:minLength value="1"/>
          <xs:maxLength value="200"/>
        </xs:restriction>
      </xs:simpleType>
      <xs:simpleType name="Price">
        <xs:restriction base="xs:decimal">
          <xs:minExclusive value="0"/>
          <xs:maxInclusive value="1000000000"/>
        </xs:restriction>
      </xs:simpleType>
      <xs:simpleType name="Currency">
        <xs:restriction base="xs:string">
          <xs:pattern value="[A-Z]{3}"/>
        </xs:restriction>
      </xs:simpleType>
      <xs:complexType name="Product">
        <xs:sequence>
          <xs:element name="id" type="tns:ProductId"/>
          <xs:element name="name" type="tns:ProductName"/>
          <xs:element name="price" type="tns:Price"/>
          <xs:element name="currency" type="tns:Currency"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="GetProduct">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="id" type="tns:ProductId"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="GetProductResponse">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="product" type="tns:Product"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="CreateProduct">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="name" type="tns:ProductName"/>
            <xs:element name="price" type="tns:Price"/>
            <xs:element name="currency" type="tns:Currency" minOccurs="0"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="CreateProductResponse">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="product" type="tns:Product"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="GetProductCost">
        <xs:annotation>
          <xs:documentation>The purchase cost of a product: confidential, so the demo gateway accepts this operation only with an encrypted Body (WS-Security, XML Encryption).</xs:documentation>
        </xs:annotation>
        <xs:complexType>
          <xs:sequence>
            <xs:element name="id" type="tns:ProductId"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="GetProductCostResponse">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="id" type="tns:ProductId"/>
            <xs:element name="cost" type="tns:Price"/>
            <xs:element name="currency" type="tns:Currency"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="ProductFault">
        <xs:annotation>
          <xs:documentation>Detail of a fault about a product: code is not_found, invalid_product or store_full; field names the refused field of an invalid_product.</xs:documentation>
        </xs:annotation>
        <xs:complexType>
          <xs:sequence>
            <xs:element name="code" type="xs:string"/>
            <xs:element name="field" type="xs:string" minOccurs="0"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
    </xs:schema>
  </wsdl:types>
  <wsdl:message name="GetProductRequest">
    <wsdl:part name="parameters" element="tns:GetProduct"/>
  </wsdl:message>
  <wsdl:message name="GetProductResponse">
    <wsdl:part name="parameters" element="tns:GetProductResponse"/>
  </wsdl:message>
  <wsdl:message name="CreateProductRequest">
    <wsdl:part name="parameters" element="tns:CreateProduct"/>
  </wsdl:message>
  <wsdl:message name="CreateProductResponse">
    <wsdl:part name="parameters" element="tns:CreateProductResponse"/>
  </wsdl:message>
  <wsdl:message name="GetProductCostRequest">
    <wsdl:part name="parameters" element="tns:GetProductCost"/>
  </wsdl:message>
  <wsdl:message name="GetProductCostResponse">
    <wsdl:part name="parameters" element="tns:GetProductCostResponse"/>
  </wsdl:message>
  <wsdl:message name="ProductFault">
    <wsdl:part name="fault" element="tns:ProductFault"/>
  </wsdl:message>
  <wsdl:portType name="ProductPortType">
    <wsdl:operation name="GetProduct">
      <wsdl:input message="tns:GetProductRequest"/>
      <wsdl:output message="tns:GetProductResponse"/>
      <wsdl:fault name="ProductFault" message="tns:ProductFault"/>
    </wsdl:operation>
    <wsdl:operation name="CreateProduct">
      <wsdl:input message="tns:CreateProductRequest"/>
      <wsdl:output message="tns:CreateProductResponse"/>
      <wsdl:fault name="ProductFault" message="tns:ProductFault"/>
    </wsdl:operation>
    <wsdl:operation name="GetProductCost">
      <wsdl:input message="tns:GetProductCostRequest"/>
      <wsdl:output message="tns:GetProductCostResponse"/>
      <wsdl:fault name="ProductFault" message="tns:ProductFault"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="ProductBinding" type="tns:ProductPortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="GetProduct">
      <soap:operation soapAction="` + SOAPActionGetProduct + `" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="ProductFault"><soap:fault name="ProductFault" use="literal"/></wsdl:fault>
    </wsdl:operation>
    <wsdl:operation name="CreateProduct">
      <soap:operation soapAction="` + SOAPActionCreateProduct + `" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="ProductFault"><soap:fault name="ProductFault" use="literal"/></wsdl:fault>
    </wsdl:operation>
    <wsdl:operation name="GetProductCost">
      <soap:operation soapAction="` + SOAPActionGetProductCost + `" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="ProductFault"><soap:fault name="ProductFault" use="literal"/></wsdl:fault>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="` + ServiceName + `">
    <wsdl:port name="ProductPort" binding="tns:ProductBinding">
      <soap:address location="` + wsdlLocationMark + `"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
`

var wsdlHead, wsdlTail = func() (string, string) {
	head, tail, ok := strings.Cut(wsdlTemplate, wsdlLocationMark)
	if !ok {
		panic("demo: WSDL template lacks its location mark")
	}
	return head, tail
}()

// WSDL returns the ProductService WSDL 1.1 document with location as the
// soap:address of its one port. location is escaped; it is used as given
// otherwise, so it should be an absolute http or https URL.
func WSDL(location string) []byte {
	var b bytes.Buffer
	b.Grow(len(wsdlHead) + len(location) + len(wsdlTail) + 16)
	b.WriteString(wsdlHead)
	xml.EscapeText(&b, []byte(location)) // escapes quotes too, so safe in an attribute
	b.WriteString(wsdlTail)
	return b.Bytes()
}
