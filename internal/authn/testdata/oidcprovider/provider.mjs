// A node-oidc-provider IdP for the authenticators' peer tests. It prints
// "ISSUER <url>" once it listens on 127.0.0.1, then serves discovery, the
// JWKS, client_credentials tokens (JWT for the resource
// https://api.test/jwt, opaque for https://api.test/opaque) and
// introspection. POST /__rotate replaces the signing key: the old one is
// withdrawn from the JWKS at once (the in-memory token store is kept).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const resources = {
  'https://api.test/jwt': 'jwt',
  'https://api.test/opaque': 'opaque',
};

function newKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };
}

function build(issuer, key) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'gateway', client_secret: 'gateway-secret',
        grant_types: [], response_types: [], redirect_uris: [],
        id_token_signed_response_alg: 'ES256',
      },
      {
        client_id: 'app', client_secret: 'app-secret',
        grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
        id_token_signed_response_alg: 'ES256',
        scope: 'read write',
      },
    ],
    jwks: { keys: [key] },
    scopes: ['read', 'write'],
    cookies: { keys: ['gatehouse-test-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, indicator) {
          const format = resources[indicator];
          if (!format) throw new errors.InvalidTarget();
          return {
            scope: 'read write',
            audience: indicator,
            accessTokenFormat: format,
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

const server = http.createServer();
let provider;
server.on('request', (req, res) => {
  if (req.method === 'POST' && req.url === '/__rotate') {
    const key = newKey();
    provider = build(provider.issuer, key);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: key.kid }));
    return;
  }
  provider.callback()(req, res);
});
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = build(issuer, newKey());
  console.log(`ISSUER ${issuer}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
