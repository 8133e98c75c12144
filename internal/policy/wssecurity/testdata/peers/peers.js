// Independent WS-Security peers for the wssecurity policy's tests.
//
// node peers.js SPEC.json reads a spec written by the Go test:
//   {"wsdl": URL, "user": ..., "password": ..., "keyFile": ..., "certFile": ...}
// and then
//   1. calls GetProduct through node-soap four times, each with another
//      security: WSSecurity PasswordText, WSSecurity PasswordDigest,
//      WSSecurityCert without idMode (bare Id) and WSSecurityCert with
//      idMode 'wssecurity' (wsu:Id). Each request carries an X-Case header
//      naming it, so that the Go server can keep what node-soap sent;
//   2. signs a SOAP 1.1 message with xml-crypto's SignedXml directly, the
//      way a hand-rolled client would: Body and Timestamp, RSA-SHA256,
//      exclusive c14n, a BinarySecurityToken referenced from KeyInfo.
// It prints one JSON object: {"versions", "calls": [{case, ok, fault}],
// "xmlCrypto": signed message}.
'use strict';

const fs = require('fs');
const soap = require('soap');
const { SignedXml } = require('xml-crypto');

const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const X509V3 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3';
const B64 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

async function call(spec, name, security) {
  const client = await soap.createClientAsync(spec.wsdl);
  client.setSecurity(security);
  client.addHttpHeader('X-Case', name);
  try {
    await client.GetProductAsync({ id: 'p-1001' });
    return { case: name, ok: true };
  } catch (err) {
    if (err && err.root && err.root.Envelope) {
      return { case: name, ok: false, fault: err.root.Envelope.Body.Fault };
    }
    throw err;
  }
}

function xmlCryptoMessage(spec) {
  const key = fs.readFileSync(spec.keyFile);
  const certB64 = fs.readFileSync(spec.certFile, 'utf8')
    .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
    .replace(/\s+/g, '');
  const now = new Date();
  const created = now.toISOString();
  const expires = new Date(now.getTime() + 5 * 60 * 1000).toISOString();
  const xml =
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:prod="urn:gatehouse:demo:products">' +
    '<soapenv:Header>' +
    `<wsse:Security xmlns:wsse="${WSSE}" xmlns:wsu="${WSU}" soapenv:mustUnderstand="1">` +
    `<wsse:BinarySecurityToken EncodingType="${B64}" ValueType="${X509V3}" wsu:Id="X509-1">${certB64}</wsse:BinarySecurityToken>` +
    `<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>${created}</wsu:Created><wsu:Expires>${expires}</wsu:Expires></wsu:Timestamp>` +
    '</wsse:Security>' +
    '</soapenv:Header>' +
    `<soapenv:Body xmlns:wsu="${WSU}" wsu:Id="Body-1"><prod:GetProductRequest><prod:id>p-1001</prod:id></prod:GetProductRequest></soapenv:Body>` +
    '</soapenv:Envelope>';
  const sig = new SignedXml({
    privateKey: key,
    idMode: 'wssecurity',
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  for (const local of ['Timestamp', 'Body']) {
    sig.addReference({
      xpath: `//*[local-name(.)='${local}']`,
      transforms: ['http://www.w3.org/2001/10/xml-exc-c14n#'],
      digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    });
  }
  sig.getKeyInfoContent = () =>
    `<wsse:SecurityTokenReference><wsse:Reference URI="#X509-1" ValueType="${X509V3}"/></wsse:SecurityTokenReference>`;
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: "//*[local-name(.)='Security']", action: 'append' },
    existingPrefixes: { wsse: WSSE, wsu: WSU },
  });
  return sig.getSignedXml();
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const key = fs.readFileSync(spec.keyFile);
  const cert = fs.readFileSync(spec.certFile);
  const out = {
    versions: {
      soap: require('soap/package.json').version,
      xmlCrypto: require('xml-crypto/package.json').version,
    },
    calls: [],
  };
  out.calls.push(await call(spec, 'text', new soap.WSSecurity(spec.user, spec.password, { passwordType: 'PasswordText', mustUnderstand: true })));
  out.calls.push(await call(spec, 'digest', new soap.WSSecurity(spec.user, spec.password, { passwordType: 'PasswordDigest' })));
  out.calls.push(await call(spec, 'cert', new soap.WSSecurityCert(key, cert, '')));
  out.calls.push(await call(spec, 'cert-wsu', new soap.WSSecurityCert(key, cert, '', { signerOptions: { idMode: 'wssecurity' } })));
  out.xmlCrypto = xmlCryptoMessage(spec);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + '\n');
  process.exit(1);
});
