// An opt-in fault-injection front for Azurite: forwards every request unchanged (path,
// query and headers, so Shared Key, SAS and bearer authorization still hold) and applies
// the same fault rules as the other emulators, with route names per Blob operation.
// Bodies are buffered, so it is meant for tests, not for multi-gigabyte transfers.

import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { createService, emptyResponse } from './http-kit.mjs';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection', 'upgrade']);

/** blob.get, blob.put, blob.block.put, blob.list, blob.container.create, … from method and query. */
export function blobRouteName(ctx) {
  const comp = (ctx.query.get('comp') || '').toLowerCase();
  const container = (ctx.query.get('restype') || '').toLowerCase() === 'container';
  const m = ctx.method;
  const segments = ctx.path.split('/').filter(Boolean).length; // account[/container[/blob…]]
  if (comp === 'block') return 'blob.block.put';
  if (comp === 'blocklist') return m === 'PUT' ? 'blob.blocklist.put' : 'blob.blocklist.get';
  if (comp === 'list') return segments <= 1 ? 'blob.containers.list' : 'blob.list';
  if (comp === 'userdelegationkey') return 'blob.userdelegationkey';
  if (comp) return `blob.${comp}`;
  if (container) return { PUT: 'blob.container.create', DELETE: 'blob.container.delete' }[m] || 'blob.container.properties';
  return { GET: 'blob.get', HEAD: 'blob.head', PUT: 'blob.put', DELETE: 'blob.delete' }[m] || 'blob.other';
}

function storageError(ctx, status, code, message) {
  const requestId = crypto.randomUUID();
  const headers = { 'x-ms-error-code': code, 'x-ms-request-id': requestId, 'x-ms-version': '2025-11-05' };
  if (ctx.method === 'HEAD') return emptyResponse(status, headers);
  return {
    status,
    headers: { ...headers, 'content-type': 'application/xml' },
    body: `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}</Message></Error>`,
  };
}

function faultCode(status) {
  if (status === 503) return ['ServerBusy', 'The server is currently unable to receive requests. Please retry your request.'];
  if (status === 500) return ['InternalError', 'The server encountered an internal error. Please retry the request.'];
  if (status === 429) return ['ServerBusy', 'Operations per second is over the account limit.'];
  if (status === 408 || status === 504) return ['OperationTimedOut', 'The operation could not be completed within the permitted time.'];
  return ['InjectedFault', 'Injected fault.'];
}

function forward(upstream, ctx) {
  const target = new URL(ctx.req.url, upstream);
  const headers = {};
  for (const [k, v] of Object.entries(ctx.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
  headers.host = target.host;
  if (ctx.body.length > 0 || ['PUT', 'POST', 'PATCH'].includes(ctx.method)) headers['content-length'] = String(ctx.body.length);
  const mod = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(target, { method: ctx.method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const out = {};
        for (const [k, v] of Object.entries(res.headers)) if (!HOP_BY_HOP.has(k) || (k === 'content-length' && ctx.method === 'HEAD')) out[k] = v;
        resolve({ status: res.statusCode, headers: out, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    req.end(ctx.body);
  });
}

export function createBlobProxy({ upstream, faults, log }) {
  return createService({
    service: 'blob',
    faults,
    log,
    maxBodyBytes: 256 * 1024 * 1024,
    errors: {
      notFound: (ctx) => storageError(ctx, 400, 'InvalidUri', 'The requested URI does not represent any resource on the server.'),
      methodNotAllowed: (ctx) => storageError(ctx, 405, 'UnsupportedHttpVerb', `The resource doesn't support the specified HTTP verb ${ctx.method}.`),
      internal: (ctx) => storageError(ctx, 502, 'InternalError', 'The fault proxy could not reach Azurite.'),
      fault: (ctx, fault) => {
        const [code, message] = faultCode(fault.status);
        return storageError(ctx, fault.status, code, message);
      },
    },
    routes: [
      {
        name: blobRouteName,
        method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'],
        path: /^\/.*$/,
        handler: (ctx) => forward(upstream, ctx),
      },
    ],
  });
}
