// A node-oidc-provider corporate IdP for the federation tests. It prints
// "ISSUER <url>" once it listens on 127.0.0.1. POST /__client with
// redirect_uri=... registers the client "gatehouse" (secret
// "gatehouse-secret") for that redirect URI. Its login page
// (/interaction/:uid) is a form: login=NAME signs NAME in (and grants
// consent), abort=1 answers access_denied.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const key = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };

const accounts = {
  carol: { employee_id: 'E-1001', upn: 'carol@corp.test', email: 'carol@corp.test', email_verified: true, name: 'Carol Corp', roles: ['eng', 'ops'] },
};

function build(issuer, redirectURIs) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'gatehouse', client_secret: 'gatehouse-secret',
      grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: redirectURIs,
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [key] },
    cookies: { keys: ['gatehouse-test-cookie-key'] },
    claims: { openid: ['sub', 'employee_id'], email: ['email', 'email_verified'], profile: ['name', 'upn'], roles: ['roles'] },
    scopes: ['openid', 'email', 'profile', 'roles'],
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    async findAccount(ctx, id) {
      const a = accounts[id];
      if (!a) return undefined;
      return { accountId: id, async claims() { return { ...a } } };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

async function interaction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<form method="post" action="/interaction/${details.uid}"><input name="login"><button>Sign in</button></form>`);
    return;
  }
  const body = await new Promise((ok) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => ok(b)); });
  const form = new URLSearchParams(body);
  if (form.get('abort')) {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled' }, { mergeWithLastSubmission: false });
    return;
  }
  const accountId = form.get('login');
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const server = http.createServer();
let provider;
server.on('request', async (req, res) => {
  try {
    if (req.method === 'POST' && req.url.startsWith('/__client')) {
      const uri = new URL(req.url, provider.issuer).searchParams.get('redirect_uri');
      provider = build(provider.issuer, [uri]);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    if (req.url.startsWith('/interaction/')) {
      await interaction(provider, req, res);
      return;
    }
    provider.callback()(req, res);
  } catch (err) {
    console.error(err);
    res.writeHead(500);
    res.end(String(err));
  }
});
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = build(issuer, ['http://127.0.0.1:9/none']);
  console.log(`ISSUER ${issuer}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
