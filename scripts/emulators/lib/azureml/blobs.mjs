// Blob references as the ML services receive them (ConnectionString + RelativeLocation,
// or BaseLocation + RelativeLocation + SasBlobToken), read and written through Azurite
// with the official SDK. Only loopback endpoints are ever contacted.

import {
  AnonymousCredential,
  BlobClient,
  BlockBlobClient,
  ContainerClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';

export class BlobRefError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const PIPELINE = { retryOptions: { maxTries: 1, tryTimeoutInMs: 30000 } };

export function isLoopbackUrl(url) {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Parses a storage connection string; throws BlobRefError(InvalidBlobConnectionString). */
export function parseConnectionString(text) {
  const fields = new Map();
  for (const part of String(text).split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const i = p.indexOf('=');
    if (i <= 0) throw new BlobRefError('InvalidBlobConnectionString', 'The connection string has a part without "Key=Value" form.');
    fields.set(p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim());
  }
  const accountName = fields.get('accountname');
  const accountKey = fields.get('accountkey');
  if (!accountName || !accountKey) {
    throw new BlobRefError('InvalidBlobConnectionString', 'The connection string must contain AccountName and AccountKey.');
  }
  const protocol = (fields.get('defaultendpointsprotocol') || 'https').toLowerCase();
  let endpoint = fields.get('blobendpoint');
  if (!endpoint) endpoint = `${protocol}://${accountName}.blob.${fields.get('endpointsuffix') || 'core.windows.net'}`;
  endpoint = endpoint.replace(/\/+$/, '');
  let url;
  try {
    url = new URL(endpoint);
  } catch {
    throw new BlobRefError('InvalidBlobConnectionString', 'The connection string has a BlobEndpoint that is not a URL.');
  }
  if (!isLoopbackUrl(url)) {
    throw new BlobRefError('InvalidBlobConnectionString', `The blob endpoint ${url.origin} is not on this machine; the emulator only reaches local storage (give BlobEndpoint=the Azurite URL).`);
  }
  return { accountName, accountKey, blobEndpoint: endpoint };
}

const encodePath = (name) => name.split('/').map(encodeURIComponent).join('/');

function splitRelative(relative, what) {
  const rel = String(relative).replace(/^\/+/, '');
  const slash = rel.indexOf('/');
  if (slash <= 0 || slash === rel.length - 1) {
    throw new BlobRefError('MissingInputBlobInformation', `${what}: RelativeLocation '${relative}' must be 'container/path/blob.ext'.`);
  }
  return { container: rel.slice(0, slash), blobName: rel.slice(slash + 1), relative: rel };
}

/**
 * Resolves a blob reference; `what` names it in messages (e.g. "input 'input1'").
 * Returns {relative, container, blobName, display, client(), sas?, account?}.
 */
export function resolveReference(ref, what) {
  if (ref === null || typeof ref !== 'object' || Array.isArray(ref)) {
    throw new BlobRefError('MissingInputBlobInformation', `${what}: expected an object with ConnectionString and RelativeLocation, or BaseLocation, RelativeLocation and SasBlobToken.`);
  }
  const { ConnectionString: cs, RelativeLocation: rel, BaseLocation: base, SasBlobToken: sas } = ref;
  if (!rel) throw new BlobRefError('MissingInputBlobInformation', `${what}: RelativeLocation is missing.`);
  if (cs) {
    const account = parseConnectionString(cs);
    const { container, blobName, relative } = splitRelative(rel, what);
    const url = `${account.blobEndpoint}/${container}/${encodePath(blobName)}`;
    return {
      kind: 'key',
      relative,
      container,
      blobName,
      extension: blobName,
      display: `${account.blobEndpoint}/${relative}`,
      account,
      baseLocation: `${account.blobEndpoint}/`,
      client: () => new BlockBlobClient(url, new StorageSharedKeyCredential(account.accountName, account.accountKey), PIPELINE),
      containerClient: () => new ContainerClient(`${account.blobEndpoint}/${container}`, new StorageSharedKeyCredential(account.accountName, account.accountKey), PIPELINE),
    };
  }
  if (base && sas) {
    // The service concatenates the three fields, as Microsoft's samples do.
    const joined = `${base}${rel}`;
    let url;
    try {
      url = new URL(joined);
    } catch {
      throw new BlobRefError('MissingInputBlobInformation', `${what}: BaseLocation + RelativeLocation is not a URL.`);
    }
    if (!isLoopbackUrl(url)) {
      throw new BlobRefError('MissingInputBlobInformation', `${what}: ${url.origin} is not on this machine; the emulator only reaches local storage.`);
    }
    const token = sas.startsWith('?') ? sas : `?${sas}`;
    return {
      kind: 'sas',
      relative: String(rel).replace(/^\/+/, ''),
      extension: url.pathname,
      display: joined,
      baseLocation: base,
      sas: token,
      client: () => new BlockBlobClient(`${joined}${token}`, new AnonymousCredential(), PIPELINE),
    };
  }
  throw new BlobRefError('MissingInputBlobInformation', `${what}: give ConnectionString and RelativeLocation, or BaseLocation, RelativeLocation and SasBlobToken.`);
}

/** A readable reason for a storage failure, without SAS or keys. */
export function storageReason(err) {
  if (err?.statusCode) {
    const code = err.code || err.details?.errorCode || '';
    return `storage answered HTTP ${err.statusCode}${code ? ` ${code}` : ''}`;
  }
  return `storage could not be reached (${err?.code || err?.message || err})`;
}

export async function readBlob(resolved, maxBytes = 64 * 1024 * 1024) {
  const client = resolved.client();
  const props = await client.getProperties();
  if (props.contentLength > maxBytes) {
    throw new BlobRefError('BlobTooLarge', `${resolved.display} is ${props.contentLength} bytes; the emulator reads at most ${maxBytes}.`);
  }
  return client.downloadToBuffer();
}

export async function writeBlob(resolved, data, contentType) {
  if (resolved.kind === 'key') await resolved.containerClient().createIfNotExists();
  await resolved.client().upload(data, data.length, { blobHTTPHeaders: { blobContentType: contentType } });
}

export async function blobExists(resolved) {
  return resolved.client().exists();
}

/** The Results entry for a finished job's output: a fresh container-scoped read+list SAS. */
export function resultLocation(resolved) {
  if (resolved.kind === 'sas') {
    return { BaseLocation: resolved.baseLocation, RelativeLocation: resolved.relative, SasBlobToken: resolved.sas };
  }
  const now = Date.now();
  const sas = generateBlobSASQueryParameters({
    containerName: resolved.container,
    permissions: ContainerSASPermissions.parse('rl'),
    startsOn: new Date(now - 5 * 60 * 1000),
    expiresOn: new Date(now + 24 * 60 * 60 * 1000),
    version: '2025-11-05',
  }, new StorageSharedKeyCredential(resolved.account.accountName, resolved.account.accountKey)).toString();
  return { BaseLocation: resolved.baseLocation, RelativeLocation: resolved.relative, SasBlobToken: `?${sas}` };
}

/** Reads a blob by plain URL: SAS in the URL, or an account key when one is known. */
export async function readBlobByUrl(urlText, accountKeyFor) {
  let url;
  try {
    url = new URL(urlText);
  } catch {
    throw new BlobRefError('InvalidLocation', `'${String(urlText).split('?')[0]}' is not a URL.`);
  }
  if (!isLoopbackUrl(url)) throw new BlobRefError('InvalidLocation', `${url.origin} is not on this machine; the emulator only reaches local storage.`);
  let client;
  if (url.searchParams.has('sig')) {
    client = new BlobClient(url.href, new AnonymousCredential(), PIPELINE);
  } else {
    const account = accountKeyFor(url);
    client = account
      ? new BlobClient(url.href, new StorageSharedKeyCredential(account.accountName, account.accountKey), PIPELINE)
      : new BlobClient(url.href, new AnonymousCredential(), PIPELINE);
  }
  return client.downloadToBuffer();
}

/** Path-style Azurite URLs carry the account as the first path segment. */
export function accountOfUrl(url) {
  return decodeURIComponent(url.pathname.split('/')[1] || '');
}
