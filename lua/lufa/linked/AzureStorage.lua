--- The `AzureStorage` and `AzureBlobStorage` linked services.
-- typeProperties: `connectionString` (string or SecureString), or `sasUri`, or (AzureBlobStorage)
-- `serviceEndpoint` with `servicePrincipalId` + `servicePrincipalKey` + `tenant` (a service principal) or
-- without them (the managed identity: lufa.aad's default chain). The client gives the Blob client and the
-- pieces a Batch Execution request needs.
-- @module lufa.linked.AzureStorage
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local E = require "lufa.error"
local endpoint = require "lufa.linked.endpoint"
local connection = require "lufa.blob.connection"

local M = {}

local function text(v)
  if secret.is(v) then return secret.expose(v) end
  return v
end

function M.validate(props, report)
  local tp = L.get(props, "typeProperties") or {}
  local cs, sas_uri = L.get(tp, "connectionString"), L.get(tp, "sasUri")
  local service_endpoint = L.get(tp, "serviceEndpoint")
  if cs == nil and sas_uri == nil and service_endpoint == nil then
    report:error(".typeProperties", "a storage linked service needs \"connectionString\" or \"sasUri\"")
  end
  if type(cs) == "string" and not endpoint.is_expression(cs) then
    local ok, err = connection.parse(cs)
    if not ok then
      -- placeholder keys (as in published samples) are common: say so, but let the factory load
      local severity = err.message:find("AccountKey", 1, true) and "warning" or "error"
      report[severity](report, ".typeProperties.connectionString", "%s", err.message)
    end
  end
  if sas_uri ~= nil and not secret.is(sas_uri) and type(sas_uri) == "string" and not endpoint.is_expression(sas_uri) then
    endpoint.validate(report, ".typeProperties.sasUri", sas_uri, "AzureStorage")
  end
  endpoint.validate(report, ".typeProperties.serviceEndpoint", service_endpoint, "AzureBlobStorage")
end

--- The client: `{name, connection_string (secret), settings, blob(), bes_reference(path), read_sas(path, seconds)}`.
function M.client(service)
  local tp = service.properties
  local c = { name = service.name }
  local cs, sas_uri = L.get(tp, "connectionString"), L.get(tp, "sasUri")
  local function bad(field, why)
    error(E.new{ kind = "pipeline", code = "linked_service", service = service.name, field = field,
      message = string.format("linked service '%s': typeProperties.%s %s", service.name, field, why) }, 0)
  end
  if cs ~= nil then
    c.connection_string = secret.is(cs) and cs or secret(text(cs))
    local settings, err = connection.parse(c.connection_string)
    if not settings then bad("connectionString", "is not usable: " .. err.message) end
    c.settings = settings
  elseif L.get(tp, "serviceEndpoint") ~= nil then
    -- Azure AD access: a service principal when one is named, else the managed identity
    local url, why = endpoint.check(text(L.get(tp, "serviceEndpoint")))
    if not url then bad("serviceEndpoint", why) end
    c.service_endpoint = url:gsub("/+$", "")
    local sp_id, sp_key = L.get(tp, "servicePrincipalId"), L.get(tp, "servicePrincipalKey")
    local aad = require "lufa.aad"
    if sp_id ~= nil then
      if sp_key == nil or L.get(tp, "tenant") == nil then
        bad("servicePrincipalKey", "and tenant are needed with servicePrincipalId")
      end
      c.credential = aad.client_secret{ tenant = tostring(L.get(tp, "tenant")), client_id = tostring(sp_id),
        client_secret = secret.is(sp_key) and sp_key or secret(tostring(sp_key)), authority = L.get(tp, "authorityHost") }
    else
      c.credential = aad.default()
    end
  elseif sas_uri ~= nil then
    local url = text(sas_uri)
    local base, query = tostring(url):gsub("^%s+", ""):gsub("%s+$", ""):match("^([^?]+)%?(.+)$")
    if not base or not query:find("sig=", 1, true) then bad("sasUri", "is not a URL with a SAS token (https://account.blob.../?sv=...&sig=...)") end
    c.sas_base = base:gsub("/+$", "") .. "/"
    c.sas_token = secret("?" .. query)
  else
    bad("connectionString", "is missing (give connectionString or sasUri)")
  end

  --- A lufa.blob client for this storage account.
  function c.blob()
    if not c.blob_client then
      local blob = require "lufa.blob"
      if c.connection_string then
        c.blob_client = assert(blob.client(c.connection_string))
      elseif c.credential then
        c.blob_client = assert(blob.client{ endpoint = c.service_endpoint, credential = c.credential })
      else
        c.blob_client = assert(blob.client{ sas_url = c.sas_base .. secret.expose(c.sas_token) })
      end
    end
    return c.blob_client
  end

  --- The `AzureBlobDataReference` of a Batch Execution request for `path` ("container/dir/file.csv").
  function c.bes_reference(path)
    if c.credential then
      error(E.new{ kind = "pipeline", code = "linked_service", service = service.name,
        message = string.format("linked service '%s' reaches storage through Azure AD; the Batch Execution " ..
          "Service needs a connectionString or sasUri storage linked service for its inputs and outputs",
          service.name) }, 0)
    end
    if c.connection_string then
      return { ConnectionString = c.connection_string, RelativeLocation = path }
    end
    return { BaseLocation = c.sas_base, RelativeLocation = path, SasBlobToken = c.sas_token }
  end

  --- The account's blob endpoint with a trailing "/" (the BaseLocation of a blob reference).
  function c.base_location()
    if c.settings then return c.settings.endpoint .. "/" end
    return c.service_endpoint and (c.service_endpoint .. "/") or c.sas_base
  end

  return c
end

return M
