// The Azure ML emulator's declared web services (from a JSON config) and its live state:
// endpoints with their keys and current models, BES jobs, ARM operations.

import crypto from 'node:crypto';
import { validateModel, ILEARNER_FORMAT } from './regression.mjs';

export class ConfigError extends Error {}

const HEX32 = /^[0-9a-f]{32}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OUTPUT_TYPES = new Set(['trainedModel', 'evaluation', 'scores']);
const ENDPOINT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$/;

const apiKey = () => crypto.randomBytes(66).toString('base64'); // 88 characters, like Studio's keys
const hexId = () => crypto.randomUUID().replace(/-/g, '');

function need(cond, file, path, expected, got) {
  if (!cond) throw new ConfigError(`${file}: ${path}: expected ${expected}${got === undefined ? '' : `, got ${JSON.stringify(got)}`}`);
}

/** Validates a parsed config; throws ConfigError naming the file and JSON path. */
export function validateConfig(cfg, file) {
  need(cfg && typeof cfg === 'object' && !Array.isArray(cfg), file, '(root)', 'an object');
  need(typeof cfg.region === 'string' && /^[a-z0-9]+$/.test(cfg.region), file, 'region', 'a region name such as "ussouthcentral"', cfg.region);
  need(typeof cfg.location === 'string' && cfg.location !== '', file, 'location', 'a display location such as "South Central US"', cfg.location);
  need(typeof cfg.subscriptionId === 'string' && GUID.test(cfg.subscriptionId), file, 'subscriptionId', 'a lowercase GUID', cfg.subscriptionId);
  need(typeof cfg.resourceGroup === 'string' && cfg.resourceGroup !== '', file, 'resourceGroup', 'a resource group name', cfg.resourceGroup);
  need(cfg.workspace && typeof cfg.workspace === 'object', file, 'workspace', 'an object {id, name}');
  need(typeof cfg.workspace.id === 'string' && HEX32.test(cfg.workspace.id), file, 'workspace.id', '32 lowercase hex digits', cfg.workspace.id);
  for (const k of ['jobDurationMs', 'armOperationMs']) {
    need(cfg[k] === undefined || (Number.isFinite(cfg[k]) && cfg[k] >= 0), file, k, 'a number of milliseconds >= 0', cfg[k]);
  }
  need(Array.isArray(cfg.services) && cfg.services.length > 0, file, 'services', 'a non-empty list');
  const ids = new Set();
  const armNames = new Set();
  cfg.services.forEach((s, i) => {
    const p = `services[${i}]`;
    need(s && typeof s === 'object', file, p, 'an object');
    need(typeof s.id === 'string' && HEX32.test(s.id), file, `${p}.id`, '32 lowercase hex digits', s.id);
    need(!ids.has(s.id), file, `${p}.id`, 'an id not used by another service or endpoint', s.id);
    ids.add(s.id);
    need(typeof s.name === 'string' && s.name !== '', file, `${p}.name`, 'a name');
    need(s.kind === 'training' || s.kind === 'scoring', file, `${p}.kind`, '"training" or "scoring"', s.kind);
    need(typeof s.trainedModelName === 'string' && s.trainedModelName !== '', file, `${p}.trainedModelName`, 'the trained-model module name, e.g. "Sample Model [trained model]"', s.trainedModelName);
    need(Array.isArray(s.inputs) && s.inputs.every((x) => typeof x === 'string' && x !== ''), file, `${p}.inputs`, 'a list of input names');
    need(s.outputs && typeof s.outputs === 'object' && !Array.isArray(s.outputs), file, `${p}.outputs`, 'an object output name -> type');
    for (const [name, type] of Object.entries(s.outputs)) {
      need(OUTPUT_TYPES.has(type), file, `${p}.outputs.${name}`, `one of ${[...OUTPUT_TYPES].join(', ')}`, type);
    }
    if (s.kind === 'training') {
      need(Object.values(s.outputs).includes('trainedModel'), file, `${p}.outputs`, 'an output of type "trainedModel" for a training service');
    }
    if (s.globalParameters !== undefined) {
      need(typeof s.globalParameters === 'object' && !Array.isArray(s.globalParameters), file, `${p}.globalParameters`, 'an object name -> {type, default, required}');
      for (const [name, gp] of Object.entries(s.globalParameters)) {
        need(gp && (gp.type === 'string' || gp.type === 'number'), file, `${p}.globalParameters.${name}.type`, '"string" or "number"', gp?.type);
      }
    }
    if (s.armName !== undefined) {
      need(typeof s.armName === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(s.armName), file, `${p}.armName`, 'an ARM resource name', s.armName);
      need(!armNames.has(s.armName.toLowerCase()), file, `${p}.armName`, 'a name not used by another service', s.armName);
      armNames.add(s.armName.toLowerCase());
    }
    const endpoints = s.endpoints ?? [{ name: 'default' }];
    need(Array.isArray(endpoints) && endpoints.length > 0 && endpoints[0].name === 'default', file, `${p}.endpoints`, 'a list starting with {"name": "default"}');
    endpoints.forEach((e, j) => {
      const q = `${p}.endpoints[${j}]`;
      need(typeof e.name === 'string' && ENDPOINT_NAME.test(e.name), file, `${q}.name`, 'at most 24 lowercase letters, digits or inner hyphens', e.name);
      if (j > 0) {
        need(typeof e.id === 'string' && HEX32.test(e.id), file, `${q}.id`, '32 lowercase hex digits (the endpoint\'s own service id)', e.id);
        need(!ids.has(e.id), file, `${q}.id`, 'an id not used by another service or endpoint', e.id);
        ids.add(e.id);
      }
      need(e.apiKey === undefined || (typeof e.apiKey === 'string' && e.apiKey.length >= 16), file, `${q}.apiKey`, 'a key of at least 16 characters');
    });
    if (s.kind === 'scoring') {
      need(s.initialModel !== undefined, file, `${p}.initialModel`, 'the model the scoring service serves before any update');
      try {
        validateModel({ format: ILEARNER_FORMAT, ...s.initialModel });
      } catch (err) {
        throw new ConfigError(`${file}: ${p}.initialModel: ${err.message.replace('.ilearner ', '')}`);
      }
    }
  });
  return cfg;
}

/** Live state built from a validated config; `reset()` returns to it. */
export class MlState {
  constructor(config) {
    this.config = config;
    this.keys = new Map(); // endpoint id -> {primary, secondary}, stable across resets
    this.workspaceToken = apiKey();
    this.defaultStorage = null;
    this.reset();
  }

  reset() {
    const c = this.config;
    this.settings = { jobDurationMs: c.jobDurationMs ?? 1000, armOperationMs: c.armOperationMs ?? 1000 };
    this.jobs = new Map();
    this.operations = new Map();
    const now = new Date().toISOString();
    this.services = c.services.map((s) => {
      const service = {
        id: s.id,
        name: s.name,
        kind: s.kind,
        armName: s.armName,
        trainedModelName: s.trainedModelName,
        inputs: s.inputs,
        outputs: s.outputs,
        globalParameters: s.globalParameters || {},
        createdOn: now,
        modifiedOn: now,
        provisioningState: 'Succeeded',
      };
      service.endpoints = (s.endpoints ?? [{ name: 'default' }]).map((e, j) => this.makeEndpoint(service, e, j === 0, s.initialModel, now));
      return service;
    });
  }

  makeEndpoint(service, e, isDefault, initialModel, now) {
    const id = isDefault ? service.id : e.id;
    if (!this.keys.has(id)) this.keys.set(id, { primary: e.apiKey ?? apiKey(), secondary: apiKey() });
    return {
      name: e.name,
      id,
      isDefault,
      updatable: Boolean(e.updatable),
      keys: this.keys.get(id),
      model: initialModel ? { format: ILEARNER_FORMAT, version: 1, ...initialModel, origin: 'initial configuration' } : null,
      modelLocation: null,
      modelUpdatedAt: initialModel ? now : null,
      createdAt: now,
      description: e.description ?? '',
    };
  }

  /** Finds a data-plane endpoint from the URL's workspace/subscription and service id. */
  findEndpoint(scope, owner, endpointId) {
    const o = owner.toLowerCase();
    if (scope === 'workspaces' && o !== this.config.workspace.id) return { error: 'WorkspaceNotFound' };
    if (scope === 'subscriptions' && o !== this.config.subscriptionId.replace(/-/g, '') && o !== this.config.subscriptionId) {
      return { error: 'WorkspaceNotFound' };
    }
    for (const service of this.services) {
      const endpoint = service.endpoints.find((e) => e.id === endpointId.toLowerCase());
      if (endpoint) return { service, endpoint };
    }
    return { error: 'WebServiceNotFound' };
  }

  findServiceById(id) {
    return this.services.find((s) => s.id === id.toLowerCase()) || null;
  }

  findServiceByArmName(name) {
    return this.services.find((s) => s.armName && s.armName.toLowerCase() === name.toLowerCase()) || null;
  }

  newJobId() {
    return hexId();
  }

  /** Keys of endpoints, for the env file (never logged). */
  describeKeys() {
    return this.services.map((s) => ({
      service: s.name,
      kind: s.kind,
      endpoints: s.endpoints.map((e) => ({ name: e.name, id: e.id, primaryKey: e.keys.primary, secondaryKey: e.keys.secondary })),
    }));
  }
}

export function generateApiKey() {
  return apiKey();
}
