// An independent SOAP client for the demo ProductService: node-soap reads
// the WSDL at the URL given as the only argument, then calls the service
// at the soap:address the WSDL names. It prints one JSON object on stdout
// for the Go test (TestNodeSOAPClient) to check, and exits non-zero on any
// unexpected failure.
'use strict';

const soap = require('soap');

async function main() {
  const wsdlURL = process.argv[2];
  if (!wsdlURL) {
    throw new Error('usage: node client.js WSDL_URL');
  }
  const client = await soap.createClientAsync(wsdlURL);
  const out = {
    soapVersion: require('soap/package.json').version,
    services: client.describe(),
  };

  const [created] = await client.CreateProductAsync({
    name: 'Pour-over Kettle <Ø 1.2 L & more>',
    price: '34.90',
    currency: 'CHF',
  });
  out.created = created;

  const [got] = await client.GetProductAsync({ id: created.product.id });
  out.got = got;

  // A fault must come back as a fault: node-soap rejects with the parsed
  // envelope in err.root.
  try {
    await client.GetProductAsync({ id: 'p-does-not-exist' });
    out.fault = null;
  } catch (err) {
    if (!err.root) {
      throw err;
    }
    out.fault = err.root.Envelope.Body.Fault;
  }

  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + '\n');
  if (err && err.body) {
    process.stderr.write('response body: ' + err.body + '\n');
  }
  process.exit(1);
});
