// A third-party relying party against the embedded authorization server:
// openid-client runs the authorization code flow with PKCE (S256), nonce
// and state, with a confidential or a public client, optionally through
// a pushed authorization request; the browser's part (the login form) is
// played with fetch. Then userinfo, a refresh (rotation), a replay of the
// code and a reuse of the first refresh token (both refused, the family
// revoked), and RP-initiated logout. It prints one JSON object with what
// it saw; the Go test checks it.
//
//   node authcode.mjs ISSUER CLIENT_ID SECRET|- REDIRECT_URI USERNAME PASSWORD POST_LOGOUT_URI|- par|plain
import * as client from 'openid-client';

const [issuer, clientId, secret, redirectUri, username, password, postLogout, mode] = process.argv.slice(2);

const auth = secret === '-' ? client.None() : client.ClientSecretBasic(secret);
const config = await client.discovery(new URL(issuer), clientId, undefined, auth, {
  execute: [client.allowInsecureRequests],
});

const verifier = client.randomPKCECodeVerifier();
const challenge = await client.calculatePKCECodeChallenge(verifier);
const state = client.randomState();
const nonce = client.randomNonce();
const params = {
  redirect_uri: redirectUri,
  scope: 'openid profile email products:read',
  code_challenge: challenge,
  code_challenge_method: 'S256',
  state,
  nonce,
};
const authUrl = mode === 'par'
  ? await client.buildAuthorizationUrlWithPAR(config, params)
  : client.buildAuthorizationUrl(config, params);

// The browser: a cookie jar of one host, no redirects followed.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [kv] = c.split(';');
    const i = kv.indexOf('=');
    const v = kv.slice(i + 1);
    if (v === '' || /max-age=-1|max-age=0/i.test(c)) jar.delete(kv.slice(0, i)); else jar.set(kv.slice(0, i), v);
  }
  return res;
}
const page = await browse(authUrl);
const html = await page.text();
if (page.status !== 200) throw new Error(`login page: ${page.status} ${html}`);
const field = (name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
const form = new URLSearchParams({ tx: field('tx'), csrf: field('csrf'), username, password });
const action = html.match(/action="([^"]*)"/)[1].replaceAll('&amp;', '&');
const after = await browse(action, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
const callback = new URL(after.headers.get('location'));

const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

const errorOf = async (p) => {
  try { await p; return 'accepted'; } catch (e) { return e.error || e.code || String(e); }
};
const replay = await errorOf(client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
}));
// The replay revoked the first tokens: log in again for the refresh part
// (the session cookie answers at once).
const verifier2 = client.randomPKCECodeVerifier();
const again = await browse(client.buildAuthorizationUrl(config, {
  ...params, state: 's2', code_challenge: await client.calculatePKCECodeChallenge(verifier2),
}));
const callback2 = new URL(again.headers.get('location'));
const tokens2 = await client.authorizationCodeGrant(config, callback2, {
  pkceCodeVerifier: verifier2, expectedState: 's2', expectedNonce: nonce,
});
const refreshed = await client.refreshTokenGrant(config, tokens2.refresh_token);
const reuse = await errorOf(client.refreshTokenGrant(config, tokens2.refresh_token));
const afterReuse = await errorOf(client.refreshTokenGrant(config, refreshed.refresh_token));

let logout = null;
if (postLogout !== '-') {
  const endUrl = client.buildEndSessionUrl(config, {
    id_token_hint: tokens2.id_token, post_logout_redirect_uri: postLogout, state: 'bye',
  });
  const res = await browse(endUrl);
  const res2 = await browse(client.buildAuthorizationUrl(config, params));
  logout = { status: res.status, location: res.headers.get('location'), next_status: res2.status };
}

process.stdout.write(JSON.stringify({
  end_session_endpoint: config.serverMetadata().end_session_endpoint,
  callback: callback.toString(),
  id_token: tokens.id_token,
  claims,
  access_token: tokens.access_token,
  refresh_token: tokens.refresh_token,
  userinfo,
  replay,
  refreshed_access_token: refreshed.access_token,
  refreshed_rotated: refreshed.refresh_token !== tokens2.refresh_token,
  refreshed_claims: refreshed.claims(),
  reuse,
  after_reuse: afterReuse,
  logout,
}) + '\n');
