"""Python peers of the wssecurity policy, run by pypeers_test.go with
Debian's python3-zeep and python3-xmlsec (libxml2 + xmlsec1).

Reads a JSON spec (argv[1]) and prints one JSON object:
  versions: the zeep and xmlsec versions used;
  calls:    zeep calls of GetProduct (at spec["endpoint"] when given)
            with its default UsernameToken (PasswordText), with
            PasswordDigest, with PasswordDigest and a Timestamp, and
            signed (RSA-SHA256) with zeep's Signature (issuer and serial)
            and BinarySignature (a BinarySecurityToken); each
            {case, ok, fault, sent: the envelope zeep sent};
  xmlsec:   a message built from a text template whose attribute values
            hold literal tabs and line breaks, signed with python3-xmlsec
            (which reads them normalized, as XML 1.0 3.3.3 says), the
            Signature spliced into the template's own bytes, and verified
            again by python3-xmlsec before it is printed;
  xmlsec_verified: that verification's result.
"""
import base64
import datetime
import json
import sys

import requests
import xmlsec
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport
from zeep.wsse import utils
from zeep.wsse.signature import BinarySignature, Signature
from zeep.wsse.username import UsernameToken

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"


def zeep_call(spec, case, wsse):
    session = requests.Session()
    session.headers["X-Case"] = case
    history = HistoryPlugin()
    client = zeep.Client(spec["wsdl"], wsse=wsse, transport=Transport(session=session), plugins=[history])
    if spec.get("endpoint"):
        # Call where the test says (the gateway), whatever the WSDL's
        # soap:address names.
        client.service._binding_options["address"] = spec["endpoint"]
    result = {"case": case, "ok": True, "fault": None, "sent": None}
    try:
        client.service.GetProduct(id="p-1001")
    except Exception as e:  # a Fault or a transport error: report it
        result["ok"], result["fault"] = False, repr(e)
    if history.last_sent:
        result["sent"] = etree.tostring(history.last_sent["envelope"]).decode()
    return result


def zeep_timestamp():
    # As zeep's documentation builds a Timestamp for UsernameToken.
    now = datetime.datetime.utcnow()
    return utils.WSU.Timestamp(
        utils.WSU.Created(utils.get_timestamp(now)),
        utils.WSU.Expires(utils.get_timestamp(now + datetime.timedelta(minutes=5))),
    )


class RequestOnly:
    """Adds the Timestamp zeep's signatures sign when present, and does
    not verify responses (the demo service does not sign them)."""

    def apply(self, envelope, headers):
        utils.get_security_header(envelope).append(zeep_timestamp())
        return super().apply(envelope, headers)

    def verify(self, envelope):
        return envelope


class RequestSignature(RequestOnly, Signature):
    pass


class RequestBinarySignature(RequestOnly, BinarySignature):
    pass


def zeep_signatures(spec):
    opts = dict(signature_method=xmlsec.Transform.RSA_SHA256, digest_method=xmlsec.Transform.SHA256)
    return [
        # X509Data with an (empty) X509IssuerSerial and the
        # X509Certificate in the SecurityTokenReference.
        zeep_call(spec, "zeep-signature", RequestSignature(spec["keyFile"], spec["certFile"], **opts)),
        # A BinarySecurityToken referenced by URI.
        zeep_call(spec, "zeep-binary-signature", RequestBinarySignature(spec["keyFile"], spec["certFile"], **opts)),
    ]


def xmlsec_message(spec):
    with open(spec["certFile"], "rb") as f:
        pem = f.read().decode()
    cert_b64 = "".join(l for l in pem.splitlines() if "-----" not in l)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    created = now.isoformat()  # "+00:00", as Python writes UTC
    expires = (now + datetime.timedelta(minutes=5)).isoformat()
    # Literal tab, LF, CR LF in attribute values; a character reference
    # (&#9;) that must stay a tab.
    template = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:prod="urn:gatehouse:demo:products">'
        "<soapenv:Header>"
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" soapenv:mustUnderstand="1">'
        f'<wsse:BinarySecurityToken EncodingType="{B64}" ValueType="{X509V3}" wsu:Id="X509-1">{cert_b64}</wsse:BinarySecurityToken>'
        f'<wsu:Timestamp wsu:Id="TS-1" note="a\tb"><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>'
        "</wsse:Security>"
        "</soapenv:Header>"
        f'<soapenv:Body xmlns:wsu="{WSU}" wsu:Id="Body-1"><prod:GetProduct note="tab\there&#9;ref\nline\r\nend  two"><prod:id kind=\'x\ty\'>p-1001</prod:id></prod:GetProduct></soapenv:Body>'
        "</soapenv:Envelope>"
    )
    doc = etree.fromstring(template.encode())
    sec = doc.find(f".//{{{WSSE}}}Security")
    ts = doc.find(f".//{{{WSU}}}Timestamp")
    body = doc.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    sig = xmlsec.template.create(doc, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256, ns="ds")
    sec.append(sig)
    for uri in ("#TS-1", "#Body-1"):
        ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256, uri=uri)
        xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    ki = xmlsec.template.ensure_key_info(sig)
    str_ = etree.SubElement(ki, f"{{{WSSE}}}SecurityTokenReference")
    etree.SubElement(str_, f"{{{WSSE}}}Reference", URI="#X509-1", ValueType=X509V3)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(spec["keyFile"], xmlsec.KeyFormat.PEM)
    ctx.register_id(ts, "Id", WSU)
    ctx.register_id(body, "Id", WSU)
    ctx.sign(sig)
    sig_text = etree.tostring(sig).decode()
    # The template's own bytes, literal white space and all, with the
    # Signature added at the end of the Security header.
    msg = template.replace("</wsse:Security>", sig_text + "</wsse:Security>", 1)

    # python3-xmlsec (libxml2) verifies the message as sent.
    vdoc = etree.fromstring(msg.encode())
    vctx = xmlsec.SignatureContext()
    vctx.key = xmlsec.Key.from_file(spec["certFile"], xmlsec.KeyFormat.CERT_PEM)
    vctx.register_id(vdoc.find(f".//{{{WSU}}}Timestamp"), "Id", WSU)
    vctx.register_id(vdoc.find("{http://schemas.xmlsoap.org/soap/envelope/}Body"), "Id", WSU)
    verified = True
    try:
        vctx.verify(vdoc.find(".//{http://www.w3.org/2000/09/xmldsig#}Signature"))
    except xmlsec.Error:
        verified = False
    return msg, verified


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    calls = [
        zeep_call(spec, "zeep-text", UsernameToken(spec["user"], spec["password"])),
        zeep_call(spec, "zeep-digest", UsernameToken(spec["user"], spec["password"], use_digest=True)),
        zeep_call(spec, "zeep-digest-timestamp", UsernameToken(spec["user"], spec["password"], use_digest=True, timestamp_token=zeep_timestamp())),
    ] + zeep_signatures(spec)
    msg, verified = xmlsec_message(spec)
    out = {
        "versions": {"zeep": zeep.__version__, "xmlsec": xmlsec.__version__},
        "calls": calls,
        "xmlsec": msg,
        "xmlsec_verified": verified,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
