// Shared helpers for the emulator suites: start/stop a private set of emulators, plain
// HTTP(S) requests, tokens, and the official Blob SDK loaded from the emulators' packages.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const emulatorsDir = path.join(repoRoot, 'scripts', 'emulators');

function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: repoRoot, ...opts }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

export const runStart = (args) => run(path.join(emulatorsDir, 'start'), args);
export const runStop = (args) => run(path.join(emulatorsDir, 'stop'), args);

/** Starts emulators in a fresh state dir; the returned handle's stop() is safe to call twice. */
export async function startEmulators({ tls = false, extraArgs = [] } = {}) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lufa-emu-test-'));
  const args = ['--state', stateDir, '--quiet', '--owner-pid', String(process.pid), ...extraArgs];
  if (tls) args.push('--tls');
  const r = await runStart(args);
  if (r.code !== 0) {
    fs.rmSync(stateDir, { recursive: true, force: true });
    throw new Error(`start failed (${r.code}): ${r.stderr}`);
  }
  const info = JSON.parse(fs.readFileSync(path.join(stateDir, 'emulators.json'), 'utf8'));
  const ca = info.caFile ? fs.readFileSync(info.caFile) : undefined;
  let stopped = false;
  return {
    stateDir,
    info,
    env: info.env,
    ca,
    async stop() {
      if (stopped) return;
      stopped = true;
      await runStop(['--state', stateDir, '--quiet']);
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** One request, no connection reuse. Resolves {status, headers, text, json} or rejects on network errors. */
export function request(url, { method = 'GET', headers = {}, body, ca, timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const data = body === undefined ? undefined : (typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data !== undefined && typeof body === 'object' && !Buffer.isBuffer(body) && !h['content-type']) h['content-type'] = 'application/json';
    if (data !== undefined) h['content-length'] = String(Buffer.byteLength(data));
    const req = mod.request(url, { method, headers: h, ca, agent: false, timeout }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

export function form(fields) {
  return new URLSearchParams(fields).toString();
}

export async function secretToken(emu, { version = 2, target, tenant } = {}) {
  const { env, ca } = emu;
  const t = tenant ?? env.LUFA_EMU_TENANT_ID;
  const fields = { grant_type: 'client_credentials', client_id: env.LUFA_EMU_CLIENT_ID, client_secret: env.LUFA_EMU_CLIENT_SECRET };
  if (version === 1) fields.resource = target; else fields.scope = target;
  const r = await request(`${env.LUFA_EMU_AAD_AUTHORITY}/${t}/oauth2/${version === 2 ? 'v2.0/' : ''}token`, {
    method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(fields),
  });
  if (r.status !== 200) throw new Error(`token request failed: ${r.status} ${r.text}`);
  return r.json.access_token;
}

export function decodeClaims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/** A client assertion JWT signed with `key` (PEM); `header` and `claims` override the defaults. */
export function makeAssertion({ key, certPem, aud, clientId, alg = 'RS256', header = {}, claims = {} }) {
  const der = new crypto.X509Certificate(certPem).raw;
  const h = { alg, typ: 'JWT' };
  if (alg === 'PS256') h['x5t#S256'] = crypto.createHash('sha256').update(der).digest('base64url');
  else h.x5t = crypto.createHash('sha1').update(der).digest('base64url');
  Object.assign(h, header);
  const now = Math.floor(Date.now() / 1000);
  const c = { aud, iss: clientId, sub: clientId, jti: crypto.randomUUID(), nbf: now, iat: now, exp: now + 600, ...claims };
  const input = `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${Buffer.from(JSON.stringify(c)).toString('base64url')}`;
  const sig = alg === 'PS256'
    ? crypto.sign('sha256', Buffer.from(input), { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    : crypto.sign('sha256', Buffer.from(input), key);
  return `${input}.${sig.toString('base64url')}`;
}

let blobSdk;
/** The official @azure/storage-blob package, from the emulators' own node_modules. */
export async function blobSdkModule() {
  if (!blobSdk) {
    const require = createRequire(path.join(emulatorsDir, 'package.json'));
    blobSdk = await import(pathToFileURL(require.resolve('@azure/storage-blob')).href);
  }
  return blobSdk;
}

export async function uploadText(emu, container, name, text) {
  const { BlobServiceClient } = await blobSdkModule();
  const svc = BlobServiceClient.fromConnectionString(emu.env.LUFA_EMU_STORAGE_CONNECTION_STRING);
  const c = svc.getContainerClient(container);
  await c.createIfNotExists();
  await c.getBlockBlobClient(name).upload(text, Buffer.byteLength(text));
}

export async function downloadText(emu, container, name) {
  const { BlobServiceClient } = await blobSdkModule();
  const svc = BlobServiceClient.fromConnectionString(emu.env.LUFA_EMU_STORAGE_CONNECTION_STRING);
  return (await svc.getContainerClient(container).getBlockBlobClient(name).downloadToBuffer()).toString('utf8');
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value; fails after `attempts` tries (not a timing assertion). */
export async function eventually(check, { attempts = 200, everyMs = 50 } = {}) {
  for (let i = 0; i < attempts; i += 1) {
    const v = await check();
    if (v) return v;
    await sleep(everyMs);
  }
  throw new Error('condition not reached');
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export async function control(emu, method, pathSuffix, body) {
  return request(`${emu.env.LUFA_EMU_CONTROL}${pathSuffix}`, { method, body, ca: emu.ca });
}
