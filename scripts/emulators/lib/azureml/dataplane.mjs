// The RRS/BES data-plane host (…services.azureml.net): finds the endpoint named in the
// URL, checks its API key and api-version=2.0, then hands over to BES or RRS.

import crypto from 'node:crypto';
import { createService, jsonResponse, parseJsonBody, bearerToken } from '../http-kit.mjs';
import { mlFail, dataPlaneErrors } from './errors.mjs';
import { submitJob, startJob, jobStatus, deleteJob } from './bes.mjs';
import { predictRow } from './regression.mjs';
import { formatNumber } from './table.mjs';

const sameKey = (a, b) => a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function authorize(state, handler) {
  return (ctx) => {
    const found = state.findEndpoint(ctx.params.scope, ctx.params.owner, ctx.params.serviceId);
    if (found.error === 'WorkspaceNotFound') mlFail(ctx, 404, 'NotFound', 'WorkspaceNotFound', `The workspace or subscription '${ctx.params.owner}' was not found.`);
    if (found.error) mlFail(ctx, 404, 'NotFound', 'WebServiceNotFound', `The web service '${ctx.params.serviceId}' was not found in this workspace.`);
    ctx.info.serviceId = found.endpoint.id;
    const key = bearerToken(ctx);
    if (!key || !(sameKey(key, found.endpoint.keys.primary) || sameKey(key, found.endpoint.keys.secondary))) {
      mlFail(ctx, 401, 'Unauthorized', 'ScoreRequestUnauthorized', 'Invalid credentials provided: send "Authorization: Bearer <API key of this endpoint>".');
    }
    const version = ctx.query.get('api-version');
    if (version !== '2.0') {
      mlFail(ctx, 400, 'BadArgument', 'BadVersionCall', `Invalid or missing api-version '${version ?? ''}'; this service supports api-version=2.0.`);
    }
    ctx.ml = { state, ...found };
    return handler(ctx);
  };
}

function cellNumber(ctx, value, where) {
  const n = typeof value === 'number' ? value : (typeof value === 'string' && value.trim() !== '' ? Number(value.trim()) : NaN);
  if (!Number.isFinite(n)) mlFail(ctx, 400, 'BadUserArgument', 'InputParseError', `${where}: ${JSON.stringify(value)} is not a number.`);
  return n;
}

/** POST …/execute: request-response scoring with the endpoint's current model. */
function execute(ctx) {
  const { service, endpoint } = ctx.ml;
  if (service.kind !== 'scoring') {
    mlFail(ctx, 400, 'BadArgument', 'RequestResponseNotSupported', 'This is a training web service; it only runs batch jobs (BES), which is how retraining produces a model.');
  }
  const parsed = parseJsonBody(ctx);
  if (!parsed.ok) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', `The request body is invalid: ${parsed.message}.`);
  const body = parsed.value;
  if (!isPlainObject(body) || !isPlainObject(body.Inputs)) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', 'The request body must be an object with Inputs (input name -> table).');
  const bad = Object.keys(body.Inputs).filter((n) => !service.inputs.includes(n));
  if (bad.length) mlFail(ctx, 400, 'BadArgument', 'InvalidInputNames', `Invalid service input name(s) specified in the request: ${bad.join(', ')}. The service's inputs are: ${service.inputs.join(', ')}.`);
  if (body.GlobalParameters !== undefined && body.GlobalParameters !== null) {
    if (!isPlainObject(body.GlobalParameters)) mlFail(ctx, 400, 'BadArgument', 'RequestBodyInvalid', 'GlobalParameters must be an object.');
    const unknown = Object.keys(body.GlobalParameters).filter((k) => !(k in service.globalParameters));
    if (unknown.length) mlFail(ctx, 400, 'BadArgument', 'UnexpectedParameter', `Unexpected parameter(s) provided: ${unknown.join(', ')}.`);
  }
  const [inputName] = service.inputs;
  const input = body.Inputs[inputName];
  if (input === undefined) mlFail(ctx, 400, 'BadArgument', 'BatchJobInputsNotSpecified', `The following required input(s) were not specified with the request: ${inputName}.`);
  const model = endpoint.model;
  if (!model) mlFail(ctx, 400, 'ModuleExecutionError', 'ModuleExecutionError', 'This endpoint has no trained model yet.');
  const swagger = ctx.query.get('format') === 'swagger';
  const details = ctx.query.get('details') === 'true';
  const outputName = Object.keys(service.outputs)[0];

  if (swagger) {
    if (!Array.isArray(input) || !input.every(isPlainObject)) mlFail(ctx, 400, 'BadUserArgument', 'InputParseError', `Inputs.${inputName} must be a list of row objects in the swagger format.`);
    const rows = input.map((row, i) => {
      const value = predictRow(model, (f) => {
        if (!(f in row)) mlFail(ctx, 400, 'BadUserArgument', 'InputMismatchError', `Inputs.${inputName}[${i}] lacks the column '${f}' the model needs (it needs ${model.features.join(', ')}).`);
        return cellNumber(ctx, row[f], `Inputs.${inputName}[${i}].${f}`);
      });
      return { ...row, 'Scored Labels': Number(formatNumber(value)) };
    });
    ctx.info.rows = rows.length;
    return jsonResponse(200, { Results: { [outputName]: rows } });
  }

  if (!isPlainObject(input) || !Array.isArray(input.ColumnNames) || !Array.isArray(input.Values)) {
    mlFail(ctx, 400, 'BadUserArgument', 'InputParseError', `Inputs.${inputName} must be {"ColumnNames": [...], "Values": [[...], ...]}.`);
  }
  const columns = input.ColumnNames;
  if (!columns.every((c) => typeof c === 'string')) mlFail(ctx, 400, 'BadUserArgument', 'InputParseError', `Inputs.${inputName}.ColumnNames must be a list of strings.`);
  const missing = model.features.filter((f) => !columns.includes(f));
  if (missing.length) {
    mlFail(ctx, 400, 'BadUserArgument', 'InputMismatchError', `Inputs.${inputName} lacks the column(s) ${missing.join(', ')} the model needs (given: ${columns.join(', ') || 'none'}).`);
  }
  const values = input.Values.map((row, i) => {
    if (!Array.isArray(row) || row.length !== columns.length) {
      mlFail(ctx, 400, 'BadUserArgument', 'InputParseError', `Inputs.${inputName}.Values[${i}] must be a list of ${columns.length} values.`);
    }
    const value = predictRow(model, (f) => cellNumber(ctx, row[columns.indexOf(f)], `Inputs.${inputName}.Values[${i}] column '${f}'`));
    return [...row.map((v) => (v === null ? null : String(v))), formatNumber(value)];
  });
  ctx.info.rows = values.length;
  const table = { ColumnNames: [...columns, 'Scored Labels'] };
  if (details) {
    table.ColumnTypes = [...columns.map((c) => (model.features.includes(c) || c === model.label ? 'Double' : 'String')), 'Double'];
  }
  table.Values = values;
  return jsonResponse(200, { Results: { [outputName]: { type: 'table', value: table } } });
}

const BASE = '^\\/(workspaces|subscriptions)\\/([^/]+)\\/services\\/([^/]+)';
const KEYS = ['scope', 'owner', 'serviceId'];

export function createDataPlaneService({ state, faults, log }) {
  const a = (h) => authorize(state, h);
  return createService({
    service: 'ml',
    faults,
    log,
    errors: dataPlaneErrors,
    routes: [
      { name: 'ml.bes.submit', method: 'POST', path: new RegExp(`${BASE}\\/jobs$`), keys: KEYS, handler: a(submitJob) },
      { name: 'ml.bes.start', method: 'POST', path: new RegExp(`${BASE}\\/jobs\\/([^/]+)\\/start$`), keys: [...KEYS, 'jobId'], handler: a(startJob) },
      { name: 'ml.bes.status', method: 'GET', path: new RegExp(`${BASE}\\/jobs\\/([^/]+)$`), keys: [...KEYS, 'jobId'], handler: a(jobStatus) },
      { name: 'ml.bes.delete', method: 'DELETE', path: new RegExp(`${BASE}\\/jobs\\/([^/]+)$`), keys: [...KEYS, 'jobId'], handler: a(deleteJob) },
      { name: 'ml.rrs.execute', method: 'POST', path: new RegExp(`${BASE}\\/execute$`), keys: KEYS, handler: a(execute) },
    ],
  });
}
