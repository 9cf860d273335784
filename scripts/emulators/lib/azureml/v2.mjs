// Azure ML v2 management plane (Azure Resource Manager, Microsoft.MachineLearningServices): jobs, model
// versions, batch and online endpoints and deployments as long-running operations, traffic maps, keys.
// Strict like ARM: a token for another audience, an unknown api-version, unknown members and values the
// service would refuse all get the service's error.

import crypto from 'node:crypto';
import { createService, jsonResponse, emptyResponse, parseJsonBody, bearerToken } from '../http-kit.mjs';
import { armFail, armErrors } from './errors.mjs';
import { ARM_AUDIENCES } from '../aad.mjs';
import { readModelBlob } from './v2-state.mjs';

export const V2_API_VERSIONS = ['2023-04-01', '2024-04-01'];
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$/;
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const INPUT_TYPES = ['literal', 'uri_file', 'uri_folder', 'mltable', 'custom_model', 'mlflow_model', 'triton_model'];
const OUTPUT_TYPES = ['uri_file', 'uri_folder', 'mltable', 'custom_model', 'mlflow_model', 'triton_model'];
const JOB_FIELDS = {
  common: ['jobType', 'displayName', 'description', 'experimentName', 'computeId', 'tags', 'properties', 'services', 'isArchived', 'identity', 'componentId', 'notificationSetting', 'status'],
  Command: ['command', 'environmentId', 'codeId', 'inputs', 'outputs', 'limits', 'environmentVariables', 'distribution', 'resources', 'queueSettings', 'parameters'],
  Pipeline: ['inputs', 'outputs', 'jobs', 'settings', 'sourceJobId'],
};
const MODEL_FIELDS = ['modelUri', 'modelType', 'description', 'tags', 'properties', 'flavors', 'isAnonymous', 'isArchived', 'jobName', 'stage', 'intellectualProperty'];
const ONLINE_ENDPOINT_FIELDS = ['authMode', 'description', 'keys', 'properties', 'traffic', 'mirrorTraffic', 'compute', 'publicNetworkAccess', 'scoringUri', 'swaggerUri', 'provisioningState'];
const ONLINE_DEPLOYMENT_FIELDS = ['endpointComputeType', 'model', 'instanceType', 'environmentId', 'codeConfiguration', 'description', 'properties', 'environmentVariables', 'appInsightsEnabled', 'scaleSettings', 'requestSettings', 'livenessProbe', 'readinessProbe', 'egressPublicNetworkAccess', 'dataCollector', 'modelMountPath', 'provisioningState'];
const TOP_FIELDS = ['id', 'name', 'type', 'location', 'tags', 'identity', 'kind', 'sku', 'properties', 'systemData'];

const userError = (ctx, message, status = 400) => armFail(ctx, status, 'UserError', message);

function unknownMembers(ctx, obj, allowed, where) {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) userError(ctx, `Could not find member '${k}' on object of type '${where}'. Path '${where === 'Resource' ? '' : 'properties.'}${k}'.`);
  }
}

function body(ctx) {
  const parsed = parseJsonBody(ctx);
  if (!parsed.ok) userError(ctx, `The request content was invalid and could not be deserialized: ${parsed.message}.`);
  if (!isObject(parsed.value)) userError(ctx, 'The request content must be a JSON object.');
  unknownMembers(ctx, parsed.value, TOP_FIELDS, 'Resource');
  if (!isObject(parsed.value.properties)) userError(ctx, "The request content is invalid: 'properties' is required and must be an object.");
  return parsed.value;
}

function stringMap(ctx, v, where) {
  if (v === undefined || v === null) return;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string' && x !== null)) userError(ctx, `${where}: expected an object of strings.`);
}

function guard(v2, directory, handler) {
  return (ctx) => {
    const token = bearerToken(ctx);
    if (!token) armFail(ctx, 401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing or is not a Bearer token.");
    const verdict = directory.verifyAccessToken(token, ARM_AUDIENCES);
    if (!verdict.ok) armFail(ctx, 401, verdict.code, verdict.message);
    const version = ctx.query.get('api-version');
    if (!version) armFail(ctx, 400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
    if (!V2_API_VERSIONS.includes(version)) {
      armFail(ctx, 400, 'NoRegisteredProviderFound', `No registered resource provider found for location '${v2.config.location}' and API version '${version}' for type 'workspaces'. The supported api-versions are '${V2_API_VERSIONS.join(', ')}'.`);
    }
    const c = v2.config;
    if (ctx.params.sub.toLowerCase() !== c.subscriptionId.toLowerCase()) armFail(ctx, 404, 'SubscriptionNotFound', `The subscription '${ctx.params.sub}' could not be found.`);
    if (ctx.params.rg !== undefined && ctx.params.rg.toLowerCase() !== c.resourceGroup.toLowerCase()) armFail(ctx, 404, 'ResourceGroupNotFound', `Resource group '${ctx.params.rg}' could not be found.`);
    if (ctx.params.ws !== undefined && ctx.params.ws.toLowerCase() !== c.workspace.toLowerCase()) armFail(ctx, 404, 'ResourceNotFound', `The Resource 'Microsoft.MachineLearningServices/workspaces/${ctx.params.ws}' under resource group '${ctx.params.rg}' was not found.`);
    ctx.info.caller = verdict.claims.appid;
    return handler(ctx);
  };
}

function notFound(ctx, what) {
  armFail(ctx, 404, 'ResourceNotFound', `The Resource '${what}' under resource group '${ctx.params.rg}' was not found.`);
}

const viewJob = (v2, job, urls) => ({
  id: `${v2.prefix()}/jobs/${job.name}`,
  name: job.name,
  type: 'Microsoft.MachineLearningServices/workspaces/jobs',
  properties: { ...job.properties, status: job.status, properties: { ...(job.properties.properties || {}), ...job.metrics, ...(job.failure ? { 'lufa.failureReason': job.failure } : {}) }, services: { Studio: { endpoint: `${urls.v2}/studio/runs/${job.name}`, jobServiceType: 'Studio' } } },
});

function validateJob(ctx, p) {
  if (!['Command', 'Pipeline'].includes(p.jobType)) userError(ctx, `properties.jobType: expected 'Command' or 'Pipeline', got ${JSON.stringify(p.jobType)}.`);
  unknownMembers(ctx, p, [...JOB_FIELDS.common, ...JOB_FIELDS[p.jobType]], `${p.jobType}Job`);
  if (p.jobType === 'Command') {
    if (typeof p.command !== 'string' || p.command.trim() === '') userError(ctx, "properties.command: a command job needs a non-empty 'command'.");
    if (typeof p.environmentId !== 'string' || p.environmentId === '') userError(ctx, "properties.environmentId: a command job needs an 'environmentId'.");
  } else if (!isObject(p.jobs)) userError(ctx, "properties.jobs: a pipeline job needs a 'jobs' object (step name -> job).");
  for (const [name, i] of Object.entries(p.inputs || {})) {
    if (!isObject(i) || !INPUT_TYPES.includes(String(i.jobInputType).toLowerCase())) userError(ctx, `properties.inputs.${name}.jobInputType: expected one of ${INPUT_TYPES.join(', ')}.`);
    if (String(i.jobInputType).toLowerCase() === 'literal' ? typeof i.value !== 'string' : typeof i.uri !== 'string') userError(ctx, `properties.inputs.${name}: ${i.jobInputType === 'literal' ? "a literal input needs a string 'value'" : "needs a 'uri'"}.`);
  }
  for (const [name, o] of Object.entries(p.outputs || {})) {
    if (!isObject(o) || !OUTPUT_TYPES.includes(String(o.jobOutputType).toLowerCase())) userError(ctx, `properties.outputs.${name}.jobOutputType: expected one of ${OUTPUT_TYPES.join(', ')}.`);
  }
  for (const ref of [/\$\{\{inputs\.([\w]+)\}\}/g, /\$\{\{outputs\.([\w]+)\}\}/g]) {
    for (const m of String(p.command || '').matchAll(ref)) {
      const map = ref.source.includes('inputs') ? p.inputs : p.outputs;
      if (!map || !map[m[1]]) userError(ctx, `properties.command refers to \${{${ref.source.includes('inputs') ? 'inputs' : 'outputs'}.${m[1]}}}, which the job does not define.`);
    }
  }
  stringMap(ctx, p.tags, 'properties.tags');
  stringMap(ctx, p.properties, 'properties.properties');
}

// The members a re-PUT of an existing job may change.
const MUTABLE_JOB = ['displayName', 'description', 'tags', 'isArchived', 'properties', 'status', 'services'];

function putJob(v2, urls) {
  return (ctx) => {
    const name = ctx.params.job;
    if (!NAME.test(name)) userError(ctx, `The job name '${name}' is invalid: it must match ${NAME.source}.`);
    const b = body(ctx);
    validateJob(ctx, b.properties);
    const existing = v2.jobs.get(name);
    if (existing) {
      const changed = Object.keys({ ...existing.properties, ...b.properties }).filter((k) => !MUTABLE_JOB.includes(k) && JSON.stringify(existing.properties[k]) !== JSON.stringify(b.properties[k]));
      if (changed.length) userError(ctx, `A job named '${name}' already exists; its '${changed[0]}' cannot be changed. Pick another name for a new job.`);
      ctx.info.job = 'existing';
      return jsonResponse(200, viewJob(v2, existing, urls));
    }
    const { status, services, ...props } = b.properties;
    const job = v2.createJob(name, props, v2.storage);
    ctx.info.job = 'created';
    return jsonResponse(201, viewJob(v2, job, urls));
  };
}

function modelVersionPut(v2) {
  return async (ctx) => {
    const { model, version } = ctx.params;
    if (!NAME.test(model)) userError(ctx, `The model name '${model}' is invalid: it must match ${NAME.source}.`);
    const container = v2.models.get(model);
    if (!container) notFound(ctx, `Microsoft.MachineLearningServices/workspaces/${v2.config.workspace}/models/${model}`);
    const b = body(ctx);
    const p = b.properties;
    unknownMembers(ctx, p, MODEL_FIELDS, 'ModelVersion');
    if (typeof p.modelUri !== 'string' || p.modelUri === '') userError(ctx, "properties.modelUri: required (a job output, datastore path or storage URL).");
    const type = String(p.modelType ?? 'custom_model').toLowerCase().replace(/_/g, '');
    if (!['custommodel', 'mlflowmodel', 'tritonmodel'].includes(type)) userError(ctx, `properties.modelType: '${p.modelType}' is not one of custom_model, mlflow_model, triton_model.`);
    stringMap(ctx, p.tags, 'properties.tags');
    stringMap(ctx, p.properties, 'properties.properties');
    const existing = container.versions.get(version);
    if (existing) {
      if (existing.resource.properties.modelUri !== p.modelUri) armFail(ctx, 409, 'Conflict', `Model version ${model}:${version} already exists with another modelUri; versions are immutable.`);
      return jsonResponse(200, existing.resource);
    }
    let trained = v2.jobOutput(p.modelUri);
    if (/^azureml:\/\/jobs\//i.test(p.modelUri) && !trained) userError(ctx, `properties.modelUri: '${p.modelUri}' names no output of a completed job.`);
    if (!trained && /^(azureml:\/\/datastores\/|https?:\/\/)/i.test(p.modelUri)) {
      try {
        trained = await readModelBlob(p.modelUri, v2.storage);
      } catch (err) {
        userError(ctx, `properties.modelUri: no model can be read at '${p.modelUri.split('?')[0]}' (${err.message}).`);
      }
    }
    const resource = { id: `${v2.prefix()}/models/${model}/versions/${version}`, name: version, type: 'Microsoft.MachineLearningServices/workspaces/models/versions', properties: { ...p, modelType: p.modelType ?? 'custom_model', tags: p.tags ?? {}, properties: p.properties ?? {}, provisioningState: 'Succeeded' }, systemData: { createdAt: new Date().toISOString() } };
    container.versions.set(version, { resource, model: trained });
    container.container.properties.latestVersion = version;
    return jsonResponse(201, resource);
  };
}

function lro(ctx, v2, urls, status, resource, finish) {
  const op = v2.startOperation(finish);
  const api = ctx.query.get('api-version');
  const wait = String(Math.max(1, Math.ceil(v2.settings.armOperationMs / 1000)));
  return jsonResponse(status, resource, {
    'azure-asyncoperation': `${urls.v2}/subscriptions/${v2.config.subscriptionId}/providers/Microsoft.MachineLearningServices/locations/${v2.config.location}/mfeOperationsStatus/${op.id}?api-version=${api}`,
    'x-ms-async-operation-timeout': 'PT1H',
    'retry-after': wait,
  });
}

function checkTraffic(ctx, endpoint, p) {
  for (const key of ['traffic', 'mirrorTraffic']) {
    const map = p[key] ?? {};
    if (!isObject(map)) userError(ctx, `properties.${key}: expected an object (deployment -> percent).`);
    for (const [d, v] of Object.entries(map)) {
      if (!Number.isInteger(v) || v < 0 || v > 100) userError(ctx, `properties.${key}.${d}: expected a whole percentage 0..100, got ${JSON.stringify(v)}.`);
      if (!endpoint || !endpoint.deployments.has(d)) userError(ctx, `properties.${key}: deployment '${d}' does not exist on this endpoint.`);
    }
  }
  const traffic = p.traffic ?? {};
  const sum = Object.values(traffic).reduce((a, b) => a + b, 0);
  if (Object.keys(traffic).length && sum !== 100 && sum !== 0) userError(ctx, `properties.traffic: the percentages add up to ${sum}; they must add up to 100.`);
  const mirror = Object.entries(p.mirrorTraffic ?? {}).filter(([, v]) => v > 0);
  if (mirror.length > 1) userError(ctx, 'properties.mirrorTraffic: only one deployment can receive mirrored traffic.');
  for (const [d, v] of mirror) {
    if (v > 50) userError(ctx, `properties.mirrorTraffic.${d}: at most 50 % of the traffic can be mirrored.`);
    if ((traffic[d] ?? 0) > 0) userError(ctx, `properties.mirrorTraffic.${d}: a deployment gets either live or mirrored traffic, not both.`);
  }
}

function putOnlineEndpoint(v2, urls) {
  return (ctx) => {
    const name = ctx.params.e;
    const b = body(ctx);
    if (typeof b.location !== 'string' || b.location === '') userError(ctx, "location: required.");
    unknownMembers(ctx, b.properties, ONLINE_ENDPOINT_FIELDS, 'OnlineEndpoint');
    const mode = String(b.properties.authMode ?? '').toLowerCase();
    if (!['key', 'amltoken', 'aadtoken'].includes(mode)) userError(ctx, `properties.authMode: expected one of AMLToken, Key, AADToken, got ${JSON.stringify(b.properties.authMode)}.`);
    const existing = v2.online.get(name);
    if (existing && existing.resource.properties.provisioningState !== 'Succeeded' && existing.resource.properties.provisioningState !== 'Failed') {
      armFail(ctx, 409, 'Conflict', `Online endpoint '${name}' is being updated; retry when its provisioningState is Succeeded.`);
    }
    checkTraffic(ctx, existing, b.properties);
    const { scoringUri, swaggerUri, provisioningState, ...props } = b.properties;
    const endpoint = existing ?? v2.newOnlineEndpoint(name, b);
    v2.online.set(name, endpoint);
    const r = endpoint.resource;
    Object.assign(r, { location: b.location, tags: b.tags ?? r.tags, identity: b.identity ?? r.identity });
    r.properties = { ...props, traffic: props.traffic ?? {}, mirrorTraffic: props.mirrorTraffic ?? {}, provisioningState: existing ? 'Updating' : 'Creating' };
    return lro(ctx, v2, urls, existing ? 200 : 201, viewOnline(v2, urls, endpoint), () => { r.properties.provisioningState = 'Succeeded'; return null; });
  };
}

const viewOnline = (v2, urls, endpoint) => ({ ...endpoint.resource, properties: { ...endpoint.resource.properties, scoringUri: `${urls.v2Inference}/online/${endpoint.resource.name}/score`, swaggerUri: `${urls.v2Inference}/online/${endpoint.resource.name}/swagger.json` } });
const viewBatch = (v2, urls, endpoint) => ({ ...endpoint.resource, properties: { ...endpoint.resource.properties, scoringUri: `${urls.v2Inference}/batch/${endpoint.resource.name}/jobs` } });

function putOnlineDeployment(v2, urls) {
  return (ctx) => {
    const { e, d } = ctx.params;
    const endpoint = v2.online.get(e);
    if (!endpoint) notFound(ctx, `Microsoft.MachineLearningServices/workspaces/${v2.config.workspace}/onlineEndpoints/${e}`);
    if (!NAME.test(d) || d.length > 32) userError(ctx, `The deployment name '${d}' is invalid: 1-32 letters, digits, '-' or '_', starting with a letter or digit.`);
    const b = body(ctx);
    if (typeof b.location !== 'string' || b.location === '') userError(ctx, "location: required.");
    const p = b.properties;
    unknownMembers(ctx, p, ONLINE_DEPLOYMENT_FIELDS, 'OnlineDeployment');
    if (!['Managed', 'Kubernetes'].includes(p.endpointComputeType)) userError(ctx, `properties.endpointComputeType: expected 'Managed' or 'Kubernetes', got ${JSON.stringify(p.endpointComputeType)}.`);
    if (typeof p.model !== 'string' || p.model === '') userError(ctx, "properties.model: required (the model version's asset id).");
    const existing = endpoint.deployments.get(d);
    if (existing && !['Succeeded', 'Failed'].includes(existing.properties.provisioningState)) armFail(ctx, 409, 'Conflict', `Deployment '${d}' is being updated.`);
    const resource = v2.deploymentResource('online', e, d, b, existing ? 'Updating' : 'Creating');
    endpoint.deployments.set(d, resource);
    return lro(ctx, v2, urls, existing ? 200 : 201, resource, () => {
      if (!v2.modelOf(p.model)) {
        resource.properties.provisioningState = 'Failed';
        resource.logs = `model ${p.model} could not be downloaded: no such model version\n`;
        return { code: 'DeploymentFailed', message: `The model ${p.model} was not found in the workspace.` };
      }
      resource.properties.provisioningState = 'Succeeded';
      resource.logs = `scoring server started for ${p.model}\n`;
      return null;
    });
  };
}

function deleteOnlineDeployment(v2, urls) {
  return (ctx) => {
    const { e, d } = ctx.params;
    const endpoint = v2.online.get(e);
    if (!endpoint || !endpoint.deployments.has(d)) return emptyResponse(204);
    if ((endpoint.resource.properties.traffic?.[d] ?? 0) > 0) userError(ctx, `Deployment '${d}' has ${endpoint.resource.properties.traffic[d]} % of the live traffic; set its traffic to 0 before deleting it.`);
    endpoint.deployments.get(d).properties.provisioningState = 'Deleting';
    const op = v2.startOperation(() => {
      endpoint.deployments.delete(d);
      for (const key of ['traffic', 'mirrorTraffic']) if (endpoint.resource.properties[key]) delete endpoint.resource.properties[key][d];
      return null;
    });
    return emptyResponse(202, {
      location: `${urls.v2}/subscriptions/${v2.config.subscriptionId}/providers/Microsoft.MachineLearningServices/locations/${v2.config.location}/mfeOperationResults/${op.id}?api-version=${ctx.query.get('api-version')}`,
      'retry-after': String(Math.max(1, Math.ceil(v2.settings.armOperationMs / 1000))),
    });
  };
}

function putBatchEndpoint(v2, urls) {
  return (ctx) => {
    const name = ctx.params.e;
    const b = body(ctx);
    if (typeof b.location !== 'string' || b.location === '') userError(ctx, "location: required.");
    unknownMembers(ctx, b.properties, ['authMode', 'description', 'defaults', 'keys', 'properties', 'scoringUri', 'swaggerUri', 'provisioningState'], 'BatchEndpoint');
    const existing = v2.batch.get(name);
    const dn = b.properties.defaults?.deploymentName;
    if (dn !== undefined && (!existing || !existing.deployments.has(dn))) userError(ctx, `properties.defaults.deploymentName: deployment '${dn}' does not exist on this endpoint.`);
    const endpoint = existing ?? v2.newBatchEndpoint(name, b);
    v2.batch.set(name, endpoint);
    const { scoringUri, swaggerUri, provisioningState, ...props } = b.properties;
    endpoint.resource.properties = { ...props, defaults: props.defaults ?? {}, provisioningState: existing ? 'Updating' : 'Creating' };
    return lro(ctx, v2, urls, existing ? 200 : 201, viewBatch(v2, urls, endpoint), () => { endpoint.resource.properties.provisioningState = 'Succeeded'; return null; });
  };
}

export function createV2Service({ v2, directory, urls, faults, log }) {
  const g = (h) => guard(v2, directory, h);
  const P = '^\\/subscriptions\\/([^/]+)\\/resourcegroups\\/([^/]+)\\/providers\\/microsoft\\.machinelearningservices\\/workspaces\\/([^/]+)';
  const W = ['sub', 'rg', 'ws'];
  const route = (name, method, tail, keys, handler) => ({ name, method, path: new RegExp(`${P}${tail}$`, 'i'), keys: [...W, ...keys], handler: g(handler) });
  const job = (ctx) => v2.jobs.get(ctx.params.job) ?? notFound(ctx, `Microsoft.MachineLearningServices/workspaces/${v2.config.workspace}/jobs/${ctx.params.job}`);
  const online = (ctx) => v2.online.get(ctx.params.e) ?? notFound(ctx, `Microsoft.MachineLearningServices/workspaces/${v2.config.workspace}/onlineEndpoints/${ctx.params.e}`);
  const batch = (ctx) => v2.batch.get(ctx.params.e) ?? notFound(ctx, `Microsoft.MachineLearningServices/workspaces/${v2.config.workspace}/batchEndpoints/${ctx.params.e}`);
  const opRoute = (kind, handler) => ({ name: `mlv2.operation.${kind}`, method: 'GET', path: new RegExp(`^\\/subscriptions\\/([^/]+)\\/providers\\/microsoft\\.machinelearningservices\\/locations\\/([^/]+)\\/${kind}\\/([^/]+)$`, 'i'), keys: ['sub', 'location', 'op'], handler: g(handler) });
  return createService({
    service: 'mlv2',
    faults,
    log,
    errors: armErrors,
    routes: [
      route('mlv2.jobs.list', 'GET', '\\/jobs', [], () => jsonResponse(200, { value: [...v2.jobs.values()].map((j) => viewJob(v2, j, urls)) })),
      route('mlv2.jobs.get', 'GET', '\\/jobs\\/([^/]+)', ['job'], (ctx) => jsonResponse(200, viewJob(v2, job(ctx), urls))),
      route('mlv2.jobs.put', 'PUT', '\\/jobs\\/([^/]+)', ['job'], putJob(v2, urls)),
      route('mlv2.jobs.cancel', 'POST', '\\/jobs\\/([^/]+)\\/cancel', ['job'], (ctx) => {
        const j = job(ctx);
        v2.cancelJob(j);
        // the cancellation is a long-running operation: 202 with the Location to poll
        const op = v2.startOperation(() => null);
        return emptyResponse(202, {
          location: `${urls.v2}/subscriptions/${v2.config.subscriptionId}/providers/Microsoft.MachineLearningServices/locations/${v2.config.location}/mfeOperationResults/${op.id}?api-version=${ctx.query.get('api-version')}`,
          'retry-after': String(Math.max(1, Math.ceil(v2.settings.armOperationMs / 1000))),
        });
      }),
      route('mlv2.models.get', 'GET', '\\/models\\/([^/]+)', ['model'], (ctx) => jsonResponse(200, (v2.models.get(ctx.params.model) ?? notFound(ctx, `models/${ctx.params.model}`)).container)),
      route('mlv2.models.put', 'PUT', '\\/models\\/([^/]+)', ['model'], (ctx) => {
        const b = body(ctx);
        unknownMembers(ctx, b.properties, ['description', 'tags', 'properties', 'isArchived'], 'ModelContainer');
        const name = ctx.params.model;
        const existing = v2.models.get(name);
        if (existing) return jsonResponse(200, existing.container);
        const container = { id: `${v2.prefix()}/models/${name}`, name, type: 'Microsoft.MachineLearningServices/workspaces/models', properties: { ...b.properties, provisioningState: 'Succeeded' } };
        v2.models.set(name, { container, versions: new Map() });
        return jsonResponse(201, container);
      }),
      route('mlv2.models.versions', 'GET', '\\/models\\/([^/]+)\\/versions', ['model'], (ctx) => {
        const m = v2.models.get(ctx.params.model) ?? notFound(ctx, `models/${ctx.params.model}`);
        return jsonResponse(200, { value: [...m.versions.values()].map((v) => v.resource) });
      }),
      route('mlv2.models.version.get', 'GET', '\\/models\\/([^/]+)\\/versions\\/([^/]+)', ['model', 'version'], (ctx) => {
        const v = v2.models.get(ctx.params.model)?.versions.get(ctx.params.version) ?? notFound(ctx, `models/${ctx.params.model}/versions/${ctx.params.version}`);
        return jsonResponse(200, v.resource);
      }),
      route('mlv2.models.version.put', 'PUT', '\\/models\\/([^/]+)\\/versions\\/([^/]+)', ['model', 'version'], modelVersionPut(v2)),
      route('mlv2.online.get', 'GET', '\\/onlineEndpoints\\/([^/]+)', ['e'], (ctx) => jsonResponse(200, viewOnline(v2, urls, online(ctx)))),
      route('mlv2.online.put', 'PUT', '\\/onlineEndpoints\\/([^/]+)', ['e'], putOnlineEndpoint(v2, urls)),
      route('mlv2.online.keys', 'POST', '\\/onlineEndpoints\\/([^/]+)\\/listKeys', ['e'], (ctx) => jsonResponse(200, online(ctx).keys)),
      route('mlv2.online.token', 'POST', '\\/onlineEndpoints\\/([^/]+)\\/token', ['e'], (ctx) => {
        const endpoint = online(ctx);
        if (String(endpoint.resource.properties.authMode).toLowerCase() !== 'amltoken') userError(ctx, `Online endpoint '${ctx.params.e}' does not use AMLToken authentication.`);
        const token = crypto.randomBytes(32).toString('base64url');
        const now = Date.now();
        endpoint.amlTokens.set(token, now + 3600 * 1000);
        return jsonResponse(200, { accessToken: token, tokenType: 'Bearer', expiryTimeUtc: Math.floor(now / 1000) + 3600, refreshAfterTimeUtc: Math.floor(now / 1000) + 1800 });
      }),
      route('mlv2.online.deployments', 'GET', '\\/onlineEndpoints\\/([^/]+)\\/deployments', ['e'], (ctx) => jsonResponse(200, { value: [...online(ctx).deployments.values()] })),
      route('mlv2.online.deployment.get', 'GET', '\\/onlineEndpoints\\/([^/]+)\\/deployments\\/([^/]+)', ['e', 'd'], (ctx) => {
        const { logs, ...resource } = online(ctx).deployments.get(ctx.params.d) ?? notFound(ctx, `onlineEndpoints/${ctx.params.e}/deployments/${ctx.params.d}`);
        return jsonResponse(200, resource);
      }),
      route('mlv2.online.deployment.put', 'PUT', '\\/onlineEndpoints\\/([^/]+)\\/deployments\\/([^/]+)', ['e', 'd'], putOnlineDeployment(v2, urls)),
      route('mlv2.online.deployment.delete', 'DELETE', '\\/onlineEndpoints\\/([^/]+)\\/deployments\\/([^/]+)', ['e', 'd'], deleteOnlineDeployment(v2, urls)),
      route('mlv2.online.deployment.logs', 'POST', '\\/onlineEndpoints\\/([^/]+)\\/deployments\\/([^/]+)\\/getLogs', ['e', 'd'], (ctx) => {
        const d = online(ctx).deployments.get(ctx.params.d) ?? notFound(ctx, `onlineEndpoints/${ctx.params.e}/deployments/${ctx.params.d}`);
        const unhealthy = v2.unhealthy.has(ctx.params.d) ? 'scoring request failed: model server returned 500 (injected fault)\n' : '';
        return jsonResponse(200, { content: `${d.logs ?? ''}${unhealthy}` });
      }),
      route('mlv2.batch.get', 'GET', '\\/batchEndpoints\\/([^/]+)', ['e'], (ctx) => jsonResponse(200, viewBatch(v2, urls, batch(ctx)))),
      route('mlv2.batch.put', 'PUT', '\\/batchEndpoints\\/([^/]+)', ['e'], putBatchEndpoint(v2, urls)),
      route('mlv2.batch.deployments', 'GET', '\\/batchEndpoints\\/([^/]+)\\/deployments', ['e'], (ctx) => jsonResponse(200, { value: [...batch(ctx).deployments.values()] })),
      opRoute('mfeOperationsStatus', (ctx) => {
        const op = v2.operations.get(ctx.params.op) ?? armFail(ctx, 404, 'NotFound', `The operation '${ctx.params.op}' was not found.`);
        return jsonResponse(200, { id: `/subscriptions/${v2.config.subscriptionId}/providers/Microsoft.MachineLearningServices/locations/${v2.config.location}/mfeOperationsStatus/${op.id}`, name: op.id, status: op.status, startTime: op.startTime, endTime: op.endTime, error: op.error });
      }),
      opRoute('mfeOperationResults', (ctx) => {
        const op = v2.operations.get(ctx.params.op) ?? armFail(ctx, 404, 'NotFound', `The operation '${ctx.params.op}' was not found.`);
        if (op.status === 'InProgress') return emptyResponse(202, { location: `${urls.v2}${ctx.url.pathname}${ctx.url.search}`, 'retry-after': String(Math.max(1, Math.ceil(v2.settings.armOperationMs / 1000))) });
        if (op.error) armFail(ctx, 400, op.error.code, op.error.message);
        return emptyResponse(204);
      }),
    ],
  });
}
