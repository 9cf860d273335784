// scripts/emulators/start and stop. `start` makes certificates, launches the supervisor
// (which runs Azurite and the emulators), waits until every service answers, and writes
// STATE/env and STATE/emulators.json. `stop` ends exactly the recorded processes by PID.

import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeClientCertificate, makeTlsCertificates } from './certs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const emulatorsDir = path.resolve(here, '..');
const repoRoot = path.resolve(emulatorsDir, '..', '..');
const START_TIMEOUT_MS = 60000;

const USAGE = `usage: scripts/emulators/start [--state DIR] [--tls] [--config FILE] [--aad-config FILE]
                               [--token-lifetime SECONDS] [--owner-pid PID] [--quiet]
       scripts/emulators/stop  [--state DIR]
DIR defaults to .state/emulators in the repository.`;

class UsageError extends Error {}

function parseArgs(argv, allowed) {
  const args = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const flag = a.replace(/^--/, '');
    if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (!allowed.includes(flag)) throw new UsageError(`unknown option '${a}'`);
    if (['tls', 'quiet'].includes(flag)) {
      args[flag] = true;
    } else {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError(`${a} needs a value`);
      i += 1;
      args[flag] = argv[i];
    }
  }
  return args;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped) counts as gone.
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** True when the process still runs one of our commands for this state dir (guards against PID reuse). */
function isOurs(pid, stateDir) {
  try {
    if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.startsWith(stateDir))) return true;
    // Azurite runs with its working directory inside the state dir.
    return fs.readlinkSync(`/proc/${pid}/cwd`).startsWith(stateDir);
  } catch {
    return false;
  }
}

function readJsonIfAny(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

async function terminate(pids, stateDir) {
  const ours = pids.filter((pid) => isAlive(pid) && isOurs(pid, stateDir));
  for (const pid of ours) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && ours.some(isAlive)) await sleep(50);
  for (const pid of ours.filter(isAlive)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  while (ours.some(isAlive) && Date.now() < deadline + 2000) await sleep(20);
  return ours;
}

function recordedPids(stateDir) {
  const pids = new Set();
  for (const f of ['pids.json', 'supervisor.json', 'emulators.json']) {
    const j = readJsonIfAny(path.join(stateDir, f));
    for (const pid of Object.values(j?.pids || {})) if (Number.isInteger(pid)) pids.add(pid);
  }
  return [...pids];
}

function ensurePackages() {
  const lock = path.join(emulatorsDir, 'package-lock.json');
  const installed = path.join(emulatorsDir, 'node_modules', '.package-lock.json');
  if (fs.existsSync(installed) && fs.statSync(installed).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  process.stderr.write('emulators: installing npm packages (npm ci) ...\n');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: emulatorsDir, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`npm ci in ${emulatorsDir} failed (exit ${r.status ?? r.signal}); run scripts/deps and try again`);
}

/** Any HTTP answer counts: the point is that the service listens and speaks HTTP(S). */
function probe(url, ca, headers = {}) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.request(url, { method: 'GET', headers, ca, timeout: 2000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(what, check, deadline) {
  let last;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`${what} did not answer in time${last ? ` (${last.message})` : ''}`);
}

function tail(file, lines = 15) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  | ${l}`).join('\n');
  } catch {
    return '';
  }
}

const shellQuote = (v) => `'${String(v ?? '').replace(/'/g, "'\\''")}'`;

function buildEnv(info, stateDir, caFile) {
  const training = info.ml.services.find((s) => s.kind === 'training');
  const scoring = info.ml.services.find((s) => s.kind === 'scoring');
  const updatable = scoring?.endpoints.find((e) => e.updatable);
  const system = info.identity.identities.find((m) => m.kind === 'system');
  const user = info.identity.identities.find((m) => m.kind === 'user');
  const blob = info.azurite.blobEndpoint;
  const protocol = blob.split(':')[0];
  const connectionString = `DefaultEndpointsProtocol=${protocol};AccountName=${info.azurite.accountName};AccountKey=${info.azurite.accountKey};BlobEndpoint=${blob};`;
  const stripQuery = (u) => u.split('?')[0];
  const env = {
    LUFA_EMU_STATE_DIR: stateDir,
    LUFA_EMU_TLS: info.tls ? '1' : '0',
    LUFA_EMU_CA_FILE: caFile ?? '',
    LUFA_EMU_AZURITE_VERSION: info.azurite.version,
    LUFA_EMU_BLOB_ENDPOINT: blob,
    LUFA_EMU_STORAGE_ACCOUNT: info.azurite.accountName,
    LUFA_EMU_STORAGE_KEY: info.azurite.accountKey,
    LUFA_EMU_STORAGE_CONNECTION_STRING: connectionString,
    LUFA_EMU_BLOB_FAULT_ENDPOINT: info.azurite.faultEndpoint,
    LUFA_EMU_STORAGE_FAULT_CONNECTION_STRING: connectionString.replace(blob, info.azurite.faultEndpoint),
    LUFA_EMU_AAD_AUTHORITY: info.aad.authority,
    LUFA_EMU_TENANT_ID: info.aad.tenantId,
    LUFA_EMU_TENANT_DOMAIN: info.aad.tenantDomains[0] ?? '',
    LUFA_EMU_CLIENT_ID: info.aad.clientId,
    LUFA_EMU_CLIENT_SECRET: info.aad.clientSecret,
    LUFA_EMU_CLIENT_CERT: path.join(stateDir, 'client-cert.pem'),
    LUFA_EMU_CLIENT_KEY: path.join(stateDir, 'client-key.pem'),
    LUFA_EMU_CLIENT_CERT_THUMBPRINT: info.aad.clientCertThumbprint,
    LUFA_EMU_AAD_JWKS_URI: info.aad.jwksUri,
    LUFA_EMU_IMDS_ENDPOINT: info.identity.imdsEndpoint,
    LUFA_EMU_IDENTITY_ENDPOINT: info.identity.identityEndpoint,
    LUFA_EMU_IDENTITY_HEADER: info.identity.identityHeader,
    LUFA_EMU_MI_CLIENT_ID: system?.clientId ?? '',
    LUFA_EMU_MI_USER_CLIENT_ID: user?.clientId ?? '',
    LUFA_EMU_MI_USER_RESOURCE_ID: user?.resourceId ?? '',
    LUFA_EMU_ML_DATA_ENDPOINT: info.ml.dataEndpoint,
    LUFA_EMU_ML_MANAGEMENT_ENDPOINT: info.ml.managementEndpoint,
    LUFA_EMU_ML_ARM_ENDPOINT: info.ml.armEndpoint,
    LUFA_EMU_ML_WORKSPACE_ID: info.ml.workspaceId,
    LUFA_EMU_ML_WORKSPACE_TOKEN: info.ml.workspaceToken,
    LUFA_EMU_ML_SUBSCRIPTION_ID: info.ml.subscriptionId,
    LUFA_EMU_ML_RESOURCE_GROUP: info.ml.resourceGroup,
    LUFA_EMU_ML_LOCATION: info.ml.location,
    LUFA_EMU_ADF_ARM_URL: info.adf.armEndpoint,
    LUFA_EMU_ADF_SUBSCRIPTION_ID: info.adf.subscriptionId,
    LUFA_EMU_ADF_RESOURCE_GROUP: info.adf.resourceGroup,
    LUFA_EMU_MLV2_MANAGEMENT_ENDPOINT: info.ml.v2.managementEndpoint,
    LUFA_EMU_MLV2_INFERENCE_ENDPOINT: info.ml.v2.inferenceEndpoint,
    LUFA_EMU_MLV2_WORKSPACE: info.ml.v2.workspace,
    LUFA_EMU_MLV2_ONLINE_ENDPOINT: info.ml.v2.onlineEndpoint,
    LUFA_EMU_MLV2_BATCH_ENDPOINT: info.ml.v2.batchEndpoint,
    LUFA_EMU_MLV2_MODEL: info.ml.v2.model,
  };
  if (training) {
    const e = training.endpoints[0];
    Object.assign(env, {
      LUFA_EMU_ML_TRAINING_SERVICE_ID: training.id,
      LUFA_EMU_ML_TRAINING_BES_URL: stripQuery(e.besUrl),
      LUFA_EMU_ML_TRAINING_API_KEY: e.primaryKey,
      LUFA_EMU_ML_TRAINING_INPUT: training.inputs[0] ?? '',
      LUFA_EMU_ML_TRAINING_INPUTS: training.inputs.join(','),
      LUFA_EMU_ML_TRAINING_MODEL_OUTPUT: Object.entries(training.outputs).find(([, t]) => t === 'trainedModel')?.[0] ?? '',
    });
  }
  if (scoring) {
    const e = scoring.endpoints[0];
    Object.assign(env, {
      LUFA_EMU_ML_SCORING_SERVICE_ID: scoring.id,
      LUFA_EMU_ML_SCORING_BES_URL: stripQuery(e.besUrl),
      LUFA_EMU_ML_SCORING_RRS_URL: stripQuery(e.rrsUrl),
      LUFA_EMU_ML_SCORING_API_KEY: e.primaryKey,
      LUFA_EMU_ML_TRAINED_MODEL_NAME: scoring.trainedModelName,
      LUFA_EMU_ML_WEB_SERVICE_NAME: scoring.armName ?? '',
      LUFA_EMU_ML_ARM_UPDATE_URL: scoring.armUrl ?? '',
    });
  }
  if (updatable) {
    Object.assign(env, {
      LUFA_EMU_ML_UPDATABLE_ENDPOINT: updatable.name,
      LUFA_EMU_ML_UPDATABLE_BES_URL: stripQuery(updatable.besUrl),
      LUFA_EMU_ML_UPDATABLE_RRS_URL: stripQuery(updatable.rrsUrl),
      LUFA_EMU_ML_UPDATABLE_API_KEY: updatable.primaryKey,
      LUFA_EMU_ML_UPDATE_RESOURCE_URL: updatable.updateResourceUrl,
    });
  }
  env.LUFA_EMU_CONTROL = info.control;
  return env;
}

async function start(argv) {
  const args = parseArgs(argv, ['state', 'tls', 'config', 'aad-config', 'token-lifetime', 'owner-pid', 'quiet']);
  const stateDir = path.resolve(args.state || path.join(repoRoot, '.state', 'emulators'));
  const live = recordedPids(stateDir).filter((pid) => isAlive(pid) && isOurs(pid, stateDir));
  if (live.length) throw new Error(`emulators are already running for ${stateDir} (pids ${live.join(', ')}); run scripts/emulators/stop --state ${stateDir} first`);
  for (const [flag, file] of [['config', args.config], ['aad-config', args['aad-config']]]) {
    if (file && !fs.existsSync(file)) throw new UsageError(`--${flag} ${file}: no such file`);
  }
  if (args['token-lifetime'] !== undefined && !/^[1-9]\d*$/.test(args['token-lifetime'])) throw new UsageError('--token-lifetime: expected a whole number of seconds');
  if (args['owner-pid'] !== undefined && !/^[1-9]\d*$/.test(args['owner-pid'])) throw new UsageError('--owner-pid: expected a process id');

  // Check the configuration before anything is started, so a bad file costs nothing.
  const mlConfigFile = path.resolve(args.config || path.join(emulatorsDir, 'config', 'azureml.json'));
  const aadConfigFile = path.resolve(args['aad-config'] || path.join(emulatorsDir, 'config', 'aad.json'));
  const { validateConfig, ConfigError: MlConfigError } = await import('./azureml/state.mjs');
  const { readJson, validateAadConfig, ConfigError } = await import('./aad-config.mjs');
  try {
    validateConfig(readJson(mlConfigFile), mlConfigFile);
    validateAadConfig(readJson(aadConfigFile), aadConfigFile);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof MlConfigError) throw new Error(`${err.message}; nothing was started.`);
    throw err;
  }

  ensurePackages();
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  for (const f of ['env', 'emulators.json', 'supervisor.json', 'supervisor.error', 'pids.json', 'supervisor.log', 'azurite.log']) {
    fs.rmSync(path.join(stateDir, f), { force: true });
  }
  const [caFile] = await Promise.all([args.tls ? makeTlsCertificates(stateDir) : null, makeClientCertificate(stateDir)]);

  const supArgs = [path.join(here, 'supervisor.mjs'), '--state', stateDir];
  if (args.tls) supArgs.push('--tls');
  if (args.config) supArgs.push('--config', path.resolve(args.config));
  if (args['aad-config']) supArgs.push('--aad-config', path.resolve(args['aad-config']));
  if (args['token-lifetime']) supArgs.push('--token-lifetime', args['token-lifetime']);
  if (args['owner-pid']) supArgs.push('--owner-pid', args['owner-pid']);
  const logFile = path.join(stateDir, 'supervisor.log');
  const logFd = fs.openSync(logFile, 'a');
  const env = { ...process.env };
  if (caFile) env.NODE_EXTRA_CA_CERTS = caFile;
  const child = spawn(process.execPath, supArgs, { cwd: stateDir, detached: true, stdio: ['ignore', logFd, logFd], env });
  fs.closeSync(logFd);
  child.unref();
  fs.writeFileSync(path.join(stateDir, 'pids.json'), `${JSON.stringify({ pids: { supervisor: child.pid } })}\n`);

  const deadline = Date.now() + START_TIMEOUT_MS;
  try {
    let info = null;
    while (!info) {
      if (Date.now() > deadline) throw new Error(`the emulators did not come up within ${START_TIMEOUT_MS / 1000} s`);
      if (!isAlive(child.pid)) {
        const reason = fs.existsSync(path.join(stateDir, 'supervisor.error')) ? fs.readFileSync(path.join(stateDir, 'supervisor.error'), 'utf8').trim() : 'it exited';
        throw new Error(`the emulator supervisor failed: ${reason}`);
      }
      info = readJsonIfAny(path.join(stateDir, 'supervisor.json'));
      if (!info) await sleep(50);
    }
    fs.writeFileSync(path.join(stateDir, 'pids.json'), `${JSON.stringify({ pids: info.pids })}\n`);
    const ca = caFile ? fs.readFileSync(caFile) : undefined;
    await Promise.all([
      waitFor(`Azurite (${info.azurite.blobEndpoint})`, async () => (await probe(`${info.azurite.blobEndpoint}?comp=list`, ca)) > 0, deadline),
      waitFor(`Blob fault proxy (${info.azurite.faultEndpoint})`, async () => (await probe(`${info.azurite.faultEndpoint}?comp=list`, ca)) > 0, deadline),
      waitFor(`Azure AD emulator (${info.aad.authority})`, async () => (await probe(`${info.aad.authority}/${info.aad.tenantId}/v2.0/.well-known/openid-configuration`, ca)) === 200, deadline),
      waitFor(`managed-identity endpoint (${info.identity.imdsEndpoint})`, async () => (await probe(`${info.identity.imdsEndpoint}/metadata/identity/oauth2/token`, undefined)) === 400, deadline),
      waitFor(`Azure ML emulator (${info.ml.dataEndpoint})`, async () => (await probe(`${info.ml.dataEndpoint}/`, ca)) === 404, deadline),
      waitFor(`Azure ML v2 emulator (${info.ml.v2.managementEndpoint})`, async () => (await probe(`${info.ml.v2.managementEndpoint}/`, ca)) === 404, deadline),
      waitFor(`control endpoint (${info.control})`, async () => (await probe(`${info.control}/health`, ca)) === 200, deadline),
    ]);

    // The probes above are not the caller's traffic: start with an empty request log.
    await new Promise((resolve, reject) => {
      const mod = info.control.startsWith('https:') ? https : http;
      const req = mod.request(`${info.control}/requests`, { method: 'DELETE', ca, agent: false }, (res) => { res.resume(); res.on('end', resolve); });
      req.on('error', reject);
      req.end();
    });
    const vars = buildEnv(info, stateDir, caFile);
    const envText = `# lufa emulators (${new Date().toISOString()}); load with: set -a; . ${path.join(stateDir, 'env')}; set +a\n${Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(v)}`).join('\n')}\n`;
    fs.writeFileSync(path.join(stateDir, 'env'), envText, { mode: 0o600 });
    const json = { ...info, stateDir, caFile: caFile ?? null, clientCert: vars.LUFA_EMU_CLIENT_CERT, clientKey: vars.LUFA_EMU_CLIENT_KEY, env: vars };
    fs.writeFileSync(path.join(stateDir, 'emulators.json'), `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600 });

    if (!args.quiet) {
      const training = info.ml.services.find((s) => s.kind === 'training');
      process.stdout.write([
        `lufa emulators are running (state: ${stateDir}${info.tls ? ', TLS' : ''})`,
        `  Blob (Azurite ${info.azurite.version})  ${info.azurite.blobEndpoint}`,
        `  Azure AD              ${info.aad.authority}  tenant ${info.aad.tenantId} (${info.aad.tenantDomains.join(', ')})`,
        `  Managed identity      IMDS ${info.identity.imdsEndpoint}  App Service ${info.identity.identityEndpoint}`,
        `  Azure ML v2           management ${info.ml.v2.managementEndpoint}  endpoints ${info.ml.v2.inferenceEndpoint}  workspace ${info.ml.v2.workspace}`,
        `  Azure ML              BES/RRS ${info.ml.dataEndpoint}  classic management ${info.ml.managementEndpoint}  ARM ${info.ml.armEndpoint}`,
        `  Data Factory (ARM)    ${info.adf.armEndpoint}  subscription ${info.adf.subscriptionId}  resource group ${info.adf.resourceGroup}`,
        training ? `  Training BES          ${vars.LUFA_EMU_ML_TRAINING_BES_URL}?api-version=2.0` : null,
        `  Control               ${info.control}`,
        'Storage connection string (Azurite\'s published development key):',
        `  ${vars.LUFA_EMU_STORAGE_CONNECTION_STRING}`,
        `Client secrets, API keys and the rest: ${path.join(stateDir, 'env')} (set -a; . FILE) or ${path.join(stateDir, 'emulators.json')}`,
        `Stop with: scripts/emulators/stop --state ${stateDir}`,
        '',
      ].filter((l) => l !== null).join('\n'));
    }
  } catch (err) {
    await terminate(recordedPids(stateDir).concat(child.pid), stateDir);
    const log = tail(logFile);
    throw new Error(`${err.message}; nothing was left running.${log ? `\nsupervisor.log:\n${log}` : ''}`);
  }
}

async function stop(argv) {
  const args = parseArgs(argv, ['state', 'quiet']);
  const stateDir = path.resolve(args.state || path.join(repoRoot, '.state', 'emulators'));
  if (!fs.existsSync(stateDir)) {
    if (!args.quiet) process.stdout.write(`no emulators recorded in ${stateDir}\n`);
    return;
  }
  const stopped = await terminate(recordedPids(stateDir), stateDir);
  const still = stopped.filter(isAlive);
  for (const f of ['pids.json', 'supervisor.json']) fs.rmSync(path.join(stateDir, f), { force: true });
  if (still.length) throw new Error(`could not stop pids ${still.join(', ')}`);
  if (!args.quiet) process.stdout.write(stopped.length ? `stopped the emulators in ${stateDir} (pids ${stopped.join(', ')})\n` : `no emulator was running for ${stateDir}\n`);
}

const [command, ...rest] = process.argv.slice(2);
const commands = { start, stop };
if (!commands[command]) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
commands[command](rest).catch((err) => {
  process.stderr.write(`emulators ${command}: ${err.message}\n`);
  if (err instanceof UsageError) process.stderr.write(`${USAGE}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
