// The launcher: parallel instances on free ports, --tls end to end (HTTPS everywhere,
// bearer-token Blob access to Azurite), the env file, clean failure on bad config,
// and stop / owner exit leaving no process behind.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import {
  startEmulators, runStart, runStop, request, secretToken, eventually, isAlive, emulatorsDir,
} from './helpers.mjs';

function processesUsing(stateDir) {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      if (cmd.includes(stateDir) || cwd.startsWith(stateDir)) found.push(Number(pid));
    } catch { /* gone or not ours to read */ }
  }
  return found.filter(isAlive);
}

describe('emulator launcher', () => {
  let plain;
  let secure;
  before(async () => {
    [plain, secure] = await Promise.all([startEmulators(), startEmulators({ tls: true })]);
  });
  after(async () => {
    await Promise.all([plain?.stop(), secure?.stop()]);
  });

  it('gives each instance its own loopback ports', () => {
    const ports = (emu) => Object.entries(emu.env).filter(([k, v]) => /ENDPOINT|AUTHORITY|CONTROL/.test(k) && /^https?:/.test(v)).map(([, v]) => new URL(v).port);
    const a = new Set(ports(plain));
    for (const p of ports(secure)) assert.ok(!a.has(p), `port ${p} used twice`);
    for (const v of Object.values(plain.env).filter((x) => /^https?:\/\//.test(x))) assert.equal(new URL(v).hostname, '127.0.0.1');
  });

  it('writes an env file that a shell can load as is', () => {
    const file = path.join(plain.stateDir, 'env');
    assert.equal(fs.statSync(file).mode & 0o077, 0, 'env holds secrets: owner-only');
    const out = execFileSync('bash', ['-c', `set -a; . '${file}'; set +a; printf '%s\\n%s\\n%s' "$LUFA_EMU_CLIENT_SECRET" "$LUFA_EMU_STORAGE_CONNECTION_STRING" "$LUFA_EMU_ML_TRAINED_MODEL_NAME"`]).toString();
    assert.deepEqual(out.split('\n'), [plain.env.LUFA_EMU_CLIENT_SECRET, plain.env.LUFA_EMU_STORAGE_CONNECTION_STRING, plain.env.LUFA_EMU_ML_TRAINED_MODEL_NAME]);
    assert.match(plain.env.LUFA_EMU_CLIENT_SECRET, /[+/=~]/);
  });

  it('with --tls, speaks HTTPS with the generated CA everywhere but the identity endpoints', async () => {
    const { env, ca } = secure;
    for (const k of ['LUFA_EMU_BLOB_ENDPOINT', 'LUFA_EMU_AAD_AUTHORITY', 'LUFA_EMU_ML_DATA_ENDPOINT', 'LUFA_EMU_ML_MANAGEMENT_ENDPOINT', 'LUFA_EMU_ML_ARM_ENDPOINT', 'LUFA_EMU_CONTROL']) {
      assert.match(env[k], /^https:\/\/127\.0\.0\.1:\d+/, k);
    }
    assert.match(env.LUFA_EMU_IMDS_ENDPOINT, /^http:\/\//);
    assert.ok(fs.existsSync(env.LUFA_EMU_CA_FILE));
    await assert.rejects(request(`${env.LUFA_EMU_AAD_AUTHORITY}/${env.LUFA_EMU_TENANT_ID}/v2.0/.well-known/openid-configuration`), /self-signed|certificate/i);
    const disc = await request(`${env.LUFA_EMU_AAD_AUTHORITY}/${env.LUFA_EMU_TENANT_ID}/v2.0/.well-known/openid-configuration`, { ca });
    assert.equal(disc.status, 200);
  });

  it('with --tls, Azurite takes bearer tokens from the Azure AD emulator', async () => {
    const { env, ca } = secure;
    const token = await secretToken(secure, { target: 'https://storage.azure.com/.default' });
    const headers = { authorization: `Bearer ${token}`, 'x-ms-version': '2025-11-05', 'x-ms-date': new Date().toUTCString() };
    const created = await request(`${env.LUFA_EMU_BLOB_ENDPOINT}/bearer-test?restype=container`, { method: 'PUT', headers: { ...headers, 'content-length': '0' }, ca });
    assert.equal(created.status, 201, created.text);
    const put = await request(`${env.LUFA_EMU_BLOB_ENDPOINT}/bearer-test/hello.txt`, {
      method: 'PUT', headers: { ...headers, 'x-ms-blob-type': 'BlockBlob', 'content-type': 'text/plain' }, body: 'hello', ca,
    });
    assert.equal(put.status, 201, put.text);
    const got = await request(`${env.LUFA_EMU_BLOB_ENDPOINT}/bearer-test/hello.txt`, { headers, ca });
    assert.equal(got.text, 'hello');
    // The Blob fault endpoint forwards to the same Azurite over TLS.
    const proxied = await request(`${env.LUFA_EMU_BLOB_FAULT_ENDPOINT}/bearer-test/hello.txt`, { headers, ca });
    assert.equal(proxied.status, 200, proxied.text);
    assert.equal(proxied.text, 'hello');
    // A token for another audience is refused by Azurite.
    const arm = await secretToken(secure, { target: 'https://management.azure.com/.default' });
    const refused = await request(`${env.LUFA_EMU_BLOB_ENDPOINT}/bearer-test/hello.txt`, { headers: { ...headers, authorization: `Bearer ${arm}` }, ca });
    assert.equal(refused.status, 403);
  });

  it('with --tls, a BES training job reads and writes Azurite over HTTPS', async () => {
    const { env, ca } = secure;
    const token = await secretToken(secure, { target: 'https://storage.azure.com/.default' });
    const headers = { authorization: `Bearer ${token}`, 'x-ms-version': '2025-11-05', 'x-ms-date': new Date().toUTCString() };
    await request(`${env.LUFA_EMU_BLOB_ENDPOINT}/tlsdata?restype=container`, { method: 'PUT', headers: { ...headers, 'content-length': '0' }, ca });
    const csv = `a,b\n${Array.from({ length: 10 }, (_, i) => `${i},${5 * i + 1}`).join('\n')}\n`;
    const up = await request(`${env.LUFA_EMU_BLOB_ENDPOINT}/tlsdata/in.csv`, { method: 'PUT', headers: { ...headers, 'x-ms-blob-type': 'BlockBlob' }, body: csv, ca });
    assert.equal(up.status, 201);
    const ref = (rel) => ({ ConnectionString: env.LUFA_EMU_STORAGE_CONNECTION_STRING, RelativeLocation: rel });
    const auth = { authorization: `Bearer ${env.LUFA_EMU_ML_TRAINING_API_KEY}` };
    const submit = await request(`${env.LUFA_EMU_ML_TRAINING_BES_URL}?api-version=2.0`, {
      method: 'POST', headers: auth, ca,
      body: {
        Inputs: Object.fromEntries(secure.info.ml.services.find((s) => s.kind === 'training').inputs.map((n) => [n, ref('tlsdata/in.csv')])),
        Outputs: { output1: ref('tlsdata/out/model.ilearner') },
        GlobalParameters: { 'Label column': 'b', 'Holdout fraction': '0' },
      },
    });
    assert.equal(submit.status, 200, submit.text);
    await request(`${env.LUFA_EMU_ML_TRAINING_BES_URL}/${submit.json}/start?api-version=2.0`, { method: 'POST', headers: auth, ca });
    const done = await eventually(async () => {
      const s = await request(`${env.LUFA_EMU_ML_TRAINING_BES_URL}/${submit.json}?api-version=2.0`, { headers: auth, ca });
      return s.json.StatusCode === 'Running' ? null : s.json;
    });
    assert.equal(done.StatusCode, 'Finished', done.Details);
    const loc = done.Results.output1;
    const model = await request(`${loc.BaseLocation}${loc.RelativeLocation}${loc.SasBlobToken}`, { ca });
    assert.equal(model.json.weights.a, 5);
    assert.equal(model.json.intercept, 1);
  });

  it('with --tls, injected resets and truncations reach the client', async () => {
    const { env, ca } = secure;
    const url = `${env.LUFA_EMU_AAD_AUTHORITY}/${env.LUFA_EMU_TENANT_ID}/discovery/v2.0/keys`;
    const set = await request(`${env.LUFA_EMU_CONTROL}/faults`, {
      method: 'PUT', ca, body: { rules: [{ route: 'aad.jwks', sequence: [{ type: 'reset' }, { type: 'reset', when: 'mid-body' }, { type: 'truncate' }] }] },
    });
    assert.equal(set.status, 200, set.text);
    await assert.rejects(request(url, { ca }), /ECONNRESET|socket hang up/);
    await assert.rejects(request(url, { ca }), /ECONNRESET|aborted/);
    await assert.rejects(request(url, { ca }), /aborted|ECONNRESET/);
    assert.equal((await request(url, { ca })).status, 200);
    const bad = await request(`${env.LUFA_EMU_ML_DATA_ENDPOINT}/workspaces/%E0%A4%A/services/x/jobs?api-version=2.0`, { method: 'POST', ca, body: {} });
    assert.equal(bad.status, 404);
    assert.equal(bad.json.error.code, 'NotFound');
  });

  it('refuses a second start on a running state dir', async () => {
    const r = await runStart(['--state', plain.stateDir, '--quiet']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /already running/);
  });

  it('fails clearly on a bad config and leaves nothing running', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lufa-emu-bad-'));
    const config = JSON.parse(fs.readFileSync(path.join(emulatorsDir, 'config', 'azureml.json'), 'utf8'));
    config.services[1].kind = 'predictive';
    const file = path.join(stateDir, 'bad-config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    try {
      const r = await runStart(['--state', stateDir, '--config', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /bad-config\.json: services\[1\]\.kind: expected "training" or "scoring", got "predictive"/);
      assert.match(r.stderr, /nothing was (started|left running)/);
      assert.deepEqual(processesUsing(stateDir), []);
      fs.writeFileSync(file, '{"region": ');
      const r2 = await runStart(['--state', stateDir, '--config', file]);
      assert.equal(r2.code, 1);
      assert.match(r2.stderr, /bad-config\.json: not valid JSON/);
      assert.deepEqual(processesUsing(stateDir), []);
    } finally {
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('stop ends exactly the recorded processes', async () => {
    const emu = await startEmulators();
    const { supervisor, azurite } = emu.info.pids;
    assert.ok(isAlive(supervisor) && isAlive(azurite));
    const r = await runStop(['--state', emu.stateDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`pids ${supervisor}, ${azurite}`));
    assert.ok(!isAlive(supervisor) && !isAlive(azurite));
    assert.deepEqual(processesUsing(emu.stateDir), []);
    const again = await runStop(['--state', emu.stateDir]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /no emulator was running/);
    await emu.stop();
  });

  it('shuts down by itself when its state folder is removed', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lufa-emu-gone-'));
    const r = await runStart(['--state', stateDir, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const { pids } = JSON.parse(fs.readFileSync(path.join(stateDir, 'emulators.json'), 'utf8'));
    fs.rmSync(stateDir, { recursive: true, force: true });
    try {
      await eventually(() => !isAlive(pids.supervisor) && !isAlive(pids.azurite), { attempts: 200, everyMs: 50 });
    } finally {
      // Only if they are still ours (PIDs can be reused once they are gone).
      for (const pid of processesUsing(stateDir)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
  });

  it('shuts down by itself when its owner process exits', async () => {
    const owner = spawn('sleep', ['60'], { stdio: 'ignore' });
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lufa-emu-owner-'));
    try {
      const r = await runStart(['--state', stateDir, '--quiet', '--owner-pid', String(owner.pid)]);
      assert.equal(r.code, 0, r.stderr);
      const { pids } = JSON.parse(fs.readFileSync(path.join(stateDir, 'emulators.json'), 'utf8'));
      owner.kill('SIGKILL');
      await eventually(() => !isAlive(pids.supervisor) && !isAlive(pids.azurite), { attempts: 200, everyMs: 50 });
    } finally {
      owner.kill('SIGKILL');
      await runStop(['--state', stateDir, '--quiet']);
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
