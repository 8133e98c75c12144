// Sends real node-soap requests for the xmlguard tests: SOAP 1.1 calls
// built from the WSDL at the URL given as the only argument, then the same
// call with node-soap's SOAP 1.2 headers and envelope. The Go test
// (TestNodeSOAPRequests) captures what arrives and checks the guard's
// verdict on it. Prints one JSON object on stdout; exits non-zero on an
// unexpected failure.
'use strict';

const soap = require('soap');

async function main() {
  const wsdlURL = process.argv[2];
  if (!wsdlURL) {
    throw new Error('usage: node client.js WSDL_URL');
  }
  const out = { soapVersion: require('soap/package.json').version };

  const c11 = await soap.createClientAsync(wsdlURL);
  const [created] = await c11.CreateProductAsync({
    name: 'Pour-over Kettle <Ø 1.2 L & more>',
    price: '34.90',
    currency: 'CHF',
  });
  out.created = created;
  const [got] = await c11.GetProductAsync({ id: created.product.id });
  out.got = got;

  // The demo service speaks SOAP 1.1 only, so this call is expected to
  // fail after it was captured; what matters is the request.
  const c12 = await soap.createClientAsync(wsdlURL, { forceSoap12Headers: true });
  try {
    await c12.GetProductAsync({ id: created.product.id });
    out.soap12 = 'answered';
  } catch (err) {
    out.soap12 = 'failed';
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + '\n');
  process.exit(1);
});
