// saml-issue.js KEY_PEM_FILE CERT_PEM_FILE ISSUER AUDIENCE NAMEID ATTRIBUTES_JSON
// Has auth0's saml 4.0.0 (what auth0's IdP and passport-wsfed-saml2 use)
// make a signed SAML 2.0 bearer assertion, RSA-SHA256 over SHA-256
// digests, valid for five minutes from the real clock, and prints it.
'use strict';
const fs = require('fs');
const saml = require('saml');

const [keyFile, certFile, issuer, audience, nameID, attributes] = process.argv.slice(2);
const xml = saml.Saml20.create({
  key: fs.readFileSync(keyFile),
  cert: fs.readFileSync(certFile),
  issuer: issuer,
  lifetimeInSeconds: 300,
  audiences: audience,
  nameIdentifier: nameID,
  attributes: JSON.parse(attributes || '{}'),
  signatureAlgorithm: 'rsa-sha256',
  digestAlgorithm: 'sha256',
});
process.stdout.write(xml);
