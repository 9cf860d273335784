--- Linked services: references by name, SecureString handling and clients.
-- Linked-service types are a registry (`register_type`, or a module `lufa.linked.<Type>`
-- found by name) giving real clients (AzureML, AzureStorage, …). A type without one
-- resolves to a plain description `{name=, type=, properties=}` with expressions evaluated.
-- @module lufa.linked
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"
local L = require "lufa.pipeline.lenient"

local M = {}

local types = {}

--- Register a linked-service type.
-- @param type_name e.g. "AzureML"
-- @param spec table with `client(service, ctx)` → client object (optional) and
--   `validate(properties, report)` (optional) where `service` is `{name, type, properties}`
--   with typeProperties evaluated and secrets as lufa.secret values.
function M.register_type(type_name, spec)
  if type(spec) ~= "table" then error("linked-service type spec must be a table", 2) end
  types[type_name:lower()] = spec
end

-- A module `lufa.linked.<Type>` on the Lua path defines a type by name (as activity types
-- are found); only "module not found" means there is none.
local function load_type_module(type_name)
  if not type_name:match("^[%a][%w_]*$") then return nil end
  local name = "lufa.linked." .. type_name
  local ok, mod = pcall(require, name)
  if not ok then
    if type(mod) == "string" and mod:find("module '" .. name .. "' not found", 1, true) then return nil end
    error(mod, 0)
  end
  if type(mod) == "table" and (type(mod.client) == "function" or type(mod.validate) == "function") then
    return mod
  end
  return nil
end

--- The spec for a linked-service type (any letter case for registered types), or nil:
-- registered with `register_type`, else the module `lufa.linked.<Type>` if there is one.
function M.get_type(type_name)
  if type(type_name) ~= "string" then return nil end
  local spec = types[type_name:lower()]
  if spec then return spec end
  spec = load_type_module(type_name)
  if spec then types[type_name:lower()] = spec end
  return spec
end

--- Whether `v` is an ADF SecureString object `{"type": "SecureString", "value": "…"}`.
function M.is_secure_string(v)
  if type(v) ~= "table" or v == json.null or secret.is(v) then return false end
  local t = L.get(v, "type")
  return type(t) == "string" and t:lower() == "securestring" and L.get(v, "value") ~= nil
end

--- A deep copy of a JSON value in which every SecureString object became a lufa.secret.
-- JSON array/object marks are kept.
function M.protect(value)
  if type(value) ~= "table" or value == json.null or secret.is(value) then return value end
  if M.is_secure_string(value) then
    local v = L.get(value, "value")
    if secret.is(v) then return v end
    return secret(type(v) == "string" and v or json.encode(v))
  end
  local copy = {}
  for k, v in pairs(value) do copy[k] = M.protect(v) end
  return setmetatable(copy, getmetatable(value))
end

--- A deep copy safe to show: secrets replaced by their redaction marker.
function M.redact(value)
  if secret.is(value) then return tostring(value) end
  if type(value) ~= "table" or value == json.null then return value end
  local copy = {}
  for k, v in pairs(value) do copy[k] = M.redact(v) end
  return setmetatable(copy, getmetatable(value))
end

--- The name in a reference: a string, or `{referenceName = …}` in any letter case.
function M.reference_name(ref)
  if type(ref) == "string" then return ref end
  local name = L.get(ref, "referenceName")
  if type(name) == "string" then return name end
  return nil
end

--- Whether `v` is an ADF Key Vault secret reference
-- `{"type": "AzureKeyVaultSecret", "store": {"referenceName": …}, "secretName": …, "secretVersion"?: …}`.
function M.is_key_vault_secret(v)
  if type(v) ~= "table" or v == json.null or secret.is(v) then return false end
  local t = L.get(v, "type")
  return type(t) == "string" and t:lower() == "azurekeyvaultsecret"
end

local function key_path(k)
  if type(k) == "number" then return "[" .. (k - 1) .. "]" end
  return "." .. tostring(k)
end

-- Replaces every Key Vault secret reference in `value` (a fresh copy from evaluation) by the secret's
-- value, a lufa.secret, fetched through the vault's linked service; `cache` holds this run's answers.
local function resolve_key_vault(factory, owner, value, path, evaluate, ctx, cache)
  if type(value) ~= "table" or value == json.null or secret.is(value) then return value end
  if not M.is_key_vault_secret(value) then
    for k, v in pairs(value) do
      local r = resolve_key_vault(factory, owner, v, path .. key_path(k), evaluate, ctx, cache)
      if r ~= v then value[k] = r end
    end
    return value
  end
  local function bad(fmt, ...)
    error(E.new{kind = "pipeline", code = "key_vault", service = owner, field = path,
      message = string.format("linked service '%s': %s: " .. fmt, owner, path, ...)}, 0)
  end
  local store = M.reference_name(L.get(value, "store"))
  local name, version = L.get(value, "secretName"), L.get(value, "secretVersion")
  if not store then bad("an AzureKeyVaultSecret needs \"store\" naming an AzureKeyVault linked service") end
  if store:lower() == owner:lower() then bad("an AzureKeyVaultSecret cannot take its secret from its own linked service") end
  if secret.is(name) then name = secret.expose(name) end
  if type(name) ~= "string" or name == "" then bad("an AzureKeyVaultSecret needs a \"secretName\" string") end
  if version == json.null or version == "" then version = nil end
  if version ~= nil and type(version) ~= "string" then bad("secretVersion must be a string") end
  local key = store:lower() .. "\0" .. name:lower() .. "\0" .. (version or "")
  local cached = cache[key]
  if cached then return cached end
  local vault, verr = M.client(factory, store, evaluate, ctx)
  if not vault then bad("%s", tostring(verr)) end
  if type(vault.secret) ~= "function" then
    bad("the store '%s' is not an AzureKeyVault linked service", store)
  end
  local got, err = vault.secret(name, version)
  if not got then
    error(E.new{kind = "pipeline", code = "key_vault", service = owner, field = path, store = store,
      secret = name, status = err.status, vault_code = err.code,
      message = string.format("linked service '%s': %s: secret '%s' from Key Vault linked service '%s': %s",
        owner, path, name, store, err.message)}, 0)
  end
  cache[key] = got
  return got
end

--- Resolve a linked-service reference to `{name, type, properties, definition}`.
-- Parameters declared by the linked service get their defaults, overridden by the
-- reference's `parameters`; `@{linkedService().p}` in typeProperties sees them.
-- Key Vault secret references in typeProperties are replaced by their values (lufa.secret), fetched
-- once per run (cached in `ctx.run` when a context is given).
-- @param factory the factory
-- @param ref a name or a LinkedServiceReference
-- @param evaluate function(value, extra_scope) evaluating expressions (the caller's scope)
-- @param ctx the activity context (optional)
-- @param opts optional: `key_vault = false` leaves Key Vault references as written (nothing is fetched;
--   for showing a linked service, as `lufa run --dry-run` does)
-- @return service table, or nil and a lufa.error
function M.resolve(factory, ref, evaluate, ctx, opts)
  local name = M.reference_name(ref)
  if not name then
    return nil, E.new{kind = "pipeline", code = "linked_service",
      message = "linked service reference must name a linked service"}
  end
  local def = factory:find("linkedService", name)
  if not def then
    return nil, E.new{kind = "pipeline", code = "linked_service",
      message = string.format("linked service '%s' is not defined in the factory", name)}
  end
  local props = L.get(def.resource, "properties") or {}
  local params = {}
  for pname, spec in pairs(L.get(props, "parameters") or {}) do
    local d = L.get(spec, "defaultValue")
    if d ~= nil then params[pname] = d end
  end
  local supplied = type(ref) == "table" and L.get(ref, "parameters") or nil
  if supplied then
    for pname, v in pairs(supplied) do params[pname] = evaluate(v) end
  end
  local tp = L.get(props, "typeProperties") or json.object{}
  local ok, evaluated = pcall(evaluate, tp, {linkedService = function() return json.object(params) end})
  if not ok then
    return nil, E.new{kind = "pipeline", code = "linked_service",
      message = string.format("linked service '%s': %s", def.name, tostring(evaluated))}
  end
  if opts and opts.key_vault == false then
    return {name = def.name, type = L.get(props, "type"), properties = evaluated, definition = def.resource}
  end
  local run = ctx and ctx.run
  local cache = run and run.key_vault_secrets or {}
  if run then run.key_vault_secrets = cache end
  local resolved
  ok, resolved = pcall(resolve_key_vault, factory, def.name, evaluated, "typeProperties", evaluate, ctx, cache)
  if not ok then
    if type(resolved) == "table" and resolved.kind then return nil, resolved end
    return nil, E.new{kind = "pipeline", code = "linked_service",
      message = string.format("linked service '%s': %s", def.name, tostring(resolved))}
  end
  return {name = def.name, type = L.get(props, "type"), properties = resolved, definition = def.resource}
end

--- A client for a linked service: the registered type's `client(service, ctx)`,
-- or the resolved service description itself.
function M.client(factory, ref, evaluate, ctx)
  local service, err = M.resolve(factory, ref, evaluate, ctx)
  if not service then return nil, err end
  local spec = M.get_type(service.type)
  if spec and spec.client then
    return spec.client(service, ctx)
  end
  return service
end

return M
