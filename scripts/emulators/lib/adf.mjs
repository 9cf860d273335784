// Azure Data Factory's management API (Microsoft.DataFactory, api-version 2018-06-01) behind Azure
// Resource Manager: factories and their linked services, datasets, pipelines and triggers (GET, list,
// PUT, DELETE), trigger start/stop. Bodies are checked strictly, as ARM and ADF check them: unknown
// top-level members, a missing `properties` or `type`, a name that differs from the URL's, and references
// to resources the factory does not have are 400s in ARM's error shape. SecureString values are kept but
// never returned (GET shows them masked, as ADF does).

import crypto from 'node:crypto';
import { createService, jsonResponse, emptyResponse, parseJsonBody, bearerToken } from './http-kit.mjs';
import { armFail, armErrors } from './azureml/errors.mjs';
import { ARM_AUDIENCES } from './aad.mjs';

export const API_VERSION = '2018-06-01';
export const MASK = '**********';

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** URL segment (lower case) → what ADF calls it, its ARM type, and whether `properties.type` is required. */
const KINDS = {
  linkedservices: { label: 'LinkedService', type: 'Microsoft.DataFactory/factories/linkedservices', typed: true },
  datasets: { label: 'Dataset', type: 'Microsoft.DataFactory/factories/datasets', typed: true },
  pipelines: { label: 'Pipeline', type: 'Microsoft.DataFactory/factories/pipelines', typed: false },
  triggers: { label: 'Trigger', type: 'Microsoft.DataFactory/factories/triggers', typed: true },
};
const REFERENCE_KINDS = { linkedservicereference: 'linkedservices', datasetreference: 'datasets', pipelinereference: 'pipelines' };
const CHILD_MEMBERS = new Set(['name', 'type', 'id', 'etag', 'properties']);
const FACTORY_MEMBERS = new Set(['name', 'type', 'id', 'etag', 'location', 'tags', 'identity', 'properties']);

/** The factories of one subscription and resource group, kept in memory until reset. */
export class AdfState {
  constructor({ subscriptionId, resourceGroup }) {
    this.subscriptionId = subscriptionId.toLowerCase();
    this.resourceGroup = resourceGroup;
    this.reset();
  }

  reset() {
    this.factories = new Map(); // lower-case name → {name, location, tags, identity, properties, children}
  }

  factory(name) {
    return this.factories.get(name.toLowerCase()) ?? null;
  }
}

function factoryId(state, name) {
  return `/subscriptions/${state.subscriptionId}/resourceGroups/${state.resourceGroup}/providers/Microsoft.DataFactory/factories/${name}`;
}

// ADF never returns a secret it was given.
function masked(value) {
  if (Array.isArray(value)) return value.map(masked);
  if (!isPlainObject(value)) return value;
  if (typeof value.type === 'string' && value.type.toLowerCase() === 'securestring' && 'value' in value) {
    return { ...value, value: MASK };
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, masked(v)]));
}

function factoryView(state, f) {
  return {
    id: factoryId(state, f.name),
    name: f.name,
    type: 'Microsoft.DataFactory/factories',
    location: f.location,
    tags: f.tags,
    ...(f.identity ? { identity: f.identity } : {}),
    properties: { provisioningState: 'Succeeded', createTime: f.createTime, version: API_VERSION, ...f.properties },
    eTag: f.etag,
  };
}

function childView(state, f, kind, r) {
  const properties = masked(r.properties);
  if (kind === 'triggers') properties.runtimeState = r.runtimeState;
  return { id: `${factoryId(state, f.name)}/${kind}/${r.name}`, name: r.name, type: KINDS[kind].type, properties, etag: r.etag };
}

const newEtag = () => `"${crypto.randomUUID()}"`;

/** Every reference (`{referenceName, type: …Reference}`) in a value, with its JSON path. */
function references(value, path, out = []) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => references(v, `${path}[${i}]`, out));
  } else if (isPlainObject(value)) {
    const kind = typeof value.type === 'string' ? REFERENCE_KINDS[value.type.toLowerCase()] : undefined;
    if (kind && typeof value.referenceName === 'string' && !value.referenceName.startsWith('@')) {
      out.push({ kind, name: value.referenceName, path });
    }
    for (const [k, v] of Object.entries(value)) references(v, `${path}.${k}`, out);
  }
  return out;
}

function unknownMember(ctx, body, allowed, label) {
  for (const key of Object.keys(body)) {
    if (!allowed.has(key)) {
      armFail(ctx, 400, 'InvalidRequestContent',
        `The request content was invalid and could not be deserialized: 'Could not find member '${key}' on object of type '${label}Resource'. Path '${key}'.'`);
    }
  }
}

function readBody(ctx) {
  const parsed = parseJsonBody(ctx);
  if (!parsed.ok) armFail(ctx, 400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: ${parsed.message}.`);
  if (!isPlainObject(parsed.value)) armFail(ctx, 400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: a JSON object was expected.');
  return parsed.value;
}

function checkActivities(ctx, list, path) {
  if (list === undefined) return;
  if (!Array.isArray(list)) armFail(ctx, 400, 'BadRequest', `'${path}' must be an array of activities.`);
  list.forEach((a, i) => {
    const at = `${path}[${i}]`;
    if (!isPlainObject(a)) armFail(ctx, 400, 'BadRequest', `'${at}' must be an activity object.`);
    if (typeof a.name !== 'string' || a.name === '') armFail(ctx, 400, 'BadRequest', `Activity at '${at}' is missing the required property 'name'.`);
    if (typeof a.type !== 'string' || a.type === '') armFail(ctx, 400, 'BadRequest', `Activity '${a.name}' is missing the required property 'type'.`);
    const tp = isPlainObject(a.typeProperties) ? a.typeProperties : {};
    for (const key of ['activities', 'ifTrueActivities', 'ifFalseActivities', 'defaultActivities']) {
      if (tp[key] !== undefined) checkActivities(ctx, tp[key], `${at}.typeProperties.${key}`);
    }
    if (Array.isArray(tp.cases)) tp.cases.forEach((c, j) => checkActivities(ctx, c?.activities, `${at}.typeProperties.cases[${j}].activities`));
  });
}

function guard(state, directory, handler) {
  return (ctx) => {
    const token = bearerToken(ctx);
    const challenge = { 'www-authenticate': `Bearer authorization_uri="${directory.authority}/${directory.tenants[0].id}", error="invalid_token"` };
    if (token === null) armFail(ctx, 401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge);
    if (token === '') armFail(ctx, 401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is not a Bearer token.", challenge);
    const verdict = directory.verifyAccessToken(token, ARM_AUDIENCES);
    if (!verdict.ok) armFail(ctx, 401, verdict.code, verdict.message, challenge);
    ctx.info.caller = verdict.claims.appid;
    const version = ctx.query.get('api-version');
    if (!version) armFail(ctx, 400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
    if (version !== API_VERSION) {
      armFail(ctx, 400, 'InvalidApiVersionParameter', `The api-version '${version}' is invalid. The supported versions are '${API_VERSION}'.`);
    }
    if (ctx.params.sub.toLowerCase() !== state.subscriptionId) armFail(ctx, 404, 'SubscriptionNotFound', `The subscription '${ctx.params.sub}' could not be found.`);
    if (ctx.params.rg.toLowerCase() !== state.resourceGroup.toLowerCase()) {
      armFail(ctx, 404, 'ResourceGroupNotFound', `Resource group '${ctx.params.rg}' could not be found.`);
    }
    if (ctx.params.kind !== undefined) {
      ctx.kind = ctx.params.kind.toLowerCase();
      if (!KINDS[ctx.kind]) armFail(ctx, 404, 'InvalidResourceType', `The resource type '${ctx.params.kind}' could not be found in the namespace 'Microsoft.DataFactory' for api version '${API_VERSION}'.`);
    }
    return handler(ctx);
  };
}

function requireFactory(ctx, state) {
  const f = state.factory(ctx.params.factory);
  if (!f) {
    armFail(ctx, 404, 'ResourceNotFound',
      `The Resource 'Microsoft.DataFactory/factories/${ctx.params.factory}' under resource group '${ctx.params.rg}' was not found.`);
  }
  return f;
}

function requireChild(ctx, state, f) {
  const r = f.children[ctx.kind].get(ctx.params.name.toLowerCase());
  if (!r) armFail(ctx, 404, 'NotFound', `${KINDS[ctx.kind].label} '${ctx.params.name}' was not found in factory '${f.name}'.`);
  return r;
}

function putFactory(ctx, state) {
  const body = readBody(ctx);
  unknownMember(ctx, body, FACTORY_MEMBERS, 'Factory');
  if (body.name !== undefined && String(body.name).toLowerCase() !== ctx.params.factory.toLowerCase()) {
    armFail(ctx, 400, 'BadRequest', `The name '${body.name}' in the request body does not match the name '${ctx.params.factory}' in the URL.`);
  }
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{1,61}[A-Za-z0-9])$/.test(ctx.params.factory) || ctx.params.factory.includes('--')) {
    armFail(ctx, 400, 'InvalidResourceName', `The factory name '${ctx.params.factory}' is invalid: 3 to 63 letters, digits and single hyphens, starting and ending with a letter or digit.`);
  }
  const existing = state.factory(ctx.params.factory);
  if (typeof body.location !== 'string' || body.location === '') {
    armFail(ctx, 400, 'LocationRequired', 'The location property is required for this definition.');
  }
  if (existing && existing.location.toLowerCase().replace(/\s+/g, '') !== body.location.toLowerCase().replace(/\s+/g, '')) {
    armFail(ctx, 409, 'InvalidResourceLocation', `The resource 'Microsoft.DataFactory/factories/${existing.name}' already exists in location '${existing.location}'.`);
  }
  if (body.properties !== undefined && !isPlainObject(body.properties)) armFail(ctx, 400, 'BadRequest', "'properties' must be an object.");
  const f = existing ?? {
    name: ctx.params.factory,
    createTime: new Date().toISOString(),
    children: Object.fromEntries(Object.keys(KINDS).map((k) => [k, new Map()])),
  };
  f.location = body.location;
  f.tags = isPlainObject(body.tags) ? body.tags : {};
  f.identity = isPlainObject(body.identity) ? body.identity : undefined;
  f.properties = isPlainObject(body.properties) ? body.properties : {};
  f.etag = newEtag();
  state.factories.set(f.name.toLowerCase(), f);
  return jsonResponse(existing ? 200 : 201, factoryView(state, f));
}

function putChild(ctx, state) {
  const f = requireFactory(ctx, state);
  const kind = ctx.kind;
  const spec = KINDS[kind];
  const body = readBody(ctx);
  unknownMember(ctx, body, CHILD_MEMBERS, spec.label);
  const name = ctx.params.name;
  if (!/^[A-Za-z0-9_][^<>*#.%&:\\+?/]*$/.test(name) || name.length > 260) {
    armFail(ctx, 400, 'InvalidResourceName', `The ${spec.label} name '${name}' is invalid.`);
  }
  if (body.name !== undefined && String(body.name).toLowerCase() !== name.toLowerCase()) {
    armFail(ctx, 400, 'BadRequest', `The name '${body.name}' in the request body does not match the name '${name}' in the URL.`);
  }
  if (body.properties === undefined) armFail(ctx, 400, 'BadRequest', `The request body of ${spec.label} '${name}' has no 'properties'.`);
  if (!isPlainObject(body.properties)) armFail(ctx, 400, 'BadRequest', `'properties' of ${spec.label} '${name}' must be an object.`);
  const props = body.properties;
  if (spec.typed && (typeof props.type !== 'string' || props.type === '')) {
    armFail(ctx, 400, 'BadRequest', `${spec.label} '${name}' is missing the required property 'properties.type'.`);
  }
  if (kind === 'pipelines') checkActivities(ctx, props.activities, 'properties.activities');
  if (kind === 'datasets' && !isPlainObject(props.linkedServiceName)) {
    armFail(ctx, 400, 'BadRequest', `Dataset '${name}' is missing the required property 'properties.linkedServiceName'.`);
  }
  for (const ref of references(props, 'properties')) {
    const self = ref.kind === kind && ref.name.toLowerCase() === name.toLowerCase();
    if (self || !f.children[ref.kind].has(ref.name.toLowerCase())) {
      armFail(ctx, 400, 'BadRequest', `The document creation or update failed because of invalid reference '${ref.name}' (at ${ref.path}).`);
    }
  }
  const existing = f.children[kind].get(name.toLowerCase());
  if (kind === 'triggers' && existing?.runtimeState === 'Started') {
    armFail(ctx, 400, 'TriggerEnabledCannotUpdate', `Cannot update enabled Trigger '${existing.name}'; the trigger needs to be stopped first.`);
  }
  const stored = { ...props };
  delete stored.runtimeState; // read-only: changed by start/stop only
  const r = {
    name: existing?.name ?? name,
    properties: stored,
    etag: newEtag(),
    refs: references(props, 'properties').map((x) => `${x.kind}/${x.name.toLowerCase()}`),
    runtimeState: kind === 'triggers' ? (existing?.runtimeState ?? 'Stopped') : undefined,
  };
  f.children[kind].set(name.toLowerCase(), r);
  return jsonResponse(200, childView(state, f, kind, r));
}

function deleteChild(ctx, state) {
  const f = state.factory(ctx.params.factory);
  const r = f?.children[ctx.kind].get(ctx.params.name.toLowerCase());
  if (!r) return emptyResponse(204);
  const key = `${ctx.kind}/${ctx.params.name.toLowerCase()}`;
  for (const [kind, map] of Object.entries(f.children)) {
    for (const other of map.values()) {
      if (other.refs.includes(key)) {
        armFail(ctx, 400, 'BadRequest', `The document cannot be deleted since it is referenced by ${KINDS[kind].label} '${other.name}'.`);
      }
    }
  }
  if (ctx.kind === 'triggers' && r.runtimeState === 'Started') {
    armFail(ctx, 400, 'TriggerEnabledCannotUpdate', `Cannot delete enabled Trigger '${r.name}'; the trigger needs to be stopped first.`);
  }
  f.children[ctx.kind].delete(ctx.params.name.toLowerCase());
  return emptyResponse(200);
}

function triggerState(ctx, state, runtimeState) {
  const f = requireFactory(ctx, state);
  ctx.kind = 'triggers';
  const r = requireChild(ctx, state, f);
  r.runtimeState = runtimeState;
  return emptyResponse(200);
}

const BASE = String.raw`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.DataFactory/factories/([^/]+)`;
// Child routes are named per kind (adf.pipelines.put, …) so that a fault can aim at one kind.
const kindName = (verb) => (ctx) => `adf.${(ctx.params.kind ?? 'unknown').toLowerCase()}.${verb}`;
const route = (name, method, suffix, keys, handler) => ({ name, method, path: new RegExp(`${BASE}${suffix}/?$`, 'i'), keys: ['sub', 'rg', 'factory', ...keys], handler });

export function createAdfService({ state, directory, faults, log }) {
  const g = (fn) => guard(state, directory, fn);
  const routes = [
    route('adf.factory.get', 'GET', '', [], g((ctx) => jsonResponse(200, factoryView(state, requireFactory(ctx, state))))),
    route('adf.factory.put', 'PUT', '', [], g((ctx) => putFactory(ctx, state))),
    route('adf.factory.delete', 'DELETE', '', [], g((ctx) => {
      const existed = state.factories.delete(ctx.params.factory.toLowerCase());
      return emptyResponse(existed ? 200 : 204);
    })),
    route('adf.trigger.start', 'POST', '/triggers/([^/]+)/start', ['name'], g((ctx) => triggerState(ctx, state, 'Started'))),
    route('adf.trigger.stop', 'POST', '/triggers/([^/]+)/stop', ['name'], g((ctx) => triggerState(ctx, state, 'Stopped'))),
    route(kindName('list'), 'GET', '/([^/]+)', ['kind'], g((ctx) => {
      const f = requireFactory(ctx, state);
      return jsonResponse(200, { value: [...f.children[ctx.kind].values()].map((r) => childView(state, f, ctx.kind, r)) });
    })),
    route(kindName('get'), 'GET', '/([^/]+)/([^/]+)', ['kind', 'name'], g((ctx) => {
      const f = requireFactory(ctx, state);
      return jsonResponse(200, childView(state, f, ctx.kind, requireChild(ctx, state, f)));
    })),
    route(kindName('put'), 'PUT', '/([^/]+)/([^/]+)', ['kind', 'name'], g((ctx) => putChild(ctx, state))),
    route(kindName('delete'), 'DELETE', '/([^/]+)/([^/]+)', ['kind', 'name'], g((ctx) => deleteChild(ctx, state))),
  ];
  return createService({ service: 'adf', routes, errors: armErrors, faults, log });
}
