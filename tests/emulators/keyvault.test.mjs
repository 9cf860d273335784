// Key Vault stand-in: secrets set through the control endpoint, read with an Azure AD token for
// https://vault.azure.net; Key Vault's bodies for values, versions, 400/401/403/404 and disabled secrets.

import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulators, request, secretToken, control, decodeClaims } from './helpers.mjs';

describe('Key Vault stand-in', () => {
  let emu;
  let vault;
  let token;
  before(async () => {
    emu = await startEmulators();
    vault = emu.env.LUFA_EMU_KEYVAULT_URL;
    token = await secretToken(emu, { target: 'https://vault.azure.net/.default' });
  });
  after(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    assert.equal((await control(emu, 'POST', '/reset')).status, 200);
  });

  const get = (name, { version, auth = `Bearer ${token}`, api = '7.4' } = {}) => request(
    `${vault}/secrets/${name}${version ? `/${version}` : ''}${api ? `?api-version=${api}` : ''}`,
    { headers: auth ? { authorization: auth } : {}, ca: emu.ca },
  );

  it('returns the current version, and an older one by its id', async () => {
    const first = await control(emu, 'PUT', '/keyvault/secrets/db-password', { value: 'one' });
    assert.equal(first.status, 200);
    assert.match(first.json.version, /^[0-9a-f]{32}$/);
    await control(emu, 'PUT', '/keyvault/secrets/db-password', { value: 'two' });
    const now = await get('db-password');
    assert.equal(now.status, 200, now.text);
    assert.equal(now.json.value, 'two');
    assert.equal(now.json.attributes.enabled, true);
    assert.match(now.json.id, new RegExp(`^${vault}/secrets/db-password/[0-9a-f]{32}$`));
    const old = await get('DB-PASSWORD', { version: first.json.version });
    assert.equal(old.json.value, 'one', 'names ignore letter case');
    assert.equal(old.json.id, `${vault}/secrets/db-password/${first.json.version}`);
  });

  it('answers 401 with a challenge without a token, and for a token of another audience', async () => {
    const none = await get('x', { auth: null });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'Unauthorized');
    assert.match(none.json.error.message, /^AKV10000: /);
    assert.match(none.headers['www-authenticate'], /^Bearer authorization="http.*", resource="https:\/\/vault\.azure\.net"$/);
    const storage = await secretToken(emu, { target: 'https://storage.azure.com/.default' });
    assert.equal(decodeClaims(storage).aud, 'https://storage.azure.com');
    const wrong = await get('x', { auth: `Bearer ${storage}` });
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.error.message, /^AKV10022: Invalid audience/);
  });

  it('answers 404 SecretNotFound, 403 SecretDisabled and 403 AccessDenied', async () => {
    const missing = await get('nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'SecretNotFound');
    assert.match(missing.json.error.message, /^A secret with \(name\/id\) nope was not found in this key vault/);

    await control(emu, 'PUT', '/keyvault/secrets/off', { value: 'v' });
    assert.equal((await control(emu, 'PATCH', '/keyvault/secrets/off', { enabled: false })).status, 200);
    const disabled = await get('off');
    assert.equal(disabled.status, 403);
    assert.deepEqual(disabled.json.error, { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.',
      innererror: { code: 'SecretDisabled' } });
    assert.equal(disabled.text.includes('"v"'), false, 'no value in the error');

    await control(emu, 'PUT', '/keyvault/secrets/on', { value: 'v' });
    await control(emu, 'PUT', '/keyvault/access', { allowed: ['someone-else'] });
    const denied = await get('on');
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.innererror.code, 'AccessDenied');
    assert.match(denied.json.error.message, /does not have secrets get permission on key vault/);
    await control(emu, 'PUT', '/keyvault/access', { allowed: [emu.env.LUFA_EMU_CLIENT_ID] });
    assert.equal((await get('on')).status, 200);
  });

  it('answers 400 BadParameter without an api-version, and refuses bad names at the control endpoint', async () => {
    const r = await get('x', { api: null });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'BadParameter');
    const bad = await control(emu, 'PUT', '/keyvault/secrets/bad_name', { value: 'v' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /not a Key Vault secret name/);
  });

  it('logs requests without values, and forgets secrets on reset', async () => {
    await control(emu, 'PUT', '/keyvault/secrets/k', { value: 'logged-nowhere' });
    assert.equal((await get('k')).status, 200);
    const log = await control(emu, 'GET', '/requests?service=keyvault');
    assert.equal(log.json.requests.length, 1);
    assert.equal(log.json.requests[0].route, 'keyvault.secret');
    assert.equal(JSON.stringify(log.json).includes('logged-nowhere'), false);
    await control(emu, 'POST', '/reset');
    assert.equal((await get('k')).status, 404);
  });
});
