// The long-running emulator process: runs the Azure AD, managed-identity, Azure ML
// (data plane, classic management, ARM; the v2 workspace and its endpoints), Data Factory management and control
// listeners, and Azurite as a child
// process. It reports its addresses and credentials in STATE/supervisor.json (mode 0600)
// and stops Azurite and itself on SIGTERM, when its owner process dies, or when Azurite dies.

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Azurite and the signing key are started before the heavier modules load, so the three
// overlap; the emulator modules are imported inside main().
import { ConfigError, readJson, validateAadConfig } from './aad-config.mjs';

let azuriteChild = null; // killed if start-up fails after Azurite was spawned
const here = path.dirname(fileURLToPath(import.meta.url));
const emulatorsDir = path.resolve(here, '..');
export const AZURITE_ACCOUNT = 'devstoreaccount1';
// Azurite's published development key (not a secret; the same in every installation).
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

function parseArgs(argv) {
  const args = { tls: false, tokenLifetime: undefined, ownerPid: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    if (a === '--state') args.state = value();
    else if (a === '--config') args.config = value();
    else if (a === '--aad-config') args.aadConfig = value();
    else if (a === '--tls') args.tls = true;
    else if (a === '--token-lifetime') args.tokenLifetime = Number(value());
    else if (a === '--owner-pid') args.ownerPid = Number(value());
    else throw new Error(`unknown option ${a}`);
  }
  if (!args.state) throw new Error('--state DIR is required');
  return args;
}

/** A client secret with the characters that break careless form encoding (+ / = ~). */
function makeClientSecret() {
  const b = (n) => crypto.randomBytes(n).toString('base64').replace(/[+/=]/g, '');
  return `${b(12)}~${b(9)}+/${b(6)}=`;
}

function writePrivate(file, value) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Starts Azurite's blob service on a free port; resolves with {child, endpoint, version}. */
function startAzurite(state, tls) {
  const main = path.join(emulatorsDir, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');
  const version = JSON.parse(fs.readFileSync(path.join(emulatorsDir, 'node_modules', 'azurite', 'package.json'), 'utf8')).version;
  const workspace = path.join(state, 'azurite');
  fs.mkdirSync(workspace, { recursive: true });
  const args = [main, '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--disableTelemetry',
    '--skipApiVersionCheck', '--silent'];
  if (tls) args.push('--oauth', 'basic', '--cert', path.join(state, 'tls', 'server-cert.pem'), '--key', path.join(state, 'tls', 'server-key.pem'));
  const logStream = fs.createWriteStream(path.join(state, 'azurite.log'), { flags: 'a' });
  const child = spawn(process.execPath, args, { cwd: workspace, stdio: ['ignore', 'pipe', 'pipe'] });
  azuriteChild = child;
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('Azurite did not report a listening address within 30 s (see azurite.log)')), 30000);
    const onData = (chunk) => {
      logStream.write(chunk);
      seen += chunk.toString();
      const m = /successfully listens on (https?:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        seen = '';
        child.stdout.off('data', onData);
        child.stdout.on('data', (c) => logStream.write(c));
        resolve({ child, endpoint: `${m[1]}/${AZURITE_ACCOUNT}`, version });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c) => logStream.write(c));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      let said = '';
      try {
        said = fs.readFileSync(path.join(state, 'azurite.log'), 'utf8').trim().split('\n').slice(-3).join(' / ');
      } catch { /* nothing logged */ }
      reject(new Error(`Azurite exited during start-up (${signal || `code ${code}`})${said ? `: ${said}` : ''}`));
    });
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const stateDir = path.resolve(args.state);
  const azuritePromise = startAzurite(stateDir, args.tls);
  azuritePromise.catch(() => {}); // awaited below; avoids an unhandled rejection meanwhile
  const keyPromise = promisify(crypto.generateKeyPair)('rsa', { modulusLength: 2048 });
  const [{ listen }, { FaultInjector }, { RequestLog }, { Directory, createAadService }, { createIdentityService, APP_SERVICE_PATH },
    { MlState, validateConfig, ConfigError: MlConfigError }, { createDataPlaneService }, { createClassicService }, { createArmService },
    { seedInitialModels }, { createControlService }, { createBlobProxy }, { AdfState, createAdfService },
    { V2State }, { createV2Service }, { createV2InferenceService }] = await Promise.all([
    import('./http-kit.mjs'), import('./faults.mjs'), import('./request-log.mjs'), import('./aad.mjs'), import('./identity.mjs'),
    import('./azureml/state.mjs'), import('./azureml/dataplane.mjs'), import('./azureml/classic.mjs'), import('./azureml/arm.mjs'),
    import('./azureml/models.mjs'), import('./control.mjs'), import('./blob-proxy.mjs'), import('./adf.mjs'),
    import('./azureml/v2-state.mjs'), import('./azureml/v2.mjs'), import('./azureml/v2-inference.mjs'),
  ]);
  const checked = (fn) => {
    try {
      return fn();
    } catch (err) {
      throw err instanceof MlConfigError ? new ConfigError(err.message) : err;
    }
  };
  const configFile = path.resolve(args.config || path.join(emulatorsDir, 'config', 'azureml.json'));
  const aadConfigFile = path.resolve(args.aadConfig || path.join(emulatorsDir, 'config', 'aad.json'));
  const mlConfig = checked(() => validateConfig(readJson(configFile), configFile));
  const aadConfig = validateAadConfig(readJson(aadConfigFile), aadConfigFile);
  if (args.tokenLifetime !== undefined) {
    if (!(Number.isInteger(args.tokenLifetime) && args.tokenLifetime > 0)) throw new ConfigError('--token-lifetime: expected a whole number of seconds');
    aadConfig.tokenLifetimeSeconds = args.tokenLifetime;
  }
  const tls = args.tls
    ? { key: fs.readFileSync(path.join(stateDir, 'tls', 'server-key.pem')), cert: fs.readFileSync(path.join(stateDir, 'tls', 'server-cert.pem')) }
    : null;
  const scheme = tls ? 'https' : 'http';
  const clientCertPem = fs.readFileSync(path.join(stateDir, 'client-cert.pem'), 'utf8');
  const clientSecret = makeClientSecret();
  const identityHeader = crypto.randomBytes(24).toString('hex');

  const log = new RequestLog();
  const faults = new FaultInjector();
  const directory = new Directory(aadConfig, { clientCertPem, clientSecret, authority: null, signingKey: await keyPromise });
  const aadDefaults = { tokenLifetimeSeconds: aadConfig.tokenLifetimeSeconds ?? null };
  const state = new MlState(mlConfig);
  const v2 = new V2State(mlConfig, state.settings);
  const urls = {};

  const servers = {};
  const url = (server, s = scheme) => `${s}://127.0.0.1:${server.address().port}`;
  servers.aad = await listen(createAadService({ directory, faults, log, scheme }), tls);
  directory.authority = url(servers.aad);
  servers.identity = await listen(createIdentityService({ directory, identityHeader, faults, log }), null);
  servers.mlData = await listen(createDataPlaneService({ state, faults, log }), tls);
  servers.mlManagement = await listen(createClassicService({ state, urls, faults, log }), tls);
  servers.arm = await listen(createArmService({ state, directory, urls, faults, log }), tls);
  // Data factories live in the same subscription and resource group as the ML web services.
  const adfState = new AdfState({ subscriptionId: mlConfig.subscriptionId, resourceGroup: mlConfig.resourceGroup });
  servers.adf = await listen(createAdfService({ state: adfState, directory, faults, log }), tls);
  urls.data = url(servers.mlData);
  urls.management = url(servers.mlManagement);
  urls.arm = url(servers.arm);
  servers.mlV2 = await listen(createV2Service({ v2, directory, urls, faults, log }), tls);
  servers.mlV2Inference = await listen(createV2InferenceService({ v2, directory, urls, faults, log }), tls);
  urls.v2 = url(servers.mlV2);
  urls.v2Inference = url(servers.mlV2Inference);

  let azurite = null;
  const runtime = {
    log,
    faults,
    state,
    v2,
    directory,
    health: () => ({ ok: Boolean(azurite), azurite: azurite ? azurite.endpoint : null, pid: process.pid }),
    publicInfo: () => info(false),
    reset: async () => {
      log.clear();
      faults.clear();
      directory.reset(aadDefaults);
      state.reset();
      adfState.reset();
      v2.reset();
      await seedInitialModels(state);
    },
  };
  servers.control = await listen(createControlService({ runtime }), tls);

  let stopping = false;
  const shutdown = (code, why) => {
    if (stopping) return;
    stopping = true;
    if (why) process.stderr.write(`supervisor: stopping: ${why}\n`);
    if (azurite?.child && azurite.child.exitCode === null) azurite.child.kill('SIGTERM');
    for (const s of Object.values(servers)) s.close();
    for (const s of Object.values(servers)) s.closeAllConnections?.();
    setTimeout(() => {
      if (azurite?.child && azurite.child.exitCode === null) azurite.child.kill('SIGKILL');
      process.exit(code);
    }, 300).unref();
  };
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));

  azurite = await azuritePromise;
  azurite.child.once('exit', (code, signal) => shutdown(1, `Azurite exited (${signal || `code ${code}`})`));
  servers.blobProxy = await listen(createBlobProxy({ upstream: new URL(azurite.endpoint).origin, faults, log }), tls);
  state.defaultStorage = { accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, blobEndpoint: azurite.endpoint };
  v2.storage = state.defaultStorage;
  await seedInitialModels(state);

  // A state folder that was deleted cannot be stopped any more: stop with it.
  setInterval(() => {
    if (!fs.existsSync(stateDir)) shutdown(0, `the state folder ${stateDir} was removed`);
  }, 2000).unref();

  if (args.ownerPid) {
    setInterval(() => {
      try {
        process.kill(args.ownerPid, 0);
      } catch {
        shutdown(0, `owner process ${args.ownerPid} is gone`);
      }
    }, 1000).unref();
  }

  function info(withSecrets) {
    const tenant = directory.tenants[0];
    const app = tenant.apps[0];
    const secret = (v) => (withSecrets ? v : undefined);
    return {
      tls: Boolean(tls),
      pids: { supervisor: process.pid, azurite: azurite.child.pid },
      azurite: {
        version: azurite.version,
        blobEndpoint: azurite.endpoint,
        faultEndpoint: `${url(servers.blobProxy)}/${AZURITE_ACCOUNT}`,
        accountName: AZURITE_ACCOUNT,
        accountKey: AZURITE_KEY,
      },
      aad: {
        authority: directory.authority,
        tenantId: tenant.id,
        tenantDomains: tenant.domains,
        clientId: app?.clientId,
        clientObjectId: app?.objectId,
        clientSecret: secret(clientSecret),
        clientCertThumbprint: app?.certificates[0]?.sha1Hex,
        jwksUri: `${directory.authority}/${tenant.id}/discovery/v2.0/keys`,
        tokenLifetimeSeconds: directory.settings.tokenLifetimeSeconds,
      },
      identity: {
        imdsEndpoint: url(servers.identity, 'http'),
        identityEndpoint: `${url(servers.identity, 'http')}${APP_SERVICE_PATH}`,
        identityHeader: secret(identityHeader),
        identities: directory.identities.map((m) => ({ kind: m.kind, clientId: m.clientId, principalId: m.principalId, resourceId: m.resourceId })),
      },
      ml: {
        dataEndpoint: urls.data,
        managementEndpoint: urls.management,
        armEndpoint: urls.arm,
        region: mlConfig.region,
        location: mlConfig.location,
        subscriptionId: mlConfig.subscriptionId,
        resourceGroup: mlConfig.resourceGroup,
        workspaceId: mlConfig.workspace.id,
        workspaceToken: secret(state.workspaceToken),
        v2: {
          managementEndpoint: urls.v2,
          inferenceEndpoint: urls.v2Inference,
          workspace: v2.config.workspace,
          onlineEndpoint: 'rentals',
          batchEndpoint: 'rentals-batch',
          model: 'rentals',
        },
        services: state.services.map((s) => ({
          id: s.id,
          name: s.name,
          kind: s.kind,
          armName: s.armName ?? null,
          trainedModelName: s.trainedModelName,
          inputs: s.inputs,
          outputs: s.outputs,
          globalParameters: s.globalParameters,
          armUrl: s.armName ? `${urls.arm}/subscriptions/${mlConfig.subscriptionId}/resourceGroups/${mlConfig.resourceGroup}/providers/Microsoft.MachineLearning/webServices/${s.armName}?api-version=2016-05-01-preview` : null,
          endpoints: s.endpoints.map((e) => ({
            name: e.name,
            id: e.id,
            updatable: e.updatable,
            besUrl: `${urls.data}/workspaces/${mlConfig.workspace.id}/services/${e.id}/jobs?api-version=2.0`,
            rrsUrl: `${urls.data}/workspaces/${mlConfig.workspace.id}/services/${e.id}/execute?api-version=2.0&details=true`,
            updateResourceUrl: `${urls.management}/workspaces/${mlConfig.workspace.id}/webservices/${s.id}/endpoints/${e.name}`,
            primaryKey: secret(e.keys.primary),
            secondaryKey: secret(e.keys.secondary),
          })),
        })),
      },
      adf: {
        armEndpoint: url(servers.adf),
        subscriptionId: mlConfig.subscriptionId,
        resourceGroup: mlConfig.resourceGroup,
      },
      control: `${url(servers.control)}/_emulator`,
    };
  }

  writePrivate(path.join(stateDir, 'supervisor.json'), info(true));
  process.stderr.write(`supervisor: ready (pid ${process.pid}, Azurite pid ${azurite.child.pid})\n`);
}

process.on('uncaughtException', (err) => {
  process.stderr.write(`supervisor: uncaught error: ${err.stack || err}\n`);
});

main().catch((err) => {
  const message = err instanceof ConfigError ? err.message : (err.stack || String(err));
  process.stderr.write(`supervisor: failed to start: ${message}\n`);
  if (azuriteChild && azuriteChild.exitCode === null) azuriteChild.kill('SIGKILL');
  try {
    const dir = process.argv[process.argv.indexOf('--state') + 1];
    if (dir) fs.writeFileSync(path.join(path.resolve(dir), 'supervisor.error'), `${err instanceof ConfigError ? err.message : err.message || err}\n`);
  } catch { /* the log has it */ }
  process.exit(2);
});
