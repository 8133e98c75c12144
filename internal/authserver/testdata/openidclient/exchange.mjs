// openid-client with DPoP at the token endpoint and RFC 8693 token
// exchange: it gets a DPoP-bound token (client_credentials), then tries to
// exchange it without a proof, with a proof by another key, and with a
// proof by its own key. It prints one JSON object with what it got; the
// Go test checks it.
//
//   node exchange.mjs ISSUER CLIENT_ID SECRET SCOPE
import * as client from 'openid-client';

const [issuer, clientId, secret, scope] = process.argv.slice(2);
const exchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token';

const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), {
  execute: [client.allowInsecureRequests],
});
const keyPair = await client.randomDPoPKeyPair('ES256');
const dpop = client.getDPoPHandle(config, keyPair);
const subject = await client.clientCredentialsGrant(config, { scope }, { DPoP: dpop });

const params = { subject_token: subject.access_token, subject_token_type: accessTokenType };
async function refusal(options) {
  try {
    await client.genericGrantRequest(config, exchangeGrant, params, options);
    return 'accepted';
  } catch (e) {
    return e.error ?? `${e.name}: ${e.message}`;
  }
}
const withoutProof = await refusal(undefined);
const otherKey = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
const otherProof = await refusal({ DPoP: otherKey });
const exchanged = await client.genericGrantRequest(config, exchangeGrant, params, { DPoP: dpop });

process.stdout.write(JSON.stringify({
  jwk: await crypto.subtle.exportKey('jwk', keyPair.publicKey),
  subject_token: subject.access_token,
  subject_token_type: subject.token_type,
  without_proof: withoutProof,
  other_proof: otherProof,
  access_token: exchanged.access_token,
  token_type: exchanged.token_type,
  issued_token_type: exchanged.issued_token_type,
}) + '\n');
