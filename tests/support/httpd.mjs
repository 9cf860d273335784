#!/usr/bin/env node
// The HTTP test server of lufa's specs and benchmarks (node:http / node:https only).
//
//   node tests/support/httpd.mjs [--port-file FILE] [--tls [--self-signed] [--max-tls VERSION]] [--parent-pid PID]
//
// Listens on 127.0.0.1, on a port the OS picks, prints `{"port":...}` on stdout and writes
// {port, pid, url, tls, ca_file} to FILE (atomically, so a poller never reads half of it).
// With --tls it makes a CA and a server certificate for 127.0.0.1/localhost with the openssl CLI
// in a temporary directory, removed on exit. It exits on SIGTERM/SIGINT, and when the process named
// by --parent-pid is gone (without that option: when its parent process goes away).
//
// Routes (query parameters in brackets):
//   /echo                      JSON: method, path, query, headers, body_length, body_sha256, connection
//                              [status] answers with that status instead of 200
//   /status/NNN                that status with a small text body
//   /delay                     [ms] waits, then JSON {waited_ms, reached}; [group] tracks overlap under that
//                              name; [wait_for=N] first holds until N requests of the group are in flight
//                              together (reached=true) or [wait_timeout_ms] (20 s) passes (reached=false)
//   /respond-headers           answers 200 with every query parameter as a response header (repeats kept)
//   /bytes                     [n, seed] n deterministic bytes with Content-Length; [chunked=1] without
//   /bytes-sha256              [n, seed] JSON {n, sha256} of what /bytes sends, without sending it
//   /chunked                   [chunks, size, delay_ms] chunked transfer encoding
//   /reset                     [when=before|mid, n] resets the connection before or in the middle of the body
//   /flaky                     [key, fail, status=503, retry_after, retry_after_date (seconds from now),
//                              mode=status|reset] fails `fail` times per key, then JSON {attempts}
//   /attempts                  [key] JSON {attempts} seen for that key so far
//   /upload                    reads the whole request body ([pause_ms] between chunks: a slow reader),
//                              JSON {length, sha256}
//   /stats                     JSON {requests, connections, in_flight, max_in_flight, groups}
//                              [group] only that group's {count, in_flight, max_in_flight, first_end, last_start}

import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const args = parseArgs(process.argv.slice(2));
const initialParent = process.ppid;
let tlsDir = null;

function parseArgs(argv) {
  const out = { portFile: null, tls: false, selfSigned: false, maxTls: null, parentPid: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port-file') out.portFile = argv[++i];
    else if (a === '--tls') out.tls = true;
    else if (a === '--self-signed') out.selfSigned = true;
    else if (a === '--max-tls') out.maxTls = argv[++i];  // e.g. TLSv1.1: an outdated server
    else if (a === '--parent-pid') out.parentPid = Number(argv[++i]);
    else {
      process.stderr.write(`httpd: unknown argument '${a}'\n`);
      process.exit(2);
    }
  }
  return out;
}

// ---- TLS material, made fresh at start ----

function makeCertificates() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lufa-httpd-'));
  const p = (name) => path.join(dir, name);
  const run = (...argv) => execFileSync('openssl', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (args.selfSigned) {
    // one certificate that signs itself, as `openssl req -x509` makes for a quick private server
    run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', p('server.key'), '-out', p('server.pem'), '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
    tlsDir = dir;
    return { dir, ca: p('server.pem'), key: fs.readFileSync(p('server.key')), cert: fs.readFileSync(p('server.pem')) };
  }
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=lufa test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(p('server.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ].join('\n') + '\n');
  run('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('server.ext'));
  tlsDir = dir;
  return { dir, ca: p('ca.pem'), key: fs.readFileSync(p('server.key')), cert: fs.readFileSync(p('server.pem')) };
}

// ---- deterministic content: a 1 MiB block from a seeded xorshift32, repeated ----

const BLOCK = 1 << 20;
const blocks = new Map();

function contentBlock(seed) {
  let b = blocks.get(seed);
  if (b) return b;
  b = Buffer.alloc(BLOCK);
  let x = (seed >>> 0) || 0x9e3779b9;
  for (let i = 0; i < BLOCK; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  blocks.set(seed, b);
  return b;
}

// Calls write(slice) for each piece of the n bytes of seed; write returns a promise when it must wait.
async function emitContent(n, seed, write) {
  const block = contentBlock(seed);
  let left = n;
  while (left > 0) {
    const take = Math.min(left, 64 * 1024);
    const start = (n - left) % BLOCK;
    const piece = start + take <= BLOCK ? block.subarray(start, start + take)
      : Buffer.concat([block.subarray(start), block.subarray(0, start + take - BLOCK)]);
    left -= take;
    const wait = write(piece);
    if (wait) await wait;
  }
}

function contentSha256(n, seed) {
  const h = crypto.createHash('sha256');
  const block = contentBlock(seed);
  let left = n;
  while (left > 0) {
    const take = Math.min(left, BLOCK);
    h.update(block.subarray(0, take));
    left -= take;
  }
  return h.digest('hex');
}

// ---- counters ----

const stats = { requests: 0, connections: 0, in_flight: 0, max_in_flight: 0 };
const groups = new Map();
const attempts = new Map();
let connectionSeq = 0;

function group(name) {
  let g = groups.get(name);
  if (!g) {
    g = { count: 0, in_flight: 0, max_in_flight: 0, first_end: null, last_start: null };
    Object.defineProperty(g, 'waiters', { value: [], enumerable: false });  // not part of /stats
    groups.set(name, g);
  }
  return g;
}

// ---- helpers ----

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function sendJson(res, status, value, headers = {}) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length, ...headers });
  res.end(body);
}

function sendText(res, status, text, headers = {}) {
  const body = Buffer.from(text);
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': body.length, ...headers });
  res.end(body);
}

// Reads the request body; pauses between chunks when pauseMs > 0 so the client must wait for window space.
function readBody(req, pauseMs = 0) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    let length = 0;
    req.on('data', (chunk) => {
      hash.update(chunk);
      length += chunk.length;
      if (pauseMs > 0) {
        req.pause();
        setTimeout(() => req.resume(), pauseMs);
      }
    });
    req.on('end', () => resolve({ length, sha256: hash.digest('hex') }));
    req.on('error', reject);
  });
}

function writeAsync(res, chunk) {
  if (res.write(chunk)) return null;
  return new Promise((resolve) => res.once('drain', resolve));
}

// Ends the request's connection with a TCP reset.
function resetConnection(req) {
  const conn = connections.get(req.socket.remotePort);
  (conn ? conn.tcp : req.socket).resetAndDestroy();
}

function intParam(q, name, def) {
  const v = q.get(name);
  if (v === null || v === '') return def;
  const n = Number(v);
  return Number.isFinite(n) ? Math.trunc(n) : def;
}

// ---- routes ----

async function handle(req, res, url) {
  const q = url.searchParams;
  const route = url.pathname;

  if (route === '/echo') {
    const body = await readBody(req);
    return sendJson(res, intParam(q, 'status', 200), {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(q),
      headers: req.headers,
      body_length: body.length,
      body_sha256: body.sha256,
      connection: connections.get(req.socket.remotePort)?.id,
    });
  }

  const status = route.match(/^\/status\/(\d{3})$/);
  if (status) {
    await readBody(req);
    return sendText(res, Number(status[1]), `status ${status[1]}\n`);
  }

  if (route === '/delay') {
    await readBody(req);
    const ms = intParam(q, 'ms', 100);
    const g = q.get('group') ? group(q.get('group')) : null;
    let reached = null;
    if (g) {
      g.count++;
      g.in_flight++;
      g.max_in_flight = Math.max(g.max_in_flight, g.in_flight);
      g.last_start = Date.now();
      for (const wake of g.waiters.splice(0)) wake();
      // wait_for=N: hold the answer until N requests of the group are in flight at once (or a safety
      // timeout passes), which proves they were concurrent without measuring any time
      const want = intParam(q, 'wait_for', 0);
      if (want > 0) {
        const give_up = Date.now() + intParam(q, 'wait_timeout_ms', 20000);
        while (g.max_in_flight < want && Date.now() < give_up) {
          await new Promise((resolve) => {
            g.waiters.push(resolve);
            setTimeout(resolve, 100);
          });
        }
        reached = g.max_in_flight >= want;
      }
    }
    await sleep(ms);
    if (g) {
      g.in_flight--;
      if (g.first_end === null) g.first_end = Date.now();
    }
    return sendJson(res, 200, { waited_ms: ms, reached });
  }

  if (route === '/respond-headers') {
    await readBody(req);
    const headers = [];
    for (const [name, value] of q) headers.push(name, value);  // repeated names stay repeated
    res.writeHead(200, headers);
    return res.end('headers sent\n');
  }

  if (route === '/bytes') {
    await readBody(req);
    const n = intParam(q, 'n', 1024);
    const seed = intParam(q, 'seed', 1);
    const headers = { 'content-type': 'application/octet-stream' };
    if (q.get('chunked') !== '1') headers['content-length'] = n;
    res.writeHead(200, headers);
    await emitContent(n, seed, (piece) => writeAsync(res, piece));
    return res.end();
  }

  if (route === '/bytes-sha256') {
    await readBody(req);
    const n = intParam(q, 'n', 1024);
    return sendJson(res, 200, { n, sha256: contentSha256(n, intParam(q, 'seed', 1)) });
  }

  if (route === '/chunked') {
    await readBody(req);
    const chunks = intParam(q, 'chunks', 5);
    const size = intParam(q, 'size', 10);
    const delay = intParam(q, 'delay_ms', 0);
    res.writeHead(200, { 'content-type': 'text/plain' });  // no length: node uses chunked encoding
    for (let i = 0; i < chunks; i++) {
      const wait = writeAsync(res, Buffer.alloc(size, 97 + (i % 26)));
      if (wait) await wait;
      if (delay) await sleep(delay);
    }
    return res.end();
  }

  if (route === '/reset') {
    await readBody(req);
    if (q.get('when') === 'mid') {
      const n = intParam(q, 'n', 1 << 20);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      res.write(contentBlock(7).subarray(0, Math.min(BLOCK, Math.floor(n / 2))));
      await sleep(50);  // let the first half reach the client, so the reset really is mid-body
    }
    resetConnection(req);
    return undefined;
  }

  if (route === '/flaky') {
    await readBody(req);
    const key = q.get('key') || 'default';
    const count = (attempts.get(key) || 0) + 1;
    attempts.set(key, count);
    if (count <= intParam(q, 'fail', 1)) {
      if (q.get('mode') === 'reset') {
        resetConnection(req);
        return undefined;
      }
      const headers = {};
      if (q.get('retry_after') !== null) headers['retry-after'] = q.get('retry_after');
      if (q.get('retry_after_date') !== null) {
        const at = new Date(Date.now() + 1000 * Number(q.get('retry_after_date')));
        headers['retry-after'] = at.toUTCString();
      }
      return sendText(res, intParam(q, 'status', 503), 'try again later\n', headers);
    }
    return sendJson(res, 200, { attempts: count });
  }

  if (route === '/attempts') {
    return sendJson(res, 200, { attempts: attempts.get(q.get('key') || 'default') || 0 });
  }

  if (route === '/upload') {
    const body = await readBody(req, intParam(q, 'pause_ms', 0));
    return sendJson(res, 200, body);
  }

  if (route === '/stats') {
    await readBody(req);
    if (q.get('group')) return sendJson(res, 200, group(q.get('group')));
    // this request itself is not counted as in flight
    return sendJson(res, 200, { ...stats, in_flight: stats.in_flight - 1, groups: Object.fromEntries(groups) });
  }

  await readBody(req);
  return sendText(res, 404, `no route ${route}\n`);
}

function onRequest(req, res) {
  stats.requests++;
  stats.in_flight++;
  stats.max_in_flight = Math.max(stats.max_in_flight, stats.in_flight);
  res.on('close', () => { stats.in_flight--; });
  let url;
  try {
    url = new URL(req.url, 'http://127.0.0.1');
  } catch {
    return sendText(res, 400, 'bad request target\n');
  }
  handle(req, res, url).catch((err) => {
    if (!res.headersSent) sendText(res, 500, `${err && err.message}\n`);
    else res.destroy();
  });
  return undefined;
}

// ---- start, announce, stop ----

const tls = args.tls ? makeCertificates() : null;
const server = tls
  ? https.createServer({ key: tls.key, cert: tls.cert, ...(args.maxTls ? {
      minVersion: 'TLSv1', maxVersion: args.maxTls, ciphers: 'DEFAULT@SECLEVEL=0' } : {}) }, onRequest)
  : http.createServer(onRequest);
server.keepAliveTimeout = 30000;
server.headersTimeout = 60000;
server.requestTimeout = 0;  // large slow uploads are part of the tests
// Client connections by their remote port: a TLS socket and the TCP socket under it share it, so a
// route can both name the connection and reset the TCP connection itself (RST, not a TLS close_notify).
const connections = new Map();
server.on('connection', (socket) => {
  stats.connections++;
  const port = socket.remotePort;
  connections.set(port, { id: ++connectionSeq, tcp: socket });
  socket.on('close', () => {
    if (connections.get(port)?.tcp === socket) connections.delete(port);
  });
});
// A reset mid-request is what some routes do on purpose; it must not crash the server.
server.on('clientError', (err, socket) => { socket.destroy(); });

function cleanup() {
  if (tlsDir) {
    fs.rmSync(tlsDir, { recursive: true, force: true });
    tlsDir = null;
  }
}

function stop() {
  cleanup();
  process.exit(0);
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('exit', cleanup);

// The parent going away (a crashed spec, a killed benchmark) must not leave a server behind.
// With --parent-pid that process is watched (a shell that started us in the background may be long gone).
setInterval(() => {
  if (args.parentPid <= 0 && process.ppid !== initialParent) stop();
  if (args.parentPid > 0) {
    try {
      process.kill(args.parentPid, 0);
    } catch {
      stop();
    }
  }
}, 250).unref();

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const info = {
    port,
    pid: process.pid,
    tls: !!tls,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    ca_file: tls ? tls.ca : null,
  };
  if (args.portFile) {
    const tmp = `${args.portFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(info) + '\n');
    fs.renameSync(tmp, args.portFile);
  }
  process.stdout.write(JSON.stringify(info) + '\n');
});
