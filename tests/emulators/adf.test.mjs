// Data Factory management stand-in: factory and child-resource CRUD, trigger start/stop, the strict
// body checks ARM makes (unknown members, missing properties/type, dangling references) and the
// bearer-token and api-version checks.

import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulators, request, secretToken, control } from './helpers.mjs';

describe('Data Factory management emulator', () => {
  let emu;
  let token;
  let base;
  const url = (suffix, version = '2018-06-01') => `${base}/factories/adf1${suffix}${version ? `?api-version=${version}` : ''}`;
  const call = (method, suffix, body, { version, auth = true } = {}) => request(url(suffix, version), {
    method, ca: emu.ca, body, headers: auth ? { authorization: `Bearer ${token}` } : {},
  });
  const ls = { properties: { type: 'AzureStorage', typeProperties: { connectionString: { type: 'SecureString', value: 'AccountKey=hidden' } } } };
  const dataset = { properties: { type: 'Binary', linkedServiceName: { referenceName: 'Store', type: 'LinkedServiceReference' } } };
  const pipelineBody = {
    properties: {
      activities: [{ name: 'wait', type: 'Wait', typeProperties: { waitTimeInSeconds: 1 } },
        { name: 'meta', type: 'GetMetadata', typeProperties: { dataset: { referenceName: 'Files', type: 'DatasetReference' } } }],
    },
  };
  const trigger = {
    properties: {
      type: 'ScheduleTrigger', runtimeState: 'Started',
      pipelines: [{ pipelineReference: { referenceName: 'Copy', type: 'PipelineReference' }, parameters: {} }],
      typeProperties: { recurrence: { frequency: 'Day', interval: 1, startTime: '2026-01-01T02:00:00Z' } },
    },
  };

  before(async () => {
    emu = await startEmulators();
    const a = emu.info.adf;
    base = `${a.armEndpoint}/subscriptions/${a.subscriptionId}/resourceGroups/${a.resourceGroup}/providers/Microsoft.DataFactory`;
    token = await secretToken(emu, { target: 'https://management.azure.com/.default' });
  });
  after(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await control(emu, 'POST', '/reset', {});
  });

  const bad = (r, status, code) => {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json.error.code, code, r.text);
    assert.equal(typeof r.json.error.message, 'string');
  };

  it('creates a factory and its resources in dependency order and reads them back', async () => {
    assert.equal((await call('PUT', '', { location: 'westeurope' })).status, 201);
    assert.equal((await call('PUT', '/linkedservices/Store', ls)).status, 200);
    assert.equal((await call('PUT', '/datasets/Files', dataset)).status, 200);
    assert.equal((await call('PUT', '/pipelines/Copy', pipelineBody)).status, 200);
    assert.equal((await call('PUT', '/triggers/Nightly', trigger)).status, 200);

    const f = await call('GET', '');
    assert.equal(f.json.name, 'adf1');
    assert.equal(f.json.location, 'westeurope');
    const p = await call('GET', '/pipelines/copy');
    assert.equal(p.status, 200);
    assert.equal(p.json.name, 'Copy', 'names are case-insensitive and keep their spelling');
    assert.equal(p.json.type, 'Microsoft.DataFactory/factories/pipelines');
    assert.deepEqual(p.json.properties, pipelineBody.properties);
    const l = await call('GET', '/linkedservices/Store');
    assert.equal(l.json.properties.typeProperties.connectionString.value, '**********', 'secrets are never returned');
    assert.ok(!l.text.includes('hidden'));
    const list = await call('GET', '/datasets');
    assert.deepEqual(list.json.value.map((d) => d.name), ['Files']);
    const t = await call('GET', '/triggers/Nightly');
    assert.equal(t.json.properties.runtimeState, 'Stopped', 'runtimeState is read-only: a new trigger is stopped');
  });

  it('starts and stops triggers, and refuses to change a started one', async () => {
    await call('PUT', '', { location: 'westeurope' });
    await call('PUT', '/linkedservices/Store', ls);
    await call('PUT', '/datasets/Files', dataset);
    await call('PUT', '/pipelines/Copy', pipelineBody);
    await call('PUT', '/triggers/Nightly', trigger);
    assert.equal((await call('POST', '/triggers/Nightly/start')).status, 200);
    assert.equal((await call('GET', '/triggers/Nightly')).json.properties.runtimeState, 'Started');
    bad(await call('PUT', '/triggers/Nightly', trigger), 400, 'TriggerEnabledCannotUpdate');
    assert.equal((await call('POST', '/triggers/Nightly/stop')).status, 200);
    assert.equal((await call('PUT', '/triggers/Nightly', trigger)).status, 200);
    assert.equal((await call('GET', '/triggers/Nightly')).json.properties.runtimeState, 'Stopped');
    bad(await call('POST', '/triggers/Missing/start'), 404, 'NotFound');
  });

  it('validates bodies strictly', async () => {
    await call('PUT', '', { location: 'westeurope' });
    bad(await call('PUT', '/linkedservices/Store', { ...ls, extra: 1 }), 400, 'InvalidRequestContent');
    bad(await call('PUT', '/linkedservices/Store', { name: 'Store' }), 400, 'BadRequest');
    bad(await call('PUT', '/linkedservices/Store', { properties: { typeProperties: {} } }), 400, 'BadRequest');
    bad(await call('PUT', '/linkedservices/Store', { name: 'Other', ...ls }), 400, 'BadRequest');
    const dangling = await call('PUT', '/datasets/Files', dataset);
    bad(dangling, 400, 'BadRequest');
    assert.match(dangling.json.error.message, /invalid reference 'Store'/);
    bad(await call('PUT', '/pipelines/P', { properties: { activities: [{ name: 'x' }] } }), 400, 'BadRequest');
    const r = await request(url('/pipelines/P'), { method: 'PUT', ca: emu.ca, body: '{not json', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    bad(r, 400, 'InvalidRequestContent');
    bad(await call('PUT', '/widgets/W', { properties: {} }), 404, 'InvalidResourceType');
    assert.equal((await call('GET', '/datasets/Files')).status, 404, 'nothing refused was stored');
  });

  it('refuses to delete what is referenced, and a factory without location', async () => {
    bad(await call('PUT', '', { properties: {} }), 400, 'LocationRequired');
    bad(await call('PUT', '/linkedservices/Store', ls), 404, 'ResourceNotFound');
    await call('PUT', '', { location: 'westeurope' });
    await call('PUT', '/linkedservices/Store', ls);
    await call('PUT', '/datasets/Files', dataset);
    bad(await call('DELETE', '/linkedservices/Store'), 400, 'BadRequest');
    assert.equal((await call('DELETE', '/datasets/Files')).status, 200);
    assert.equal((await call('DELETE', '/linkedservices/Store')).status, 200);
    assert.equal((await call('GET', '/linkedservices/Store')).status, 404);
  });

  it('checks the token and the api-version', async () => {
    bad(await call('GET', '', undefined, { auth: false }), 401, 'AuthenticationFailed');
    bad(await call('GET', '', undefined, { version: '' }), 400, 'MissingApiVersionParameter');
    bad(await call('GET', '', undefined, { version: '2017-09-01-preview' }), 400, 'InvalidApiVersionParameter');
    const other = await request(`${emu.info.adf.armEndpoint}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/x/providers/Microsoft.DataFactory/factories/adf1?api-version=2018-06-01`,
      { ca: emu.ca, headers: { authorization: `Bearer ${token}` } });
    bad(other, 404, 'SubscriptionNotFound');
  });
});
