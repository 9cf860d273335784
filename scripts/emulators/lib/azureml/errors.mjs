// Error bodies of the three Azure ML surfaces: the RRS/BES data plane, the classic
// management API and Azure Resource Manager.

import crypto from 'node:crypto';
import { jsonResponse, HttpError } from '../http-kit.mjs';

const CATEGORY_TEXT = {
  BadArgument: 'Invalid argument provided.',
  BadUserArgument: 'Invalid argument provided.',
  InvalidOperation: 'The operation is not valid in the current state.',
  Unauthorized: 'Invalid credentials provided.',
  NotFound: 'Resource not found.',
  MethodNotAllowed: 'The HTTP method is not allowed on this resource.',
  RequestThrottled: 'Request is throttled.',
  InternalError: 'The server encountered an internal error.',
  ServiceUnavailable: 'Service is temporarily unavailable.',
  GatewayTimeout: 'The gateway timed out.',
};

/** Data-plane (RRS/BES) error: {error: {code, message, details: [{code, message}]}}. */
export function mlError(ctx, status, category, code, message) {
  ctx.info.error = code;
  return jsonResponse(status, {
    error: { code: category, message: CATEGORY_TEXT[category] || category, details: [{ code, message }] },
  }, { 'x-ms-request-id': crypto.randomUUID() });
}

export function mlFail(ctx, status, category, code, message) {
  throw new HttpError(mlError(ctx, status, category, code, message));
}

function faultCategory(status) {
  if (status === 429) return ['RequestThrottled', 'TooManyRequests'];
  if (status === 503) return ['ServiceUnavailable', 'RequestThrottled'];
  if (status === 504) return ['GatewayTimeout', 'BackendScoreTimeout'];
  if (status >= 500) return ['InternalError', 'InternalError'];
  return ['BadArgument', 'InjectedFault'];
}

export const dataPlaneErrors = {
  notFound: (ctx) => mlError(ctx, 404, 'NotFound', 'ResourceNotFound', `No Azure ML data-plane resource at '${ctx.path}'.`),
  methodNotAllowed: (ctx) => mlError(ctx, 405, 'MethodNotAllowed', 'MethodNotAllowed', `${ctx.method} is not allowed on '${ctx.path}'.`),
  internal: (ctx) => mlError(ctx, 500, 'InternalError', 'InternalError', 'The emulator hit an internal error; see its log.'),
  fault: (ctx, fault) => {
    const [category, code] = faultCategory(fault.status);
    return mlError(ctx, fault.status, category, code, 'Injected fault.');
  },
};

/** Classic management API error: {error: {code, message}} with x-ms-request-id. */
export function mgmtError(ctx, status, code, message) {
  ctx.info.error = code;
  return jsonResponse(status, { error: { code, message } }, { 'x-ms-request-id': crypto.randomUUID() });
}

export function mgmtFail(ctx, status, code, message) {
  throw new HttpError(mgmtError(ctx, status, code, message));
}

export const managementErrors = {
  notFound: (ctx) => mgmtError(ctx, 404, 'NotFound', `No Azure ML management resource at '${ctx.path}'.`),
  methodNotAllowed: (ctx) => mgmtError(ctx, 405, 'MethodNotAllowed', `${ctx.method} is not allowed on '${ctx.path}'.`),
  internal: (ctx) => mgmtError(ctx, 500, 'InternalError', 'The emulator hit an internal error; see its log.'),
  fault: (ctx, fault) => mgmtError(ctx, fault.status, faultCategory(fault.status)[0], 'Injected fault.'),
};

/** ARM error: {error: {code, message}} with x-ms-request-id and x-ms-correlation-request-id. */
export function armError(ctx, status, code, message, extraHeaders = {}) {
  ctx.info.error = code;
  return jsonResponse(status, { error: { code, message } }, {
    'x-ms-request-id': crypto.randomUUID(),
    'x-ms-correlation-request-id': ctx.headers['x-ms-correlation-request-id'] || crypto.randomUUID(),
    ...extraHeaders,
  });
}

export function armFail(ctx, status, code, message, extraHeaders) {
  throw new HttpError(armError(ctx, status, code, message, extraHeaders));
}

export const armErrors = {
  notFound: (ctx) => armError(ctx, 404, 'InvalidResourceType', `No Azure Resource Manager resource type at '${ctx.path}'.`),
  methodNotAllowed: (ctx) => armError(ctx, 405, 'MethodNotAllowed', `${ctx.method} is not allowed on '${ctx.path}'.`),
  internal: (ctx) => armError(ctx, 500, 'InternalServerError', 'The emulator hit an internal error; see its log.'),
  fault: (ctx, fault) => {
    if (fault.status === 429) return armError(ctx, 429, 'TooManyRequests', 'Injected fault: too many requests.');
    if (fault.status >= 500) return armError(ctx, fault.status, fault.status === 503 ? 'ServiceUnavailable' : 'InternalServerError', 'Injected fault.');
    return armError(ctx, fault.status, 'BadRequest', 'Injected fault.');
  },
};
