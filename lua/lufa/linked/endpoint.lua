--- Checks on endpoint values of linked services: trimmed, absolute http(s) URLs.
-- @module lufa.linked.endpoint
local E = require "lufa.error"
local L = require "lufa.pipeline.lenient"

local M = {}

--- Whether a typeProperties value is an expression (evaluated at run time, not checked statically).
function M.is_expression(v)
  if type(v) ~= "string" then
    return type(v) == "table" and type(L.get(v, "value")) == "string" and
      tostring(L.get(v, "type") or ""):lower() == "expression"
  end
  return v:match("^%s*@") ~= nil and not v:match("^%s*@@")
end

--- The URL with surrounding whitespace removed, or nil and why it cannot be one.
function M.check(value)
  if type(value) ~= "string" then return nil, "is not a string" end
  local url = value:gsub("^%s+", ""):gsub("%s+$", "")
  local scheme, host, rest = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "is not an absolute URL (expected https://host/...)" end
  if scheme:lower() ~= "https" and scheme:lower() ~= "http" then
    return nil, "uses scheme '" .. scheme .. "' (expected https)"
  end
  if host == "" or host:find("[%s{}]") then return nil, "has no valid host" end
  if rest:find("%s") then return nil, "contains white space" end
  return url
end

--- Whether a typeProperties value is a Key Vault secret reference (resolved when the service is used).
function M.is_key_vault_secret(v)
  return type(v) == "table" and tostring(L.get(v, "type") or ""):lower() == "azurekeyvaultsecret"
end

--- For validate(): reports a literal endpoint that cannot be a URL as an error at `path`.
function M.validate(report, path, value, service_type)
  if value == nil or M.is_expression(value) or M.is_key_vault_secret(value) then return end
  local _, why = M.check(value)
  if not why then return end
  -- published samples keep placeholders such as ".../services/--training experiment--/jobs": a run with
  -- such a value fails, but the factory itself is well-formed (an override supplies the real URL)
  local severity = why == "contains white space" and "warning" or "error"
  report[severity](report, path, "%s %s %s", service_type, path:match("[^.]+$"), why)
end

--- For clients: the trimmed URL, or raises a lufa.error naming the linked service and the field.
function M.require(service, field, value, optional)
  if value == nil or value == "" then
    if optional then return nil end
    error(E.new{ kind = "pipeline", code = "linked_service", service = service.name, field = field,
      message = string.format("linked service '%s' (%s) needs typeProperties.%s", service.name,
        tostring(service.type), field) }, 0)
  end
  local url, why = M.check(value)
  if not url then
    error(E.new{ kind = "pipeline", code = "linked_service", service = service.name, field = field,
      message = string.format("linked service '%s': typeProperties.%s %s", service.name, field, why) }, 0)
  end
  return url
end

return M
