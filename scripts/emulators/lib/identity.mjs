// Managed identity endpoints: Azure VM IMDS (/metadata/identity/oauth2/token with
// `Metadata: true`) and the App Service / Functions form (IDENTITY_ENDPOINT with
// X-IDENTITY-HEADER, api-version 2019-08-01). Plain HTTP, as on the real platforms.

import crypto from 'node:crypto';
import { createService, jsonResponse, HttpError } from './http-kit.mjs';

const IMDS_API_VERSIONS = new Set(['2018-02-01', '2019-03-11', '2019-06-01', '2019-06-04', '2019-08-01', '2019-08-15', '2019-11-01', '2020-06-01', '2020-09-01', '2020-10-01', '2020-12-01', '2021-01-01', '2021-02-01', '2021-03-01', '2021-05-01', '2021-10-01', '2021-11-01', '2021-11-15', '2021-12-13', '2023-07-01']);

function imdsFail(ctx, status, error, description) {
  ctx.info.outcome = error;
  throw new HttpError(jsonResponse(status, { error, error_description: description }));
}

function appServiceFail(ctx, status, message) {
  ctx.info.outcome = `status ${status}`;
  throw new HttpError(jsonResponse(status, { statusCode: status, message, correlationId: crypto.randomUUID() }));
}

/** Query parameters as a map; a name given twice is an error on both platforms. */
function singleQuery(ctx, failFn) {
  const q = new Map();
  for (const [k, v] of ctx.query) {
    if (q.has(k)) failFn(`The query parameter '${k}' is given more than once.`);
    q.set(k, v);
  }
  return q;
}

function selectIdentity(directory, q, selectors, failFn) {
  const given = selectors.filter(([param]) => q.has(param));
  if (given.length > 1) failFn(`Give at most one of ${selectors.map(([p]) => p).join(', ')}.`);
  if (given.length === 0) {
    const system = directory.identities.find((mi) => mi.kind === 'system');
    if (!system) failFn('No system-assigned identity is enabled; name a user-assigned identity.');
    return system;
  }
  const [param, field] = given[0];
  const value = q.get(param).toLowerCase();
  const mi = directory.identities.find((m) => String(m[field]).toLowerCase() === value);
  if (!mi) failFn(`Identity not found: no managed identity with ${param} '${q.get(param)}' is assigned to this resource.`);
  return mi;
}

function mint(ctx, directory, mi, resource, failResource) {
  if (!directory.isKnownResource(resource)) failResource(resource);
  const t = directory.issue({
    tenantId: mi.tenantId,
    audience: resource,
    appid: mi.clientId,
    oid: mi.principalId,
    appidacr: '2',
    miResourceId: mi.resourceId,
  });
  ctx.info.outcome = 'issued';
  ctx.info.clientId = mi.clientId;
  ctx.info.expiresIn = t.lifetime;
  return t;
}

function imdsHandler(ctx) {
  const dir = ctx.directory;
  ctx.info.auth = 'imds';
  const failBad = (msg) => imdsFail(ctx, 400, 'invalid_request', msg);
  if (ctx.headers.metadata?.toLowerCase() !== 'true') imdsFail(ctx, 400, 'bad_request_102', 'Required metadata header not specified');
  if (ctx.headers['x-forwarded-for'] !== undefined) imdsFail(ctx, 400, 'bad_request_103', 'Request cannot contain the X-Forwarded-For header (IMDS refuses proxied requests).');
  const q = singleQuery(ctx, failBad);
  const apiVersion = q.get('api-version');
  if (!apiVersion) failBad("Required query variable 'api-version' is missing");
  if (!IMDS_API_VERSIONS.has(apiVersion)) failBad(`Invalid version '${apiVersion}' for 'api-version'`);
  const resource = q.get('resource');
  if (!resource) failBad("Required query variable 'resource' is missing");
  ctx.info.target = resource;
  const mi = selectIdentity(dir, q, [['client_id', 'clientId'], ['object_id', 'principalId'], ['msi_res_id', 'resourceId']], failBad);
  const t = mint(ctx, dir, mi, resource, (r) => imdsFail(ctx, 400, 'invalid_resource', `AADSTS500011: The resource principal named ${r} was not found in the tenant named ${mi.tenantId}.`));
  return jsonResponse(200, {
    access_token: t.accessToken,
    client_id: mi.clientId,
    expires_in: String(t.lifetime),
    expires_on: String(t.exp),
    ext_expires_in: String(t.lifetime),
    not_before: String(t.nbf),
    resource,
    token_type: 'Bearer',
    refresh_token: '',
  });
}

function appServiceHandler(ctx) {
  const dir = ctx.directory;
  ctx.info.auth = 'app_service';
  const failBad = (msg) => appServiceFail(ctx, 400, msg);
  const header = ctx.headers['x-identity-header'];
  const expected = ctx.identityHeader;
  if (header === undefined) appServiceFail(ctx, 401, 'The X-IDENTITY-HEADER request header is missing.');
  if (header.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(header), Buffer.from(expected))) {
    appServiceFail(ctx, 401, 'The X-IDENTITY-HEADER request header does not match IDENTITY_HEADER.');
  }
  const q = singleQuery(ctx, failBad);
  const apiVersion = q.get('api-version');
  if (apiVersion !== '2019-08-01') failBad(`The api-version '${apiVersion ?? ''}' is not supported; use 2019-08-01.`);
  const resource = q.get('resource');
  if (!resource) failBad("The 'resource' query parameter is required.");
  ctx.info.target = resource;
  const mi = selectIdentity(dir, q, [['client_id', 'clientId'], ['principal_id', 'principalId'], ['object_id', 'principalId'], ['mi_res_id', 'resourceId']], failBad);
  const t = mint(ctx, dir, mi, resource, (r) => appServiceFail(ctx, 500, `An unexpected error occurred while fetching the AAD token: AADSTS500011: The resource principal named ${r} was not found.`));
  return jsonResponse(200, {
    access_token: t.accessToken,
    expires_on: String(t.exp),
    not_before: String(t.nbf),
    resource,
    token_type: 'Bearer',
    client_id: mi.clientId,
  });
}

export const APP_SERVICE_PATH = '/msi/token';

/** The request listener for the identity host (IMDS and App Service share one port). */
export function createIdentityService({ directory, identityHeader, faults, log }) {
  const withCtx = (handler) => (ctx) => {
    ctx.directory = directory;
    ctx.identityHeader = identityHeader;
    return handler(ctx);
  };
  const plainError = (status, message) => jsonResponse(status, { error: status >= 500 ? 'unknown' : 'invalid_request', error_description: message });
  return createService({
    service: 'identity',
    faults,
    log,
    errors: {
      notFound: (ctx) => plainError(404, `No managed-identity endpoint at '${ctx.path}'.`),
      methodNotAllowed: (ctx) => plainError(405, `The endpoint does not accept ${ctx.method} requests.`),
      internal: () => plainError(500, 'An internal error occurred in the emulator.'),
      fault: (ctx, fault) => plainError(fault.status, 'Injected fault.'),
    },
    routes: [
      { name: 'identity.imds', method: 'GET', path: /^\/metadata\/identity\/oauth2\/token$/, handler: withCtx(imdsHandler) },
      { name: 'identity.appservice', method: 'GET', path: /^\/msi\/token$/, handler: withCtx(appServiceHandler) },
    ],
  });
}
