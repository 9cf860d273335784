// A small HTTP toolkit shared by the emulators: routing, body reading, fault injection
// and the request log. Handlers return {status, headers, body} instead of writing to the
// socket themselves, so that a fault can cut, delay or reset any response uniformly.

import http from 'node:http';
import https from 'node:https';
import { redactedPath } from './request-log.mjs';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Thrown by handlers to answer with a ready response (an error in the service's own shape). */
export class HttpError extends Error {
  constructor(response, message = 'request refused') {
    super(message);
    this.response = response;
  }
}

export function jsonResponse(status, value, headers = {}) {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: Buffer.from(JSON.stringify(value)),
  };
}

export function emptyResponse(status, headers = {}) {
  return { status, headers, body: Buffer.alloc(0) };
}

function toBuffer(body) {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(String(body));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Aborts a connection with a TCP RST; a TLS socket is reset through the TCP socket under it. */
/** An error whose message quotes the whole request, secrets included (the "echo" option of status faults). */
function echoError(status, ctx) {
  const message = `Request could not be processed: ${ctx.method} ${ctx.req.url} headers ${JSON.stringify(ctx.headers)} ` +
    `body ${ctx.body.toString('utf8')}`;
  return jsonResponse(status, { error: { code: 'InjectedFault', message } });
}

/** The fault's name in the request log: its type, with `when` for the kinds that have one. */
function faultName(fault) {
  if (fault.type === 'reset') return `reset:${fault.when || 'before'}`;
  if (fault.type === 'stall' && fault.when === 'after') return 'stall:after';
  return fault.type;
}

function hardReset(socket) {
  const tcp = socket._parent && typeof socket._parent.resetAndDestroy === 'function' ? socket._parent : socket;
  try {
    tcp.resetAndDestroy();
  } catch {
    tcp.destroy();
  }
  if (tcp !== socket) socket.destroy();
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(Object.assign(new Error('request body too large'), { tooLarge: true }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Builds a request listener for one emulated service.
 * routes: [{name, method, path: RegExp, keys: [param names], handler(ctx) -> response}]
 * errors: {notFound(ctx), methodNotAllowed(ctx), internal(ctx, err), tooLarge(ctx), fault(ctx, fault)}
 */
export function createService({ service, routes, errors, faults, log, maxBodyBytes = MAX_BODY_BYTES }) {
  return async function onRequest(req, res) {
    const started = process.hrtime.bigint();
    const url = new URL(req.url, 'http://emulator');
    const ctx = {
      req,
      service,
      method: req.method,
      url,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      params: {},
      info: {},
      body: Buffer.alloc(0),
    };
    let routeName = `${service}.unknown`;
    let fault = null;

    const record = (status, extra = {}) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.add({
        service,
        route: routeName,
        method: req.method,
        path: redactedPath(req.url),
        status,
        durationMs: Math.round(ms * 10) / 10,
        ...(fault ? { fault: faultName(fault) } : {}),
        ...(fault?.echo ? { echo: true } : {}),
        ...(fault?.type === 'stall' ? { seconds: fault.seconds } : {}),
        ...ctx.info,
        ...extra,
      });
    };

    let response;
    try {
      let route = null;
      let pathMatched = false;
      for (const candidate of routes) {
        const m = candidate.path.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (candidate.method !== req.method && !(Array.isArray(candidate.method) && candidate.method.includes(req.method))) continue;
        try {
          (candidate.keys || []).forEach((key, i) => {
            ctx.params[key] = m[i + 1] === undefined ? undefined : decodeURIComponent(m[i + 1]);
          });
        } catch {
          pathMatched = false; // malformed percent-encoding: no such resource
          break;
        }
        route = candidate;
        break;
      }
      if (route) routeName = typeof route.name === 'function' ? route.name(ctx) : route.name;

      try {
        ctx.body = await readBody(req, maxBodyBytes);
      } catch (err) {
        if (err.tooLarge) {
          record(413);
          return;
        }
        throw err;
      }

      if (route && faults) fault = faults.pick(routeName, req.method);
      if (fault?.type === 'reset' && (fault.when || 'before') === 'before') {
        hardReset(req.socket);
        record(null);
        return;
      }
      if (fault?.type === 'stall' && (fault.when || 'before') === 'before') {
        await sleep(fault.seconds * 1000);
        // a request its client gave up on while it waited is dropped unprocessed, as a queued one would be
        if (req.socket.destroyed) {
          record(null, { note: 'client went away' });
          return;
        }
      }
      if (fault?.type === 'status') {
        response = errors.fault(ctx, fault);
        // As some services do, the error quotes the request it refuses: URL with its query, headers, body.
        if (fault.echo) response = echoError(fault.status, ctx);
        if (fault.retryAfter !== undefined) response.headers['retry-after'] = String(fault.retryAfter);
      } else if (!route) {
        response = pathMatched ? errors.methodNotAllowed(ctx) : errors.notFound(ctx);
      } else {
        response = await route.handler(ctx);
      }
    } catch (err) {
      if (err instanceof HttpError) {
        response = err.response;
      } else {
        process.stderr.write(`[${service}] ${req.method} ${url.pathname}: ${err.stack || err}\n`);
        response = errors.internal(ctx, err);
      }
    }

    // processed; the answer comes late (a client that gives up first has lost it)
    if (fault?.type === 'stall' && fault.when === 'after') await sleep(fault.seconds * 1000);
    const body = toBuffer(response.body);
    const headers = { ...response.headers };
    // A HEAD answer keeps the Content-Length of the body it describes.
    if (req.method !== 'HEAD' || headers['content-length'] === undefined) headers['content-length'] = String(body.length);
    if (res.destroyed) {
      record(null, { note: 'client went away' });
      return;
    }

    if (fault?.type === 'reset' && fault.when === 'after') {
      hardReset(req.socket);
      record(null);
      return;
    }
    if (fault?.type === 'reset' && fault.when === 'mid-body') {
      res.writeHead(response.status, headers);
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => hardReset(req.socket));
      record(response.status);
      return;
    }
    if (fault?.type === 'truncate') {
      const keep = Math.floor(body.length * (fault.fraction ?? 0.5));
      res.writeHead(response.status, headers);
      // Headers promise the whole body; the socket closes cleanly after part of it.
      res.write(body.subarray(0, keep), () => req.socket.end());
      record(response.status);
      return;
    }
    res.writeHead(response.status, headers);
    res.end(body);
    record(response.status);
  };
}

/** Listens on 127.0.0.1 at a free port chosen by the OS; `tls` is {key, cert} or null. */
export function listen(listener, tls) {
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, listener) : http.createServer(listener);
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function parseJsonBody(ctx) {
  const text = ctx.body.toString('utf8');
  if (text.trim() === '') return { ok: false, message: 'the request body is empty; a JSON object was expected' };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: `the request body is not valid JSON (${err.message})` };
  }
}

export function bearerToken(ctx) {
  const header = ctx.headers.authorization;
  if (!header) return null;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1].trim() : '';
}
