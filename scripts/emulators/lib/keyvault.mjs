// Azure Key Vault secrets stand-in: GET {vault}/secrets/{name}[/{version}]?api-version=7.x with an
// Azure AD bearer token for https://vault.azure.net, answering with Key Vault's bodies and error
// shapes (401 challenge, 403 Forbidden / SecretDisabled, 404 SecretNotFound, 400 BadParameter).
// Tests set secrets and the vault's access list through the control endpoint (/_emulator/keyvault/…).

import crypto from 'node:crypto';
import { createService, jsonResponse, HttpError } from './http-kit.mjs';

export const VAULT_AUDIENCES = ['https://vault.azure.net', 'https://vault.azure.net/.default'];
const API_VERSIONS = ['7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '2016-10-01'];
const NAME = /^[0-9A-Za-z-]{1,127}$/;

/** Secrets by name (lower case): each a list of versions, newest last. */
export class VaultState {
  constructor() {
    this.reset();
  }

  reset() {
    this.secrets = new Map();
    this.allowed = null; // null: every caller the directory knows; else a list of appid / oid values
  }

  /** Adds a version; returns its description (without the value). */
  set(name, { value, enabled = true, contentType }) {
    if (!NAME.test(name)) throw new Error(`'${name}' is not a Key Vault secret name (1-127 of 0-9, a-z, A-Z and '-')`);
    if (typeof value !== 'string') throw new Error('value: expected a string');
    const key = name.toLowerCase();
    const list = this.secrets.get(key) || [];
    const now = Math.floor(Date.now() / 1000);
    const version = crypto.randomBytes(16).toString('hex');
    list.push({ name, version, value, enabled: enabled !== false, contentType, created: now, updated: now });
    this.secrets.set(key, list);
    return { name, version, enabled: enabled !== false };
  }

  /** Enables or disables one version (the newest when version is omitted). */
  setEnabled(name, version, enabled) {
    const entry = this.find(name, version);
    if (!entry) return null;
    entry.enabled = enabled;
    entry.updated = Math.floor(Date.now() / 1000);
    return { name: entry.name, version: entry.version, enabled };
  }

  find(name, version) {
    const list = this.secrets.get(name.toLowerCase());
    if (!list || list.length === 0) return null;
    if (!version) return list[list.length - 1];
    return list.find((v) => v.version === version.toLowerCase()) || null;
  }

  describe() {
    return {
      allowed: this.allowed,
      secrets: [...this.secrets.values()].map((list) => ({
        name: list[0].name,
        versions: list.map((v) => ({ version: v.version, enabled: v.enabled })),
      })),
    };
  }
}

function kvError(ctx, status, code, message, inner, headers = {}) {
  ctx.info.error = inner || code;
  const error = { code, message };
  if (inner) error.innererror = { code: inner };
  return jsonResponse(status, { error }, { 'x-ms-request-id': crypto.randomUUID(), ...headers });
}

function kvFail(...args) {
  throw new HttpError(kvError(...args));
}

export function createKeyVaultService({ vault, directory, faults, log, vaultUrl }) {
  const challenge = () => ({
    'www-authenticate': `Bearer authorization="${directory.authority}/${directory.tenants[0].id}", resource="https://vault.azure.net"`,
  });

  const getSecret = (ctx) => {
    const version = ctx.query.get('api-version');
    if (!version) kvFail(ctx, 400, 'BadParameter', 'The request URI contains an invalid or missing api-version. Supported api-versions are: ' + API_VERSIONS.join(', '));
    if (!API_VERSIONS.includes(version)) kvFail(ctx, 400, 'BadParameter', `The specified version (${version}) is not recognized. Consider using the latest supported version (7.4).`);
    const header = ctx.headers.authorization;
    const m = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!m) kvFail(ctx, 401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.', null, challenge());
    const verdict = directory.verifyAccessToken(m[1].trim(), VAULT_AUDIENCES);
    if (!verdict.ok) {
      const audience = verdict.code === 'InvalidAuthenticationTokenAudience';
      kvFail(ctx, 401, 'Unauthorized', audience
        ? `AKV10022: Invalid audience. Expected https://vault.azure.net, found: ${verdict.message.match(/resource '([^']*)'/)?.[1] ?? '?'}.`
        : `AKV10032: Invalid token: ${verdict.message}`, null, challenge());
    }
    const caller = verdict.claims;
    ctx.info.caller = caller.appid || caller.oid;
    if (vault.allowed && !vault.allowed.includes(caller.appid) && !vault.allowed.includes(caller.oid)) {
      kvFail(ctx, 403, 'Forbidden', `The user, group or application 'appid=${caller.appid};oid=${caller.oid}' does not have secrets get permission on key vault '${vaultUrl()}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`, 'AccessDenied');
    }
    const entry = vault.find(ctx.params.name, ctx.params.version);
    if (!entry) {
      kvFail(ctx, 404, 'SecretNotFound', ctx.params.version
        ? `A secret with (name/id) ${ctx.params.name}/${ctx.params.version} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`
        : `A secret with (name/id) ${ctx.params.name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`);
    }
    if (!entry.enabled) kvFail(ctx, 403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    const body = {
      value: entry.value,
      id: `${vaultUrl()}/secrets/${entry.name}/${entry.version}`,
      attributes: { enabled: true, created: entry.created, updated: entry.updated, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      tags: {},
    };
    if (entry.contentType) body.contentType = entry.contentType;
    return jsonResponse(200, body, { 'x-ms-request-id': crypto.randomUUID(), 'x-ms-keyvault-service-version': '1.9.0.0' });
  };

  return createService({
    service: 'keyvault',
    faults,
    log,
    errors: {
      notFound: (ctx) => kvError(ctx, 404, 'NotFound', `The requested resource ${ctx.path} is not a Key Vault secret operation this stand-in serves (GET /secrets/{name}[/{version}]).`),
      methodNotAllowed: (ctx) => kvError(ctx, 405, 'MethodNotAllowed', `The HTTP method '${ctx.method}' is not supported on ${ctx.path}.`),
      internal: (ctx, err) => kvError(ctx, 500, 'InternalServerError', `internal error: ${err?.message}`),
      fault: (ctx, fault) => kvError(ctx, fault.status, fault.status === 429 ? 'Throttled' : 'ServiceUnavailable', 'Injected fault.'),
    },
    routes: [
      { name: 'keyvault.secret', method: 'GET', path: /^\/secrets\/([^/]+)\/?$/, keys: ['name'], handler: getSecret },
      { name: 'keyvault.secret', method: 'GET', path: /^\/secrets\/([^/]+)\/([^/]+)$/, keys: ['name', 'version'], handler: getSecret },
    ],
  });
}
