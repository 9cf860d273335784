// Batch Execution Service (api-version 2.0): submit, start, status, cancel. Training jobs
// really train (least squares on the input table) and write the .ilearner; batch scoring
// jobs write a scored CSV. Requests are checked the way the real service checks them.

import crypto from 'node:crypto';
import { jsonResponse, emptyResponse, parseJsonBody } from '../http-kit.mjs';
import { mlFail } from './errors.mjs';
import { resolveReference, readBlob, writeBlob, blobExists, resultLocation, storageReason, BlobRefError } from './blobs.mjs';
import { parseTable, toCsv, formatNumber, TableError, numberAt, stackTables } from './table.mjs';
import { train, predictRow } from './regression.mjs';

const INPUT_EXTENSIONS = ['.csv', '.tsv', '.arff'];
const OUTPUT_EXTENSIONS = { trainedModel: ['.ilearner'], evaluation: ['.csv'], scores: ['.csv'] };
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function extensionOf(name) {
  const base = name.split('/').pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot).toLowerCase() : '';
}

function resolveOrFail(ctx, ref, what) {
  try {
    return resolveReference(ref, what);
  } catch (err) {
    if (err instanceof BlobRefError) mlFail(ctx, 400, 'BadArgument', err.code, err.message);
    throw err;
  }
}

function checkExtension(ctx, resolved, allowed) {
  if (!allowed.includes(extensionOf(resolved.extension))) {
    mlFail(ctx, 400, 'BadArgument', 'InvalidBlobExtension',
      `The blob reference: ${resolved.relative} has an invalid or missing file extension. Supported file extensions for this output type are: "${allowed.join(', ')}".`);
  }
}

/** Reads GlobalParameters against the service's declared ones (names are case-sensitive). */
function checkGlobalParameters(ctx, service, given) {
  if (given === undefined || given === null) given = {};
  if (!isPlainObject(given)) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', 'GlobalParameters must be an object mapping parameter names to values.');
  const declared = service.globalParameters;
  const unknown = Object.keys(given).filter((k) => !(k in declared));
  if (unknown.length) {
    mlFail(ctx, 400, 'BadArgument', 'UnexpectedParameter',
      `Unexpected parameter(s) provided: ${unknown.join(', ')}. This web service's global parameters are: ${Object.keys(declared).join(', ') || '(none)'}.`);
  }
  const missing = Object.entries(declared).filter(([k, d]) => d.required && !(k in given)).map(([k]) => k);
  if (missing.length) mlFail(ctx, 400, 'BadArgument', 'MissingRequiredGlobalParameters', `The following required global parameter(s) were not specified: ${missing.join(', ')}.`);
  const values = {};
  for (const [name, d] of Object.entries(declared)) {
    const raw = name in given ? given[name] : d.default;
    if (d.type === 'number') {
      const n = typeof raw === 'number' ? raw : Number(String(raw ?? '').trim());
      if (raw === undefined || raw === null || String(raw).trim() === '' || !Number.isFinite(n)) {
        mlFail(ctx, 400, 'BadArgument', 'InvalidParameterValue', `Global parameter '${name}' must be a number, got ${JSON.stringify(raw)}.`);
      }
      values[name] = n;
    } else {
      values[name] = raw === undefined || raw === null ? '' : String(raw);
    }
  }
  return values;
}

/** POST …/jobs: validates and records a job in NotStarted; the reply is the id as a JSON string. */
export async function submitJob(ctx) {
  const { service, endpoint, state } = ctx.ml;
  const parsed = parseJsonBody(ctx);
  if (!parsed.ok) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', `The request body is invalid: ${parsed.message}.`);
  const body = parsed.value;
  if (!isPlainObject(body)) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', 'The request body must be a JSON object with Inputs, Outputs and GlobalParameters.');
  if (body.Input !== undefined && body.Inputs !== undefined) {
    mlFail(ctx, 400, 'BadArgument', 'DuplicateInputInBatchCall', 'Both Input and Inputs are specified in the request; use only Inputs.');
  }
  let inputs = body.Inputs;
  if (body.Input !== undefined) {
    if (service.inputs.length !== 1) {
      mlFail(ctx, 400, 'BadArgument', 'BatchJobInputsTooManySpecified', `The legacy single Input form cannot be used: this service has ${service.inputs.length} inputs (${service.inputs.join(', ')}); use Inputs.`);
    }
    inputs = { [service.inputs[0]]: body.Input };
  }
  if (inputs === undefined || inputs === null) inputs = {};
  if (!isPlainObject(inputs)) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', 'Inputs must be an object mapping web service input names to blob references.');
  const badInputs = Object.keys(inputs).filter((n) => !service.inputs.includes(n));
  if (badInputs.length) {
    mlFail(ctx, 400, 'BadArgument', 'InvalidInputNames',
      `Invalid service input name(s) specified in the request: ${badInputs.join(', ')}. Please check the request and try again. The service's inputs are: ${service.inputs.join(', ')}.`);
  }
  const missingInputs = service.inputs.filter((n) => !(n in inputs));
  if (missingInputs.length) {
    mlFail(ctx, 400, 'BadArgument', 'BatchJobInputsNotSpecified', `The following required input(s) were not specified with the request: ${missingInputs.join(', ')}. Please ensure all input data is specified and try again.`);
  }
  let outputs = body.Outputs ?? {};
  if (!isPlainObject(outputs)) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', 'Outputs must be an object mapping web service output names to blob references.');
  const badOutputs = Object.keys(outputs).filter((n) => !(n in service.outputs));
  if (badOutputs.length) {
    mlFail(ctx, 400, 'BadArgument', 'InvalidOutputOverrideName',
      `Invalid web service output name(s) provided for override: ${badOutputs.join(', ')}. Output names are case-sensitive; the service's outputs are: ${Object.keys(service.outputs).join(', ')}.`);
  }
  const globals = checkGlobalParameters(ctx, service, body.GlobalParameters);

  const jobId = state.newJobId();
  const resolvedInputs = {};
  for (const [name, ref] of Object.entries(inputs)) {
    const r = resolveOrFail(ctx, ref, `input '${name}'`);
    checkExtension(ctx, r, INPUT_EXTENSIONS);
    resolvedInputs[name] = r;
  }
  const resolvedOutputs = {};
  for (const [name, type] of Object.entries(service.outputs)) {
    if (name in outputs) {
      const r = resolveOrFail(ctx, outputs[name], `output '${name}'`);
      checkExtension(ctx, r, OUTPUT_EXTENSIONS[type]);
      resolvedOutputs[name] = r;
    } else if (state.defaultStorage) {
      // Without an override the service writes into its own storage, as Azure does.
      const ext = OUTPUT_EXTENSIONS[type][0];
      const s = state.defaultStorage;
      resolvedOutputs[name] = resolveReference({
        ConnectionString: `DefaultEndpointsProtocol=${s.blobEndpoint.split(':')[0]};AccountName=${s.accountName};AccountKey=${s.accountKey};BlobEndpoint=${s.blobEndpoint};`,
        RelativeLocation: `experimentoutput/${jobId}/${crypto.randomUUID().replace(/-/g, '')}${ext}`,
      }, `output '${name}'`);
    }
  }
  for (const [name, r] of Object.entries(resolvedInputs)) {
    let exists;
    try {
      exists = await blobExists(r);
    } catch (err) {
      mlFail(ctx, 400, 'BadArgument', 'InvalidBlobConnectionString', `Input '${name}': cannot access ${r.display}: ${storageReason(err)}.`);
    }
    if (!exists) mlFail(ctx, 400, 'BadArgument', 'BlobNotFound', `Input '${name}': the blob ${r.display} was not found.`);
  }

  const job = {
    id: jobId,
    serviceId: service.id,
    endpointId: endpoint.id,
    kind: service.kind,
    state: 'NotStarted',
    createdAt: new Date().toISOString(),
    startedAt: null,
    endedAt: null,
    details: null,
    inputs: resolvedInputs,
    outputs: resolvedOutputs,
    globalParameters: globals,
    summary: null,
  };
  state.jobs.set(jobId, job);
  ctx.info.jobId = jobId;
  return jsonResponse(200, jobId);
}

function findJob(ctx) {
  const { endpoint, state } = ctx.ml;
  const job = state.jobs.get(ctx.params.jobId.toLowerCase());
  ctx.info.jobId = ctx.params.jobId;
  if (!job || job.endpointId !== endpoint.id) mlFail(ctx, 404, 'NotFound', 'JobNotFound', `No job with id '${ctx.params.jobId}' exists for this web service.`);
  return job;
}

/** POST …/jobs/{id}/start: NotStarted -> Running, then the job runs in the background. */
export function startJob(ctx) {
  const job = findJob(ctx);
  if (job.state !== 'NotStarted') {
    mlFail(ctx, 400, 'InvalidOperation', 'CannotStartJob', `Job '${job.id}' cannot be started because it is in ${job.state} state.`);
  }
  job.state = 'Running';
  job.startedAt = new Date().toISOString();
  runJob(ctx.ml.state, ctx.ml.service, ctx.ml.endpoint, job);
  return emptyResponse(204);
}

/** GET …/jobs/{id}: StatusCode as a string; Results (with fresh SAS tokens) only when Finished. */
export function jobStatus(ctx) {
  const job = findJob(ctx);
  let results = null;
  if (job.state === 'Finished') {
    results = Object.fromEntries(Object.entries(job.outputs).map(([name, r]) => [name, resultLocation(r)]));
  }
  ctx.info.statusCode = job.state;
  return jsonResponse(200, { StatusCode: job.state, Results: results, Details: job.details });
}

/** DELETE …/jobs/{id}: cancels a job that has not ended; an ended job keeps its state. */
export function deleteJob(ctx) {
  const job = findJob(ctx);
  if (job.state === 'NotStarted' || job.state === 'Running') {
    job.state = 'Cancelled';
    job.endedAt = new Date().toISOString();
    job.details = 'The job was cancelled by a DELETE request.';
  }
  return emptyResponse(204);
}

class JobFailure extends Error {}

async function readTable(name, resolved) {
  let data;
  try {
    data = await readBlob(resolved);
  } catch (err) {
    throw new JobFailure(`Could not read input '${name}' (${resolved.display}): ${err instanceof BlobRefError ? err.message : storageReason(err)}.`);
  }
  const ext = extensionOf(resolved.extension).slice(1);
  try {
    return parseTable(data, ext);
  } catch (err) {
    if (err instanceof TableError) throw new JobFailure(`Input '${name}' (${resolved.relative}) could not be parsed as ${ext.toUpperCase()}: ${err.message}.`);
    throw err;
  }
}

async function writeOutput(name, resolved, data, contentType) {
  try {
    await writeBlob(resolved, data, contentType);
  } catch (err) {
    throw new JobFailure(`Could not write output '${name}' (${resolved.display}): ${storageReason(err)}.`);
  }
}

async function runTraining(service, job) {
  // Every input is training data with the same columns; their rows are used together.
  const named = [];
  for (const name of service.inputs) named.push([name, await readTable(name, job.inputs[name])]);
  let table;
  try {
    table = stackTables(named);
  } catch (err) {
    if (err instanceof TableError) throw new JobFailure(`Module 'Train Model' failed: ${err.message}.`);
    throw err;
  }
  const g = job.globalParameters;
  const label = g['Label column'] || 'label';
  const features = (g['Feature columns'] || '').split(',').map((s) => s.trim()).filter(Boolean);
  let model;
  try {
    model = train(table, { label, features, holdoutFraction: g['Holdout fraction'] ?? 0.2 });
  } catch (err) {
    if (err instanceof TableError) {
      const where = service.inputs.map((n) => `'${n}' (${job.inputs[n].relative})`).join(', ');
      throw new JobFailure(`Module 'Train Model' failed on input ${where}: ${err.message}.`);
    }
    throw err;
  }
  model.trainedModelName = service.trainedModelName;
  model.trainedAt = new Date().toISOString();
  model.source = { jobId: job.id, inputs: Object.fromEntries(service.inputs.map((n) => [n, job.inputs[n].relative])) };
  for (const [name, type] of Object.entries(service.outputs)) {
    const r = job.outputs[name];
    if (!r) continue;
    if (type === 'trainedModel') {
      await writeOutput(name, r, Buffer.from(`${JSON.stringify(model, null, 2)}\n`), 'application/octet-stream');
    } else {
      const m = model.metrics;
      const rows = [['Root Mean Squared Error', m.rmse], ['Mean Absolute Error', m.mae], ['Coefficient of Determination', m.r2],
        ['Training Rows', model.trainingRows], ['Holdout Rows', model.holdoutRows]];
      await writeOutput(name, r, Buffer.from(toCsv(['Metric', 'Value'], rows.map(([k, v]) => [k, v ?? '']))), 'text/csv');
    }
  }
  return { label: model.label, features: model.features, weights: model.weights, intercept: model.intercept, metrics: model.metrics, trainingRows: model.trainingRows, holdoutRows: model.holdoutRows };
}

async function runScoring(service, endpoint, job) {
  const model = endpoint.model;
  if (!model) throw new JobFailure('This web service has no trained model to score with.');
  const [inputName] = service.inputs;
  const table = await readTable(inputName, job.inputs[inputName]);
  const missing = model.features.filter((f) => !table.columns.includes(f));
  if (missing.length) throw new JobFailure(`Module 'Score Model' failed: input '${inputName}' lacks the column(s) ${missing.join(', ')} the model needs (it has ${table.columns.join(', ')}).`);
  let rows;
  try {
    rows = table.rows.map((row) => {
      const value = predictRow(model, (f) => numberAt(row, table.columns.indexOf(f), f));
      return [...row.cells, formatNumber(value)];
    });
  } catch (err) {
    if (err instanceof TableError) throw new JobFailure(`Module 'Score Model' failed on input '${inputName}': ${err.message}.`);
    throw err;
  }
  const csv = toCsv([...table.columns, 'Scored Labels'], rows);
  for (const [name, r] of Object.entries(job.outputs)) await writeOutput(name, r, Buffer.from(csv), 'text/csv');
  return { scoredRows: rows.length };
}

/** Runs a started job; it stays Running for at least the configured duration. */
async function runJob(state, service, endpoint, job) {
  const minimum = sleep(state.settings.jobDurationMs);
  let outcome;
  try {
    const summary = service.kind === 'training' ? await runTraining(service, job) : await runScoring(service, endpoint, job);
    outcome = { state: 'Finished', details: null, summary };
  } catch (err) {
    if (!(err instanceof JobFailure)) process.stderr.write(`[ml] job ${job.id}: ${err.stack || err}\n`);
    outcome = { state: 'Failed', details: err instanceof JobFailure ? err.message : `Internal error while running the job: ${err.message}` };
  }
  await minimum;
  if (job.state !== 'Running') return; // cancelled meanwhile
  job.state = outcome.state;
  job.details = outcome.details;
  job.summary = outcome.summary ?? null;
  job.endedAt = new Date().toISOString();
}

/** A job as the control endpoint shows it: locations without keys or SAS. */
export function describeJob(job) {
  return {
    id: job.id,
    serviceId: job.serviceId,
    endpointId: job.endpointId,
    kind: job.kind,
    state: job.state,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    endedAt: job.endedAt,
    details: job.details,
    inputs: Object.fromEntries(Object.entries(job.inputs).map(([k, r]) => [k, r.relative])),
    outputs: Object.fromEntries(Object.entries(job.outputs).map(([k, r]) => [k, r.relative])),
    globalParameters: job.globalParameters,
    result: job.summary,
  };
}
