// A node-oidc-provider IdP for the authenticators' peer tests. It prints
// "ISSUER <url>" once it listens on 127.0.0.1, then serves discovery, the
// JWKS, client_credentials tokens (JWT for the resource
// https://api.test/jwt, opaque for https://api.test/opaque) and
// introspection. POST /__rotate replaces the signing key: the old one is
// withdrawn from the JWKS at once (the in-memory token store is kept).
//
// End users log in too (the session authenticator's peer tests): the
// authorization code flow with PKCE, ID tokens, refresh tokens and
// RP-initiated logout, for clients added with POST /__client (a JSON
// client metadata object; before any login: the provider is rebuilt).
// The login page at /interaction/:uid is a plain form (login, password)
// for the users below; consent is granted at once.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const resources = {
  'https://api.test/jwt': 'jwt',
  'https://api.test/opaque': 'opaque',
};

const users = {
  alice: { password: 'alice-password', claims: { email: 'alice@example.com', email_verified: true, name: 'Alice' } },
  bob: { password: 'bob-password', claims: { email: 'bob@example.com', email_verified: true, name: 'Bob' } },
};
const extraClients = [];
let currentKey;

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
      ...extraClients,
    ],
    findAccount(ctx, id) {
      const u = users[id];
      if (!u) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...u.claims }; } };
    },
    claims: { email: ['email', 'email_verified'], profile: ['name'] },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => true },
    jwks: { keys: [key] },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'read', 'write'],
    cookies: { keys: ['gatehouse-test-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
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

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// interaction serves the login page and grants consent.
async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const u = users[form.get('login')];
      if (!u || u.password !== form.get('password')) {
        res.writeHead(401, { 'content-type': 'text/html' });
        res.end('<!doctype html><title>Sign in</title><p>wrong login or password</p>');
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: form.get('login') } }, { mergeWithLastSubmission: false });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>Sign in</title><h1>Sign in to ${esc(params.client_id)}</h1>
<form method="post" action="/interaction/${esc(uid)}">
<label>Login <input name="login" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form>`);
    return;
  }
  // consent: granted at once
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const d = prompt.details;
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const server = http.createServer();
let provider;
server.on('request', async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/__rotate') {
      currentKey = newKey();
      provider = build(provider.issuer, currentKey);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kid: currentKey.kid }));
      return;
    }
    if (req.method === 'POST' && req.url === '/__client') {
      extraClients.push(JSON.parse(await readBody(req)));
      provider = build(provider.issuer, currentKey);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    const m = req.url.match(/^\/interaction\/([A-Za-z0-9_-]+)$/);
    if (m) {
      await interaction(req, res, m[1]);
      return;
    }
    provider.callback()(req, res);
  } catch (err) {
    console.error('request error', err);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
});
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  currentKey = newKey();
  provider = build(issuer, currentKey);
  console.log(`ISSUER ${issuer}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
