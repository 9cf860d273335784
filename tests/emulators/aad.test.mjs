// Azure AD emulator: client secret, certificate assertions (good, forged, expired,
// replayed), managed identity (IMDS, App Service), error shapes and the request log.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { startEmulators, request, form, decodeClaims, makeAssertion, control } from './helpers.mjs';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('Azure AD emulator', () => {
  let emu;
  let env;
  let certPem;
  let keyPem;
  before(async () => {
    emu = await startEmulators();
    env = emu.env;
    certPem = fs.readFileSync(env.LUFA_EMU_CLIENT_CERT, 'utf8');
    keyPem = fs.readFileSync(env.LUFA_EMU_CLIENT_KEY, 'utf8');
  });
  after(async () => {
    await emu?.stop();
  });

  const tokenUrl = (tenant, v2 = true) => `${env.LUFA_EMU_AAD_AUTHORITY}/${tenant}/oauth2/${v2 ? 'v2.0/' : ''}token`;
  const post = (url, fields, headers = {}) => request(url, { method: 'POST', headers: { ...FORM, ...headers }, body: form(fields) });
  const assertAadError = (r, status, error, code) => {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json.error, error);
    assert.deepEqual(r.json.error_codes, [code]);
    assert.match(r.json.error_description, new RegExp(`^AADSTS${code}: `));
    assert.match(r.json.error_description, /\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: /);
    assert.match(r.json.trace_id, /^[0-9a-f-]{36}$/);
    assert.match(r.json.correlation_id, /^[0-9a-f-]{36}$/);
  };

  it('issues a v2 token for a client secret, with numeric times and v1-format claims', async () => {
    const r = await post(tokenUrl(env.LUFA_EMU_TENANT_DOMAIN), {
      grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, client_secret: env.LUFA_EMU_CLIENT_SECRET, scope: 'https://storage.azure.com/.default',
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.token_type, 'Bearer');
    assert.equal(typeof r.json.expires_in, 'number');
    assert.ok(r.json.expires_in >= 3599 && r.json.expires_in <= 5399, `default lifetime is 60-90 min, got ${r.json.expires_in}`);
    const c = decodeClaims(r.json.access_token);
    assert.equal(c.aud, 'https://storage.azure.com');
    assert.equal(c.tid, env.LUFA_EMU_TENANT_ID);
    assert.equal(c.iss, `https://sts.windows.net/${env.LUFA_EMU_TENANT_ID}/`);
    assert.equal(c.appid, env.LUFA_EMU_CLIENT_ID);
    assert.equal(c.appidacr, '1');
    assert.equal(c.exp - c.iat, r.json.expires_in);
  });

  it('issues a v1 token with string times and echoes the resource', async () => {
    const r = await post(tokenUrl(env.LUFA_EMU_TENANT_ID, false), {
      grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, client_secret: env.LUFA_EMU_CLIENT_SECRET, resource: 'https://management.azure.com/',
    });
    assert.equal(r.status, 200, r.text);
    for (const k of ['expires_in', 'ext_expires_in', 'expires_on', 'not_before']) assert.match(r.json[k], /^\d+$/, k);
    assert.equal(r.json.resource, 'https://management.azure.com/');
    assert.equal(decodeClaims(r.json.access_token).aud, 'https://management.azure.com/');
  });

  it('answers a wrong secret, an unknown client and an unknown tenant with AADSTS errors', async () => {
    const base = { grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, scope: 'https://management.azure.com/.default' };
    assertAadError(await post(tokenUrl(env.LUFA_EMU_TENANT_ID), { ...base, client_secret: `${env.LUFA_EMU_CLIENT_SECRET}x` }), 401, 'invalid_client', 7000215);
    // A '+' sent raw decodes as a space: the secret no longer matches, as in Azure AD.
    const raw = `grant_type=client_credentials&client_id=${env.LUFA_EMU_CLIENT_ID}&client_secret=${env.LUFA_EMU_CLIENT_SECRET}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default`;
    assertAadError(await request(tokenUrl(env.LUFA_EMU_TENANT_ID), { method: 'POST', headers: FORM, body: raw }), 401, 'invalid_client', 7000215);
    assertAadError(await post(tokenUrl(env.LUFA_EMU_TENANT_ID), { ...base, client_id: crypto.randomUUID(), client_secret: 'x' }), 400, 'unauthorized_client', 700016);
    assertAadError(await post(tokenUrl('contoso.example'), { ...base, client_secret: 'x' }), 400, 'invalid_request', 90002);
    assertAadError(await post(tokenUrl('common'), { ...base, client_secret: 'x' }), 400, 'invalid_request', 9001023);
    assertAadError(await post(tokenUrl(env.LUFA_EMU_TENANT_ID), { ...base, client_secret: env.LUFA_EMU_CLIENT_SECRET, scope: 'https://management.azure.com/user_impersonation' }), 400, 'invalid_scope', 70011);
    assertAadError(await post(tokenUrl(env.LUFA_EMU_TENANT_ID), { ...base, client_secret: env.LUFA_EMU_CLIENT_SECRET, resource: 'https://storage.azure.com/' }), 400, 'invalid_request', 901002);
    assertAadError(await post(tokenUrl(env.LUFA_EMU_TENANT_ID), { ...base, client_secret: env.LUFA_EMU_CLIENT_SECRET, scope: 'https://unknown.example.com/.default' }), 400, 'invalid_resource', 500011);
    assertAadError(await post(tokenUrl(env.LUFA_EMU_TENANT_ID), { grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, scope: base.scope }), 401, 'invalid_client', 7000218);
    assertAadError(await request(tokenUrl(env.LUFA_EMU_TENANT_ID)), 400, 'invalid_request', 900561);
  });

  it('accepts a certificate assertion signed RS256 (x5t) or PS256 (x5t#S256), v1 and v2', async () => {
    for (const [alg, v2] of [['RS256', false], ['PS256', true]]) {
      const url = tokenUrl(env.LUFA_EMU_TENANT_DOMAIN, v2);
      const assertion = makeAssertion({ key: keyPem, certPem, aud: url, clientId: env.LUFA_EMU_CLIENT_ID, alg });
      const target = v2 ? { scope: 'https://management.azure.com/.default' } : { resource: 'https://management.azure.com/' };
      const r = await post(url, {
        grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion, ...target,
      });
      assert.equal(r.status, 200, `${alg}: ${r.text}`);
      assert.equal(decodeClaims(r.json.access_token).appidacr, '2');
    }
  });

  it('rejects forged, expired, replayed and mis-addressed assertions', async () => {
    const url = tokenUrl(env.LUFA_EMU_TENANT_ID);
    const ask = (assertion) => post(url, {
      grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, scope: 'https://management.azure.com/.default',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
    });
    const base = { certPem, aud: url, clientId: env.LUFA_EMU_CLIENT_ID };
    const { privateKey: otherKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    assertAadError(await ask(makeAssertion({ ...base, key: otherKey })), 401, 'invalid_client', 700027);
    assertAadError(await ask(makeAssertion({ ...base, key: keyPem, header: { x5t: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA' } })), 401, 'invalid_client', 700027);
    const past = Math.floor(Date.now() / 1000) - 3600;
    assertAadError(await ask(makeAssertion({ ...base, key: keyPem, claims: { nbf: past - 600, iat: past - 600, exp: past } })), 401, 'invalid_client', 700024);
    assertAadError(await ask(makeAssertion({ ...base, key: keyPem, aud: 'https://login.example.com/other/oauth2/v2.0/token' })), 401, 'invalid_client', 50012);
    assertAadError(await ask(makeAssertion({ ...base, key: keyPem, claims: { iss: crypto.randomUUID() } })), 401, 'invalid_client', 700021);
    assertAadError(await ask('not.a.jwt'), 401, 'invalid_client', 50027);
    const once = makeAssertion({ ...base, key: keyPem });
    assert.equal((await ask(once)).status, 200);
    assertAadError(await ask(once), 401, 'invalid_client', 50012);
  });

  it('serves IMDS tokens only with Metadata: true, for system and user-assigned identities', async () => {
    const url = (q) => `${env.LUFA_EMU_IMDS_ENDPOINT}/metadata/identity/oauth2/token?${q}`;
    const noHeader = await request(url('api-version=2018-02-01&resource=https://storage.azure.com/'));
    assert.equal(noHeader.status, 400);
    assert.equal(noHeader.json.error, 'bad_request_102');
    const sys = await request(url('api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F'), { headers: { Metadata: 'true' } });
    assert.equal(sys.status, 200, sys.text);
    assert.match(sys.json.expires_in, /^\d+$/);
    assert.equal(sys.json.client_id, env.LUFA_EMU_MI_CLIENT_ID);
    assert.equal(decodeClaims(sys.json.access_token).appid, env.LUFA_EMU_MI_CLIENT_ID);
    const user = await request(url(`api-version=2018-02-01&resource=https://management.azure.com/&msi_res_id=${encodeURIComponent(env.LUFA_EMU_MI_USER_RESOURCE_ID)}`), { headers: { Metadata: 'true' } });
    assert.equal(user.status, 200, user.text);
    assert.equal(user.json.client_id, env.LUFA_EMU_MI_USER_CLIENT_ID);
    const unknown = await request(url(`api-version=2018-02-01&resource=https://management.azure.com/&client_id=${crypto.randomUUID()}`), { headers: { Metadata: 'true' } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error, 'invalid_request');
  });

  it('serves App Service tokens only with the right X-IDENTITY-HEADER', async () => {
    const url = `${env.LUFA_EMU_IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://storage.azure.com/`;
    const wrong = await request(url, { headers: { 'X-IDENTITY-HEADER': 'nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.statusCode, 401);
    const ok = await request(url, { headers: { 'X-IDENTITY-HEADER': env.LUFA_EMU_IDENTITY_HEADER } });
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.json.expires_on, /^\d+$/);
    assert.equal(ok.json.expires_in, undefined);
  });

  it('uses the token lifetime set through the control endpoint', async () => {
    const set = await control(emu, 'PATCH', '/settings', { tokenLifetimeSeconds: 7 });
    assert.equal(set.status, 200, set.text);
    const r = await post(tokenUrl(env.LUFA_EMU_TENANT_ID), {
      grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, client_secret: env.LUFA_EMU_CLIENT_SECRET, scope: 'https://storage.azure.com/.default',
    });
    assert.equal(r.json.expires_in, 7);
    const c = decodeClaims(r.json.access_token);
    assert.equal(c.exp - c.nbf, 7);
    const bad = await control(emu, 'PATCH', '/settings', { tokenLifetimeSeconds: -1 });
    assert.equal(bad.status, 400);
    await control(emu, 'PATCH', '/settings', { tokenLifetimeSeconds: null });
  });

  it('logs every token request with its outcome and never a secret', async () => {
    await control(emu, 'DELETE', '/requests');
    const fields = { grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, client_secret: env.LUFA_EMU_CLIENT_SECRET, scope: 'https://storage.azure.com/.default' };
    await Promise.all(Array.from({ length: 50 }, () => post(tokenUrl(env.LUFA_EMU_TENANT_ID), fields)));
    await post(tokenUrl(env.LUFA_EMU_TENANT_ID), { ...fields, client_secret: 'wrong' });
    await request(`${env.LUFA_EMU_IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://storage.azure.com/`, { headers: { 'X-IDENTITY-HEADER': env.LUFA_EMU_IDENTITY_HEADER } });
    const log = await control(emu, 'GET', '/requests?service=aad&route=aad.token');
    assert.equal(log.status, 200);
    assert.equal(log.json.count, 51);
    const issued = log.json.requests.filter((e) => e.outcome === 'issued');
    assert.equal(issued.length, 50);
    for (const e of issued) {
      assert.equal(e.route, 'aad.token.v2');
      assert.equal(e.method, 'POST');
      assert.equal(e.status, 200);
      assert.equal(e.clientId, env.LUFA_EMU_CLIENT_ID);
      assert.equal(e.auth, 'client_secret');
      assert.equal(e.target, 'https://storage.azure.com/.default');
    }
    assert.deepEqual(log.json.requests.filter((e) => e.status === 401).map((e) => e.outcome), ['AADSTS7000215']);
    const all = await control(emu, 'GET', '/requests');
    assert.ok(all.json.requests.some((e) => e.route === 'identity.appservice' && e.outcome === 'issued'));
    for (const secret of [env.LUFA_EMU_CLIENT_SECRET, env.LUFA_EMU_IDENTITY_HEADER, encodeURIComponent(env.LUFA_EMU_CLIENT_SECRET)]) {
      assert.ok(!all.text.includes(secret), 'the request log must not contain secrets');
    }
  });

  it('publishes JWKS and discovery documents that verify its tokens', async () => {
    const disc = await request(`${env.LUFA_EMU_AAD_AUTHORITY}/${env.LUFA_EMU_TENANT_DOMAIN}/v2.0/.well-known/openid-configuration`);
    assert.equal(disc.status, 200);
    assert.equal(disc.json.token_endpoint, `${env.LUFA_EMU_AAD_AUTHORITY}/${env.LUFA_EMU_TENANT_ID}/oauth2/v2.0/token`);
    const jwks = await request(disc.json.jwks_uri);
    const token = (await post(tokenUrl(env.LUFA_EMU_TENANT_ID), {
      grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, client_secret: env.LUFA_EMU_CLIENT_SECRET, scope: 'https://management.azure.com/.default',
    })).json.access_token;
    const [h, p, s] = token.split('.');
    const kid = JSON.parse(Buffer.from(h, 'base64url').toString()).kid;
    const jwk = jwks.json.keys.find((k) => k.kid === kid);
    assert.ok(jwk, 'the token kid is published');
    const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
    assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')));
  });
});
