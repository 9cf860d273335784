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

--- Resolve a linked-service reference to `{name, type, properties, definition}`.
-- Parameters declared by the linked service get their defaults, overridden by the
-- reference's `parameters`; `@{linkedService().p}` in typeProperties sees them.
-- @param factory the factory
-- @param ref a name or a LinkedServiceReference
-- @param evaluate function(value, extra_scope) evaluating expressions (the caller's scope)
-- @return service table, or nil and a lufa.error
function M.resolve(factory, ref, evaluate)
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
  return {name = def.name, type = L.get(props, "type"), properties = evaluated, definition = def.resource}
end

--- A client for a linked service: the registered type's `client(service, ctx)`,
-- or the resolved service description itself.
function M.client(factory, ref, evaluate, ctx)
  local service, err = M.resolve(factory, ref, evaluate)
  if not service then return nil, err end
  local spec = M.get_type(service.type)
  if spec and spec.client then
    return spec.client(service, ctx)
  end
  return service
end

return M
