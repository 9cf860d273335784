// The Azure ML v2 workspace the stand-in serves: jobs (a timed state machine that really trains the
// emulator's linear regression on a CSV input), model versions, batch and online endpoints with their
// deployments, traffic maps and keys, and the asynchronous operations that provision them.

import crypto from 'node:crypto';
import { parseTable } from './table.mjs';
import { train, parseModel } from './regression.mjs';
import { BlockBlobClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { readBlobByUrl, accountOfUrl, isLoopbackUrl } from './blobs.mjs';

export const JOB_STEPS = ['NotStarted', 'Queued', 'Running', 'Finalizing'];

export class V2State {
  constructor(mlConfig, settings) {
    this.config = {
      subscriptionId: mlConfig.subscriptionId,
      resourceGroup: mlConfig.resourceGroup,
      workspace: mlConfig.v2Workspace ?? 'lufa-retraining-v2',
      location: (mlConfig.location || 'westeurope').toLowerCase().replace(/\s+/g, ''),
      initialModel: mlConfig.services.find((s) => s.initialModel)?.initialModel ?? null,
    };
    this.settings = settings;
    this.reset();
  }

  reset() {
    this.jobs = new Map();
    this.models = new Map(); // name -> {container, versions: Map}
    this.online = new Map(); // name -> {resource, deployments: Map, keys}
    this.batch = new Map();
    this.operations = new Map();
    this.unhealthy = new Set();
    this.scored = []; // online scoring calls: {endpoint, deployment, pinned, ok}
    if (this.config.initialModel) this.seed();
  }

  prefix() {
    const c = this.config;
    return `/subscriptions/${c.subscriptionId}/resourceGroups/${c.resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/${c.workspace}`;
  }

  /** The configured initial model as version 1, served by online deployment "blue" and batch deployment "blue". */
  seed() {
    const m = this.config.initialModel;
    const doc = { format: 'lufa-emulator-ilearner', version: 1, label: m.label, features: m.features, weights: m.weights, intercept: m.intercept };
    const now = new Date().toISOString();
    const name = 'rentals';
    const versionId = `${this.prefix()}/models/${name}/versions/1`;
    this.models.set(name, {
      container: { id: `${this.prefix()}/models/${name}`, name, type: 'Microsoft.MachineLearningServices/workspaces/models', properties: { description: 'bike rentals', latestVersion: '1' } },
      versions: new Map([['1', { resource: { id: versionId, name: '1', type: 'Microsoft.MachineLearningServices/workspaces/models/versions', properties: { modelType: 'custom_model', modelUri: 'azureml://datastores/workspaceblobstore/paths/initial/model', description: 'initial model', tags: {}, properties: { rmse: '9.5' }, provisioningState: 'Succeeded' }, systemData: { createdAt: now } }, model: doc }]]),
    });
    const endpoint = this.newOnlineEndpoint('rentals', { location: this.config.location, properties: { authMode: 'Key', description: 'bike rentals', traffic: { blue: 100 } } });
    endpoint.deployments.set('blue', this.deploymentResource('online', 'rentals', 'blue', { location: this.config.location, sku: { name: 'Default', capacity: 1 }, properties: { endpointComputeType: 'Managed', model: versionId, instanceType: 'Standard_DS3_v2' } }, 'Succeeded'));
    this.online.set('rentals', endpoint);
    const b = this.newBatchEndpoint('rentals-batch', { location: this.config.location, properties: { authMode: 'AADToken', description: 'bike rentals batch scoring', defaults: { deploymentName: 'blue' } } });
    b.deployments.set('blue', this.deploymentResource('batch', 'rentals-batch', 'blue', { location: this.config.location, properties: { model: { referenceType: 'Id', assetId: versionId }, compute: `${this.prefix()}/computes/cpu-cluster` } }, 'Succeeded'));
    this.batch.set('rentals-batch', b);
    // what replaced v1 pipeline endpoints: a batch endpoint whose deployment is a pipeline component
    const pipe = this.newBatchEndpoint('rentals-pipeline', { location: this.config.location, properties: { authMode: 'AADToken', description: 'rentals retraining pipeline', defaults: { deploymentName: 'v1' } } });
    pipe.deployments.set('v1', this.deploymentResource('batch', 'rentals-pipeline', 'v1', { location: this.config.location, properties: { deploymentConfiguration: { deploymentConfigurationType: 'PipelineComponent', componentId: { referenceType: 'Id', assetId: `${this.prefix()}/components/retrain/versions/1` } } } }, 'Succeeded'));
    this.batch.set('rentals-pipeline', pipe);
  }

  newOnlineEndpoint(name, body) {
    return {
      resource: { id: `${this.prefix()}/onlineEndpoints/${name}`, name, type: 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints', location: body.location, kind: body.kind, tags: body.tags ?? {}, identity: body.identity ?? { type: 'SystemAssigned' }, properties: { ...body.properties, traffic: body.properties.traffic ?? {}, mirrorTraffic: body.properties.mirrorTraffic ?? {}, provisioningState: 'Succeeded' } },
      deployments: new Map(),
      amlTokens: new Map(), // token -> expiry (ms)
      keys: { primaryKey: crypto.randomBytes(24).toString('base64'), secondaryKey: crypto.randomBytes(24).toString('base64') },
    };
  }

  newBatchEndpoint(name, body) {
    return {
      resource: { id: `${this.prefix()}/batchEndpoints/${name}`, name, type: 'Microsoft.MachineLearningServices/workspaces/batchEndpoints', location: body.location, kind: body.kind, tags: body.tags ?? {}, identity: body.identity ?? { type: 'SystemAssigned' }, properties: { ...body.properties, defaults: body.properties.defaults ?? {}, provisioningState: 'Succeeded' } },
      deployments: new Map(),
    };
  }

  deploymentResource(kind, endpoint, name, body, state) {
    const base = kind === 'online' ? 'onlineEndpoints' : 'batchEndpoints';
    return { id: `${this.prefix()}/${base}/${endpoint}/deployments/${name}`, name, type: `Microsoft.MachineLearningServices/workspaces/${base}/deployments`, location: body.location, tags: body.tags ?? {}, sku: body.sku, properties: { ...body.properties, provisioningState: state } };
  }

  /** The trained model behind an asset id `…/models/{name}/versions/{v}`, or null. */
  modelOf(assetId) {
    const m = /\/models\/([^/]+)\/versions\/([^/]+)$/i.exec(String(assetId || ''));
    if (!m) return null;
    return this.models.get(m[1])?.versions.get(m[2])?.model ?? null;
  }

  /** What an `azureml://jobs/{job}/outputs/{name}` URI holds, or null. */
  jobOutput(uri) {
    const m = /^azureml:\/\/jobs\/([^/]+)\/outputs\/([^/]+)\/?$/i.exec(String(uri || ''));
    if (!m) return null;
    const job = this.jobs.get(m[1]);
    return job && job.status === 'Completed' ? job.outputs[m[2]] ?? null : null;
  }

  /** Starts an operation that ends after armOperationMs; `finish()` returns an error object or null. */
  startOperation(finish) {
    const id = crypto.randomUUID();
    const op = { id, status: 'InProgress', startTime: new Date().toISOString() };
    this.operations.set(id, op);
    setTimeout(() => {
      const error = finish();
      op.status = error ? 'Failed' : 'Succeeded';
      if (error) op.error = error;
      op.endTime = new Date().toISOString();
    }, this.settings.armOperationMs).unref();
    return op;
  }

  /** Creates a job and runs its timed life; a command job with a CSV `training_data` input trains a model. */
  createJob(name, properties, storage, work = (job) => this.work(job, storage)) {
    const job = { name, properties, status: 'NotStarted', created: Date.now(), outputs: {}, metrics: {}, history: ['NotStarted'], failure: null };
    this.jobs.set(name, job);
    const step = Math.max(1, this.settings.jobDurationMs / JOB_STEPS.length);
    const done = work(job).catch((err) => { job.failure = err.message; });
    let i = 0;
    const tick = async () => {
      if (job.status === 'CancelRequested' || job.status === 'Canceled') return;
      i += 1;
      if (i < JOB_STEPS.length) {
        this.setStatus(job, JOB_STEPS[i]);
        setTimeout(tick, step).unref();
        return;
      }
      await done;
      if (job.status === 'CancelRequested' || job.status === 'Canceled') return;
      this.setStatus(job, job.failure ? 'Failed' : 'Completed');
    };
    setTimeout(tick, step).unref();
    return job;
  }

  setStatus(job, status) {
    job.status = status;
    job.history.push(status);
  }

  cancelJob(job) {
    if (['Completed', 'Failed', 'Canceled'].includes(job.status)) return false;
    this.setStatus(job, 'CancelRequested');
    setTimeout(() => this.setStatus(job, 'Canceled'), Math.min(200, this.settings.jobDurationMs)).unref();
    return true;
  }

  async work(job, storage) {
    const p = job.properties;
    if (p.jobType !== 'Command') return;
    // the training data: the input named training_data, else the first CSV file input
    const input = p.inputs?.training_data ?? Object.values(p.inputs || {}).find((i) => String(i.jobInputType).toLowerCase() === 'uri_file' && /\.csv$/i.test(String(i.uri)));
    if (!input) return;
    const uri = resolveDatastoreUri(input.uri, storage);
    const data = await readBlobByUrl(uri, (url) => (storage && accountOfUrl(url) === storage.accountName ? storage : null));
    const label = p.inputs.label?.value ?? p.inputs.label_column?.value ?? 'rentals';
    const model = train(parseTable(data, 'csv'), { label, features: null, holdoutFraction: 0.2 });
    model.source = { jobName: job.name };
    // a training script records its metrics as job properties; the emulator's "script" does the same
    for (const [k, v] of Object.entries(model.metrics || {})) if (v !== null) job.metrics[k] = String(v);
    for (const [name, o] of Object.entries(p.outputs || {})) {
      if (!['uri_folder', 'custom_model', 'mlflow_model', 'uri_file'].includes(String(o.jobOutputType).toLowerCase())) continue;
      if (o.uri && !/\.ilearner$/i.test(String(o.uri))) continue; // a named file that is not a model (an evaluation)
      job.outputs[name] = model;
      // an output at a datastore path is written there, as the training script would
      if (o.uri) await writeModelBlob(resolveDatastoreUri(o.uri, storage), storage, model);
    }
  }
}

async function writeModelBlob(url, storage, model) {
  const u = new URL(url);
  if (!storage || !isLoopbackUrl(u) || accountOfUrl(u) !== storage.accountName) throw new Error(`output ${url.split('?')[0]} is not in the local storage account`);
  const credential = new StorageSharedKeyCredential(storage.accountName, storage.accountKey);
  await new ContainerClient(`${u.origin}/${storage.accountName}/${u.pathname.split('/')[2]}`, credential).createIfNotExists();
  const data = Buffer.from(`${JSON.stringify(model, null, 2)}\n`);
  await new BlockBlobClient(u.href, credential).upload(data, data.length);
}

/** Reads a model document from a datastore path or a local blob URL; throws with the reason. */
export async function readModelBlob(uri, storage) {
  const url = resolveDatastoreUri(uri, storage);
  const data = await readBlobByUrl(url, (u) => (storage && accountOfUrl(u) === storage.accountName ? storage : null));
  return parseModel(data);
}

/** `azureml://datastores/workspaceblobstore/paths/{p}` is the container "workspaceblobstore" of the local account. */
export function resolveDatastoreUri(uri, storage) {
  const m = /^azureml:\/\/datastores\/([^/]+)\/paths\/(.+)$/i.exec(String(uri || ''));
  if (m && storage) return `${storage.blobEndpoint}/${m[1]}/${m[2]}`;
  return uri;
}
