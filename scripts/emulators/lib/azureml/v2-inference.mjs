// Azure ML v2 endpoints' data plane: online scoring (`/online/{endpoint}/score`, routed by the traffic map
// or pinned by the `azureml-model-deployment` header) and batch invoke (`/batch/{endpoint}/jobs`, a job that
// scores a CSV and writes the predictions). Online endpoints take their key or an https://ml.azure.com token
// as their authMode says; batch endpoints only the token. A deployment named in the fault set answers 500.

import crypto from 'node:crypto';
import { BlockBlobClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { createService, jsonResponse, parseJsonBody, bearerToken } from '../http-kit.mjs';
import { armFail, armErrors } from './errors.mjs';
import { parseTable, toCsv, formatNumber } from './table.mjs';
import { predictRow } from './regression.mjs';
import { readBlobByUrl, accountOfUrl, isLoopbackUrl } from './blobs.mjs';
import { resolveDatastoreUri } from './v2-state.mjs';

const ML_AUDIENCES = ['https://ml.azure.com'];
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function requireMlToken(ctx, directory) {
  const token = bearerToken(ctx);
  if (!token) armFail(ctx, 401, 'Unauthorized', "Authentication failed: an 'Authorization: Bearer <token>' header is required.");
  const verdict = directory.verifyAccessToken(token, ML_AUDIENCES);
  if (!verdict.ok) armFail(ctx, 401, verdict.code, verdict.message);
}

function sameSecret(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** Rows of features from {"data": [[...]]} or {"input_data": {"columns": [...], "data": [[...]]}}. */
function rowsOf(ctx, model) {
  const parsed = parseJsonBody(ctx);
  if (!parsed.ok) armFail(ctx, 400, 'BadRequest', parsed.message);
  const b = parsed.value;
  const features = model.features;
  if (isObject(b) && Array.isArray(b.data)) {
    return b.data.map((row, i) => {
      if (!Array.isArray(row) || row.length !== features.length || row.some((v) => !Number.isFinite(Number(v)))) armFail(ctx, 400, 'BadRequest', `data[${i}]: expected ${features.length} numbers (${features.join(', ')}).`);
      return (f) => Number(row[features.indexOf(f)]);
    });
  }
  if (isObject(b) && isObject(b.input_data) && Array.isArray(b.input_data.columns) && Array.isArray(b.input_data.data)) {
    const cols = b.input_data.columns;
    for (const f of features) if (!cols.includes(f)) armFail(ctx, 400, 'BadRequest', `input_data.columns: the model needs column '${f}'.`);
    return b.input_data.data.map((row) => (f) => Number(row[cols.indexOf(f)]));
  }
  armFail(ctx, 400, 'BadRequest', 'expected {"data": [[...], ...]} or {"input_data": {"columns": [...], "data": [[...]]}}.');
}

function pickDeployment(endpoint) {
  const entries = Object.entries(endpoint.resource.properties.traffic ?? {}).filter(([, v]) => v > 0);
  const total = entries.reduce((a, [, v]) => a + v, 0);
  if (total === 0) return null;
  let r = Math.random() * total;
  for (const [d, v] of entries) {
    r -= v;
    if (r < 0) return d;
  }
  return entries[entries.length - 1][0];
}

function score(v2, directory) {
  return (ctx) => {
    const endpoint = v2.online.get(ctx.params.e);
    if (!endpoint) armFail(ctx, 404, 'EndpointNotFound', `No online endpoint named '${ctx.params.e}'.`);
    const mode = String(endpoint.resource.properties.authMode).toLowerCase();
    if (mode === 'aadtoken') requireMlToken(ctx, directory);
    else if (mode === 'amltoken') {
      const expiry = endpoint.amlTokens.get(bearerToken(ctx) || '');
      if (!expiry || expiry < Date.now()) armFail(ctx, 401, 'Unauthorized', 'The AML token in the Authorization header is missing, unknown or expired.');
    } else {
      const key = bearerToken(ctx);
      if (!key || !(sameSecret(key, endpoint.keys.primaryKey) || sameSecret(key, endpoint.keys.secondaryKey))) armFail(ctx, 401, 'Unauthorized', 'The endpoint key in the Authorization header is missing or wrong.');
    }
    const pinned = ctx.headers['azureml-model-deployment'];
    const name = pinned || pickDeployment(endpoint);
    if (!name) armFail(ctx, 404, 'NoTraffic', `Online endpoint '${ctx.params.e}' sends no traffic to any deployment; name one in azureml-model-deployment.`);
    const deployment = endpoint.deployments.get(name);
    if (!deployment || deployment.properties.provisioningState !== 'Succeeded') armFail(ctx, 404, 'DeploymentNotFound', `No ready deployment named '${name}' on endpoint '${ctx.params.e}'.`);
    ctx.info.deployment = name;
    const healthy = !v2.unhealthy.has(name);
    v2.scored.push({ endpoint: ctx.params.e, deployment: name, pinned: Boolean(pinned), ok: healthy });
    // mirrored traffic: the shadow deployment sees a copy, the caller never its answer; the share is
    // kept exactly (a running count, not a draw), so 50 % mirrors every second request
    if (!pinned) {
      for (const [m, pct] of Object.entries(endpoint.resource.properties.mirrorTraffic ?? {})) {
        if (!(pct > 0)) continue;
        endpoint.mirrorCredit = (endpoint.mirrorCredit ?? 0) + pct;
        if (endpoint.mirrorCredit >= 100) {
          endpoint.mirrorCredit -= 100;
          v2.scored.push({ endpoint: ctx.params.e, deployment: m, pinned: false, mirrored: true, ok: !v2.unhealthy.has(m) });
        }
      }
    }
    const headers = { 'azureml-model-deployment': name };
    if (!healthy) return jsonResponse(500, { message: `An unexpected error occurred in scoring script (deployment ${name}).` }, headers);
    const model = v2.modelOf(deployment.properties.model);
    if (!model) return jsonResponse(500, { message: `deployment ${name} has no loadable model` }, headers);
    const rows = rowsOf(ctx, model);
    return jsonResponse(200, rows.map((valueOf) => Number(formatNumber(predictRow(model, valueOf)))), headers);
  };
}

async function writeBlob(url, storage, text) {
  const u = new URL(url);
  if (!isLoopbackUrl(u) || accountOfUrl(u) !== storage.accountName) throw new Error(`output ${url.split('?')[0]} is not in the workspace's datastore`);
  const credential = new StorageSharedKeyCredential(storage.accountName, storage.accountKey);
  const container = u.pathname.split('/')[2];
  await new ContainerClient(`${u.origin}/${storage.accountName}/${container}`, credential).createIfNotExists();
  const blob = new BlockBlobClient(u.href, credential);
  if (await blob.exists()) throw new Error(`the output path ${url.split('?')[0]} already exists`);
  const data = Buffer.from(text);
  await blob.upload(data, data.length);
}

function invoke(v2, directory, urls) {
  return (ctx) => {
    requireMlToken(ctx, directory);
    const endpoint = v2.batch.get(ctx.params.e);
    if (!endpoint) armFail(ctx, 404, 'EndpointNotFound', `No batch endpoint named '${ctx.params.e}'.`);
    const parsed = parseJsonBody(ctx);
    if (!parsed.ok) armFail(ctx, 400, 'UserError', parsed.message);
    const b = parsed.value;
    if (!isObject(b) || !isObject(b.properties)) armFail(ctx, 400, 'UserError', "The body needs 'properties' with InputData and OutputData.");
    for (const k of Object.keys(b.properties)) if (!['InputData', 'OutputData', 'Inputs', 'Outputs'].includes(k)) armFail(ctx, 400, 'UserError', `Could not find member '${k}' on object of type 'BatchJob'. Path 'properties.${k}'.`);
    const inputs = Object.entries(b.properties.InputData ?? {});
    for (const [n, i] of inputs) {
      const ok = isObject(i) && (i.JobInputType === 'Literal' ? typeof i.Value === 'string' : ['UriFile', 'UriFolder'].includes(i.JobInputType) && typeof i.Uri === 'string');
      if (!ok) armFail(ctx, 400, 'UserError', `properties.InputData.${n}: expected {JobInputType: 'UriFile'|'UriFolder', Uri: '...'} or {JobInputType: 'Literal', Value: '...'}.`);
    }
    const outputs = Object.entries(b.properties.OutputData ?? {});
    for (const [n, o] of outputs) if (!isObject(o) || !['UriFile', 'UriFolder'].includes(o.JobOutputType) || typeof o.Uri !== 'string') armFail(ctx, 400, 'UserError', `properties.OutputData.${n}: expected {JobOutputType: 'UriFile', Uri: '...'}.`);
    const name = ctx.headers['azureml-model-deployment'] || endpoint.resource.properties.defaults?.deploymentName;
    const deployment = name && endpoint.deployments.get(name);
    if (!deployment) armFail(ctx, 400, 'UserError', `Batch endpoint '${ctx.params.e}' has no deployment '${name ?? '(no default)'}'.`);
    const pipeline = deployment.properties.deploymentConfiguration?.deploymentConfigurationType === 'PipelineComponent';
    if (!pipeline && (inputs.length !== 1 || inputs[0][1].JobInputType !== 'UriFile')) armFail(ctx, 400, 'UserError', `properties.InputData: a model deployment takes exactly one UriFile input (this stand-in reads one CSV file), got ${inputs.length}.`);
    const [[, input]] = inputs.length ? inputs : [[null, null]];
    const jobName = `batchjob-${crypto.randomUUID()}`;
    const storage = v2.storage;
    const jobInputs = Object.fromEntries(inputs.map(([k, i]) => [k, i.JobInputType === 'Literal' ? { jobInputType: 'literal', value: i.Value } : { jobInputType: i.JobInputType === 'UriFile' ? 'uri_file' : 'uri_folder', uri: i.Uri }]));
    const job = v2.createJob(jobName, { jobType: 'Pipeline', displayName: `${ctx.params.e}/${name}`, tags: { endpoint: ctx.params.e, deployment: name }, inputs: jobInputs, outputs: Object.fromEntries(outputs.map(([k, o]) => [k, { jobOutputType: 'uri_file', uri: o.Uri }])) }, storage, async () => {
      // a pipeline component's steps are not emulated: the job records its inputs and completes
      if (pipeline) return;
      const model = v2.modelOf(deployment.properties.model.assetId);
      if (!model) throw new Error(`deployment ${name} has no loadable model`);
      const data = await readBlobByUrl(resolveDatastoreUri(input.Uri, storage), (u) => (accountOfUrl(u) === storage.accountName ? storage : null));
      const table = parseTable(data, 'csv');
      const rows = table.rows.map((r) => [...r.cells, formatNumber(predictRow(model, (f) => Number(r.cells[table.columns.indexOf(f)])))]);
      for (const [, o] of outputs) await writeBlob(resolveDatastoreUri(o.Uri, storage), storage, toCsv([...table.columns, 'prediction'], rows));
    });
    ctx.info.job = jobName;
    return jsonResponse(200, { id: `${v2.prefix()}/jobs/${jobName}`, name: jobName, type: 'Microsoft.MachineLearningServices/workspaces/jobs', properties: { status: job.status, tags: job.properties.tags, services: { Studio: { endpoint: `${urls.v2}/studio/runs/${jobName}` } } } });
  };
}

function batchJob(v2, directory) {
  return (ctx) => {
    requireMlToken(ctx, directory);
    const job = v2.jobs.get(ctx.params.job);
    if (!job || job.properties.tags?.endpoint !== ctx.params.e) armFail(ctx, 404, 'JobNotFound', `No job '${ctx.params.job}' on batch endpoint '${ctx.params.e}'.`);
    return jsonResponse(200, { id: `${v2.prefix()}/jobs/${job.name}`, name: job.name, properties: { status: job.status, tags: job.properties.tags, outputs: job.properties.outputs, properties: job.failure ? { 'lufa.failureReason': job.failure } : {} } });
  };
}

export function createV2InferenceService({ v2, directory, urls, faults, log }) {
  return createService({
    service: 'mlv2-inference',
    faults,
    log,
    errors: armErrors,
    routes: [
      { name: 'mlv2.online.score', method: 'POST', path: /^\/online\/([^/]+)\/score$/, keys: ['e'], handler: score(v2, directory) },
      { name: 'mlv2.batch.invoke', method: 'POST', path: /^\/batch\/([^/]+)\/jobs$/, keys: ['e'], handler: invoke(v2, directory, urls) },
      { name: 'mlv2.batch.job', method: 'GET', path: /^\/batch\/([^/]+)\/jobs\/([^/]+)$/, keys: ['e', 'job'], handler: batchJob(v2, directory) },
    ],
  });
}
