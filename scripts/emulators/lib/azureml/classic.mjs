// Classic Azure ML web-service management (management.azureml.net): web services, their
// endpoints, and the Update Resource PATCH that swaps an endpoint's trained model.

import crypto from 'node:crypto';
import { createService, jsonResponse, emptyResponse, parseJsonBody, bearerToken } from '../http-kit.mjs';
import { mgmtFail, managementErrors } from './errors.mjs';
import { loadModelFromUrl, ModelLoadError, sasTimeProblem } from './models.mjs';
import { generateApiKey } from './state.mjs';

const sameKey = (a, b) => a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const ENDPOINT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$/;

function describeEndpoint(ctx, service, e) {
  const ws = ctx.state.config.workspace.id;
  const resources = service.kind === 'scoring' && e.updatable
    ? [{ Name: service.trainedModelName, Kind: 'TrainedModel', Location: { ...(e.modelLocation || { BaseLocation: '', RelativeLocation: '' }), SasBlobToken: '' } }]
    : [];
  return {
    Name: e.name,
    Description: e.description,
    CreationTime: e.createdAt,
    WorkspaceId: ws,
    WebServiceId: service.id,
    HelpLocation: `${ctx.urls.management}/workspaces/${ws}/webservices/${service.id}/endpoints/${e.name}/help`,
    PrimaryKey: e.keys.primary,
    SecondaryKey: e.keys.secondary,
    ApiLocation: `${ctx.urls.data}/workspaces/${ws}/services/${e.id}`,
    Version: '2014-09-01',
    MaxConcurrentCalls: e.maxConcurrentCalls ?? 4,
    DiagnosticsTraceLevel: e.diagnosticsTraceLevel ?? 'None',
    ThrottleLevel: e.throttleLevel ?? 'Low',
    Resources: resources,
  };
}

function describeService(ctx, service) {
  return {
    Id: service.id,
    Name: service.name,
    Description: '',
    CreationTime: service.createdOn,
    WorkspaceId: ctx.state.config.workspace.id,
    DefaultEndpointName: 'default',
    EndpointCount: service.endpoints.length,
  };
}

/** Checks the workspace and the bearer: the workspace token, or a key of the named endpoint or service. */
function guard(state, urls, handler, { needService = true } = {}) {
  return (ctx) => {
    ctx.state = state;
    ctx.urls = urls;
    if (ctx.params.ws.toLowerCase() !== state.config.workspace.id) mgmtFail(ctx, 404, 'WorkspaceNotFound', `Workspace '${ctx.params.ws}' was not found.`);
    let service = null;
    if (needService) {
      service = state.findServiceById(ctx.params.wsvc);
      if (!service) mgmtFail(ctx, 404, 'WebServiceNotFound', `Web service '${ctx.params.wsvc}' was not found in the workspace.`);
    }
    const token = bearerToken(ctx);
    const endpointName = ctx.params.name;
    const candidateKeys = service
      ? service.endpoints.filter((e) => !endpointName || e.name === endpointName).flatMap((e) => [e.keys.primary, e.keys.secondary])
      : [];
    const ok = token && (sameKey(token, state.workspaceToken) || candidateKeys.some((k) => sameKey(token, k)));
    if (!ok) mgmtFail(ctx, 401, 'Unauthorized', 'Authorization has been denied: send "Authorization: Bearer <endpoint key or workspace authorization token>".');
    ctx.service = service;
    return handler(ctx);
  };
}

function findEndpoint(ctx) {
  const e = ctx.service.endpoints.find((x) => x.name === ctx.params.name);
  if (!e) mgmtFail(ctx, 404, 'EndpointNotFound', `Endpoint '${ctx.params.name}' was not found on web service '${ctx.service.id}'.`);
  return e;
}

function applyEndpointFields(ctx, e, body) {
  if (body.Description !== undefined) e.description = String(body.Description);
  if (body.ThrottleLevel !== undefined) {
    if (!['Low', 'High'].includes(body.ThrottleLevel)) mgmtFail(ctx, 400, 'BadArgument', 'ThrottleLevel must be "Low" or "High".');
    e.throttleLevel = body.ThrottleLevel;
  }
  if (body.MaxConcurrentCalls !== undefined) {
    const max = (body.ThrottleLevel ?? e.throttleLevel ?? 'Low') === 'Low' ? 4 : 200;
    if (!Number.isInteger(body.MaxConcurrentCalls) || body.MaxConcurrentCalls < 1 || body.MaxConcurrentCalls > max) {
      mgmtFail(ctx, 400, 'BadArgument', `MaxConcurrentCalls must be a whole number from 1 to ${max}.`);
    }
    e.maxConcurrentCalls = body.MaxConcurrentCalls;
  }
  if (body.DiagnosticsTraceLevel !== undefined) {
    if (!['None', 'Error', 'All'].includes(body.DiagnosticsTraceLevel)) mgmtFail(ctx, 400, 'BadArgument', 'DiagnosticsTraceLevel must be None, Error or All.');
    e.diagnosticsTraceLevel = body.DiagnosticsTraceLevel;
  }
}

/** PATCH …/endpoints/{name}: the Update Resource call. */
async function updateResource(ctx) {
  const { service } = ctx;
  const e = findEndpoint(ctx);
  const parsed = parseJsonBody(ctx);
  if (!parsed.ok) mgmtFail(ctx, 400, 'BadArgument', `The request body is invalid: ${parsed.message}.`);
  const body = parsed.value;
  if (!isPlainObject(body)) mgmtFail(ctx, 400, 'BadArgument', 'The request body must be a JSON object such as {"Resources": [...]}.');
  const known = ['Resources', 'Description', 'ThrottleLevel', 'MaxConcurrentCalls', 'DiagnosticsTraceLevel'];
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length || Object.keys(body).length === 0) {
    mgmtFail(ctx, 400, 'BadArgument', `The request body must carry Resources (and may carry ${known.slice(1).join(', ')})${unknown.length ? `; unknown member(s): ${unknown.join(', ')}` : ''}.`);
  }
  applyEndpointFields(ctx, e, body);
  if (body.Resources === undefined) return emptyResponse(200);
  if (service.kind !== 'scoring' || !e.updatable) {
    mgmtFail(ctx, 400, 'NoUpdatableResources', `This Web Service has no updatable resources: endpoint '${e.name}' of '${service.name}' ${service.kind !== 'scoring' ? 'belongs to a training service' : 'is not an updatable (non-default) endpoint'}.`);
  }
  if (!Array.isArray(body.Resources) || body.Resources.length === 0) mgmtFail(ctx, 400, 'BadArgument', 'Resources must be a non-empty list of {Name, Location}.');
  const updates = [];
  for (const [i, r] of body.Resources.entries()) {
    if (!isPlainObject(r)) mgmtFail(ctx, 400, 'BadArgument', `Resources[${i}] must be an object {Name, Location}.`);
    if (r.Name !== service.trainedModelName) {
      mgmtFail(ctx, 400, 'InvalidResourceName', `Resources[${i}].Name '${r.Name ?? ''}' is not an updatable resource of this endpoint; its updatable resource is '${service.trainedModelName}'.`);
    }
    const loc = r.Location;
    if (!isPlainObject(loc) || typeof loc.BaseLocation !== 'string' || typeof loc.RelativeLocation !== 'string' || typeof loc.SasBlobToken !== 'string') {
      mgmtFail(ctx, 400, 'BadArgument', `Resources[${i}].Location must have BaseLocation, RelativeLocation and SasBlobToken (strings).`);
    }
    const sas = loc.SasBlobToken.startsWith('?') ? loc.SasBlobToken : `?${loc.SasBlobToken}`;
    const url = `${loc.BaseLocation}${loc.RelativeLocation}${sas}`;
    let model;
    try {
      model = await loadModelFromUrl(ctx.state, url, null);
    } catch (err) {
      if (err instanceof ModelLoadError) {
        mgmtFail(ctx, 400, err.code, `Resources[${i}]: the resource location is invalid or cannot be read. ${err.message}${err.message.includes('SAS token') ? '' : sasTimeProblem(sas)}`);
      }
      throw err;
    }
    updates.push({ model, location: { BaseLocation: loc.BaseLocation, RelativeLocation: loc.RelativeLocation } });
  }
  const last = updates[updates.length - 1];
  e.model = { ...last.model, origin: `Update Resource of endpoint '${e.name}'` };
  e.modelLocation = last.location;
  e.modelUpdatedAt = new Date().toISOString();
  ctx.info.modelUpdated = e.name;
  return emptyResponse(200);
}

function createEndpoint(ctx) {
  const { service } = ctx;
  const parsed = ctx.body.length ? parseJsonBody(ctx) : { ok: true, value: {} };
  if (!parsed.ok || !isPlainObject(parsed.value)) mgmtFail(ctx, 400, 'BadArgument', 'The request body must be a JSON object {Description, ThrottleLevel, MaxConcurrentCalls}.');
  if (!ENDPOINT_NAME.test(ctx.params.name)) mgmtFail(ctx, 400, 'BadArgument', 'Endpoint names have at most 24 lowercase letters, digits or inner hyphens.');
  let e = service.endpoints.find((x) => x.name === ctx.params.name);
  if (!e) {
    const base = service.endpoints[0];
    const id = crypto.randomUUID().replace(/-/g, '');
    e = {
      ...base,
      name: ctx.params.name,
      id,
      isDefault: false,
      updatable: service.kind === 'scoring',
      keys: { primary: generateApiKey(), secondary: generateApiKey() },
      createdAt: new Date().toISOString(),
      description: '',
    };
    ctx.state.keys.set(id, e.keys);
    service.endpoints.push(e);
  }
  applyEndpointFields(ctx, e, parsed.value);
  return jsonResponse(200, describeEndpoint(ctx, service, e));
}

function deleteEndpoint(ctx) {
  const e = findEndpoint(ctx);
  if (e.isDefault) mgmtFail(ctx, 400, 'BadArgument', 'The default endpoint cannot be deleted.');
  ctx.service.endpoints = ctx.service.endpoints.filter((x) => x !== e);
  return emptyResponse(200);
}

const WS = '^\\/workspaces\\/([^/]+)\\/webservices';

export function createClassicService({ state, urls, faults, log }) {
  const g = (h, opts) => guard(state, urls, h, opts);
  return createService({
    service: 'ml-management',
    faults,
    log,
    errors: managementErrors,
    routes: [
      { name: 'ml.classic.services', method: 'GET', path: new RegExp(`${WS}$`), keys: ['ws'], handler: g((ctx) => jsonResponse(200, state.services.map((s) => describeService(ctx, s))), { needService: false }) },
      { name: 'ml.classic.service', method: 'GET', path: new RegExp(`${WS}\\/([^/]+)$`), keys: ['ws', 'wsvc'], handler: g((ctx) => jsonResponse(200, describeService(ctx, ctx.service))) },
      { name: 'ml.classic.endpoints', method: 'GET', path: new RegExp(`${WS}\\/([^/]+)\\/endpoints$`), keys: ['ws', 'wsvc'], handler: g((ctx) => jsonResponse(200, ctx.service.endpoints.map((e) => describeEndpoint(ctx, ctx.service, e)))) },
      { name: 'ml.classic.endpoint', method: 'GET', path: new RegExp(`${WS}\\/([^/]+)\\/endpoints\\/([^/]+)$`), keys: ['ws', 'wsvc', 'name'], handler: g((ctx) => jsonResponse(200, describeEndpoint(ctx, ctx.service, findEndpoint(ctx)))) },
      { name: 'ml.classic.update', method: 'PATCH', path: new RegExp(`${WS}\\/([^/]+)\\/endpoints\\/([^/]+)$`), keys: ['ws', 'wsvc', 'name'], handler: g(updateResource) },
      { name: 'ml.classic.create', method: 'PUT', path: new RegExp(`${WS}\\/([^/]+)\\/endpoints\\/([^/]+)$`), keys: ['ws', 'wsvc', 'name'], handler: g(createEndpoint) },
      { name: 'ml.classic.delete', method: 'DELETE', path: new RegExp(`${WS}\\/([^/]+)\\/endpoints\\/([^/]+)$`), keys: ['ws', 'wsvc', 'name'], handler: g(deleteEndpoint) },
    ],
  });
}
