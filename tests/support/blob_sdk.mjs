// Interoperability checks with the official Azure Storage SDK (@azure/storage-blob): a client nobody here
// wrote reads what lufa wrote, writes what lufa reads, and uses SAS URLs that lufa made.
//
// Usage (one JSON line on stdout; exit 0 when the command ran, even if the service refused it):
//   node tests/support/blob_sdk.mjs upload   --conn CS --container C --blob B --file F [--block-size N] [--concurrency N]
//   node tests/support/blob_sdk.mjs download --conn CS --container C --blob B --file F [--concurrency N]
//   node tests/support/blob_sdk.mjs hash     --conn CS --container C --blob B      (streams the blob: sha256, size)
//   node tests/support/blob_sdk.mjs sas-hash --url BLOB_SAS_URL                    (same through a SAS URL)
//   node tests/support/blob_sdk.mjs sas-put  --url BLOB_SAS_URL --text TEXT
//   node tests/support/blob_sdk.mjs sas-list --url CONTAINER_SAS_URL
// Service refusals print {"ok":false,"status":403,"code":"AuthorizationFailure"}.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'scripts', 'emulators', 'package.json'));
const { BlobServiceClient, BlobClient, ContainerClient } = require('@azure/storage-blob');

function parse(argv) {
  const [command, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith('--') || rest[i + 1] === undefined) usage(`bad argument '${rest[i]}'`);
    opts[rest[i].slice(2)] = rest[i + 1];
  }
  return { command, opts };
}

function usage(why) {
  process.stderr.write(`blob_sdk.mjs: ${why}\n`);
  process.exit(2);
}

function need(opts, ...names) {
  for (const n of names) if (opts[n] === undefined) usage(`--${n} is required`);
}

function blobClient(opts) {
  need(opts, 'conn', 'container', 'blob');
  return BlobServiceClient.fromConnectionString(opts.conn).getContainerClient(opts.container).getBlockBlobClient(opts.blob);
}

async function hashStream(stream) {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk);
    size += chunk.length;
  }
  return { sha256: h.digest('hex'), size };
}

async function fileHash(file) {
  return hashStream(createReadStream(file));
}

const commands = {
  async upload(opts) {
    need(opts, 'file');
    const client = blobClient(opts);
    const size = (await stat(opts.file)).size;
    await client.uploadFile(opts.file, {
      blockSize: opts['block-size'] ? Number(opts['block-size']) : undefined,
      concurrency: opts.concurrency ? Number(opts.concurrency) : undefined,
    });
    return { ok: true, size };
  },
  async download(opts) {
    need(opts, 'file');
    const client = blobClient(opts);
    await client.downloadToFile(opts.file, 0, undefined, {
      concurrency: opts.concurrency ? Number(opts.concurrency) : undefined,
    });
    return { ok: true, ...(await fileHash(opts.file)) };
  },
  async hash(opts) {
    const client = blobClient(opts);
    const res = await client.download(0);
    const props = await client.getProperties();
    return { ok: true, ...(await hashStream(res.readableStreamBody)), contentMD5: props.contentMD5 ? Buffer.from(props.contentMD5).toString('base64') : null };
  },
  async 'sas-hash'(opts) {
    need(opts, 'url');
    const res = await new BlobClient(opts.url).download(0);
    return { ok: true, ...(await hashStream(res.readableStreamBody)) };
  },
  async 'sas-put'(opts) {
    need(opts, 'url', 'text');
    const client = new BlobClient(opts.url).getBlockBlobClient();
    await client.upload(opts.text, Buffer.byteLength(opts.text));
    return { ok: true };
  },
  async 'sas-list'(opts) {
    need(opts, 'url');
    const names = [];
    for await (const b of new ContainerClient(opts.url).listBlobsFlat()) names.push(b.name);
    return { ok: true, names };
  },
};

const { command, opts } = parse(process.argv.slice(2));
if (!commands[command]) usage(`unknown command '${command}' (expected ${Object.keys(commands).join(', ')})`);
try {
  process.stdout.write(JSON.stringify(await commands[command](opts)) + '\n');
} catch (err) {
  if (err && err.statusCode !== undefined) {
    process.stdout.write(JSON.stringify({ ok: false, status: err.statusCode, code: err.code || err.details?.errorCode || null }) + '\n');
  } else {
    process.stderr.write(`blob_sdk.mjs ${command}: ${err && err.stack || err}\n`);
    process.exit(1);
  }
}
