// The request log the control endpoint serves: method, path, status and a few
// non-secret facts per request. Query values that could carry secrets are masked.

const SENSITIVE_QUERY = new Set(['sig', 'client_secret', 'client_assertion', 'code', 'key', 'token', 'access_token']);
const MAX_ENTRIES = 20000;

export function redactedPath(url) {
  const parsed = new URL(url, 'http://x');
  const parts = [];
  for (const [k, v] of parsed.searchParams) {
    parts.push(`${encodeURIComponent(k)}=${SENSITIVE_QUERY.has(k.toLowerCase()) ? 'REDACTED' : encodeURIComponent(v)}`);
  }
  return parts.length ? `${parsed.pathname}?${parts.join('&')}` : parsed.pathname;
}

export class RequestLog {
  constructor() {
    this.clear();
  }

  clear() {
    this.entries = [];
    this.seq = 0;
  }

  add(entry) {
    this.seq += 1;
    const full = { seq: this.seq, time: new Date().toISOString(), ...entry };
    this.entries.push(full);
    if (this.entries.length > MAX_ENTRIES) this.entries.splice(0, this.entries.length - MAX_ENTRIES);
    return full;
  }

  /** Filters by service, route (prefix match), method and a sequence number to start after. */
  query({ service, route, method, since } = {}) {
    return this.entries.filter((e) =>
      (!service || e.service === service) &&
      (!route || e.route === route || e.route.startsWith(`${route}.`)) &&
      (!method || e.method === method.toUpperCase()) &&
      (!since || e.seq > since));
  }
}
