// adal-issue.js URL APPLIES_TO USERNAME PASSWORD
// Runs adal-node 0.2.4's WS-Trust 1.3 client (the one it uses against
// ADFS) against an STS and prints {tokenType, token} as JSON.
'use strict';
require('adal-node/lib/util').adalInit(); // what adal.js does on require
const WSTrustRequest = require('adal-node/lib/wstrust-request');
const WSTrustVersion = require('adal-node/lib/constants').WSTrustVersion;

const [url, appliesTo, username, password] = process.argv.slice(2);
const callContext = { _logContext: { correlationId: 'gatehouse-test' }, options: {} };
const req = new WSTrustRequest(callContext, url, appliesTo, WSTrustVersion.WSTRUST13);
req.acquireToken(username, password, (err, resp) => {
  if (err) {
    console.error(String(err && err.message || err));
    process.exit(2);
  }
  process.stdout.write(JSON.stringify({ tokenType: resp.tokenType, token: resp.token }));
});
