// A third-party OAuth client against the embedded authorization server:
// openid-client discovers it, gets tokens with client_credentials
// (client_secret_basic or private_key_jwt) and introspects them. It prints
// one JSON object with what it got; the Go test checks it.
//
//   node client.mjs ISSUER basic CLIENT_ID SECRET SCOPE
//   node client.mjs ISSUER private_key_jwt CLIENT_ID JWK_JSON SCOPE
import * as client from 'openid-client';

const [issuer, mode, clientId, credential, scope] = process.argv.slice(2);

let auth;
let algorithm = 'oidc';
if (mode === 'basic') {
  auth = client.ClientSecretBasic(credential);
} else if (mode === 'private_key_jwt') {
  const jwk = JSON.parse(credential);
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  auth = client.PrivateKeyJwt({ key, kid: jwk.kid });
  // RFC 8414 discovery for this one, OpenID discovery for the other.
  algorithm = 'oauth2';
} else {
  throw new Error(`unknown mode ${mode}`);
}

const config = await client.discovery(new URL(issuer), clientId, undefined, auth, {
  execute: [client.allowInsecureRequests],
  algorithm,
});
const meta = config.serverMetadata();
const tokens = await client.clientCredentialsGrant(config, { scope });
const introspection = await client.tokenIntrospection(config, tokens.access_token);
process.stdout.write(JSON.stringify({
  issuer: meta.issuer,
  token_endpoint: meta.token_endpoint,
  access_token: tokens.access_token,
  token_type: tokens.token_type,
  scope: tokens.scope,
  expires_in: tokens.expires_in,
  introspection,
}) + '\n');
