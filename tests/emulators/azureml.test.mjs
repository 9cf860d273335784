// Azure ML emulator: BES training on a known CSV, request checks and error bodies,
// request-response scoring, the classic Update Resource PATCH (incl. an expired SAS)
// and the ARM web service with its bearer-token checks and long-running update.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startEmulators, request, secretToken, uploadText, downloadText, eventually, control, blobSdkModule, sleep,
} from './helpers.mjs';

// y = 3 + 2*x1 - 0.5*x2 exactly, so least squares must recover these coefficients.
// Each input of the training service gets its own 30 rows; the service trains on all of them.
const knownCsv = (part) => {
  const rows = Array.from({ length: 30 }, (_, k) => [30 * part + k, ((30 * part + k) ** 2) % 17, 'ignored-text']);
  return `x1,x2,note,y\n${rows.map(([a, b, n]) => `${a},${b},${n},${3 + 2 * a - 0.5 * b}`).join('\n')}\n`;
};
const BAD_CSV = 'x1,x2,y\n1,2,3\n2,abc,4\n3,4,5\n';

describe('Azure ML emulator', () => {
  let emu;
  let env;
  let cs;
  let trainingInputs;
  const key = () => ({ authorization: `Bearer ${env.LUFA_EMU_ML_TRAINING_API_KEY}` });
  const bes = (suffix = '') => `${env.LUFA_EMU_ML_TRAINING_BES_URL}${suffix}?api-version=2.0`;
  const ref = (rel) => ({ ConnectionString: cs, RelativeLocation: rel });

  before(async () => {
    emu = await startEmulators();
    env = emu.env;
    cs = env.LUFA_EMU_STORAGE_CONNECTION_STRING;
    trainingInputs = emu.info.ml.services.find((s) => s.kind === 'training').inputs;
    await control(emu, 'PATCH', '/settings', { jobDurationMs: 100, armOperationMs: 100 });
    for (const [i] of trainingInputs.entries()) await uploadText(emu, 'training', `data/known-${i}.csv`, knownCsv(i));
    await uploadText(emu, 'training', 'data/bad.csv', BAD_CSV);
  });
  after(async () => {
    await emu?.stop();
  });

  const assertMlError = (r, status, category, code) => {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json.error.code, category);
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(r.json.error.details[0].code, code, r.text);
    assert.equal(typeof r.json.error.details[0].message, 'string');
  };

  /** Inputs for every declared training input; `rel(i)` names the blob of the i-th. */
  const allInputs = (rel) => Object.fromEntries(trainingInputs.map((name, i) => [name, ref(rel(i))]));

  async function runTraining(inputRel, outputRel, globals = { 'Label column': 'y' }) {
    const inputs = typeof inputRel === 'function' ? allInputs(inputRel) : allInputs(() => inputRel);
    const submit = await request(bes(), { method: 'POST', headers: key(), body: { Inputs: inputs, Outputs: { output1: ref(outputRel) }, GlobalParameters: globals } });
    assert.equal(submit.status, 200, submit.text);
    assert.equal(typeof submit.json, 'string', 'the job id comes back as a JSON string');
    const id = submit.json;
    const before = await request(bes(`/${id}`), { headers: key() });
    assert.equal(before.json.StatusCode, 'NotStarted');
    const start = await request(bes(`/${id}/start`), { method: 'POST', headers: key() });
    assert.equal(start.status, 204);
    const done = await eventually(async () => {
      const s = await request(bes(`/${id}`), { headers: key() });
      return ['Finished', 'Failed', 'Cancelled'].includes(s.json.StatusCode) ? s.json : null;
    });
    return { id, status: done };
  }

  it('refuses a wrong or missing API key with 401 in the service error shape', async () => {
    assertMlError(await request(bes(), { method: 'POST', headers: { authorization: 'Bearer wrong-key' }, body: {} }), 401, 'Unauthorized', 'ScoreRequestUnauthorized');
    assertMlError(await request(bes('/abc'), {}), 401, 'Unauthorized', 'ScoreRequestUnauthorized');
    // Another service's key is not this service's key.
    assertMlError(await request(bes(), { method: 'POST', headers: { authorization: `Bearer ${env.LUFA_EMU_ML_SCORING_API_KEY}` }, body: {} }), 401, 'Unauthorized', 'ScoreRequestUnauthorized');
  });

  it('checks api-version and the service id', async () => {
    assertMlError(await request(`${env.LUFA_EMU_ML_TRAINING_BES_URL}?api-version=2.1`, { method: 'POST', headers: key(), body: {} }), 400, 'BadArgument', 'BadVersionCall');
    assertMlError(await request(`${env.LUFA_EMU_ML_DATA_ENDPOINT}/workspaces/${env.LUFA_EMU_ML_WORKSPACE_ID}/services/${'0'.repeat(32)}/jobs?api-version=2.0`, { method: 'POST', headers: key(), body: {} }), 404, 'NotFound', 'WebServiceNotFound');
  });

  it('trains on a known CSV and writes the .ilearner with the known coefficients', async () => {
    const { id, status } = await runTraining((i) => `training/data/known-${i}.csv`, 'models/run-1/model.ilearner');
    assert.equal(status.StatusCode, 'Finished', status.Details);
    const result = status.Results.output1;
    assert.equal(result.RelativeLocation, 'models/run-1/model.ilearner');
    assert.match(result.SasBlobToken, /^\?.*sr=c.*sp=rl/);
    // The Results SAS alone is enough to read the model, as a client would.
    const viaSas = await request(`${result.BaseLocation}${result.RelativeLocation}${result.SasBlobToken}`);
    assert.equal(viaSas.status, 200);
    const model = JSON.parse(await downloadText(emu, 'models', 'run-1/model.ilearner'));
    assert.deepEqual(viaSas.json, model);
    assert.deepEqual(model.features, ['x1', 'x2']);
    assert.deepEqual(model.ignoredColumns, ['note']);
    assert.ok(Math.abs(model.weights.x1 - 2) < 1e-9, `x1 weight ${model.weights.x1}`);
    assert.ok(Math.abs(model.weights.x2 + 0.5) < 1e-9, `x2 weight ${model.weights.x2}`);
    assert.ok(Math.abs(model.intercept - 3) < 1e-9, `intercept ${model.intercept}`);
    const total = 30 * trainingInputs.length;
    assert.equal(model.holdoutRows, Math.floor(total / 5), 'every 5th row is held out');
    assert.equal(model.trainingRows, total - Math.floor(total / 5));
    assert.ok(model.metrics.rmse < 1e-9);
    assert.equal(model.source.jobId, id);
    // The evaluation output was not overridden, so it went to the service's own storage.
    assert.match(status.Results.output2.RelativeLocation, new RegExp(`^experimentoutput/${id}/[0-9a-f]{32}\\.csv$`));
  });

  it('fails a job on bad input data with Details naming line and column', async () => {
    const { status } = await runTraining('training/data/bad.csv', 'models/bad/model.ilearner');
    assert.equal(status.StatusCode, 'Failed');
    assert.equal(status.Results, null);
    assert.match(status.Details, /line 3, column 'x2': 'abc' is not a number/);
    const { status: noLabel } = await runTraining((i) => `training/data/known-${i}.csv`, 'models/bad/model.ilearner', { 'Label column': 'price' });
    assert.equal(noLabel.StatusCode, 'Failed');
    assert.match(noLabel.Details, /label column 'price' not found; the columns are: x1, x2, note, y/);
  });

  it('checks submissions as the real service does', async () => {
    const submit = (body) => request(bes(), { method: 'POST', headers: key(), body });
    const known = 'training/data/known-0.csv';
    const good = { Inputs: allInputs(() => known), Outputs: { output1: ref('models/x/m.ilearner') } };
    assertMlError(await submit({ ...good, Input: ref(known) }), 400, 'BadArgument', 'DuplicateInputInBatchCall');
    assertMlError(await submit({ ...good, Inputs: { ...good.Inputs, input9: ref(known) } }), 400, 'BadArgument', 'InvalidInputNames');
    assertMlError(await submit({ ...good, Inputs: { ...good.Inputs, input1: ref('training/data/known.txt') } }), 400, 'BadArgument', 'InvalidBlobExtension');
    // The ADF sample's folder path (no extension) is refused, as the real service does.
    assertMlError(await submit({ ...good, Inputs: allInputs(() => 'azuremltesting/input') }), 400, 'BadArgument', 'InvalidBlobExtension');
    assertMlError(await submit({ ...good, Outputs: { output1: ref('models/x/m.csv') } }), 400, 'BadArgument', 'InvalidBlobExtension');
    assertMlError(await submit({ ...good, Outputs: { Output1: ref('models/x/m.ilearner') } }), 400, 'BadArgument', 'InvalidOutputOverrideName');
    assertMlError(await submit({ ...good, Inputs: { ...good.Inputs, input1: ref('training/data/missing.csv') } }), 400, 'BadArgument', 'BlobNotFound');
    assertMlError(await submit({ ...good, Inputs: {} }), 400, 'BadArgument', 'BatchJobInputsNotSpecified');
    if (trainingInputs.length > 1) {
      assertMlError(await submit({ ...good, Inputs: { input1: ref(known) } }), 400, 'BadArgument', 'BatchJobInputsNotSpecified');
      // The legacy single Input only fits a one-input service.
      assertMlError(await submit({ Input: ref(known), Outputs: good.Outputs }), 400, 'BadArgument', 'BatchJobInputsTooManySpecified');
    }
    assertMlError(await submit({ ...good, GlobalParameters: { 'Learning rate': '0.1' } }), 400, 'BadArgument', 'UnexpectedParameter');
    assertMlError(await submit({ ...good, Inputs: { ...good.Inputs, input1: { RelativeLocation: known } } }), 400, 'BadArgument', 'MissingInputBlobInformation');
    assertMlError(await submit({ ...good, Inputs: { ...good.Inputs, input1: { ConnectionString: 'AccountName=x', RelativeLocation: known } } }), 400, 'BadArgument', 'InvalidBlobConnectionString');
    assertMlError(await request(bes(), { method: 'POST', headers: { ...key(), 'content-type': 'application/json' }, body: '{"Inputs": ' }), 400, 'BadArgument', 'RequestBodyInvalid');
    // A job that is cancelled before it starts stays Cancelled and cannot start.
    const legacy = await submit(good);
    assert.equal(legacy.status, 200, legacy.text);
    const cancelled = await request(bes(`/${legacy.json}`), { method: 'DELETE', headers: key() });
    assert.equal(cancelled.status, 204);
    assert.equal((await request(bes(`/${legacy.json}`), { headers: key() })).json.StatusCode, 'Cancelled');
    assertMlError(await request(bes(`/${legacy.json}/start`), { method: 'POST', headers: key() }), 400, 'InvalidOperation', 'CannotStartJob');
    assertMlError(await request(bes('/0123'), { headers: key() }), 404, 'NotFound', 'JobNotFound');
  });

  async function score(url, apiKey, values = [['10', '50', '5'], ['0', '0', '0']]) {
    const r = await request(`${url}?api-version=2.0&details=true`, {
      method: 'POST', headers: { authorization: `Bearer ${apiKey}` },
      body: { Inputs: { input1: { ColumnNames: ['temperature', 'humidity', 'windspeed'], Values: values } }, GlobalParameters: {} },
    });
    assert.equal(r.status, 200, r.text);
    return r.json.Results.output1.value;
  }

  it('scores request-response calls with the current model and checks the input', async () => {
    const table = await score(env.LUFA_EMU_ML_SCORING_RRS_URL, env.LUFA_EMU_ML_SCORING_API_KEY);
    assert.deepEqual(table.ColumnNames, ['temperature', 'humidity', 'windspeed', 'Scored Labels']);
    assert.deepEqual(table.ColumnTypes, ['Double', 'Double', 'Double', 'Double']);
    // The default config's initial model: 120 + 8 t - 1.5 h - 2 w.
    assert.deepEqual(table.Values.map((r) => r[3]), ['115', '120']);
    const bad = (body) => request(`${env.LUFA_EMU_ML_SCORING_RRS_URL}?api-version=2.0`, { method: 'POST', headers: { authorization: `Bearer ${env.LUFA_EMU_ML_SCORING_API_KEY}` }, body });
    assertMlError(await bad({ Inputs: { input1: { ColumnNames: ['temperature'], Values: [['1']] } } }), 400, 'BadUserArgument', 'InputMismatchError');
    assertMlError(await bad({ Inputs: { input1: { ColumnNames: ['temperature', 'humidity', 'windspeed'], Values: [['1', 'wet', '2']] } } }), 400, 'BadUserArgument', 'InputParseError');
    assertMlError(await bad({ Inputs: { other: { ColumnNames: [], Values: [] } } }), 400, 'BadArgument', 'InvalidInputNames');
    const swagger = await request(`${env.LUFA_EMU_ML_SCORING_RRS_URL}?api-version=2.0&format=swagger`, {
      method: 'POST', headers: { authorization: `Bearer ${env.LUFA_EMU_ML_SCORING_API_KEY}` },
      body: { Inputs: { input1: [{ temperature: 10, humidity: 50, windspeed: 5 }] } },
    });
    assert.equal(swagger.json.Results.output1[0]['Scored Labels'], 115);
  });

  async function trainRentalModel(rel) {
    // rentals = 10 + 3 t - 0.2 h - 1 w
    const rows = Array.from({ length: 20 }, (_, i) => [i * 2, (i * 13) % 70, i % 9]);
    await uploadText(emu, 'training', 'data/rentals.csv', `temperature,humidity,windspeed,rentals\n${rows.map(([t, h, w]) => `${t},${h},${w},${10 + 3 * t - 0.2 * h - w}`).join('\n')}\n`);
    const { status } = await runTraining('training/data/rentals.csv', rel, { 'Label column': 'rentals' });
    assert.equal(status.StatusCode, 'Finished', status.Details);
    return status.Results.output1;
  }

  it('Update Resource swaps the updatable endpoint\'s model and refuses bad requests', async () => {
    const location = await trainRentalModel('models/run-2/rentals.ilearner');
    const patch = (body, apiKey = env.LUFA_EMU_ML_UPDATABLE_API_KEY, url = env.LUFA_EMU_ML_UPDATE_RESOURCE_URL) => request(url, {
      method: 'PATCH', headers: { authorization: `Bearer ${apiKey}` }, body,
    });
    const name = env.LUFA_EMU_ML_TRAINED_MODEL_NAME;
    const beforeUpdate = await score(env.LUFA_EMU_ML_UPDATABLE_RRS_URL, env.LUFA_EMU_ML_UPDATABLE_API_KEY);
    assert.deepEqual(beforeUpdate.Values.map((r) => r[3]), ['115', '120']);

    // An expired SAS fails as in Azure and leaves the model alone.
    const { BlobSASPermissions, StorageSharedKeyCredential, generateBlobSASQueryParameters } = await blobSdkModule();
    const expired = generateBlobSASQueryParameters({
      containerName: 'models', blobName: 'run-2/rentals.ilearner', permissions: BlobSASPermissions.parse('r'),
      startsOn: new Date(Date.now() - 7200e3), expiresOn: new Date(Date.now() - 3600e3), version: '2025-11-05',
    }, new StorageSharedKeyCredential(env.LUFA_EMU_STORAGE_ACCOUNT, env.LUFA_EMU_STORAGE_KEY)).toString();
    const stale = await patch({ Resources: [{ Name: name, Location: { ...location, SasBlobToken: `?${expired}` } }] });
    assert.equal(stale.status, 400, stale.text);
    assert.equal(stale.json.error.code, 'InvalidResourceLocation');
    assert.match(stale.json.error.message, /HTTP 403 .*The SAS token expired at/);
    assert.ok(!stale.text.includes('sig='), 'the error does not echo the SAS');
    const readDenied = generateBlobSASQueryParameters({
      containerName: 'models', blobName: 'run-2/rentals.ilearner', permissions: BlobSASPermissions.parse('w'),
      expiresOn: new Date(Date.now() + 3600e3), version: '2025-11-05',
    }, new StorageSharedKeyCredential(env.LUFA_EMU_STORAGE_ACCOUNT, env.LUFA_EMU_STORAGE_KEY)).toString();
    assert.equal((await patch({ Resources: [{ Name: name, Location: { ...location, SasBlobToken: `?${readDenied}` } }] })).status, 400);
    assert.deepEqual((await score(env.LUFA_EMU_ML_UPDATABLE_RRS_URL, env.LUFA_EMU_ML_UPDATABLE_API_KEY)).Values.map((r) => r[3]), ['115', '120']);

    const wrongName = await patch({ Resources: [{ Name: 'Other Model [trained model]', Location: location }] });
    assert.equal(wrongName.json.error.code, 'InvalidResourceName');
    const defaultEndpoint = env.LUFA_EMU_ML_UPDATE_RESOURCE_URL.replace(/endpoints\/[^/]+$/, 'endpoints/default');
    const onDefault = await patch({ Resources: [{ Name: name, Location: location }] }, env.LUFA_EMU_ML_SCORING_API_KEY, defaultEndpoint);
    assert.equal(onDefault.json.error.code, 'NoUpdatableResources');
    const unauthorized = await patch({ Resources: [{ Name: name, Location: location }] }, 'nope');
    assert.equal(unauthorized.status, 401);

    const ok = await patch({ Resources: [{ Name: name, Location: location }] });
    assert.equal(ok.status, 200, ok.text);
    const after = await score(env.LUFA_EMU_ML_UPDATABLE_RRS_URL, env.LUFA_EMU_ML_UPDATABLE_API_KEY);
    assert.deepEqual(after.Values.map((r) => r[3]), ['25', '10']);
    // The default endpoint keeps its own model.
    assert.deepEqual((await score(env.LUFA_EMU_ML_SCORING_RRS_URL, env.LUFA_EMU_ML_SCORING_API_KEY)).Values.map((r) => r[3]), ['115', '120']);
    const endpoint = await request(env.LUFA_EMU_ML_UPDATE_RESOURCE_URL, { headers: { authorization: `Bearer ${env.LUFA_EMU_ML_UPDATABLE_API_KEY}` } });
    assert.equal(endpoint.json.Resources[0].Name, name);
    assert.equal(endpoint.json.Resources[0].Location.RelativeLocation, location.RelativeLocation);
  });

  it('ARM checks the bearer token: missing, forged, wrong audience, expired', async () => {
    const url = env.LUFA_EMU_ML_ARM_UPDATE_URL;
    const get = (token) => request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const missing = await get(null);
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error.code, 'AuthenticationFailed');
    assert.match(missing.headers['www-authenticate'], /^Bearer authorization_uri=/);
    const good = await secretToken(emu, { target: 'https://management.azure.com/.default' });
    const [h, p] = good.split('.');
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = `${h}.${p}.${crypto.sign('sha256', Buffer.from(`${h}.${p}`), privateKey).toString('base64url')}`;
    assert.equal((await get(forged)).json.error.code, 'InvalidAuthenticationToken');
    const storage = await secretToken(emu, { target: 'https://storage.azure.com/.default' });
    assert.equal((await get(storage)).json.error.code, 'InvalidAuthenticationTokenAudience');
    await control(emu, 'PATCH', '/settings', { tokenLifetimeSeconds: 1 });
    const shortLived = await secretToken(emu, { version: 1, target: 'https://management.core.windows.net/' });
    await control(emu, 'PATCH', '/settings', { tokenLifetimeSeconds: null });
    await sleep(2100);
    const expired = await get(shortLived);
    assert.equal(expired.status, 401);
    assert.equal(expired.json.error.code, 'ExpiredAuthenticationToken');
    const badVersion = await request(url.replace(/api-version=.*/, 'api-version=2016-05-01-preview.'), { headers: { authorization: `Bearer ${good}` } });
    assert.equal(badVersion.json.error.code, 'InvalidApiVersionParameter');
  });

  it('ARM GET omits keys; PATCH loads the new model through a long-running operation', async () => {
    const token = await secretToken(emu, { version: 1, target: 'https://management.azure.com/' });
    const auth = { authorization: `Bearer ${token}` };
    const url = env.LUFA_EMU_ML_ARM_UPDATE_URL;
    const def = await request(url, { headers: auth });
    assert.equal(def.status, 200, def.text);
    assert.equal(def.json.type, 'Microsoft.MachineLearning/webServices');
    assert.equal(def.json.properties.packageType, 'Graph');
    assert.equal(def.json.properties.keys, undefined);
    assert.equal(def.json.properties.commitmentPlan, undefined);
    assert.equal(def.json.properties.storageAccount.key, undefined);
    const keys = await request(url.replace('?', '/listKeys?'), { headers: auth });
    assert.equal(keys.json.primary, env.LUFA_EMU_ML_SCORING_API_KEY);

    const location = await trainRentalModel('models/run-3/rentals.ilearner');
    const assets = def.json.properties.assets;
    const assetId = Object.keys(assets).find((k) => assets[k].name === env.LUFA_EMU_ML_TRAINED_MODEL_NAME);
    assets[assetId].locationInfo.uri = `${location.BaseLocation}${location.RelativeLocation}`;
    const patch = await request(url, { method: 'PATCH', headers: auth, body: { location: def.json.location, properties: { packageType: 'Graph', assets } } });
    assert.equal(patch.status, 200, patch.text);
    assert.equal(patch.json.properties.provisioningState, 'Provisioning');
    const opUrl = patch.headers['azure-asyncoperation'];
    assert.match(opUrl, /\/subscriptions\/[^/]+\/providers\/Microsoft\.MachineLearning\/locations\/southcentralus\/operationsStatus\/[0-9a-f-]{36}\?api-version=2016-05-01-preview$/);
    const done = await eventually(async () => {
      const s = await request(opUrl, { headers: auth });
      return s.json.status !== 'Provisioning' ? s.json : null;
    });
    assert.equal(done.status, 'Succeeded', JSON.stringify(done));
    assert.equal(done.percentComplete, 1);
    assert.equal((await request(url, { headers: auth })).json.properties.provisioningState, 'Succeeded');
    const scored = await score(env.LUFA_EMU_ML_SCORING_RRS_URL, env.LUFA_EMU_ML_SCORING_API_KEY);
    assert.deepEqual(scored.Values.map((r) => r[3]), ['25', '10']);

    // A location that cannot be read ends the operation Failed with an error.
    assets[assetId].locationInfo.uri = `${location.BaseLocation}models/missing/none.ilearner`;
    const broken = await request(url, { method: 'PATCH', headers: auth, body: { properties: { packageType: 'Graph', assets } } });
    const failed = await eventually(async () => {
      const s = await request(broken.headers['azure-asyncoperation'], { headers: auth });
      return s.json.status !== 'Provisioning' ? s.json : null;
    });
    assert.equal(failed.status, 'Failed');
    assert.equal(failed.error.code, 'InvalidResourceLocation');
    assert.match(failed.error.message, /404/);
    assert.equal((await request(url, { headers: auth })).json.properties.provisioningState, 'Failed');
    const missingService = await request(url.replace('myWebService', 'noSuchService'), { headers: auth });
    assert.equal(missingService.status, 404);
    assert.equal(missingService.json.error.code, 'NotFound');
  });

  it('survives malformed requests on every surface', async () => {
    const garbage = ['', '{', '[]', 'null', '{"Inputs": 5}', '\u0000\u0001', '{"Resources": [null]}', '{"properties": "x"}'];
    const token = await secretToken(emu, { target: 'https://management.azure.com/.default' });
    const targets = [
      [bes(), 'POST', key()],
      [`${env.LUFA_EMU_ML_SCORING_RRS_URL}?api-version=2.0`, 'POST', { authorization: `Bearer ${env.LUFA_EMU_ML_SCORING_API_KEY}` }],
      [env.LUFA_EMU_ML_UPDATE_RESOURCE_URL, 'PATCH', { authorization: `Bearer ${env.LUFA_EMU_ML_UPDATABLE_API_KEY}` }],
      [env.LUFA_EMU_ML_ARM_UPDATE_URL, 'PATCH', { authorization: `Bearer ${token}` }],
      [env.LUFA_EMU_ML_ARM_UPDATE_URL, 'PUT', { authorization: `Bearer ${token}` }],
      [`${env.LUFA_EMU_AAD_AUTHORITY}/${env.LUFA_EMU_TENANT_ID}/oauth2/v2.0/token`, 'POST', { 'content-type': 'application/x-www-form-urlencoded' }],
    ];
    for (const [url, method, headers] of targets) {
      for (const body of garbage) {
        const r = await request(url, { method, headers: { 'content-type': 'application/json', ...headers }, body });
        assert.ok(r.status >= 400 && r.status < 500, `${method} ${url.split('?')[0]} with ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
        assert.ok(r.json && (r.json.error !== undefined), `error body expected, got ${r.text}`);
      }
    }
    const health = await control(emu, 'GET', '/health');
    assert.equal(health.json.ok, true);
  });
});
