// "New" (Azure Resource Manager) web services: Microsoft.MachineLearning/webServices
// GET / PUT / PATCH / listKeys with an Azure AD bearer token, and the long-running
// operation (Azure-AsyncOperation) that loads the trained model named by the definition.

import crypto from 'node:crypto';
import { createService, jsonResponse, parseJsonBody, bearerToken } from '../http-kit.mjs';
import { armFail, armErrors } from './errors.mjs';
import { loadModelFromUrl, ModelLoadError, initialModelLocation } from './models.mjs';
import { generateApiKey } from './state.mjs';
import { ARM_AUDIENCES } from '../aad.mjs';

const API_VERSIONS = ['2016-05-01-preview', '2017-01-01'];
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Known camelCase member names, so PascalCase input (seen in Microsoft's examples) is read too. */
const CANONICAL = new Map(['location', 'tags', 'properties', 'packageType', 'title', 'description', 'keys', 'primary', 'secondary',
  'readOnly', 'exposeSampleData', 'realtimeConfiguration', 'maxConcurrentCalls', 'diagnostics', 'level', 'expiry',
  'storageAccount', 'name', 'key', 'machineLearningWorkspace', 'id', 'commitmentPlan', 'input', 'output', 'exampleRequest',
  'assets', 'type', 'locationInfo', 'uri', 'credentials', 'inputPorts', 'outputPorts', 'metadata', 'parameters', 'package',
  'nodes', 'edges', 'graphParameters', 'assetId', 'inputId', 'outputId', 'sourceNodeId', 'sourcePortId', 'targetNodeId',
  'targetPortId', 'payloadsInBlobStorage', 'payloadsLocation', 'inputs', 'globalParameters'].map((k) => [k.toLowerCase(), k]));

function canonicalize(value) {
  if (Array.isArray(value)) return value.map(canonicalize);
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [CANONICAL.get(k.toLowerCase()) ?? k, canonicalize(v)]));
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target, patch) {
  if (!isPlainObject(patch)) return patch;
  const out = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const normalLocation = (loc) => loc.toLowerCase().replace(/\s+/g, '');

function resourceId(state, service) {
  const c = state.config;
  return `/subscriptions/${c.subscriptionId}/resourceGroups/${c.resourceGroup}/providers/Microsoft.MachineLearning/webServices/${service.armName}`;
}

/** The definition a new ARM service starts from, in the shape of the 2016-05-01-preview schema. */
function initialDefinition(state, service, urls) {
  const c = state.config;
  const model = service.endpoints[0].model;
  const loc = service.endpoints[0].modelLocation || initialModelLocation(state, service);
  const columns = model ? [...model.features] : [];
  const schema = (cols, extra = []) => ({
    type: 'object',
    properties: {
      [service.inputs[0] ?? 'input1']: {
        type: 'object',
        properties: Object.fromEntries([...cols, ...extra].map((col) => [col, { type: 'number', format: 'Double', 'x-ms-isnullable': false }])),
      },
    },
  });
  return {
    id: resourceId(state, service),
    name: service.armName,
    type: 'Microsoft.MachineLearning/webServices',
    location: c.location,
    tags: {},
    properties: {
      packageType: 'Graph',
      title: service.name,
      description: `${service.name} (emulated)`,
      createdOn: service.createdOn,
      modifiedOn: service.modifiedOn,
      provisioningState: 'Succeeded',
      keys: service.endpoints[0].keys,
      readOnly: false,
      swaggerLocation: `${urls.data}/subscriptions/${c.subscriptionId.replace(/-/g, '')}/services/${service.id}/swagger.json`,
      exposeSampleData: false,
      realtimeConfiguration: { maxConcurrentCalls: 4 },
      diagnostics: { level: 'None' },
      storageAccount: { name: state.defaultStorage?.accountName ?? 'devstoreaccount1', key: state.defaultStorage?.accountKey ?? '' },
      machineLearningWorkspace: { id: c.workspace.id },
      commitmentPlan: { id: `/subscriptions/${c.subscriptionId}/resourceGroups/${c.resourceGroup}/providers/Microsoft.MachineLearning/commitmentPlans/${service.armName}-plan` },
      input: { title: '', description: '', ...schema(columns) },
      output: { title: '', description: '', type: 'object', properties: { [Object.keys(service.outputs)[0]]: { type: 'object', properties: { 'Scored Labels': { type: 'number', format: 'Double' } } } } },
      exampleRequest: { inputs: { [service.inputs[0] ?? 'input1']: [columns.map(() => '0')] }, globalParameters: {} },
      assets: {
        asset1: { name: 'Linear Regression', id: 'asset1', type: 'Module', locationInfo: { uri: 'aml://module/31960a6f789b444c917f8be3f0ad4e43.v1-default-1644', credentials: '' } },
        asset2: { name: 'Score Model', id: 'asset2', type: 'Module', locationInfo: { uri: 'aml://module/401b4f92e7244d5abd8ad2c6e5a8c0c3.v1-default-1650', credentials: '' } },
        asset3: {
          name: service.trainedModelName,
          id: 'asset3',
          type: 'Resource',
          locationInfo: { uri: loc ? `${loc.BaseLocation}${loc.RelativeLocation}` : '', credentials: '' },
          outputPorts: { 'Results dataset': { type: 'Dataset' } },
        },
      },
      parameters: {},
      package: {
        nodes: {
          node1: { inputId: service.inputs[0] ?? 'input1' },
          node2: { assetId: 'asset3' },
          node3: { assetId: 'asset2', parameters: { 'Append score columns to output': { value: 'True' } } },
          node4: { outputId: Object.keys(service.outputs)[0] },
        },
        edges: [
          { sourceNodeId: 'node2', sourcePortId: 'Results dataset', targetNodeId: 'node3', targetPortId: 'Trained model' },
          { sourceNodeId: 'node1', sourcePortId: 'Dataset', targetNodeId: 'node3', targetPortId: 'Dataset' },
          { sourceNodeId: 'node3', sourcePortId: 'Scored dataset', targetNodeId: 'node4', targetPortId: 'Dataset' },
        ],
        graphParameters: {},
      },
    },
  };
}

function currentDoc(state, service, urls) {
  if (!service.armDoc) service.armDoc = initialDefinition(state, service, urls);
  return service.armDoc;
}

/** What GET shows: no keys, no storage key, no commitment plan. */
function publicDoc(doc) {
  const { keys, commitmentPlan, ...properties } = doc.properties;
  const view = { ...doc, properties: { ...properties } };
  if (properties.storageAccount) view.properties.storageAccount = { name: properties.storageAccount.name };
  return view;
}

function trainedModelAsset(doc, name) {
  const assets = doc.properties?.assets;
  if (!isPlainObject(assets)) return null;
  return Object.values(assets).find((a) => isPlainObject(a) && a.type === 'Resource' && a.name === name) || null;
}

function guard(state, directory, handler) {
  return (ctx) => {
    ctx.state = state;
    const token = bearerToken(ctx);
    const challenge = { 'www-authenticate': `Bearer authorization_uri="${directory.authority}/${directory.tenants[0].id}", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."` };
    if (token === null) armFail(ctx, 401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge);
    if (token === '') armFail(ctx, 401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is not a Bearer token.", challenge);
    const verdict = directory.verifyAccessToken(token, ARM_AUDIENCES);
    if (!verdict.ok) {
      armFail(ctx, 401, verdict.code, verdict.message, { 'www-authenticate': `Bearer authorization_uri="${directory.authority}/${directory.tenants[0].id}", error="invalid_token", error_description="${verdict.message.replace(/"/g, "'")}"` });
    }
    ctx.info.caller = verdict.claims.appid;
    const version = ctx.query.get('api-version');
    if (!version) armFail(ctx, 400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
    if (!API_VERSIONS.includes(version)) {
      armFail(ctx, 400, 'InvalidApiVersionParameter', `The api-version '${version}' is invalid. The supported versions are '${API_VERSIONS.join(',')}'.`);
    }
    const c = state.config;
    if (ctx.params.sub.toLowerCase() !== c.subscriptionId) armFail(ctx, 404, 'SubscriptionNotFound', `The subscription '${ctx.params.sub}' could not be found.`);
    if (ctx.params.rg !== undefined && ctx.params.rg.toLowerCase() !== c.resourceGroup.toLowerCase()) {
      armFail(ctx, 404, 'ResourceGroupNotFound', `Resource group '${ctx.params.rg}' could not be found.`);
    }
    if (ctx.params.name !== undefined) {
      ctx.service = state.findServiceByArmName(ctx.params.name);
      if (!ctx.service) {
        armFail(ctx, 404, 'NotFound', `The Resource 'Microsoft.MachineLearning/webServices/${ctx.params.name}' under resource group '${ctx.params.rg}' was not found.`);
      }
    }
    return handler(ctx);
  };
}

/** Starts the long-running provisioning that (re)loads the trained model. */
function startOperation(ctx, urls, service, doc, modelChanged) {
  const state = ctx.state;
  const c = state.config;
  const id = crypto.randomUUID();
  const location = normalLocation(doc.location || c.location);
  const op = {
    id: `/subscriptions/${c.subscriptionId}/providers/Microsoft.MachineLearning/locations/${location}/operationsStatus/${id}`,
    name: id,
    status: 'Provisioning',
    startTime: new Date().toISOString(),
    startedMs: Date.now(),
    percentComplete: 0,
  };
  state.operations.set(id, op);
  doc.properties.provisioningState = 'Provisioning';
  service.provisioningState = 'Provisioning';
  const duration = state.settings.armOperationMs;
  (async () => {
    const asset = trainedModelAsset(doc, service.trainedModelName);
    let failure = null;
    let model = null;
    const began = Date.now();
    if (modelChanged) {
      if (!asset) {
        failure = { code: 'InvalidAssets', message: `The definition has no Resource asset named '${service.trainedModelName}'.` };
      } else {
        try {
          model = await loadModelFromUrl(state, asset.locationInfo?.uri, asset.locationInfo?.credentials);
        } catch (err) {
          if (!(err instanceof ModelLoadError)) process.stderr.write(`[arm] ${err.stack || err}\n`);
          failure = { code: err.code || 'InternalError', message: err.message };
        }
      }
    }
    await sleep(Math.max(0, duration - (Date.now() - began)));
    if (service.armDoc !== doc) return; // a reset or another update replaced it
    const now = new Date().toISOString();
    op.endTime = now;
    op.percentComplete = 1.0;
    if (failure) {
      op.status = 'Failed';
      op.error = failure;
      doc.properties.provisioningState = 'Failed';
      service.provisioningState = 'Failed';
    } else {
      if (model) {
        const e = service.endpoints[0];
        e.model = { ...model, origin: `ARM update of '${service.armName}'` };
        const uri = new URL(asset.locationInfo.uri);
        e.modelLocation = { BaseLocation: `${uri.origin}/`, RelativeLocation: uri.pathname.slice(1) };
        e.modelUpdatedAt = now;
      }
      op.status = 'Succeeded';
      doc.properties.provisioningState = 'Succeeded';
      service.provisioningState = 'Succeeded';
    }
    doc.properties.modifiedOn = now;
  })();
  return `${urls.arm}${op.id}?api-version=${ctx.query.get('api-version')}`;
}

function validateDefinition(ctx, doc, { requireLocation }) {
  if (!isPlainObject(doc.properties)) armFail(ctx, 400, 'InvalidRequestContent', "The request content is invalid: 'properties' must be an object.");
  if (doc.properties.packageType !== 'Graph') {
    armFail(ctx, 400, 'InvalidRequestContent', `The request content is invalid: 'properties.packageType' must be "Graph", got ${JSON.stringify(doc.properties.packageType)}.`);
  }
  if (requireLocation && (typeof doc.location !== 'string' || doc.location === '')) {
    armFail(ctx, 400, 'InvalidRequestContent', "The request content is invalid: 'location' is required.");
  }
  if (doc.properties.assets !== undefined && !isPlainObject(doc.properties.assets)) {
    armFail(ctx, 400, 'InvalidRequestContent', "The request content is invalid: 'properties.assets' must be an object (asset id -> asset).");
  }
  for (const [k, a] of Object.entries(doc.properties.assets || {})) {
    if (!isPlainObject(a) || typeof a.name !== 'string' || typeof a.type !== 'string' || !isPlainObject(a.locationInfo)) {
      armFail(ctx, 400, 'InvalidRequestContent', `The request content is invalid: 'properties.assets.${k}' needs name, type and locationInfo.`);
    }
  }
}

function update(urls, mode) {
  return (ctx) => {
    const { state, service } = ctx;
    const parsed = parseJsonBody(ctx);
    if (!parsed.ok) armFail(ctx, 400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: ${parsed.message}.`);
    if (!isPlainObject(parsed.value)) armFail(ctx, 400, 'InvalidRequestContent', 'The request content must be a JSON object.');
    const body = canonicalize(parsed.value);
    const stray = Object.keys(body).filter((k) => !['id', 'name', 'type', 'location', 'tags', 'properties'].includes(k));
    if (stray.length) {
      armFail(ctx, 400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: 'Could not find member '${stray[0]}' on object of type 'WebService'. Path '${stray[0]}'.'`);
    }
    if (service.provisioningState === 'Provisioning') {
      armFail(ctx, 409, 'Conflict', `The web service '${service.armName}' is being provisioned; retry when provisioningState is Succeeded or Failed.`);
    }
    const before = currentDoc(state, service, urls);
    const oldUri = trainedModelAsset(before, service.trainedModelName)?.locationInfo?.uri;
    let doc;
    if (mode === 'PATCH') {
      doc = mergePatch(before, body);
      validateDefinition(ctx, doc, { requireLocation: false });
    } else {
      validateDefinition(ctx, body, { requireLocation: true });
      doc = { ...body };
      doc.properties = { ...body.properties };
      // A PUT without keys gets new ones, as Azure regenerates them.
      if (!isPlainObject(body.properties.keys)) doc.properties.keys = { primary: generateApiKey(), secondary: generateApiKey() };
    }
    doc.id = before.id;
    doc.name = before.name;
    doc.type = before.type;
    doc.properties.createdOn = before.properties.createdOn;
    doc.properties.swaggerLocation = before.properties.swaggerLocation;
    const keys = doc.properties.keys;
    if (isPlainObject(keys)) {
      const e = service.endpoints[0];
      if (typeof keys.primary === 'string' && keys.primary.length >= 16) e.keys.primary = keys.primary;
      if (typeof keys.secondary === 'string' && keys.secondary.length >= 16) e.keys.secondary = keys.secondary;
      doc.properties.keys = e.keys;
    }
    const newUri = trainedModelAsset(doc, service.trainedModelName)?.locationInfo?.uri;
    service.armDoc = doc;
    // A body that names the trained model's location has it (re)loaded even when the URL is the same as
    // before: each retraining run writes its model to the same blob, and two runs can sign the same SAS
    // within one second.
    const namesModel = trainedModelAsset(body, service.trainedModelName)?.locationInfo?.uri !== undefined;
    const asyncUrl = startOperation(ctx, urls, service, doc, mode === 'PUT' || newUri !== oldUri || namesModel);
    ctx.info.modelChanged = newUri !== oldUri;
    return jsonResponse(200, publicDoc(doc), {
      'azure-asyncoperation': asyncUrl,
      'azure-asyncoperationpercentcomplete': '0',
    });
  };
}

function operationStatus(ctx) {
  const op = ctx.state.operations.get(ctx.params.op);
  if (!op) armFail(ctx, 404, 'NotFound', `The operation '${ctx.params.op}' was not found.`);
  const view = { id: op.id, name: op.name, status: op.status, startTime: op.startTime };
  if (op.status === 'Provisioning') {
    view.percentComplete = Math.min(0.99, Math.round(((Date.now() - op.startedMs) / Math.max(1, ctx.state.settings.armOperationMs)) * 100) / 100);
  } else {
    view.endTime = op.endTime;
    view.percentComplete = 1.0;
    if (op.error) view.error = op.error;
  }
  ctx.info.operationStatus = op.status;
  return jsonResponse(200, view);
}

const WSPATH = '^\\/subscriptions\\/([^/]+)\\/resourcegroups\\/([^/]+)\\/providers\\/microsoft\\.machinelearning\\/webservices';

export function createArmService({ state, directory, urls, faults, log }) {
  const g = (h) => guard(state, directory, h);
  return createService({
    service: 'arm',
    faults,
    log,
    errors: armErrors,
    routes: [
      { name: 'ml.arm.list', method: 'GET', path: new RegExp(`${WSPATH}$`, 'i'), keys: ['sub', 'rg'], handler: g((ctx) => jsonResponse(200, { value: state.services.filter((s) => s.armName).map((s) => publicDoc(currentDoc(state, s, urls))) })) },
      { name: 'ml.arm.get', method: 'GET', path: new RegExp(`${WSPATH}\\/([^/]+)$`, 'i'), keys: ['sub', 'rg', 'name'], handler: g((ctx) => jsonResponse(200, publicDoc(currentDoc(state, ctx.service, urls)))) },
      { name: 'ml.arm.put', method: 'PUT', path: new RegExp(`${WSPATH}\\/([^/]+)$`, 'i'), keys: ['sub', 'rg', 'name'], handler: g(update(urls, 'PUT')) },
      { name: 'ml.arm.patch', method: 'PATCH', path: new RegExp(`${WSPATH}\\/([^/]+)$`, 'i'), keys: ['sub', 'rg', 'name'], handler: g(update(urls, 'PATCH')) },
      { name: 'ml.arm.listkeys', method: 'GET', path: new RegExp(`${WSPATH}\\/([^/]+)\\/listkeys$`, 'i'), keys: ['sub', 'rg', 'name'], handler: g((ctx) => jsonResponse(200, { ...ctx.service.endpoints[0].keys })) },
      { name: 'ml.arm.operation', method: 'GET', path: /^\/subscriptions\/([^/]+)\/providers\/microsoft\.machinelearning\/locations\/([^/]+)\/operationsstatus\/([^/]+)$/i, keys: ['sub', 'location', 'op'], handler: g(operationStatus) },
    ],
  });
}
