// Certificates made with the openssl CLI at start: the app registration's client
// certificate (always, RSA for RS256/PS256) and, with --tls, an EC P-256 CA plus a server
// certificate for 127.0.0.1 (EC keys are made in milliseconds).

import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';

function openssl(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args[0]} failed: ${(stderr || err.message).trim().split('\n').slice(-3).join(' / ')}`));
      else resolve(stdout);
    });
  });
}

/** The client certificate the emulated app registration trusts (RSA 2048, self-signed). */
export async function makeClientCertificate(dir) {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '365',
    '-subj', '/CN=lufa-retraining client', '-keyout', 'client-key.pem', '-out', 'client-cert.pem'], dir);
  fs.chmodSync(path.join(dir, 'client-key.pem'), 0o600);
}

/** A throw-away CA and a server certificate for 127.0.0.1 / localhost signed by it. */
export async function makeTlsCertificates(dir) {
  const tls = path.join(dir, 'tls');
  fs.mkdirSync(tls, { recursive: true, mode: 0o700 });
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256', '-days', '30',
    '-subj', '/CN=lufa emulators local CA', '-keyout', 'ca-key.pem', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], tls);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256', '-subj', '/CN=127.0.0.1',
    '-keyout', 'server-key.pem', '-out', 'server.csr'], tls);
  fs.writeFileSync(path.join(tls, 'server.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '',
  ].join('\n'));
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
    '-sha256', '-days', '30', '-extfile', 'server.ext', '-out', 'server-cert.pem'], tls);
  for (const f of ['ca-key.pem', 'server-key.pem']) fs.chmodSync(path.join(tls, f), 0o600);
  return path.join(tls, 'ca.pem');
}
