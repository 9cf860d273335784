// Compact JWS helpers (RS256 / PS256) on node:crypto.

import crypto from 'node:crypto';

export const base64url = (buf) => Buffer.from(buf).toString('base64url');

export function signJwt(header, payload, privateKey) {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = crypto.sign('sha256', Buffer.from(input), privateKey);
  return `${input}.${base64url(signature)}`;
}

/** Splits and decodes a compact JWT; returns {header, payload, signingInput, signature} or throws. */
export function decodeJwt(token) {
  if (typeof token !== 'string') throw new Error('not a string');
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`expected 3 dot-separated parts, got ${parts.length}`);
  const decodePart = (part, what) => {
    if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error(`${what} is not base64url`);
    let value;
    try {
      value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    } catch {
      throw new Error(`${what} is not base64url-encoded JSON`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${what} is not a JSON object`);
    return value;
  };
  return {
    header: decodePart(parts[0], 'header'),
    payload: decodePart(parts[1], 'payload'),
    signingInput: Buffer.from(`${parts[0]}.${parts[1]}`),
    signature: Buffer.from(parts[2], 'base64url'),
  };
}

/** Verifies an RS256 or PS256 signature with a public key (KeyObject, PEM or certificate). */
export function verifySignature(decoded, publicKey) {
  const { alg } = decoded.header;
  if (alg === 'RS256') return crypto.verify('sha256', decoded.signingInput, publicKey, decoded.signature);
  if (alg === 'PS256') {
    return crypto.verify('sha256', decoded.signingInput, {
      key: publicKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    }, decoded.signature);
  }
  return false;
}

/** SHA-1 and SHA-256 thumbprints of a certificate's DER bytes, base64url without padding. */
export function certificateThumbprints(pem) {
  const der = new crypto.X509Certificate(pem).raw;
  return {
    x5t: base64url(crypto.createHash('sha1').update(der).digest()),
    x5tS256: base64url(crypto.createHash('sha256').update(der).digest()),
    sha1Hex: crypto.createHash('sha1').update(der).digest('hex').toUpperCase(),
  };
}
