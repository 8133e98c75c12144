package sts

import "strings"

// wsdlDoc is the STS's WSDL 1.1: the WS-Trust 1.3 operations on SOAP 1.1
// and 1.2 bindings, with the WS-SecurityPolicy 1.2 the endpoint enforces
// (a UsernameToken or an X.509 signature in the Security header, a
// Timestamp, WS-Trust 1.3). The soap:address is relative: clients resolve
// it against the URL they fetched the WSDL from.
const wsdlDoc = `<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="SecurityTokenService"
    targetNamespace="http://docs.oasis-open.org/ws-sx/ws-trust/200512/"
    xmlns:tns="http://docs.oasis-open.org/ws-sx/ws-trust/200512/"
    xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:wsp="http://www.w3.org/ns/ws-policy"
    xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
    xmlns:wsam="http://www.w3.org/2007/05/addressing/metadata"
    xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <wsp:Policy wsu:Id="STSPolicy">
    <wsp:ExactlyOne>
      <wsp:All>
        <sp:SignedSupportingTokens>
          <wsp:Policy><sp:UsernameToken sp:IncludeToken="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702/IncludeToken/AlwaysToRecipient"><wsp:Policy><sp:WssUsernameToken10/></wsp:Policy></sp:UsernameToken></wsp:Policy>
        </sp:SignedSupportingTokens>
        <sp:Layout><wsp:Policy><sp:Lax/></wsp:Policy></sp:Layout>
        <sp:IncludeTimestamp/>
        <sp:Trust13><wsp:Policy><sp:RequireClientEntropy wsp:Optional="true"/><sp:RequireServerEntropy wsp:Optional="true"/></wsp:Policy></sp:Trust13>
      </wsp:All>
      <wsp:All>
        <sp:AsymmetricBinding>
          <wsp:Policy>
            <sp:InitiatorToken><wsp:Policy><sp:X509Token sp:IncludeToken="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702/IncludeToken/AlwaysToRecipient"><wsp:Policy><sp:WssX509V3Token10/></wsp:Policy></sp:X509Token></wsp:Policy></sp:InitiatorToken>
            <sp:AlgorithmSuite><wsp:Policy><sp:Basic256Sha256/></wsp:Policy></sp:AlgorithmSuite>
            <sp:Layout><wsp:Policy><sp:Lax/></wsp:Policy></sp:Layout>
            <sp:IncludeTimestamp/>
            <sp:OnlySignEntireHeadersAndBody/>
          </wsp:Policy>
        </sp:AsymmetricBinding>
        <sp:SignedParts><sp:Body/></sp:SignedParts>
        <sp:Trust13><wsp:Policy/></sp:Trust13>
      </wsp:All>
    </wsp:ExactlyOne>
  </wsp:Policy>
  <wsdl:types>
    <xs:schema targetNamespace="http://docs.oasis-open.org/ws-sx/ws-trust/200512" elementFormDefault="qualified">
      <xs:element name="RequestSecurityToken"><xs:complexType><xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xs:sequence><xs:attribute name="Context" type="xs:anyURI" use="optional"/><xs:anyAttribute namespace="##other" processContents="lax"/></xs:complexType></xs:element>
      <xs:element name="RequestSecurityTokenResponse"><xs:complexType><xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xs:sequence><xs:attribute name="Context" type="xs:anyURI" use="optional"/><xs:anyAttribute namespace="##other" processContents="lax"/></xs:complexType></xs:element>
      <xs:element name="RequestSecurityTokenResponseCollection"><xs:complexType><xs:sequence><xs:element ref="wst:RequestSecurityTokenResponse" minOccurs="1" maxOccurs="unbounded"/></xs:sequence><xs:anyAttribute namespace="##other" processContents="lax"/></xs:complexType></xs:element>
    </xs:schema>
  </wsdl:types>
  <wsdl:message name="RequestSecurityTokenMsg"><wsdl:part name="request" element="wst:RequestSecurityToken"/></wsdl:message>
  <wsdl:message name="RequestSecurityTokenResponseMsg"><wsdl:part name="response" element="wst:RequestSecurityTokenResponse"/></wsdl:message>
  <wsdl:message name="RequestSecurityTokenResponseCollectionMsg"><wsdl:part name="responseCollection" element="wst:RequestSecurityTokenResponseCollection"/></wsdl:message>
  <wsdl:portType name="STS">
    <wsdl:operation name="Issue">
      <wsdl:input wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue" message="tns:RequestSecurityTokenMsg"/>
      <wsdl:output wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal" message="tns:RequestSecurityTokenResponseCollectionMsg"/>
    </wsdl:operation>
    <wsdl:operation name="Validate">
      <wsdl:input wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Validate" message="tns:RequestSecurityTokenMsg"/>
      <wsdl:output wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/ValidateFinal" message="tns:RequestSecurityTokenResponseMsg"/>
    </wsdl:operation>
    <wsdl:operation name="Renew">
      <wsdl:input wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Renew" message="tns:RequestSecurityTokenMsg"/>
      <wsdl:output wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/RenewFinal" message="tns:RequestSecurityTokenResponseMsg"/>
    </wsdl:operation>
    <wsdl:operation name="Cancel">
      <wsdl:input wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Cancel" message="tns:RequestSecurityTokenMsg"/>
      <wsdl:output wsam:Action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/CancelFinal" message="tns:RequestSecurityTokenResponseMsg"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="STS_Soap11" type="tns:STS">
    <wsp:PolicyReference URI="#STSPolicy"/>
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Issue"><soap:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>
    <wsdl:operation name="Validate"><soap:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Validate"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>
    <wsdl:operation name="Renew"><soap:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Renew"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>
    <wsdl:operation name="Cancel"><soap:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Cancel"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>
  </wsdl:binding>
  <wsdl:binding name="STS_Soap12" type="tns:STS">
    <wsp:PolicyReference URI="#STSPolicy"/>
    <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Issue"><soap12:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"/><wsdl:input><soap12:body use="literal"/></wsdl:input><wsdl:output><soap12:body use="literal"/></wsdl:output></wsdl:operation>
    <wsdl:operation name="Validate"><soap12:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Validate"/><wsdl:input><soap12:body use="literal"/></wsdl:input><wsdl:output><soap12:body use="literal"/></wsdl:output></wsdl:operation>
    <wsdl:operation name="Renew"><soap12:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Renew"/><wsdl:input><soap12:body use="literal"/></wsdl:input><wsdl:output><soap12:body use="literal"/></wsdl:output></wsdl:operation>
    <wsdl:operation name="Cancel"><soap12:operation soapAction="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Cancel"/><wsdl:input><soap12:body use="literal"/></wsdl:input><wsdl:output><soap12:body use="literal"/></wsdl:output></wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="SecurityTokenService">
    <wsdl:port name="STS_Soap11" binding="tns:STS_Soap11"><soap:address location="PATH"/></wsdl:port>
    <wsdl:port name="STS_Soap12" binding="tns:STS_Soap12"><soap12:address location="PATH"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
`

func wsdl(path string) []byte {
	return []byte(strings.ReplaceAll(wsdlDoc, `location="PATH"`, `location="`+path+`"`))
}
