// Where scoring endpoints' models come from: the initial model each scoring service is
// configured with (written to local storage so its location is a real blob), and models
// read back from blob locations by the update operations.

import { BlockBlobClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { parseModel } from './regression.mjs';
import { readBlobByUrl, accountOfUrl, storageReason, BlobRefError } from './blobs.mjs';

export class ModelLoadError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export function initialModelLocation(state, service) {
  const s = state.defaultStorage;
  if (!s) return null;
  return { BaseLocation: `${s.blobEndpoint}/`, RelativeLocation: `experimentoutput/initial/${service.id}.ilearner` };
}

/** Writes each scoring service's initial model to local storage and records its location. */
export async function seedInitialModels(state) {
  const s = state.defaultStorage;
  if (!s) return;
  const credential = new StorageSharedKeyCredential(s.accountName, s.accountKey);
  await new ContainerClient(`${s.blobEndpoint}/experimentoutput`, credential).createIfNotExists();
  for (const service of state.services) {
    if (service.kind !== 'scoring') continue;
    const loc = initialModelLocation(state, service);
    const initial = service.endpoints[0].model;
    const data = Buffer.from(`${JSON.stringify(initial, null, 2)}\n`);
    await new BlockBlobClient(`${loc.BaseLocation}${loc.RelativeLocation}`, credential).upload(data, data.length);
    for (const e of service.endpoints) if (!e.modelLocation) e.modelLocation = loc;
  }
}

/** Explains a SAS that is expired or not yet valid, from its own se/st fields. */
export function sasTimeProblem(sasToken) {
  const q = new URLSearchParams(String(sasToken || '').replace(/^\?/, ''));
  const now = Date.now();
  const se = q.get('se');
  const st = q.get('st');
  if (se && Date.parse(se) < now) return ` The SAS token expired at ${se}.`;
  if (st && Date.parse(st) > now) return ` The SAS token is not valid before ${st}.`;
  return '';
}

/** Reads and validates a model at a URL; SAS in the URL, or a key this service knows. */
export async function loadModelFromUrl(state, url, credentials) {
  let account = null;
  if (typeof credentials === 'string' && /AccountKey=/i.test(credentials)) {
    const fields = Object.fromEntries(credentials.split(';').filter(Boolean).map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim()];
    }));
    account = { accountName: fields.accountname, accountKey: fields.accountkey };
  }
  const keyFor = (u) => {
    if (account) return account;
    const s = state.defaultStorage;
    return s && accountOfUrl(u) === s.accountName ? s : null;
  };
  let data;
  try {
    data = await readBlobByUrl(url, keyFor);
  } catch (err) {
    const where = String(url).split('?')[0];
    if (err instanceof BlobRefError) throw new ModelLoadError('InvalidResourceLocation', err.message);
    let query = '';
    try {
      query = new URL(url).search;
    } catch { /* reported above */ }
    throw new ModelLoadError('InvalidResourceLocation', `Cannot read the trained model at '${where}': ${storageReason(err)}.${sasTimeProblem(query)}`);
  }
  try {
    return parseModel(data);
  } catch (err) {
    throw new ModelLoadError('InvalidModel', `The blob at '${String(url).split('?')[0]}' is not a usable trained model: ${err.message}.`);
  }
}
