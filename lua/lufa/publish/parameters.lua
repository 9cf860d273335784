--- The template parameters of a published factory, named and typed as ADF's own Publish makes them.
-- A linked-service secret becomes a `secureString` parameter `<service>_<property>` (its value is never
-- written); an endpoint, account or identity becomes a `string` parameter
-- `<service>_properties_typeProperties_<property>` whose default is the factory's value. Key Vault references
-- (`AzureKeyVaultSecret`) stay as they are: they hold no secret.
-- @module lufa.publish.parameters
local json = require "lufa.json"
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"

local M = {}

--- typeProperties that hold secrets (any linked-service type), lower-cased.
M.SECRET_PROPERTIES = {}
for _, k in ipairs{
  "accessKey", "accessToken", "accountKey", "apiKey", "clientSecret", "connectionString", "credential",
  "encryptedCredential", "functionKey", "key", "password", "privateKey", "sasToken", "sasUri",
  "secretAccessKey", "servicePrincipalCredential", "servicePrincipalKey", "sharedKey", "token",
} do M.SECRET_PROPERTIES[k:lower()] = true end

--- typeProperties that differ between environments (endpoints, accounts, identities), lower-cased.
M.ENDPOINT_PROPERTIES = {}
for _, k in ipairs{
  "accountName", "baseUrl", "dataLakeStoreUri", "domain", "endpoint", "existingClusterId", "functionAppUrl",
  "mlEndpoint", "server", "serviceEndpoint", "servicePrincipalId", "tenant", "updateResourceEndpoint", "url",
  "userName",
} do M.ENDPOINT_PROPERTIES[k:lower()] = true end

local function is_expression(v)
  return type(v) == "string" and v:sub(1, 1) == "@"
end

local function is_secure_string(v)
  if secret.is(v) then return true end
  local t = L.get(v, "type")
  return L.is_object(v) and type(t) == "string" and t:lower() == "securestring"
end

local function is_key_vault_reference(v)
  local t = L.get(v, "type")
  return L.is_object(v) and type(t) == "string" and t:lower() == "azurekeyvaultsecret"
end

--- A JSON value as an ARM template holds it: a string that starts with '[' would be read as a template
-- expression, so it is written with '[[' (ARM reads that back as the literal string).
function M.escape(v)
  if type(v) == "string" then
    if v:sub(1, 1) == "[" then return "[" .. v end
    return v
  end
  if type(v) ~= "table" or v == json.null or secret.is(v) then return v end
  local copy = {}
  for k, x in pairs(v) do copy[k] = M.escape(x) end
  return setmetatable(copy, getmetatable(v))
end

--- The parameters of one linked service and its typeProperties with the parameter references put in.
-- @param entry a factory entry `{name, resource}` (SecureString values are lufa.secret values)
-- @return `{typeProperties = replaced (or nil), parameters = list of {name, type, metadata?,
--   defaultValue?, value (the factory's value; a lufa.secret or string for secrets), property, secure}}`
function M.linked_service(entry)
  local props = L.get(entry.resource, "properties")
  local tp = L.get(props, "typeProperties")
  local out = {parameters = {}}
  if not L.is_object(tp) then return out end
  local replaced = {}
  local keys = {}
  for k in pairs(tp) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = tp[k]
    local lower = k:lower()
    if is_key_vault_reference(v) or is_expression(v) then
      replaced[k] = M.escape(v)
    elseif is_secure_string(v) or (M.SECRET_PROPERTIES[lower] and type(v) == "string") then
      local name = entry.name .. "_" .. k
      local value = v
      if not secret.is(v) and type(v) == "table" then value = L.get(v, "value") end
      out.parameters[#out.parameters + 1] = {name = name, type = "secureString", secure = true, property = k,
        metadata = string.format("Secure string for '%s' of '%s'", k, entry.name), value = value}
      local ref = "[parameters('" .. name .. "')]"
      -- The shape stays what the factory wrote: a plain string, or a SecureString object.
      replaced[k] = type(v) == "string" and ref or json.object{type = "SecureString", value = ref}
    elseif M.ENDPOINT_PROPERTIES[lower] and type(v) == "string" then
      local name = entry.name .. "_properties_typeProperties_" .. k
      out.parameters[#out.parameters + 1] = {name = name, type = "string", defaultValue = v, value = v, property = k}
      replaced[k] = "[parameters('" .. name .. "')]"
    else
      replaced[k] = M.escape(v)
    end
  end
  out.typeProperties = setmetatable(replaced, getmetatable(tp))
  return out
end

--- ARMTemplateParametersForFactory.json: the factory name and every parameter with its value; secure
-- parameters get an empty value, to be filled in at deployment (or taken from Key Vault).
-- @param factory_name the factory name
-- @param list the parameters, in template order
function M.file(factory_name, list)
  local params = json.object{factoryName = json.object{value = factory_name}}
  for _, p in ipairs(list) do
    local value = p.defaultValue
    if p.secure or value == nil then value = "" end
    params[p.name] = json.object{value = value}
  end
  return json.object{
    ["$schema"] = "https://schema.management.azure.com/schemas/2015-01-01/deploymentParameters.json#",
    contentVersion = "1.0.0.0",
    parameters = params,
  }
end

return M
