"""Encrypts (and signs) WS-Security messages with python3-xmlsec.

Usage: encpeer.py SPEC.json. SPEC holds "messages" ({name: SOAP message}
made by the Go test), "cert" (the gateway's encryption certificate, PEM
file), "stranger" (another certificate), "key"/"signcert" (the signer's
key and certificate, PEM files). Prints a JSON object {case: message}.
"""
import base64
import json
import sys

import xmlsec
from lxml import etree

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XENC = "http://www.w3.org/2001/04/xmlenc#"
DS = "http://www.w3.org/2000/09/xmldsig#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

spec = json.load(open(sys.argv[1]))


def local(root, name):
    return root.xpath("//*[local-name()=$n]", n=name)[0]


def encrypt(root, name, cert, method=xmlsec.constants.TransformAes256Gcm, bits=256, transport=xmlsec.constants.TransformRsaOaep):
    node = local(root, name)
    content = name == "Body"
    typ = xmlsec.constants.TypeEncContent if content else xmlsec.constants.TypeEncElement
    ed_id = "ED-" + name
    ed = xmlsec.template.encrypted_data_create(root, method, type=typ, ns="xenc", id=ed_id)
    xmlsec.template.encrypted_data_ensure_cipher_value(ed)
    ki = xmlsec.template.encrypted_data_ensure_key_info(ed, ns="ds")
    ek = xmlsec.template.add_encrypted_key(ki, transport)
    xmlsec.template.encrypted_data_ensure_cipher_value(ek)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(cert, xmlsec.constants.KeyDataFormatCertPem, None))
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(xmlsec.constants.KeyDataAes, bits, xmlsec.constants.KeyDataTypeSession)
    ctx.encrypt_xml(ed, node)
    # WSS 1.1 section 9: a ReferenceList first in the Security header.
    sec = local(root, "Security")
    rl = etree.Element("{%s}ReferenceList" % XENC, nsmap={"xenc": XENC})
    etree.SubElement(rl, "{%s}DataReference" % XENC, URI="#" + ed_id)
    sec.insert(0, rl)


def sign(root, first):
    sec = local(root, "Security")
    der = open(spec["signcert"], "rb").read()
    pem = der.decode().split("-----")[2].strip().replace("\n", "")
    bst = etree.Element("{%s}BinarySecurityToken" % WSSE, EncodingType=B64, ValueType=X509V3)
    bst.set("{%s}Id" % WSU, "X509-1")
    bst.text = pem
    sig = xmlsec.template.create(root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds")
    ctx = xmlsec.SignatureContext()
    for name, id_ in (("Timestamp", "TS-1"), ("Body", "Body-1")):
        ref = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="#" + id_)
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
        ctx.register_id(local(root, name), "Id", WSU)
    ki = xmlsec.template.ensure_key_info(sig)
    str_ = etree.SubElement(ki, "{%s}SecurityTokenReference" % WSSE)
    etree.SubElement(str_, "{%s}Reference" % WSSE, URI="#X509-1", ValueType=X509V3)
    if first:
        sec.insert(0, sig)
        sec.insert(0, bst)
    else:
        sec.append(bst)
        sec.append(sig)
    ctx.key = xmlsec.Key.from_file(spec["key"], xmlsec.constants.KeyDataFormatPem)
    ctx.sign(sig)


out = {}
cert, stranger = spec["cert"], spec["stranger"]
for name, msg in spec["messages"].items():
    def fresh():
        return etree.fromstring(msg.encode())

    def put(case, root):
        out[name + " " + case] = etree.tostring(root).decode()

    r = fresh(); encrypt(r, "Body", cert); put("body", r)
    r = fresh(); encrypt(r, "Body", cert, xmlsec.constants.TransformAes128Gcm, 128, xmlsec.constants.TransformRsaOaep); put("body-gcm128", r)
    r = fresh(); encrypt(r, "UsernameToken", cert); encrypt(r, "Body", cert); put("username-token", r)
    r = fresh(); sign(r, False); encrypt(r, "Body", cert); put("signed-then-encrypted", r)
    r = fresh(); encrypt(r, "Body", cert); sign(r, True); put("encrypted-then-signed", r)
    # Refused.
    r = fresh(); encrypt(r, "Body", cert)
    cv = r.xpath("//*[local-name()='Body']/*[local-name()='EncryptedData']/*[local-name()='CipherData']/*[local-name()='CipherValue']")[0]
    v = bytearray(base64.b64decode(cv.text)); v[20] ^= 1; cv.text = base64.b64encode(bytes(v)).decode()
    put("tampered", r)
    r = fresh(); encrypt(r, "Body", stranger); put("wrong-key", r)
    r = fresh(); encrypt(r, "Body", cert, transport=xmlsec.constants.TransformRsaPkcs1); put("rsa15", r)
    r = fresh(); encrypt(r, "Body", cert, xmlsec.constants.TransformAes256Cbc); put("unsigned-cbc", r)

json.dump(out, sys.stdout)
