// Azure AD (Microsoft Entra ID) token emulator: the v1 and v2 client-credentials token
// endpoints (client secret or certificate assertion), OIDC discovery and the JWKS its
// tokens verify against. Tokens are v1-format (issuer https://sts.windows.net/{tid}/),
// which is what storage and ARM tokens are in Azure and what Azurite's --oauth accepts.

import crypto from 'node:crypto';
import { createService, jsonResponse, HttpError } from './http-kit.mjs';
import { signJwt, decodeJwt, verifySignature, certificateThumbprints, base64url } from './jwt.mjs';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TENANT_CHARS = /^[A-Za-z0-9.-]+$/;
const CLOCK_SKEW_SECONDS = 60;
const STORAGE_APP_ID = 'e406a681-f3d4-42a8-90b6-c2b029497af1';

/** Audiences the emulated directory knows, compared without trailing slashes. */
const KNOWN_RESOURCES = [
  'https://management.azure.com',
  'https://management.core.windows.net',
  'https://storage.azure.com',
  STORAGE_APP_ID,
  'https://ml.azure.com',
  'https://vault.azure.net',
  'https://database.windows.net',
];
const ACCOUNT_RESOURCE = /^https:\/\/[a-z0-9]{3,24}\.blob\.core\.windows\.net$/;

export const ARM_AUDIENCES = ['https://management.azure.com', 'https://management.core.windows.net'];

const trimSlashes = (s) => s.replace(/\/+$/, '');
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The emulated directory: tenants, app registrations, managed identities, signing key. */
export class Directory {
  constructor(config, { clientCertPem, clientSecret, authority, signingKey }) {
    this.authority = authority;
    this.extraResources = (config.extraResources || []).map(trimSlashes);
    this.tenants = config.tenants.map((t) => ({
      id: t.id.toLowerCase(),
      domains: (t.domains || []).map((d) => d.toLowerCase()),
      apps: (t.apps || []).map((app) => ({
        clientId: app.clientId.toLowerCase(),
        objectId: app.objectId,
        displayName: app.displayName,
        secrets: [clientSecret],
        certificates: clientCertPem ? [{ pem: clientCertPem, ...certificateThumbprints(clientCertPem) }] : [],
      })),
    }));
    this.identities = (config.managedIdentities || []).map((mi) => ({ ...mi, tenantId: (mi.tenantId || this.tenants[0].id).toLowerCase() }));
    const { privateKey, publicKey } = signingKey ?? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.kid = base64url(crypto.createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest());
    this.settings = { tokenLifetimeSeconds: config.tokenLifetimeSeconds ?? null };
    this.seenJti = new Map();
  }

  reset(defaults) {
    this.settings = { ...defaults };
    this.seenJti.clear();
  }

  findTenant(name) {
    const key = name.toLowerCase();
    return this.tenants.find((t) => t.id === key || t.domains.includes(key)) || null;
  }

  isKnownResource(audience) {
    const a = trimSlashes(audience);
    return KNOWN_RESOURCES.includes(a) || ACCOUNT_RESOURCE.test(a) || this.extraResources.includes(a);
  }

  lifetime() {
    const fixed = this.settings.tokenLifetimeSeconds;
    if (Number.isFinite(fixed)) return fixed;
    return 3599 + crypto.randomInt(0, 1801); // Azure AD draws 60..90 minutes.
  }

  /** Mints a v1-format access token; returns {accessToken, iat, nbf, exp, lifetime}. */
  issue({ tenantId, audience, appid, oid, appidacr, miResourceId }) {
    const lifetime = this.lifetime();
    const iat = nowSeconds();
    const iss = `https://sts.windows.net/${tenantId}/`;
    const claims = {
      aud: audience,
      iss,
      iat,
      nbf: iat,
      exp: iat + lifetime,
      appid,
      appidacr,
      idp: iss,
      idtyp: 'app',
      oid,
      sub: oid,
      tid: tenantId,
      uti: base64url(crypto.randomBytes(16)),
      ver: '1.0',
      ...(miResourceId ? { xms_mirid: miResourceId } : {}),
    };
    const accessToken = signJwt({ typ: 'JWT', alg: 'RS256', x5t: this.kid, kid: this.kid }, claims, this.privateKey);
    return { accessToken, iat, nbf: iat, exp: iat + lifetime, lifetime };
  }

  /** Verifies one of this directory's tokens for a set of audiences (ARM uses this). */
  verifyAccessToken(token, audiences) {
    let decoded;
    try {
      decoded = decodeJwt(token);
    } catch (err) {
      return { ok: false, code: 'InvalidAuthenticationToken', message: `The access token is invalid: ${err.message}.` };
    }
    if (decoded.header.alg !== 'RS256' || !verifySignature(decoded, this.publicKey)) {
      return { ok: false, code: 'InvalidAuthenticationToken', message: 'The access token has an invalid signature.' };
    }
    const c = decoded.payload;
    const now = nowSeconds();
    if (typeof c.exp !== 'number' || typeof c.nbf !== 'number') {
      return { ok: false, code: 'InvalidAuthenticationToken', message: 'The access token lacks the exp or nbf claim.' };
    }
    if (now >= c.exp) {
      return { ok: false, code: 'ExpiredAuthenticationToken', message: "The access token expiry UTC time is earlier than current UTC time." };
    }
    if (now < c.nbf) {
      return { ok: false, code: 'InvalidAuthenticationToken', message: 'The access token is not yet valid (nbf is in the future).' };
    }
    if (typeof c.aud !== 'string' || !audiences.includes(trimSlashes(c.aud))) {
      return { ok: false, code: 'InvalidAuthenticationTokenAudience', message: `The access token has been obtained for wrong audience or resource '${c.aud}'. It should exactly match with one of the allowed audiences '${audiences.map((a) => `${a}/`).join("','")}'.` };
    }
    if (!this.tenants.some((t) => t.id === c.tid) || c.iss !== `https://sts.windows.net/${c.tid}/`) {
      return { ok: false, code: 'InvalidAuthenticationToken', message: 'The access token is from a tenant or issuer this service does not know.' };
    }
    return { ok: true, claims: c };
  }

  jwks() {
    const jwk = this.publicKey.export({ format: 'jwk' });
    return { keys: [{ kty: 'RSA', use: 'sig', kid: this.kid, x5t: this.kid, n: jwk.n, e: jwk.e }] };
  }

  /** Remembers an assertion id until it expires; false when it was seen before. */
  rememberJti(jti, exp) {
    const now = nowSeconds();
    for (const [k, e] of this.seenJti) if (e + CLOCK_SKEW_SECONDS < now) this.seenJti.delete(k);
    if (this.seenJti.has(jti)) return false;
    this.seenJti.set(jti, exp);
    return true;
  }
}

/** An error body in Azure AD's shape; the description carries trace/correlation lines as AAD does. */
export function aadError(ctx, status, error, code, description) {
  const traceId = crypto.randomUUID();
  const correlationId = ctx.headers['client-request-id'] || crypto.randomUUID();
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  ctx.info.outcome = `AADSTS${code}`;
  return jsonResponse(status, {
    error,
    error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `${ctx.authority}/error?code=${code}`,
  }, { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' });
}

function fail(ctx, status, error, code, description) {
  throw new HttpError(aadError(ctx, status, error, code, description));
}

/** Reads an x-www-form-urlencoded body; other content types count as an empty form. */
function readForm(ctx) {
  const type = (ctx.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  const form = new Map();
  if (type !== 'application/x-www-form-urlencoded') return form;
  for (const [k, v] of new URLSearchParams(ctx.body.toString('utf8'))) {
    if (form.has(k)) fail(ctx, 400, 'invalid_request', 90015, `Requested query string is too long or the parameter '${k}' is given more than once.`);
    form.set(k, v);
  }
  return form;
}

/** Resolves the audience a request asks for; v1 takes `resource`, v2 a single `scope` ending in /.default. */
function requestedAudience(ctx, form, version, tenant) {
  if (version === 1) {
    const resource = form.get('resource');
    if (!resource) fail(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'resource'.");
    return { audience: resource, target: resource };
  }
  if (form.has('resource')) fail(ctx, 400, 'invalid_request', 901002, "The 'resource' request parameter is not supported.");
  const scope = form.get('scope');
  if (!scope) fail(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
  const scopes = scope.trim().split(/\s+/);
  const resources = new Set(scopes.map((s) => s.slice(0, s.lastIndexOf('/'))));
  if (resources.size > 1) fail(ctx, 400, 'invalid_scope', 700022, `The provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${scope} is not valid.`);
  if (scopes.length !== 1 || !scopes[0].endsWith('/.default') || scopes[0].length <= '/.default'.length) {
    fail(ctx, 400, 'invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  }
  // Entra derives the audience by cutting the scope at its last '/'.
  return { audience: scopes[0].slice(0, scopes[0].lastIndexOf('/')), target: scope, tenant };
}

function checkAssertion(ctx, form, tenant, app, version) {
  if (form.get('client_assertion_type') !== JWT_BEARER) {
    fail(ctx, 400, 'invalid_request', 90014, `The required field 'client_assertion_type' is missing or is not '${JWT_BEARER}'.`);
  }
  let decoded;
  try {
    decoded = decodeJwt(form.get('client_assertion'));
  } catch (err) {
    fail(ctx, 401, 'invalid_client', 50027, `JWT token is invalid or malformed (${err.message}).`);
  }
  const { header, payload } = decoded;
  if (header.alg !== 'RS256' && header.alg !== 'PS256') {
    fail(ctx, 401, 'invalid_client', 50027, `JWT token is invalid or malformed: unsupported alg '${header.alg}', expected RS256 or PS256.`);
  }
  const thumb = header['x5t#S256'] ?? header.x5t;
  const cert = app.certificates.find((c) => (header['x5t#S256'] !== undefined ? c.x5tS256 === header['x5t#S256'] : c.x5t === header.x5t));
  if (!cert) {
    fail(ctx, 401, 'invalid_client', 700027, `Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${thumb ?? '(none: the header has neither x5t nor x5t#S256)'}']`);
  }
  if (!verifySignature(decoded, cert.pem)) {
    fail(ctx, 401, 'invalid_client', 700027, 'Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]');
  }
  if (payload.iss !== app.clientId && payload.iss?.toLowerCase?.() !== app.clientId) {
    fail(ctx, 401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter (claim 'iss').");
  }
  if (payload.sub !== payload.iss) {
    fail(ctx, 401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter (claim 'sub').");
  }
  const now = nowSeconds();
  if (typeof payload.exp !== 'number' || typeof payload.nbf !== 'number') {
    fail(ctx, 401, 'invalid_client', 50027, 'JWT token is invalid or malformed: the exp and nbf claims must be numbers.');
  }
  if (payload.exp + CLOCK_SKEW_SECONDS < now || payload.nbf - CLOCK_SKEW_SECONDS > now) {
    fail(ctx, 401, 'invalid_client', 700024, `Client assertion is not within its valid time range. Current time: ${new Date(now * 1000).toISOString()}, assertion valid from ${new Date(payload.nbf * 1000).toISOString()}, expiry time of assertion ${new Date(payload.exp * 1000).toISOString()}.`);
  }
  const hosts = new Set([ctx.authority, `${ctx.scheme}://${ctx.headers.host}`]);
  const names = [tenant.id, ...tenant.domains];
  const accepted = new Set();
  for (const h of hosts) for (const n of names) for (const p of ['oauth2/token', 'oauth2/v2.0/token']) accepted.add(`${h}/${n}/${p}`.toLowerCase());
  if (typeof payload.aud !== 'string' || !accepted.has(payload.aud.toLowerCase())) {
    fail(ctx, 401, 'invalid_client', 50012, `Client assertion audience claim does not match Realm issuer: '${payload.aud}' is not this tenant's token endpoint (for example '${ctx.authority}/${tenant.id}/oauth2/${version === 1 ? '' : 'v2.0/'}token').`);
  }
  if (typeof payload.jti !== 'string' || payload.jti === '') {
    fail(ctx, 401, 'invalid_client', 50027, 'JWT token is invalid or malformed: the jti claim is missing.');
  }
  if (!ctx.directory.rememberJti(payload.jti, payload.exp)) {
    fail(ctx, 401, 'invalid_client', 50012, `The client assertion with jti '${payload.jti}' has already been used (token replay).`);
  }
}

function tokenHandler(version) {
  return (ctx) => {
    const dir = ctx.directory;
    const tenantName = ctx.params.tenant;
    ctx.info.grant = 'client_credentials';
    ctx.info.tenant = tenantName;
    if (ctx.method !== 'POST') fail(ctx, 400, 'invalid_request', 900561, 'The endpoint only accepts POST requests. Received a GET request.'.replace('GET', ctx.method));
    if (!TENANT_CHARS.test(tenantName)) fail(ctx, 400, 'invalid_request', 90002, `Tenant '${tenantName}' not found. Check to make sure you have the correct tenant ID.`);
    if (['common', 'consumers', 'organizations'].includes(tenantName.toLowerCase())) {
      fail(ctx, 400, 'invalid_request', 9001023, `The grant type is not supported over the /${tenantName.toLowerCase()} endpoint. Use a tenant-specific endpoint.`);
    }
    const tenant = dir.findTenant(tenantName);
    if (!tenant) fail(ctx, 400, 'invalid_request', 90002, `Tenant '${tenantName}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);

    const form = readForm(ctx);
    const grant = form.get('grant_type');
    if (!grant) fail(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
    if (grant !== 'client_credentials') fail(ctx, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`);

    // v2 also takes the secret as HTTP Basic (client_secret_basic).
    let basic = null;
    const authz = ctx.headers.authorization;
    if (version === 2 && authz && /^Basic\s+/i.test(authz)) {
      const decoded = Buffer.from(authz.replace(/^Basic\s+/i, ''), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) basic = { id: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)) };
    }
    const clientId = (form.get('client_id') || basic?.id || '').toLowerCase();
    if (!clientId) fail(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    ctx.info.clientId = clientId;
    const { audience, target } = requestedAudience(ctx, form, version, tenant);
    ctx.info.target = target;

    const app = tenant.apps.find((a) => a.clientId === clientId);
    if (!app) {
      fail(ctx, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantName}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`);
    }
    const secret = form.get('client_secret') ?? basic?.secret;
    const hasAssertion = form.has('client_assertion');
    if (secret !== undefined && hasAssertion) {
      fail(ctx, 400, 'invalid_request', 90023, 'The request contains both client_secret and client_assertion; give exactly one client credential.');
    }
    if (secret === undefined && !hasAssertion) {
      fail(ctx, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    let appidacr;
    if (secret !== undefined) {
      ctx.info.auth = 'client_secret';
      const ok = app.secrets.some((s) => s.length === secret.length && crypto.timingSafeEqual(Buffer.from(s), Buffer.from(secret)));
      if (!ok) fail(ctx, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
      appidacr = '1';
    } else {
      ctx.info.auth = 'client_assertion';
      checkAssertion(ctx, form, tenant, app, version);
      appidacr = '2';
    }
    if (!dir.isKnownResource(audience)) {
      fail(ctx, 400, 'invalid_resource', 500011, `The resource principal named ${audience} was not found in the tenant named ${tenantName}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`);
    }

    const t = dir.issue({ tenantId: tenant.id, audience, appid: app.clientId, oid: app.objectId, appidacr });
    ctx.info.outcome = 'issued';
    ctx.info.expiresIn = t.lifetime;
    const headers = { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' };
    if (version === 1) {
      return jsonResponse(200, {
        token_type: 'Bearer',
        expires_in: String(t.lifetime),
        ext_expires_in: String(t.lifetime),
        expires_on: String(t.exp),
        not_before: String(t.nbf),
        resource: target,
        access_token: t.accessToken,
      }, headers);
    }
    return jsonResponse(200, { token_type: 'Bearer', expires_in: t.lifetime, ext_expires_in: t.lifetime, access_token: t.accessToken }, headers);
  };
}

function discoveryHandler(ctx) {
  const tenant = ctx.directory.findTenant(ctx.params.tenant);
  if (!tenant) return aadError(ctx, 400, 'invalid_tenant', 90002, `Tenant '${ctx.params.tenant}' not found.`);
  const v2 = Boolean(ctx.params.v2);
  const base = `${ctx.authority}/${tenant.id}`;
  return jsonResponse(200, {
    token_endpoint: `${base}/oauth2/${v2 ? 'v2.0/' : ''}token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/${v2 ? 'v2.0/' : ''}keys`,
    issuer: v2 ? `${ctx.authority}/${tenant.id}/v2.0` : `https://sts.windows.net/${tenant.id}/`,
    response_types_supported: ['code', 'id_token', 'token id_token'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    tenant_region_scope: 'NA',
  });
}

export function aadErrors() {
  return {
    notFound: (ctx) => aadError(ctx, 404, 'invalid_request', 900023, `No Azure AD endpoint at '${ctx.path}'. Token endpoints are /{tenant}/oauth2/token and /{tenant}/oauth2/v2.0/token.`),
    methodNotAllowed: (ctx) => aadError(ctx, 405, 'invalid_request', 900561, `The endpoint does not accept ${ctx.method} requests.`),
    internal: (ctx) => aadError(ctx, 500, 'server_error', 90100, 'An internal error occurred in the emulator.'),
    fault: (ctx, fault) => (fault.status === 429 || fault.status >= 500
      ? aadError(ctx, fault.status, 'temporarily_unavailable', 90006, 'The server is temporarily too busy to handle the request (injected fault).')
      : aadError(ctx, fault.status, 'invalid_request', 90023, 'Injected fault.')),
  };
}

/** The request listener for the Azure AD host. */
export function createAadService({ directory, faults, log, scheme }) {
  const errors = aadErrors();
  const withCtx = (handler) => (ctx) => {
    ctx.directory = directory;
    ctx.authority = directory.authority;
    ctx.scheme = scheme;
    return handler(ctx);
  };
  const wrappedErrors = Object.fromEntries(Object.entries(errors).map(([k, fn]) => [k, (ctx, x) => {
    ctx.authority = directory.authority;
    return fn(ctx, x);
  }]));
  const ANY = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];
  return createService({
    service: 'aad',
    faults,
    log,
    errors: wrappedErrors,
    routes: [
      { name: 'aad.token.v1', method: ANY, path: /^\/([^/]+)\/oauth2\/token$/, keys: ['tenant'], handler: withCtx(tokenHandler(1)) },
      { name: 'aad.token.v2', method: ANY, path: /^\/([^/]+)\/oauth2\/v2\.0\/token$/, keys: ['tenant'], handler: withCtx(tokenHandler(2)) },
      { name: 'aad.discovery', method: 'GET', path: /^\/([^/]+)(\/v2\.0)?\/\.well-known\/openid-configuration$/, keys: ['tenant', 'v2'], handler: withCtx(discoveryHandler) },
      { name: 'aad.jwks', method: 'GET', path: /^\/([^/]+)\/discovery(?:\/v2\.0)?\/keys$/, keys: ['tenant'], handler: withCtx(() => jsonResponse(200, directory.jwks())) },
    ],
  });
}
