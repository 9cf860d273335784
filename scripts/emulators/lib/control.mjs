// The control endpoint for tests (/_emulator/…, on its own port, never mixed with the
// emulated APIs): health, reset, request log, jobs, models, faults and settings.

import { createService, jsonResponse, emptyResponse, parseJsonBody, HttpError } from './http-kit.mjs';
import { FaultSpecError } from './faults.mjs';
import { describeJob } from './azureml/bes.mjs';

const P = '^\\/_emulator';

function controlError(status, message) {
  return jsonResponse(status, { error: { code: status === 404 ? 'NotFound' : 'BadRequest', message } });
}

function bodyObject(ctx) {
  const parsed = parseJsonBody(ctx);
  if (!parsed.ok) throw new HttpError(controlError(400, parsed.message));
  if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
    throw new HttpError(controlError(400, 'the request body must be a JSON object'));
  }
  return parsed.value;
}

function describeModels(state) {
  return state.services.filter((s) => s.kind === 'scoring').map((s) => ({
    service: s.name,
    serviceId: s.id,
    armName: s.armName ?? null,
    provisioningState: s.provisioningState,
    endpoints: s.endpoints.map((e) => ({
      name: e.name,
      id: e.id,
      updatable: e.updatable,
      updatedAt: e.modelUpdatedAt,
      location: e.modelLocation ? `${e.modelLocation.BaseLocation}${e.modelLocation.RelativeLocation}` : null,
      model: e.model,
    })),
  }));
}

export function createControlService({ runtime }) {
  const { log, faults, state, directory, v2 } = runtime;
  const describeV2 = () => ({
    jobs: [...v2.jobs.values()].map((j) => ({ name: j.name, status: j.status, history: j.history, jobType: j.properties.jobType, tags: j.properties.tags ?? {}, inputs: j.properties.inputs ?? {}, failure: j.failure, outputs: Object.keys(j.outputs) })),
    models: Object.fromEntries([...v2.models.entries()].map(([n, m]) => [n, [...m.versions.entries()].map(([v, x]) => ({ version: v, modelUri: x.resource.properties.modelUri, tags: x.resource.properties.tags, properties: x.resource.properties.properties, model: x.model }))])),
    online: Object.fromEntries([...v2.online.entries()].map(([n, e]) => [n, { traffic: e.resource.properties.traffic, mirrorTraffic: e.resource.properties.mirrorTraffic, deployments: Object.fromEntries([...e.deployments.entries()].map(([d, r]) => [d, { model: r.properties.model, provisioningState: r.properties.provisioningState }])) }])),
    batch: Object.fromEntries([...v2.batch.entries()].map(([n, e]) => [n, { defaults: e.resource.properties.defaults, deployments: [...e.deployments.keys()] }])),
    unhealthy: [...v2.unhealthy],
    scored: v2.scored,
  });
  const setUnhealthy = (ctx) => {
    const body = bodyObject(ctx);
    if (!Array.isArray(body.deployments) || body.deployments.some((d) => typeof d !== 'string')) throw new HttpError(controlError(400, 'deployments: expected a list of deployment names'));
    v2.unhealthy = new Set(body.deployments);
    return jsonResponse(200, { unhealthy: [...v2.unhealthy] });
  };

  const settings = () => ({
    tokenLifetimeSeconds: directory.settings.tokenLifetimeSeconds,
    jobDurationMs: state.settings.jobDurationMs,
    armOperationMs: state.settings.armOperationMs,
  });

  const patchSettings = (ctx) => {
    const body = bodyObject(ctx);
    const known = ['tokenLifetimeSeconds', 'jobDurationMs', 'armOperationMs'];
    for (const k of Object.keys(body)) {
      if (!known.includes(k)) throw new HttpError(controlError(400, `${k}: unknown setting; known settings are ${known.join(', ')}`));
    }
    if (body.tokenLifetimeSeconds !== undefined) {
      const v = body.tokenLifetimeSeconds;
      if (v !== null && !(Number.isInteger(v) && v >= 1)) throw new HttpError(controlError(400, 'tokenLifetimeSeconds: expected a whole number >= 1, or null for 60-90 minutes at random'));
      directory.settings.tokenLifetimeSeconds = v;
    }
    for (const k of ['jobDurationMs', 'armOperationMs']) {
      if (body[k] !== undefined) {
        if (!(Number.isFinite(body[k]) && body[k] >= 0)) throw new HttpError(controlError(400, `${k}: expected a number of milliseconds >= 0`));
        state.settings[k] = body[k];
      }
    }
    return jsonResponse(200, settings());
  };

  const setFaults = (ctx) => {
    try {
      faults.configure(bodyObject(ctx));
    } catch (err) {
      if (err instanceof FaultSpecError) throw new HttpError(controlError(400, err.message));
      throw err;
    }
    return jsonResponse(200, faults.describe());
  };

  const requests = (ctx) => {
    const since = ctx.query.get('since');
    const entries = log.query({
      service: ctx.query.get('service') || undefined,
      route: ctx.query.get('route') || undefined,
      method: ctx.query.get('method') || undefined,
      since: since ? Number(since) : undefined,
    });
    return jsonResponse(200, { last: log.seq, count: entries.length, requests: entries });
  };

  return createService({
    service: 'control',
    log: { add() {} },
    faults: null,
    errors: {
      notFound: (ctx) => controlError(404, `no control resource at ${ctx.path}; see docs/emulators.md`),
      methodNotAllowed: (ctx) => controlError(405, `${ctx.method} is not allowed on ${ctx.path}`),
      internal: (ctx, err) => controlError(500, `internal error: ${err?.message}`),
      fault: () => controlError(500, 'faults do not apply to the control endpoint'),
    },
    routes: [
      { name: 'health', method: 'GET', path: new RegExp(`${P}\\/health$`), handler: () => jsonResponse(200, runtime.health()) },
      { name: 'info', method: 'GET', path: new RegExp(`${P}\\/info$`), handler: () => jsonResponse(200, runtime.publicInfo()) },
      { name: 'reset', method: 'POST', path: new RegExp(`${P}\\/reset$`), handler: async () => { await runtime.reset(); return jsonResponse(200, { reset: true, settings: settings() }); } },
      { name: 'requests', method: 'GET', path: new RegExp(`${P}\\/requests$`), handler: requests },
      { name: 'requests.clear', method: 'DELETE', path: new RegExp(`${P}\\/requests$`), handler: () => { log.clear(); return emptyResponse(204); } },
      { name: 'jobs', method: 'GET', path: new RegExp(`${P}\\/jobs$`), handler: () => jsonResponse(200, { jobs: [...state.jobs.values()].map(describeJob) }) },
      {
        name: 'job',
        method: 'GET',
        path: new RegExp(`${P}\\/jobs\\/([^/]+)$`),
        keys: ['id'],
        handler: (ctx) => {
          const job = state.jobs.get(ctx.params.id.toLowerCase());
          return job ? jsonResponse(200, describeJob(job)) : controlError(404, `no job ${ctx.params.id}`);
        },
      },
      { name: 'models', method: 'GET', path: new RegExp(`${P}\\/models$`), handler: () => jsonResponse(200, { services: describeModels(state) }) },
      { name: 'faults.get', method: 'GET', path: new RegExp(`${P}\\/faults$`), handler: () => jsonResponse(200, faults.describe()) },
      { name: 'faults.set', method: 'PUT', path: new RegExp(`${P}\\/faults$`), handler: setFaults },
      { name: 'faults.clear', method: 'DELETE', path: new RegExp(`${P}\\/faults$`), handler: () => { faults.clear(); return emptyResponse(204); } },
      { name: 'v2', method: 'GET', path: new RegExp(`${P}\\/v2$`), handler: () => jsonResponse(200, describeV2()) },
      { name: 'v2.unhealthy', method: 'PUT', path: new RegExp(`${P}\\/v2\\/unhealthy$`), handler: setUnhealthy },
      { name: 'settings.get', method: 'GET', path: new RegExp(`${P}\\/settings$`), handler: () => jsonResponse(200, settings()) },
      { name: 'settings.set', method: 'PATCH', path: new RegExp(`${P}\\/settings$`), handler: patchSettings },
    ],
  });
}
