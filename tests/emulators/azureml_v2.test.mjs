// Azure ML v2 stand-in: audiences and api-versions, strict job bodies, a command job that trains on a CSV,
// idempotent job PUT, model registration from the job output, online deployments as long-running
// operations with traffic checks, scoring per deployment (and the unhealthy fault), batch invoke.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulators, request, secretToken, uploadText, downloadText, eventually, control } from './helpers.mjs';

// rentals = 100 + 2*temperature - humidity, exactly
const CSV = `temperature,humidity,windspeed,rentals\n${Array.from({ length: 40 }, (_, i) => {
  const t = i % 30;
  const h = (i * 7) % 50;
  const w = (i * 3) % 11;
  return `${t},${h},${w},${100 + 2 * t - h}`;
}).join('\n')}\n`;

describe('Azure ML v2 emulator', () => {
  let emu;
  let env;
  let arm;
  let ml;
  let P;
  const api = '?api-version=2024-04-01';
  const call = (method, path, body, token = arm, headers = {}) => request(`${env.LUFA_EMU_MLV2_MANAGEMENT_ENDPOINT}${path.startsWith('/subscriptions') ? '' : P}${path}${path.includes('?') ? '' : api}`,
    { method, body, ca: emu.ca, headers: { authorization: `Bearer ${token}`, ...headers } });
  const follow = async (res) => {
    const url = res.headers['azure-asyncoperation'];
    assert.ok(url, 'a long-running operation names its status URL');
    return eventually(async () => {
      const r = await request(url, { ca: emu.ca, headers: { authorization: `Bearer ${arm}` } });
      assert.equal(r.status, 200);
      return r.json.status !== 'InProgress' && r.json;
    });
  };
  const command = (extra = {}) => ({ properties: { jobType: 'Command', command: 'python train.py --data ${{inputs.training_data}} --out ${{outputs.model}}', environmentId: 'azureml:sklearn:1', computeId: 'cpu', inputs: { training_data: { jobInputType: 'uri_file', uri: `${env.LUFA_EMU_BLOB_ENDPOINT}/v2data/train.csv` } }, outputs: { model: { jobOutputType: 'custom_model' } }, ...extra } });

  before(async () => {
    emu = await startEmulators();
    env = emu.env;
    P = `/subscriptions/${env.LUFA_EMU_ML_SUBSCRIPTION_ID}/resourceGroups/${env.LUFA_EMU_ML_RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/${env.LUFA_EMU_MLV2_WORKSPACE}`;
    await control(emu, 'PATCH', '/settings', { jobDurationMs: 200, armOperationMs: 100 });
    arm = await secretToken(emu, { target: 'https://management.azure.com/.default' });
    ml = await secretToken(emu, { target: 'https://ml.azure.com/.default' });
    await uploadText(emu, 'v2data', 'train.csv', CSV);
    await uploadText(emu, 'v2data', 'score.csv', 'temperature,humidity,windspeed\n10,20,3\n0,0,0\n');
  });
  after(async () => {
    await emu?.stop();
  });

  it('refuses a token for another audience, a missing or unknown api-version', async () => {
    let r = await call('GET', '/jobs', undefined, ml);
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'InvalidAuthenticationTokenAudience');
    r = await request(`${env.LUFA_EMU_MLV2_MANAGEMENT_ENDPOINT}${P}/jobs`, { ca: emu.ca, headers: { authorization: `Bearer ${arm}` } });
    assert.equal(r.json.error.code, 'MissingApiVersionParameter');
    r = await call('GET', '/jobs?api-version=2016-05-01-preview');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'NoRegisteredProviderFound');
  });

  it('refuses job bodies the service would reject, naming the member', async () => {
    let r = await call('PUT', '/jobs/bad-1', { properties: { jobType: 'Command', command: 'x', environmentId: 'e', compute: 'cpu' } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /member 'compute'/);
    r = await call('PUT', '/jobs/bad-2', command({ inputs: { training_data: { jobInputType: 'csv_file', uri: 'x' } } }));
    assert.match(r.json.error.message, /jobInputType/);
    r = await call('PUT', '/jobs/bad-3', command({ command: 'python t.py ${{inputs.missing}}' }));
    assert.match(r.json.error.message, /inputs\.missing/);
    r = await call('PUT', '/jobs/-bad', command());
    assert.equal(r.status, 400);
  });

  it('runs a command job through its states, trains on the CSV and keeps one job per name', async () => {
    const r = await call('PUT', '/jobs/train-1', command());
    assert.equal(r.status, 201);
    assert.equal(r.json.properties.status, 'NotStarted');
    const again = await call('PUT', '/jobs/train-1', command());
    assert.equal(again.status, 200, 'the same PUT again reads the existing job');
    const changed = await call('PUT', '/jobs/train-1', command({ command: 'python other.py --out ${{outputs.model}}' }));
    assert.equal(changed.status, 400);
    assert.match(changed.json.error.message, /'command' cannot be changed/);
    const done = await eventually(async () => {
      const g = await call('GET', '/jobs/train-1');
      return ['Completed', 'Failed'].includes(g.json.properties.status) && g.json;
    });
    assert.equal(done.properties.status, 'Completed', JSON.stringify(done.properties.properties));
    const state = (await control(emu, 'GET', '/v2')).json;
    const jobs = state.jobs.filter((j) => j.name === 'train-1');
    assert.equal(jobs.length, 1);
    assert.deepEqual(jobs[0].history.slice(0, 2), ['NotStarted', 'Queued']);
  });

  it('cancels a job as a long-running operation', async () => {
    assert.equal((await call('PUT', '/jobs/to-cancel', command())).status, 201);
    const r = await call('POST', '/jobs/to-cancel/cancel');
    assert.equal(r.status, 202);
    assert.ok(r.headers.location && r.headers['retry-after']);
    await eventually(async () => (await request(r.headers.location, { ca: emu.ca, headers: { authorization: `Bearer ${arm}` } })).status === 204);
    const done = await eventually(async () => {
      const g = await call('GET', '/jobs/to-cancel');
      return g.json.properties.status === 'Canceled' && g.json;
    });
    assert.equal(done.properties.status, 'Canceled');
  });

  it('registers a model version from the job output and refuses changing it', async () => {
    assert.equal((await call('PUT', '/models/bikes', { properties: { description: 'bikes' } })).status, 201);
    const body = { properties: { modelUri: 'azureml://jobs/train-1/outputs/model', modelType: 'custom_model', properties: { rmse: '0.1' } } };
    const r = await call('PUT', '/models/bikes/versions/1', body);
    assert.equal(r.status, 201);
    assert.equal((await call('PUT', '/models/bikes/versions/1', body)).status, 200);
    const clash = await call('PUT', '/models/bikes/versions/1', { properties: { modelUri: 'azureml://jobs/other/outputs/model' } });
    assert.equal(clash.status, 409);
    const missing = await call('PUT', '/models/bikes/versions/2', { properties: { modelUri: 'azureml://jobs/nope/outputs/model' } });
    assert.equal(missing.status, 400);
    const model = (await control(emu, 'GET', '/v2')).json.models.bikes[0].model;
    assert.ok(Math.abs(model.weights.temperature - 2) < 1e-6 && Math.abs(model.weights.humidity + 1) < 1e-6, JSON.stringify(model));
  });

  it('deploys as a long-running operation, checks traffic maps and scores per deployment', async () => {
    const modelId = `${P}/models/bikes/versions/1`;
    const put = await call('PUT', '/onlineEndpoints/rentals/deployments/green', { location: 'southcentralus', sku: { name: 'Default', capacity: 1 }, properties: { endpointComputeType: 'Managed', model: modelId, instanceType: 'Standard_DS3_v2' } });
    assert.equal(put.status, 201);
    assert.equal(put.json.properties.provisioningState, 'Creating');
    assert.equal((await follow(put)).status, 'Succeeded');
    const ep = (await call('GET', '/onlineEndpoints/rentals')).json;
    assert.deepEqual(ep.properties.traffic, { blue: 100 });
    const base = { location: ep.location, properties: { authMode: ep.properties.authMode } };
    let r = await call('PUT', '/onlineEndpoints/rentals', { ...base, properties: { ...base.properties, traffic: { blue: 60, green: 30 } } });
    assert.match(r.json.error.message, /add up to 90/);
    r = await call('PUT', '/onlineEndpoints/rentals', { ...base, properties: { ...base.properties, traffic: { blue: 100 }, mirrorTraffic: { green: 60 } } });
    assert.match(r.json.error.message, /at most 50/);
    r = await call('PUT', '/onlineEndpoints/rentals', { ...base, properties: { ...base.properties, traffic: { blue: 100, purple: 0 } } });
    assert.match(r.json.error.message, /'purple' does not exist/);

    const keys = (await call('POST', '/onlineEndpoints/rentals/listKeys')).json;
    const score = (deployment, auth = keys.primaryKey) => request(ep.properties.scoringUri, { method: 'POST', ca: emu.ca, body: { data: [[10, 20, 3]] }, headers: { authorization: `Bearer ${auth}`, ...(deployment ? { 'azureml-model-deployment': deployment } : {}) } });
    const green = await score('green');
    assert.equal(green.status, 200);
    assert.equal(green.headers['azureml-model-deployment'], 'green');
    assert.ok(Math.abs(green.json[0] - 100) < 1e-3, `100 + 2*10 - 20 = 100, got ${green.json[0]}`);
    assert.equal((await score(undefined)).headers['azureml-model-deployment'], 'blue', 'all traffic is on blue');
    assert.equal((await score('green', 'wrong-key')).status, 401);
    await control(emu, 'PUT', '/v2/unhealthy', { deployments: ['green'] });
    assert.equal((await score('green')).status, 500);
    const logs = await call('POST', '/onlineEndpoints/rentals/deployments/green/getLogs', { containerType: 'InferenceServer', tail: 10 });
    assert.match(logs.json.content, /injected fault/);
    await control(emu, 'PUT', '/v2/unhealthy', { deployments: [] });
    const blocked = await call('DELETE', '/onlineEndpoints/rentals/deployments/blue');
    assert.equal(blocked.status, 400, 'a deployment with live traffic cannot be deleted');
    const del = await call('DELETE', '/onlineEndpoints/rentals/deployments/green');
    assert.equal(del.status, 202);
    assert.ok(del.headers.location && del.headers['retry-after']);
    await eventually(async () => (await request(del.headers.location, { ca: emu.ca, headers: { authorization: `Bearer ${arm}` } })).status === 204);
  });

  it('invokes a batch endpoint with an ml.azure.com token and writes the predictions', async () => {
    const ep = (await call('GET', '/batchEndpoints/rentals-batch')).json;
    const body = { properties: { InputData: { input_data: { JobInputType: 'UriFile', Uri: `${env.LUFA_EMU_BLOB_ENDPOINT}/v2data/score.csv` } }, OutputData: { score: { JobOutputType: 'UriFile', Uri: 'azureml://datastores/workspaceblobstore/paths/out/p1.csv' } } } };
    const wrong = await request(ep.properties.scoringUri, { method: 'POST', ca: emu.ca, body, headers: { authorization: `Bearer ${arm}` } });
    assert.equal(wrong.status, 401);
    const r = await request(ep.properties.scoringUri, { method: 'POST', ca: emu.ca, body, headers: { authorization: `Bearer ${ml}` } });
    assert.equal(r.status, 200, r.text);
    const final = await eventually(async () => {
      const g = await request(`${ep.properties.scoringUri}/${r.json.name}`, { ca: emu.ca, headers: { authorization: `Bearer ${ml}` } });
      return ['Completed', 'Failed'].includes(g.json.properties.status) && g.json;
    });
    assert.equal(final.properties.status, 'Completed', JSON.stringify(final.properties));
    const csv = await downloadText(emu, 'workspaceblobstore', 'out/p1.csv');
    assert.match(csv.split(/\r?\n/)[0], /prediction$/);
    assert.equal(csv.trim().split(/\r?\n/).length, 3);
    const again = await request(ep.properties.scoringUri, { method: 'POST', ca: emu.ca, body, headers: { authorization: `Bearer ${ml}` } });
    const failed = await eventually(async () => {
      const g = await request(`${ep.properties.scoringUri}/${again.json.name}`, { ca: emu.ca, headers: { authorization: `Bearer ${ml}` } });
      return ['Completed', 'Failed'].includes(g.json.properties.status) && g.json;
    });
    assert.equal(failed.properties.status, 'Failed', 'an existing output path fails the job');
    assert.match(failed.properties.properties['lufa.failureReason'], /already exists/);
  });
});
