// Reading and checking the Azure AD emulator's directory file (tenants, app
// registrations, managed identities); errors name the file and the JSON path.

import fs from 'node:fs';

export class ConfigError extends Error {}

export function readJson(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read (${err.code || err.message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON (${err.message})`);
  }
}

export function validateAadConfig(cfg, file) {
  const fail = (p, what) => { throw new ConfigError(`${file}: ${p}: expected ${what}`); };
  const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  if (!cfg || typeof cfg !== 'object') fail('(root)', 'an object');
  if (!Array.isArray(cfg.tenants) || cfg.tenants.length === 0) fail('tenants', 'a non-empty list');
  cfg.tenants.forEach((t, i) => {
    if (!guid.test(t?.id ?? '')) fail(`tenants[${i}].id`, 'a GUID');
    if (t.domains !== undefined && !(Array.isArray(t.domains) && t.domains.every((d) => /^[A-Za-z0-9.-]+$/.test(d)))) fail(`tenants[${i}].domains`, 'a list of domain names');
    if (!Array.isArray(t.apps)) fail(`tenants[${i}].apps`, 'a list of app registrations');
    t.apps.forEach((a, j) => {
      if (!guid.test(a?.clientId ?? '')) fail(`tenants[${i}].apps[${j}].clientId`, 'a GUID');
      if (!guid.test(a?.objectId ?? '')) fail(`tenants[${i}].apps[${j}].objectId`, 'a GUID');
    });
  });
  (cfg.managedIdentities || []).forEach((m, i) => {
    if (m.kind !== 'system' && m.kind !== 'user') fail(`managedIdentities[${i}].kind`, '"system" or "user"');
    if (!guid.test(m.clientId ?? '') || !guid.test(m.principalId ?? '')) fail(`managedIdentities[${i}]`, 'clientId and principalId GUIDs');
    if (typeof m.resourceId !== 'string' || !m.resourceId.startsWith('/subscriptions/')) fail(`managedIdentities[${i}].resourceId`, 'an ARM resource id');
  });
  if (cfg.tokenLifetimeSeconds !== undefined && cfg.tokenLifetimeSeconds !== null && !(Number.isInteger(cfg.tokenLifetimeSeconds) && cfg.tokenLifetimeSeconds > 0)) {
    fail('tokenLifetimeSeconds', 'a whole number of seconds, or null for 60-90 minutes at random');
  }
  return cfg;
}
